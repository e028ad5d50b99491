"""Dates in the NetSuite sandbox's SuiteQL: the account's date preference and Oracle's date functions.

SQLite has no date type, so the SuiteQL views (`netsuite_suiteql`) hand date columns out as *tagged*
text: ``DATE_TAG`` + ``YYYY-MM-DD HH:MM:SS``. Tagged values compare and sort like Oracle DATEs (with
each other, with ``SYSDATE`` and with ``TO_DATE(…)``), and the engine renders every tagged value that
reaches a result row the way NetSuite does: the date part in the account's date format preference
(default ``M/D/YYYY``: ``6/15/2024``), with no time even for date-time columns such as
``lastmodifieddate``. ``TO_CHAR(date, fmt)`` formats with an Oracle format model, ``TO_DATE(text,
fmt)`` parses one, ``BUILTIN.DF(date)`` gives the preference text.

Facts: the account / user date format preference applies to SuiteQL results (netsuite.md fidelity
checklist, issue 8); Oracle format models (``YYYY``, ``MM``, ``DD``, ``HH24``, ``MI``, ``SS``,
``"literal"``, ``FM``…) are Oracle SQL's. The time zone is the world clock's (UTC): an assumption.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

DATE_TAG = "\x1e"
DEFAULT_DATE_FORMAT = "M/D/YYYY"

#: Date preferences NetSuite offers (Set Preferences > Date Format); the sandbox accepts these.
DATE_FORMATS = (
    "M/D/YYYY",
    "D/M/YYYY",
    "MM/DD/YYYY",
    "DD/MM/YYYY",
    "D.M.YYYY",
    "DD.MM.YYYY",
    "D-Mon-YYYY",
    "DD-Mon-YYYY",
    "D MONTH, YYYY",
    "DD MONTH, YYYY",
    "YYYY/MM/DD",
    "YYYY-MM-DD",
    "YYYY/M/D",
    "YYYY-M-D",
)
#: Columns holding dates (no time) and date-times in the sandbox's tables (all tables).
DATE_COLUMNS = frozenset(
    {
        "trandate",
        "duedate",
        "shipdate",
        "startdate",
        "enddate",
        "effectivedate",
        "obsoletedate",
        "effectivestartdate",
        "effectiveenddate",
        "createddate",
        "lastmodifieddate",
        "datecreated",
    }
)

_MONTHS: tuple[str, ...] = ("January", "February", "March", "April", "May", "June", "July", "August")
_MONTHS += ("September", "October", "November", "December")
_DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_STORED = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2}))?(?:\.\d+)?)?(Z|[+-]00:?00)?$"
)
_PREFERENCE_TOKEN = re.compile(r"YYYY|MONTH|Mon|MM|M|DD|D|[/.\-, ]")
# Oracle datetime format model elements (longest first), quoted literals and punctuation.
_MODEL_TOKEN = re.compile(
    r'"[^"]*"|FM|YYYY|RRRR|YY|MONTH|Month|month|MON|Mon|mon|MM|DDD|DD|DAY|Day|DY|Dy|D|HH24|HH12|HH|MI|SS'
    r"|AM|PM|A\.M\.|P\.M\.|[-/,.;: ]",
    re.IGNORECASE,
)


class DateError(ValueError):
    """A date value or format SuiteQL would refuse (rendered as 400 INVALID_PARAMETER)."""


@dataclass
class Preferences:
    """The account's General Preferences that shape SuiteQL output (set by a control route)."""

    date_format: str = DEFAULT_DATE_FORMAT

    def set_date_format(self, value: Any) -> None:
        if value not in DATE_FORMATS:
            raise DateError(f"date_format must be one of {', '.join(DATE_FORMATS)}")
        self.date_format = str(value)


# -- tagged values --------------------------------------------------------------------------------


