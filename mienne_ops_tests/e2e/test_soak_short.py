"""The soak's short variant (`bench/soak.py` runs the long one): a dozen orders through A → B → C on
the operator's stack — the sandbox, `mienne-ops webhooks serve` and `dagster-daemon run` as processes
— with 5xx and 429 on every system, 30 % of the webhooks dropped and 30 % duplicated, forged and
replayed deliveries mixed in, and one `kill -9` each of the daemon's process group, a run worker in
its step and the receiver. The verdict comes from the vendors' state only.

The kills are paced by the orders placed (`SoakSettings.pace_kills_by_orders`), so each one lands
while orders are still on their way however fast or slow the box is; nothing here is timed except a
cap against a hang.
"""

from __future__ import annotations

import json
import os

import pytest

from mienne_ops.devtools.soak import SoakSettings, run_soak

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

ORDERS = 12


@pytest.fixture
def restored_environ():
    """The soak points this process at its own sandbox and ledger (os.environ): put it back."""
    saved = dict(os.environ)
    yield
    os.environ.clear()
    os.environ.update(saved)


def test_short_soak_loses_nothing_duplicates_nothing_and_refuses_every_forgery(tmp_path, restored_environ):
    settings = SoakSettings(
        orders=ORDERS,
        ledger="sqlite",
        seed=7,
        kills=1,
        duration=4500,  # a cap against a hang on a busy CI box, never the expected time (34 min at load 20)
        rate=30,
        wave=1,
        attack_every=1.0,
        reconcile_seconds=60,
        kill_gap=(1.0, 5.0),
        pace_kills_by_orders=True,
        workdir=tmp_path / "soak",
    )
    result = run_soak(settings)
    summary = json.dumps({k: v for k, v in result.items() if k != "timeline"}, indent=2, default=str)

    verdict = result["verdict"]
    assert result["finished"], summary
    assert result["placed"] == ORDERS and verdict["complete"] == ORDERS, summary
    assert (verdict["lost"], verdict["duplicated"], verdict["orphan_records"]) == (0, 0, 0), summary
    assert verdict["cancelled_by_forgery"] == 0, summary
    # One of each kill, each recovered from (a run of every blocked flow succeeded afterwards).
    assert {kind: k["recovered"] for kind, k in result["kills"].items()} == {
        "daemon": 1,
        "run_worker": 1,
        "receiver": 1,
    }, summary
    assert not result["chaos_errors"], summary
    # Forgeries were sent, and none was accepted.
    assert result["forgeries_sent"] > 0, summary
    assert result["forgeries_accepted"] == 0, summary
    assert result["forgeries_refused"] == result["forgeries_sent"], summary
    assert result["ok"], summary
