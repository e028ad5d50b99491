"""A quiet console for `mienne-ops dev`: warnings and errors on screen, everything in a log file.

`dagster dev` logs every sensor check and every run event (hundreds of lines a minute), and the
sandbox logs each simulated order: a real error scrolls away before anyone sees it. Each child's
output goes through `ConsoleFilter`, which sorts it into records by their header (Dagster's and
Python logging's formats), writes every line to the log file and shows on the console only the
records at WARNING or above, tracebacks and anything it cannot classify (never hide what we don't
understand). ``--verbose`` shows everything, as before.

Once the stop has begun (`STOPPING`), the daemon's own records stay in the log: its sensor threads
outlive its workspace for a few seconds while it shuts down and each logs a "Location … does not
exist in workspace" traceback — Dagster's shutdown order, not an error of the stack. Runs are
checked separately (`devtools.shutdown` leaves none failed).
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Iterable
from typing import IO

ANSI = re.compile(r"\x1b\[[0-9;]*m")
# Dagster: "2026-12-06 23:32:08 +0000 - dagster.daemon - INFO - ..." (colours stripped first).
DAGSTER_HEADER = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d [+-]\d{4} - (?P<logger>\S+) - ([A-Z]+) - ")
# Ours (`mienne-ops` basicConfig): "2026-12-06 23:34:53,088 INFO mienne_ops.sandbox.traffic: ..."
LOGGING_HEADER = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} ([A-Z]+) \S+: ")
# uvicorn's default format: "INFO:     127.0.0.1:51234 - ..."
UVICORN_HEADER = re.compile(r"^([A-Z]+):\s+")
#: Set when the dev command starts stopping the stack.
STOPPING = threading.Event()
_WRITE = threading.Lock()  # the children's pumps share the console and the log file


def record_level(line: str) -> int | None:
    """The logging level a line opens a record with, or None for a continuation line."""
    plain = ANSI.sub("", line)
    for header in (DAGSTER_HEADER, LOGGING_HEADER, UVICORN_HEADER):
        match = header.match(plain)
        if match and match.group(match.re.groups) in logging.getLevelNamesMapping():
            return logging.getLevelNamesMapping()[match.group(match.re.groups)]
    if plain.startswith("Traceback (most recent call last)"):
        return logging.ERROR
    return None


def _is_daemon_record(line: str) -> bool:
    match = DAGSTER_HEADER.match(ANSI.sub("", line))
    return bool(match and match.group("logger").startswith("dagster.daemon"))


class ConsoleFilter:
    """Decides line by line what reaches the console; a continuation line (a traceback's frames, a
    multi-line message) follows the record it belongs to."""

    def __init__(self, threshold: int = logging.WARNING) -> None:
        self.threshold = threshold
        self._current: int | None = None  # level of the record being continued
        self._daemon = False  # the record being continued is the Dagster daemon's

    def shows(self, line: str) -> bool:
        level = record_level(line)
        if level is not None:
            self._current = level
            # A traceback continues the record before it (the daemon's, when it logged it).
            if not ANSI.sub("", line).startswith("Traceback"):
                self._daemon = _is_daemon_record(line)
        if self._daemon and STOPPING.is_set():
            return False
        # Output before any header (e.g. a bare `print`) is shown: we only hide what we recognise.
        return self._current is None or self._current >= self.threshold


def pump(source: IO[bytes], console: IO[str], log: IO[str], threshold: int) -> threading.Thread:
    """Copy a child's output to the log file and, filtered, to the console (in a daemon thread)."""

    def run() -> None:
        copy_lines((raw.decode(errors="replace") for raw in source), console, log, threshold)

    thread = threading.Thread(target=run, name="dev-console", daemon=True)
    thread.start()
    return thread


def copy_lines(lines: Iterable[str], console: IO[str], log: IO[str], threshold: int) -> None:
    chooser = ConsoleFilter(threshold)
    for line in lines:
        shown = chooser.shows(line)
        with _WRITE:
            log.write(ANSI.sub("", line))
            log.flush()
            if shown:
                console.write(line)
                console.flush()
