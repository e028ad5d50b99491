"""The one sensor shape: cursors already kept by Dagster still read, run config comes from the op's
config class in the shape the daemon has always been given, and one-at-a-time flows skip while busy."""

import json
from datetime import UTC, datetime

import dagster as dg

from mienne_ops.flows.dispatch import DispatchBatchConfig, dispatch_sales_orders
from mienne_ops.flows.fulfillment import ShipmentsCursor
from mienne_ops.flows.inbound import InboundOrdersCursor, ReceiptsCursor
from mienne_ops.flows.orders import OrdersCursor
from mienne_ops.flows.sensor_kit import (
    BatchRuns,
    digest,
    flow_sensor,
    sensor_result,
)


def test_cursors_written_by_the_hand_made_json_still_read():
    polled = datetime(2026, 5, 1, 12, 0, 0, 123456, tzinfo=UTC)
    orders = OrdersCursor.parse(json.dumps({"inbox_id": 42, "polled_at": polled.isoformat()}))
    assert orders.inbox_id == 42 and orders.polled_at == polled
    never_polled = OrdersCursor.parse(json.dumps({"inbox_id": 3, "polled_at": None}))
    assert never_polled.inbox_id == 3 and never_polled.polled_at is None
    shipments = ShipmentsCursor.parse(json.dumps({"modified_from": polled.isoformat()}))
    assert shipments.modified_from == polled
    receipts = ReceiptsCursor.parse(json.dumps({"received_from": polled.isoformat()}))
    assert receipts.received_from == polled
    inbound = InboundOrdersCursor.parse(json.dumps({"modified_after": "2026-05-01 10:00:00"}))
    assert inbound.modified_after == datetime(2026, 5, 1, 10, 0, 0)
    # NetSuite's own format is what goes back into Dagster, as before.
    assert json.loads(inbound.dump()) == {"modified_after": "2026-05-01 10:00:00"}


def test_an_empty_or_older_cursor_reads_as_a_first_tick():
    for raw in (None, "", "{}"):
        assert OrdersCursor.parse(raw) == OrdersCursor(inbox_id=0, polled_at=None)
        assert ShipmentsCursor.parse(raw).modified_from is None
        assert InboundOrdersCursor.parse(raw).modified_after is None
    # A stamp from before the query's TO_CHAR: read as none (one re-check), not a failing tick.
    assert InboundOrdersCursor.parse('{"modified_after": "5/1/2026 10:00 am"}').modified_after is None
    assert OrdersCursor.parse('{"inbox_id": 7, "left_over": true}').inbox_id == 7


def test_a_cursor_survives_its_own_round_trip():
    cursor = OrdersCursor(inbox_id=9, polled_at=datetime(2026, 5, 1, 12, tzinfo=UTC))
    assert OrdersCursor.parse(cursor.dump()) == cursor


def test_batch_run_requests_carry_the_ops_config_under_the_ops_name():
    ids = [str(n) for n in range(5)]
    runs = BatchRuns(
        dispatch_sales_orders, lambda batch: DispatchBatchConfig(sales_order_ids=batch), "dispatch", "B"
    )
    requests = runs.requests(ids, size=2, now=datetime(2026, 5, 1, 12, tzinfo=UTC))
    assert [r.run_config["ops"] for r in requests] == [
        {"dispatch_sales_orders": {"config": {"sales_order_ids": batch}}}
        for batch in (["0", "1"], ["2", "3"], ["4"])
    ]
    assert requests[0].run_key == f"dispatch:{digest(['0', '1'])}:20260501T120000.000000"
    assert len({r.run_key for r in requests}) == 3
    assert all(r.tags == {"mienne-ops/flow": "B"} for r in requests)


@dg.op
def _noop() -> None:
    pass


@dg.job
def _probe_job() -> None:
    _noop()


@flow_sensor(job=_probe_job, description="probe", one_run_at_a_time="a probe run")
def _probe_sensor(context: dg.SensorEvaluationContext) -> dg.SensorResult:
    return sensor_result([dg.RunRequest(run_key="once")], skip_reason="nothing")


def test_a_one_at_a_time_flow_skips_its_tick_while_a_run_is_in_flight():
    assert _probe_sensor.default_status == dg.DefaultSensorStatus.RUNNING
    with dg.instance_for_test() as instance:
        with dg.build_sensor_context(instance=instance) as context:
            assert [r.run_key for r in _probe_sensor(context).run_requests] == ["once"]
        instance.create_run_for_job(_probe_job, status=dg.DagsterRunStatus.STARTED)
        with dg.build_sensor_context(instance=instance) as context:
            skipped = _probe_sensor(context)
        assert isinstance(skipped, dg.SkipReason) and "a probe run is already in flight" in (
            skipped.skip_message or ""
        )


@flow_sensor(job=_probe_job, description="probe", one_run_waiting="a probe run")
def _coalescing_sensor(context: dg.SensorEvaluationContext) -> dg.SensorResult:
    return sensor_result([dg.RunRequest(run_key="next")], skip_reason="nothing")


def test_a_coalescing_flow_queues_one_run_behind_a_running_one_and_no_more():
    with dg.instance_for_test() as instance:
        instance.create_run_for_job(_probe_job, status=dg.DagsterRunStatus.STARTED)
        with dg.build_sensor_context(instance=instance) as context:
            assert [r.run_key for r in _coalescing_sensor(context).run_requests] == ["next"]
        instance.create_run_for_job(_probe_job, status=dg.DagsterRunStatus.NOT_STARTED)
        with dg.build_sensor_context(instance=instance, cursor="kept") as context:
            skipped = _coalescing_sensor(context)
            assert context.cursor == "kept"  # what arrived stays behind the cursor for the next run
        assert isinstance(skipped, dg.SkipReason) and "a probe run is already waiting" in (
            skipped.skip_message or ""
        )