def tag(stored: Any) -> str | None:
    """A stored date / date-time (``YYYY-MM-DD``, ``…THH:MM:SSZ``) as a tagged SuiteQL DATE."""
    if stored is None or stored == "":
        return None
    text = str(stored)
    if text.startswith(DATE_TAG):
        return text
    match = _STORED.match(text)
    if match is None:
        return None  # not a date NetSuite would have stored: behaves as NULL
    year, month, day, hour, minute, second = (int(g or 0) for g in match.groups()[:6])
    return _tagged(datetime(year, month, day, hour, minute, second))


def _tagged(moment: datetime) -> str:
    return DATE_TAG + moment.strftime("%Y-%m-%d %H:%M:%S")


def untag(value: str) -> datetime:
    return datetime.strptime(value[len(DATE_TAG) :], "%Y-%m-%d %H:%M:%S")


def is_date(value: Any) -> bool:
    return isinstance(value, str) and value.startswith(DATE_TAG)


def sysdate(now: datetime) -> str:
    return _tagged(now.replace(tzinfo=None, microsecond=0))


# -- the account's preference ---------------------------------------------------------------------


def display(value: Any, preference: str) -> str | None:
    """A tagged DATE as NetSuite shows it: the date in the preference format, no time."""
    if value is None:
        return None
    if not is_date(value):
        return str(value)
    moment = untag(value)
    parts = []
    for token in _PREFERENCE_TOKEN.findall(preference):
        parts.append(
            {
                "YYYY": f"{moment.year:04d}",
                "MONTH": _MONTHS[moment.month - 1],
                "Mon": _MONTHS[moment.month - 1][:3],
                "MM": f"{moment.month:02d}",
                "M": str(moment.month),
                "DD": f"{moment.day:02d}",
                "D": str(moment.day),
            }.get(token, token)
        )
    return "".join(parts)


def parse_preference(text: str, preference: str) -> str:
    """Text in the preference format -> tagged DATE (Oracle's implicit conversion)."""
    pattern = ""
    for token in _PREFERENCE_TOKEN.findall(preference):
        pattern += {
            "YYYY": r"(?P<year>\d{4})",
            "MONTH": r"(?P<monthname>[A-Za-z]+)",
            "Mon": r"(?P<monthname>[A-Za-z]{3})",
            "MM": r"(?P<month>\d{1,2})",
            "M": r"(?P<month>\d{1,2})",
            "DD": r"(?P<day>\d{1,2})",
            "D": r"(?P<day>\d{1,2})",
        }.get(token, re.escape(token))
    return _from_groups(re.fullmatch(pattern, text.strip()), text, preference)


# -- Oracle format models -------------------------------------------------------------------------


def _model(fmt: str) -> list[str]:
    tokens, position = [], 0
    while position < len(fmt):
        match = _MODEL_TOKEN.match(fmt, position)
        if match is None:
            raise DateError(f"ORA-01821: date format not recognized: {fmt!r}")
        tokens.append(match.group(0))
        position = match.end()
    return tokens


def to_char(value: Any, fmt: str | None, preference: str) -> str | None:
    """Oracle ``TO_CHAR``: a DATE with a format model (or the preference); other values as text."""
    if value is None:
        return None
    if not is_date(value):
        if isinstance(value, float) and value.is_integer():
            return str(int(value))
        return str(value)
    if fmt is None:
        return display(value, preference)
    moment = untag(value)
    fill = True  # FM toggles Oracle's padding off (and on again)
    out = []
    for token in _model(fmt):
        upper = token.upper()
        if token.startswith('"'):
            out.append(token[1:-1])
        elif upper == "FM":
            fill = not fill
        else:
            out.append(_element(moment, token, upper, fill))
    return "".join(out)


