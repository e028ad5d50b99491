"""`mienne-ops ledger purge`: old inbox payloads lose their personal data, the rows and ids stay."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from mienne_ops.business_rules import BusinessRules
from mienne_ops.cli import main
from mienne_ops.ledger import schema
from mienne_ops.ledger.retention import is_redacted
from mienne_ops.ledger.sql import now
from mienne_ops_tests.support import new_ledger

ORDER = {"id": 7, "email": "grace.hopper@example.com", "phone": "+1-555-0199", "address1": "1 Cobol Way"}


@pytest.fixture(params=["sqlite", "postgresql"])
def ledger_url(request, tmp_path):
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'ledger.db'}"
    return request.getfixturevalue("database_url")


def _age(ledger, event_id: str, days: int) -> None:
    table = schema.inbox_events
    with ledger.engine.begin() as conn:
        conn.execute(
            sa.update(table)
            .where(table.c.event_id == event_id)
            .values(received_at=now() - timedelta(days=days))
        )


def _purge(monkeypatch, url: str, *args: str) -> str:
    monkeypatch.setenv("MIENNE_LEDGER_URL", url)
    result = CliRunner().invoke(main, ["ledger", "purge", *args])
    assert result.exit_code == 0, (result.output, result.exception)
    return result.output


def test_purge_redacts_old_payloads_and_keeps_ids_topic_and_stamps(ledger_url, monkeypatch):
    ledger = new_ledger(ledger_url)
    for event_id, days in (("old", 40), ("recent", 3), ("new", 0)):
        ledger.store_event(
            "shopify", event_id, "orders/create", ORDER, resource_id="7", triggered_at="2026-10-01T00:00:00Z"
        )
        _age(ledger, event_id, days)

    assert "redacted 1 inbox payload(s)" in _purge(monkeypatch, ledger_url)  # the 30-day default
    assert "redacted 1 inbox payload(s)" in _purge(monkeypatch, ledger_url, "--older-than-days", "2")
    assert "redacted 0 inbox payload(s)" in _purge(monkeypatch, ledger_url, "--older-than-days", "2")

    events = {e.event_id: e for e in ledger.events_after("shopify", 0)}
    assert [is_redacted(events[k].payload) for k in ("old", "recent", "new")] == [True, True, False]
    for kept in ("old", "recent"):
        event = events[kept]
        assert (event.topic, event.resource_id, event.triggered_at) == (
            "orders/create",
            "7",
            "2026-10-01T00:00:00Z",
        )
        assert "grace.hopper" not in str(event.payload) and "Cobol" not in str(event.payload)
    assert events["new"].payload == ORDER
    # The id stays: a late redelivery of a purged event is still a duplicate.
    assert ledger.store_event("shopify", "old", "orders/create", ORDER) is False
    ledger.dispose()


def test_the_retention_is_a_business_rule_and_at_least_a_day(monkeypatch, tmp_path):
    assert BusinessRules().inbox_payload_retention_days == 30
    monkeypatch.setenv("MIENNE_LEDGER_URL", f"sqlite:///{tmp_path / 'ledger.db'}")
    result = CliRunner().invoke(main, ["ledger", "purge", "--older-than-days", "0"])
    assert result.exit_code != 0 and "--older-than-days" in result.output
