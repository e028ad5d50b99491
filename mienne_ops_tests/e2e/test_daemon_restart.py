"""A daemon restart does not block a flow: the real daemon is killed mid-run and started again.

Issue 13, probe 3: `kill -9` of the daemon's process group (daemon, code server, run workers: a
container restart) used to leave its in-flight run STARTED, and flow A's later runs queued behind
it under the one-run-per-flow limit until `max_runtime_seconds` (an hour). Here, on the operator's
stack of test_daemon.py (sandbox, receiver, `dagster-daemon run` with the repository's dagster.yaml):

1. the sandbox holds every NetSuite request, so flow A's run for the first order stalls in its
   step; the second order's run queues behind it;
2. the whole process group is killed with SIGKILL while NetSuite still holds the worker's request,
   then released (the sandbox may still complete what the dead worker asked for: the retry must
   find it, not create it again);
3. a new daemon starts on the same DAGSTER_HOME; its run monitoring asks the run launcher
   (flows/run_launcher.py) about the orphaned run, which fails it ("run worker process N is gone");
   `run_retries` re-executes it and the queued run proceeds;
4. both orders end exactly once in NetSuite, at DCL and in StateSet, shipped everywhere.

How long recovery took (restart → orphan ended, restart → the flow's next run started) is printed
(`pytest -s`) and written to the daemon's log directory, never asserted: the box is shared. Slow
(minutes), so marked `slow` like test_daemon.
"""

from __future__ import annotations

import itertools
import random
import time

import dagster as dg
import httpx
import pytest

from mienne_ops.devtools.daemon import run_worker_pid
from mienne_ops.sandbox.order_factory import build_order
from mienne_ops_tests.e2e.test_daemon import (
    HANG_GUARD,
    NETSUITE_POOL,
    assert_each_record_once,
    dcl_order_numbers,
    flow_runs,
    netsuite_limits,
    operator_stack,  # noqa: F401  (the fixture: sandbox, receiver, daemon)
    place,
    run_in_its_step,
    runs,
    settled,
)

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

ENDED = (dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED)
#: After a restart the new daemon starts a code server and works off the runs the restart left
#: queued and failed (retries) before the orders move on: on a loaded shared box that took more
#: than HANG_GUARD. Still only a guard against a hang.
AFTER_RESTART_GUARD = 2 * HANG_GUARD


def test_a_killed_daemons_orphaned_run_is_ended_and_its_flow_moves_on(operator_stack, tmp_path):  # noqa: F811
    sandbox, ledger = operator_stack["sandbox"], operator_stack["ledger"]
    daemon, instance = operator_stack["daemon"], operator_stack["instance"]
    url, rng = sandbox.url, random.Random(2031)

    # 1. Flow A's first run stalls in its step; the second order's run waits behind it.
    netsuite_limits(url, {"concurrency": 1000, "hold": True})
    try:
        first = place(url, build_order(sandbox.hub.catalog, rng))
        stalled = daemon.wait_for(
            "flow A's first run to start its step", lambda: run_in_its_step(instance, "A"), HANG_GUARD
        )
        orphan_id = stalled.dagster_run.run_id
        second = place(url, build_order(sandbox.hub.catalog, rng))
        daemon.wait_for(
            "another flow A run to be queued behind it",
            lambda: queued_behind(instance, orphan_id),
            HANG_GUARD,
        )
        worker_pid = run_worker_pid(instance, orphan_id)
        assert worker_pid is not None

        # 2. A container restart: the daemon, its code server and the run worker die at once.
        daemon.kill()
        killed_at = time.monotonic()
    finally:
        netsuite_limits(url, {"concurrency": NETSUITE_POOL, "hold": False})
    assert instance.get_run_by_id(orphan_id).status == dg.DagsterRunStatus.STARTED  # nobody noticed

    # 3. A new daemon on the same instance ends the orphan and lets the flow's queue move.
    with operator_stack["new_daemon"]() as restarted:
        restarted_at = time.monotonic()
        restarted.wait_for(
            "the orphaned run to be ended",
            lambda: instance.get_run_by_id(orphan_id).status in ENDED,
            AFTER_RESTART_GUARD,
        )
        ended_at = time.monotonic()
        restarted.wait_for(
            "flow A's next run (the retry or the queued one) to start",
            lambda: any(r.start_time for r in runs(instance, "A") if r.dagster_run.run_id != orphan_id),
            AFTER_RESTART_GUARD,
        )
        unblocked_at = time.monotonic()
        report = (
            f"daemon restart recovery: the orphaned run ended {ended_at - restarted_at:.1f} s after "
            f"the restart ({ended_at - killed_at:.1f} s after the kill); flow A's next run started "
            f"{unblocked_at - restarted_at:.1f} s after the restart ({unblocked_at - killed_at:.1f} s "
            "after the kill)"
        )
        print(report)
        (tmp_path / "recovery.txt").write_text(report + "\n")

        # It was the launcher's worker check that ended it, not a timeout.
        failure = instance.get_records_for_run(orphan_id, of_type=dg.DagsterEventType.RUN_FAILURE).records
        assert failure and f"run worker process {worker_pid}" in (
            failure[-1].event_log_entry.dagster_event.message or ""
        )
        restarted.wait_for(
            "the daemon's retry of the orphaned run",
            lambda: instance.get_runs(filters=dg.RunsFilter(tags={"dagster/parent_run_id": orphan_id})),
            AFTER_RESTART_GUARD,
        )

        # 4. Both orders go A → B → C exactly once, the dead worker's held requests included.
        numbers = restarted.wait_for(
            "both orders at DCL", lambda: dcl_order_numbers(url, [first, second]), AFTER_RESTART_GUARD
        )
        for number in numbers:
            shipped = httpx.post(f"{url}/_sandbox/dcl/orders/{number}/ship", json={}, timeout=30)
            assert shipped.status_code == 200, shipped.text
        state = restarted.wait_for(
            "both orders shipped everywhere, every run finished",
            lambda: settled(url, ledger, instance, [first, second]),
            AFTER_RESTART_GUARD,
        )
    assert_each_record_once(state, [first, second])

    # No two runs of one flow overlapped: none of flow A's started before the new daemon ended the
    # orphan (its end time), the one queued behind it included.
    for flow, records in flow_runs(instance).items():
        started = sorted((r for r in records if r.start_time is not None), key=lambda r: r.start_time or 0)
        for earlier, later in itertools.pairwise(started):
            assert earlier.end_time is not None and later.start_time is not None
            assert earlier.end_time <= later.start_time, f"two flow {flow} runs overlapped"


def queued_behind(instance: dg.DagsterInstance, run_id: str) -> str | None:
    """Another flow A run, waiting in the queue."""
    return next(
        (
            r.dagster_run.run_id
            for r in runs(instance, "A")
            if r.dagster_run.status == dg.DagsterRunStatus.QUEUED and r.dagster_run.run_id != run_id
        ),
        None,
    )
