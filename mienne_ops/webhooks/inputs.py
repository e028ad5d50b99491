"""What the receiver accepts from the network, checked before anything is stored.

Every malformed input is a 4xx with a reason, never a 500: a 500 tells the sender to retry a request
that can never succeed (Shopify deletes a subscription after 8 failed deliveries in a row), and an
exception from deep inside the JSON parser or the database driver is a crash an attacker can trigger
at will. So the body must be UTF-8 JSON of bounded depth with finite numbers and no lone surrogates
(PostgreSQL cannot store them; SQLite would), and the values that go into the inbox's columns must fit
them (PostgreSQL refuses a value longer than its ``VARCHAR``, SQLite silently keeps it).

`Refusals` is the one place a refusal is logged and counted, by source and by a reason from a small
fixed set (fit for a metric label); the detail goes to the log and the answer, never the payload.
"""

from __future__ import annotations

import json
import logging
import math
from collections import Counter
from typing import Any

from starlette.responses import JSONResponse

from mienne_ops.ledger import schema

log = logging.getLogger("mienne_ops.webhooks")

#: Deeper than any vendor's payload (a Shopify order is about 6 levels); bounds every consumer's walk.
MAX_JSON_DEPTH = 64


class BadInput(ValueError):
    """An input refused with ``status``; ``reason`` is a short label, ``detail`` says what was wrong."""

    def __init__(self, status: int, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.reason = reason
        self.detail = detail


class Refusals:
    """Logs and counts every refused request by ``(source, reason)``; answers it."""

    def __init__(self) -> None:
        self.counts: Counter[tuple[str, str]] = Counter()

    def answer(self, source: str, bad: BadInput) -> JSONResponse:
        self.counts[(source, bad.reason)] += 1
        log.warning("refused a %s request (%d %s): %s", source, bad.status, bad.reason, bad.detail)
        return JSONResponse({"error": bad.detail, "reason": bad.reason}, status_code=bad.status)


def parse_json(raw: bytes) -> Any:
    """The body as JSON, or `BadInput`: not UTF-8, not JSON, NaN/Infinity, too deep, lone surrogates."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise BadInput(400, "bad_json", "body is not UTF-8") from error
    try:
        payload = json.loads(text, parse_constant=_no_constant, parse_float=_finite_float)
    except RecursionError as error:  # the C scanner's own limit, reached before ours on "[[[[…"
        raise BadInput(400, "bad_json", "body is nested too deeply") from error
    except BadInput:
        raise
    except ValueError as error:  # JSONDecodeError, and ints longer than Python converts
        raise BadInput(400, "bad_json", "body is not JSON") from error
    _check_tree(payload)
    return payload


def _no_constant(name: str) -> Any:
    raise BadInput(400, "bad_json", f"body holds {name}, which JSON does not allow")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):  # 1e999 parses to inf: PostgreSQL's json refuses it on insert
        raise BadInput(400, "bad_json", "body holds a number out of range")
    return value


def _check_tree(payload: Any) -> None:
    """Depth at most `MAX_JSON_DEPTH`, every string encodable as UTF-8 (iteratively: no recursion)."""
    stack: list[tuple[Any, int]] = [(payload, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, str):
            _check_text(value)
        elif isinstance(value, dict | list):
            if depth > MAX_JSON_DEPTH:
                raise BadInput(400, "bad_json", "body is nested too deeply")
            items = value.items() if isinstance(value, dict) else enumerate(value)
            for key, item in items:
                if isinstance(key, str):
                    _check_text(key)
                stack.append((item, depth + 1))


def _check_text(value: str) -> None:
    if value.isascii():
        return
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as error:  # "\ud800": valid JSON, not storable text
        raise BadInput(400, "bad_json", "body holds an unpaired surrogate") from error


def column_fits(column: str, value: str | None) -> None:
    """`BadInput` when ``value`` is longer than the inbox column ``column`` (checked before insert)."""
    limit = getattr(schema.inbox_events.c[column].type, "length", None)
    if value is not None and limit is not None and len(value) > limit:
        raise BadInput(400, "too_long", f"{column} is longer than {limit} characters")


def required_header(headers: Any, *names: str) -> str:
    """The first of ``names`` present and non-blank, else `BadInput` naming the first."""
    for name in names:
        value = (headers.get(name) or "").strip()
        if value:
            return value
    raise BadInput(400, "missing_header", f"missing {names[0]}")
