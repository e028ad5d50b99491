"""run_batch: records isolated from each other, except that rejected credentials stop the batch."""

import pytest

from mienne_ops.errors import AuthError, RemoteValidationError, TransientError, WaitingError
from mienne_ops.sync.batch import Outcome, run_batch
from mienne_ops_tests.support import new_ledger


@pytest.fixture
def ledger(tmp_path):
    store = new_ledger(f"sqlite:///{tmp_path / 'ledger.db'}")
    yield store
    store.dispose()


@pytest.mark.parametrize("workers", [1, 3])
def test_rejected_credentials_stop_the_batch_and_quarantine_nothing(ledger, workers):
    handled: list[str] = []

    def handle(key: str) -> Outcome:
        handled.append(key)
        if key == "2":
            raise RemoteValidationError("bad record", system="netsuite", code="INVALID_CONTENT")
        if int(key) >= 4:
            raise AuthError("Invalid login attempt.", system="netsuite", status=401, code="INVALID_LOGIN")
        return Outcome.DONE

    keys = [str(n) for n in range(1, 40)]
    with pytest.raises(AuthError) as caught:
        run_batch(flow="A", entity="order", keys=keys, handle=handle, ledger=ledger, workers=workers)
    assert caught.value.code == "INVALID_LOGIN"
    # The records before the refusal were handled, the bad one quarantined as usual; the refusal
    # itself and everything after it is nobody's fault: not quarantined, left for the next run.
    exceptions = ledger.exceptions(statuses=["open", "retrying"])
    assert [(e.key, e.reason) for e in exceptions] == [("2", "netsuite_invalid_content")]
    assert {"1", "2", "3", "4"} <= set(handled)
    assert len(handled) < len(keys)


def test_a_waiting_record_is_queued_as_retrying_without_failing_the_step(ledger):
    """A held fulfillment order cannot change within a step retry: the step succeeds, the record
    waits in the queue for the sensor, and a transient error still asks for the step retry."""

    def handle(key: str) -> Outcome:
        if key == "held":
            raise WaitingError("fulfillment_order_on_hold", "Shopify holds it", system="shopify")
        if key == "flaky":
            raise TransientError("503", system="netsuite", status=503)
        return Outcome.DONE

    report = run_batch(flow="C", entity="dcl_order", keys=["held", "ok"], handle=handle, ledger=ledger)
    assert (report.counts[Outcome.WAITING], report.counts[Outcome.DONE]) == (1, 1)
    assert report.retrying == []  # nothing for Dagster's step retry to do
    [queued] = ledger.exceptions(statuses=["retrying"])
    assert (queued.key, queued.reason) == ("held", "fulfillment_order_on_hold")

    report = run_batch(flow="C", entity="dcl_order", keys=["flaky"], handle=handle, ledger=ledger)
    assert [p.key for p in report.retrying] == ["flaky"]
