"""The dev console's filter: warnings, errors and tracebacks through, routine records only in the log."""

from __future__ import annotations

import io
import logging

from mienne_ops.devtools.console import copy_lines

GREEN, BLUE, RESET = "\x1b[32m", "\x1b[34m", "\x1b[0m"
DAGSTER_INFO = (
    f"{GREEN}2026-12-06 23:32:08 +0000{RESET} - dagster.daemon.SensorDaemon - {BLUE}INFO{RESET} - Checking\n"
)
DAGSTER_ERROR = "2026-12-06 23:32:09 +0000 - dagster.daemon.SensorDaemon - ERROR - Sensor failed\n"
OURS_INFO = "2026-12-06 23:34:53,088 INFO mienne_ops.sandbox.traffic: traffic: placed Shopify order #1034\n"
OURS_WARNING = "2026-12-06 23:34:54,001 WARNING mienne_ops.flows: something to look at\n"
TRACEBACK = [
    "Traceback (most recent call last):\n",
    '  File "x.py", line 1, in <module>\n',
    "ValueError: boom\n",
]


def run(lines: list[str], threshold: int = logging.WARNING) -> tuple[str, str]:
    console, log = io.StringIO(), io.StringIO()
    copy_lines(lines, console, log, threshold)
    return console.getvalue(), log.getvalue()


def test_routine_records_go_to_the_log_only():
    console, log = run([DAGSTER_INFO, OURS_INFO, "    continuation of the info record\n"])
    assert console == ""
    assert "Checking" in log and "placed Shopify order" in log and "continuation" in log
    assert "\x1b[" not in log  # colours are for terminals


def test_warnings_errors_and_their_continuation_lines_reach_the_console():
    console, _ = run([DAGSTER_INFO, DAGSTER_ERROR, "  detail of the error\n", OURS_INFO, OURS_WARNING])
    assert console == DAGSTER_ERROR + "  detail of the error\n" + OURS_WARNING


def test_a_traceback_stands_out_even_after_an_info_record():
    console, _ = run([OURS_INFO, *TRACEBACK])
    assert console == "".join(TRACEBACK)


def test_unrecognised_output_is_shown_and_verbose_shows_everything():
    assert run(["a bare print\n"])[0] == "a bare print\n"
    lines = [DAGSTER_INFO, OURS_INFO]
    assert run(lines, threshold=logging.DEBUG)[0] == "".join(lines)


def test_once_stopping_the_daemons_shutdown_tracebacks_stay_in_the_log(monkeypatch):
    from mienne_ops.devtools import console as module

    monkeypatch.setattr(module, "STOPPING", module.threading.Event())
    daemon_error = (
        "2026-12-06 23:57:08 +0000 - dagster.daemon.SensorDaemon - ERROR - Sensor tick caught an error\n"
    )
    lines = [daemon_error, *TRACEBACK, DAGSTER_ERROR.replace("dagster.daemon.SensorDaemon", "dagster")]
    assert run(lines)[0] == "".join(lines)  # before the stop: errors show, the daemon's too
    module.STOPPING.set()
    console, log = run(lines)
    assert console == lines[-1] and "Sensor tick" in log