def _element(moment: datetime, token: str, upper: str, fill: bool) -> str:
    def number(value: int, width: int) -> str:
        return f"{value:0{width}d}" if fill else str(value)

    def word(text: str, width: int) -> str:
        styled = text.upper() if token.isupper() else text.lower() if token.islower() else text
        return styled.ljust(width) if fill else styled

    hour12 = moment.hour % 12 or 12
    numbers = {
        "YYYY": (moment.year, 4),
        "RRRR": (moment.year, 4),
        "YY": (moment.year % 100, 2),
        "MM": (moment.month, 2),
        "DD": (moment.day, 2),
        "DDD": (moment.timetuple().tm_yday, 3),
        "D": (moment.isoweekday() % 7 + 1, 1),
        "HH24": (moment.hour, 2),
        "HH12": (hour12, 2),
        "HH": (hour12, 2),
        "MI": (moment.minute, 2),
        "SS": (moment.second, 2),
    }
    if upper in numbers:
        return number(*numbers[upper])
    if upper == "MONTH":
        return word(_MONTHS[moment.month - 1], 9)
    if upper == "MON":
        return word(_MONTHS[moment.month - 1][:3], 3)
    if upper == "DAY":
        return word(_DAYS[moment.weekday()], 9)
    if upper == "DY":
        return word(_DAYS[moment.weekday()][:3], 3)
    if upper in ("AM", "PM"):
        return "PM" if moment.hour >= 12 else "AM"
    if upper in ("A.M.", "P.M."):
        return "P.M." if moment.hour >= 12 else "A.M."
    return token  # punctuation


def to_date(text: Any, fmt: str | None, preference: str) -> str | None:
    """Oracle ``TO_DATE`` / ``TO_TIMESTAMP``: text in a format model (or the preference) -> DATE."""
    if text is None:
        return None
    if is_date(text):
        return str(text)
    if fmt is None:
        return parse_preference(str(text), preference)
    pattern = ""
    for token in _model(fmt):
        upper = token.upper()
        pattern += {
            "YYYY": r"(?P<year>\d{4})",
            "RRRR": r"(?P<year>\d{4})",
            "YY": r"(?P<year2>\d{2})",
            "MM": r"(?P<month>\d{1,2})",
            "MON": r"(?P<monthname>[A-Za-z]{3})",
            "MONTH": r"(?P<monthname>[A-Za-z]+)\s*",
            "DD": r"(?P<day>\d{1,2})",
            "HH24": r"(?P<hour>\d{1,2})",
            "HH12": r"(?P<hour12>\d{1,2})",
            "HH": r"(?P<hour12>\d{1,2})",
            "MI": r"(?P<minute>\d{1,2})",
            "SS": r"(?P<second>\d{1,2})",
            "AM": r"(?P<meridian>[AP]M)",
            "PM": r"(?P<meridian>[AP]M)",
            "FM": "",
        }.get(upper, re.escape(token[1:-1] if token.startswith('"') else token))
    try:
        match = re.fullmatch(pattern, str(text).strip(), re.IGNORECASE)
    except re.error:
        raise DateError(f"ORA-01821: date format not recognized: {fmt!r}") from None
    return _from_groups(match, str(text), fmt)


def _from_groups(match: re.Match[str] | None, text: str, fmt: str) -> str:
    if match is None:
        raise DateError(f"ORA-01861: literal does not match format string: {text!r} for {fmt!r}")
    groups = {k: v for k, v in match.groupdict().items() if v is not None}
    try:
        year = int(groups["year"]) if "year" in groups else 2000 + int(groups.get("year2", "0"))
        if "monthname" in groups:
            month = [m[:3].lower() for m in _MONTHS].index(groups["monthname"][:3].lower()) + 1
        else:
            month = int(groups.get("month", "1"))
        hour = int(groups.get("hour", "0"))
        if "hour12" in groups:
            hour = int(groups["hour12"]) % 12 + (12 if groups.get("meridian", "AM").upper() == "PM" else 0)
        moment = datetime(
            year,
            month,
            int(groups.get("day", "1")),
            hour,
            int(groups.get("minute", "0")),
            int(groups.get("second", "0")),
        )
    except ValueError:
        raise DateError(f"ORA-01843: not a valid date: {text!r} for {fmt!r}") from None
    return _tagged(moment)


def trunc(value: Any) -> Any:
    """Oracle ``TRUNC``: a DATE to midnight, a number to its integer part."""
    if value is None:
        return None
    if is_date(value):
        return _tagged(untag(value).replace(hour=0, minute=0, second=0))
    return int(float(value))
