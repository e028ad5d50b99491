"""Soak: N orders through A -> B -> C on the operator's stack, killed and attacked, nothing lost.

The sandbox (every vendor, in this process), `mienne-ops webhooks serve` and `dagster-daemon run`
(processes), the ledger on SQLite or on a private PostgreSQL cluster. 5xx and 429 on every system,
30 % of the webhooks dropped and 30 % duplicated, forged and replayed deliveries mixed in, kill -9 of
the daemon's process group, of run workers and of the receiver at random moments, and PostgreSQL
restarts when the ledger is on it (see `mienne_ops/devtools/soak.py`). The verdict comes from the
vendors' state only: 0 lost, 0 duplicated, 0 orphan records, every forgery refused. Prints a table,
writes ``bench/results/soak-<ledger>.json``, exits non-zero on any failure.

    .venv/bin/python bench/soak.py --orders 1000 --ledger sqlite
    .venv/bin/python bench/soak.py --orders 1000 --ledger postgres --kills 3
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
from pathlib import Path
from typing import Any

from mienne_ops.devtools.soak import SoakSettings, run_soak

RESULTS = Path(__file__).resolve().parent / "results"


def parse_args(argv: list[str] | None = None) -> tuple[SoakSettings, Path]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add = parser.add_argument
    add("--orders", type=int, default=1000, help="orders to place (default 1000)")
    add("--ledger", choices=("sqlite", "postgres"), default="sqlite")
    add("--seed", type=int, default=2026)
    add("--kills", type=int, default=3, help="kills of each kind (default 3)")
    add("--duration", type=float, default=3600, help="cap on the whole soak, seconds (default 3600)")
    add("--rate", type=float, default=60, help="orders placed per minute (default 60)")
    add("--wave", type=int, default=10, help="orders per wave (default 10)")
    add("--error-rate", type=float, default=0.03, help="injected 5xx per API call (default 0.03)")
    add("--rate-429", type=float, default=0.02, help="chance a 429 burst starts (default 0.02)")
    add("--attack-every", type=float, default=2.0, help="seconds between forgeries (default 2)")
    add("--reconcile-seconds", type=int, default=60, help="flow A's reconciliation poll (default 60)")
    add(
        "--limiter",
        default="redis://127.0.0.1:6379/0",
        help="MIENNE_LIMITER_URL of the stack, as the deployment sets it: Shopify's cost bucket and "
        "NetSuite's concurrency held for every process (default the local Redis; 'none': each process "
        "limits itself)",
    )
    add("--workdir", type=Path, default=None, help="logs and state (default: a new temporary directory)")
    add("--output", type=Path, default=None, help="JSON results (default bench/results/soak-<ledger>.json)")
    args = parser.parse_args(argv)
    settings = SoakSettings(
        orders=args.orders,
        ledger=args.ledger,
        seed=args.seed,
        kills=args.kills,
        duration=args.duration,
        rate=args.rate,
        wave=args.wave,
        error_rate=args.error_rate,
        rate_429=args.rate_429,
        attack_every=args.attack_every,
        reconcile_seconds=args.reconcile_seconds,
        workdir=args.workdir,
        limiter_url=None if args.limiter.lower() == "none" else args.limiter,
    )
    return settings, args.output or RESULTS / f"soak-{args.ledger}.json"


def print_table(r: dict[str, Any]) -> None:
    v, s = r["verdict"], r["settings"]
    print()
    print(
        f"soak on {s['ledger']}: {r['placed']} orders placed, {v['complete']} complete, "
        f"wall {r['wall_seconds'] / 60:.1f} min (workdir {r['workdir']})"
    )
    print("recovery: a run of every blocked flow started after the kill succeeded; resumed: one started")
    print(
        f"{'kill':<12}{'kills':>6}{'resumed max s':>15}{'recovered':>11}"
        f"{'min s':>8}{'median s':>10}{'max s':>8}"
    )
    for kind, k in r["kills"].items():

        def fmt(x: float | None) -> str:
            return "-" if x is None else f"{x:.1f}"

        print(
            f"{kind:<12}{k['kills']:>6}{fmt(k.get('resumed_max_s')):>15}{k['recovered']:>11}{fmt(k['recovery_min_s']):>8}"
            f"{fmt(k['recovery_median_s']):>10}{fmt(k['recovery_max_s']):>8}"
        )
    print(f"{'forgery':<22}{'sent':>6}{'refused':>9}{'accepted':>10}")
    for kind, a in sorted(r["attacks"].items()):
        print(f"{kind:<22}{a['sent']:>6}{a['refused']:>9}{a['accepted']:>10}")
    print(f"webhook deliveries: {r['webhook_deliveries']}")
    print(
        f"lost {v['lost']}, duplicated {v['duplicated']}, orphan records {v['orphan_records']}, "
        f"cancelled by a forgery {v['cancelled_by_forgery']}, forgeries accepted {r['forgeries_accepted']}"
    )
    for label in ("lost_by_kind", "duplicated_by_kind", "orphans_by_kind", "cancelled_by_kind"):
        if v[label]:
            print(f"  {label}: {v[label]}")
    if r["chaos_errors"]:
        print(f"  chaos errors: {r['chaos_errors']}")
    if not r.get("finished", True):
        print("  the duration cap came first: 'lost' also counts orders still on their way")
    print("SOAK: PASSED" if r["ok"] else "SOAK: FAILED")


def main(argv: list[str] | None = None) -> int:
    settings, output = parse_args(argv)
    # Ctrl-C or a TERM stops the soak through its clean-up (the daemon's group, the receiver, the
    # private PostgreSQL), whatever handler a library installed meanwhile.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    for name in ("httpx", "uvicorn", "alembic", "dagster"):
        logging.getLogger(name).setLevel(logging.ERROR)
    result = run_soak(settings)
    print_table(result)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(result, indent=2, default=str) + "\n")
    print(f"results: {output}")
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
