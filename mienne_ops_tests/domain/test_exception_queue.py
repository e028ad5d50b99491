"""The rule every flow sensor applies to its exceptions queue (no ledger, no clock)."""

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from mienne_ops.domain.exception_queue import ExceptionQueue


@dataclass(frozen=True)
class Row:
    key: str
    reason: str
    last_seen: datetime


NOW = datetime(2026, 5, 1, 12, tzinfo=UTC)


def test_found_records_go_unless_quarantined_and_retrying_ones_always_go():
    queue = ExceptionQueue(open=frozenset({"2"}), retrying=(Row("9", "dcl_timeout", NOW),))
    assert queue.due(["1", "2", "3"]) == {"1", "3", "9"}
    assert queue.due([]) == {"9"}  # nothing found, yet the retry is due
    assert queue.due(["1"], retrying=[]) == {"1"}
    assert ExceptionQueue().due(["1"]) == {"1"}


def test_a_record_waiting_on_the_outside_world_is_rechecked_at_its_own_pace():
    waited = NOW - timedelta(minutes=3)
    queue = ExceptionQueue(
        retrying=(
            Row("held", "on_hold", waited),
            Row("naive", "on_hold", waited.replace(tzinfo=None)),  # SQLite hands back naive UTC
            Row("throttled", "throttled", NOW),
        )
    )
    assert queue.retrying_paced(NOW, timedelta(minutes=5), {"on_hold"}) == {"throttled"}
    assert queue.retrying_paced(NOW, timedelta(minutes=3), {"on_hold"}) == {"held", "naive", "throttled"}
    assert queue.retrying_paced(NOW, timedelta(minutes=5), set()) == {"held", "naive", "throttled"}
