"""Flow D's reconciliation: per open PO / TO, ordered vs announced vs received at DCL vs in NetSuite.

The table is built with pandas: DCL receipts are one frame, summed per DCL PO and joined onto the
orders; each kind of problem (`InboundProblem`) is a boolean column, so the asset's checks select
rows by kind, and the ``problems`` column spells the kinds out for the operator. Pure: the asset in
`flows.inbound` reads NetSuite, DCL and the ledger and passes what it read.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Iterable, Mapping, Sequence
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo

import pandas as pd

from mienne_ops.domain.dcl_records import Receipt, parse_receipt
from mienne_ops.domain.inbound import InboundOrder, receipt_key, received_at_dcl, unreadable_receipts

PACIFIC = ZoneInfo("America/Los_Angeles")


class InboundProblem(StrEnum):
    """What can be wrong with an open inbound order (declared in the order the table lists them)."""

    UNREADABLE_RECEIPT = "unreadable_receipt"
    RECEIVED_NOT_POSTED = "received_not_posted"
    ANNOUNCED_DIFFERS = "announced_differs"
    NOT_ANNOUNCED = "not_announced"
    DCL_RECEIVED_MORE = "dcl_received_more"

    @property
    def text(self) -> str:
        return _TEXT[self]


_TEXT = {
    InboundProblem.UNREADABLE_RECEIPT: "unreadable receipt at DCL, not in NetSuite",
    InboundProblem.RECEIVED_NOT_POSTED: "received at DCL, not in NetSuite",
    InboundProblem.ANNOUNCED_DIFFERS: "announced differs from ordered",
    InboundProblem.NOT_ANNOUNCED: "not announced",
    InboundProblem.DCL_RECEIVED_MORE: "DCL received more than NetSuite shows",
}

#: The columns the operator sees, in order.
COLUMNS = [
    "order",
    "netsuite_id",
    "dcl_po_number",
    "ordered",
    "announced",
    "received_dcl",
    "received_netsuite",
    "unposted_receipts",
    "problems",
]


def reconcile(
    orders: list[InboundOrder],
    announced: Mapping[str, int | None],
    dcl_numbers: Mapping[str, str],
    receipts_by_po: Mapping[str, Sequence[Mapping[str, Any] | Receipt]],
    excess_by_po: Mapping[str, int],
    posted_keys: Collection[str],
    now: datetime,
    stuck_after: timedelta,
) -> pd.DataFrame:
    """One row per order: `COLUMNS`, and one boolean column per `InboundProblem`.

    ``dcl_numbers``: the DCL PO the ledger bound to each order (else the order's own field);
    ``posted_keys``: receipts already posted (``<dcl_po_number>-<receipt key>``); ``excess_by_po``:
    units DCL received beyond the order, already reported as exceptions (not counted twice).
    """
    frame = pd.DataFrame(
        [_order_record(order, announced, dcl_numbers) for order in orders],
        columns=[
            "order",
            "netsuite_id",
            "dcl_po_number",
            "ordered",
            "announced",
            "received_netsuite",
            "has_po",
        ],
    )
    frame["announced"] = frame["announced"].astype("Int64")
    frame = frame.join(_receipts_per_po(receipts_by_po, posted_keys), on="dcl_po_number")
    frame = frame.fillna({"received_dcl": 0, "unposted_receipts": 0, "unreadable": False})
    frame = frame.astype({"received_dcl": int, "unposted_receipts": int, "unreadable": bool})
    excess = frame["dcl_po_number"].map(lambda number: excess_by_po.get(number, 0))
    problems = {
        InboundProblem.UNREADABLE_RECEIPT: frame["unreadable"],
        InboundProblem.RECEIVED_NOT_POSTED: (now - frame["oldest_unposted"]) > stuck_after,
        InboundProblem.ANNOUNCED_DIFFERS: (
            frame["announced"].notna() & (frame["announced"] != frame["ordered"])
        ).astype(bool),
        InboundProblem.NOT_ANNOUNCED: ~frame["has_po"].astype(bool),
        InboundProblem.DCL_RECEIVED_MORE: (
            (frame["received_dcl"] > frame["received_netsuite"] + excess) & (frame["unposted_receipts"] == 0)
        ),
    }
    for kind, flagged in problems.items():
        frame[kind] = flagged.fillna(False).astype(bool)
    kinds = list(InboundProblem)
    frame["problems"] = [
        "; ".join(kind.text for kind, found in zip(kinds, flags, strict=True) if found)
        for flags in frame[kinds].itertuples(index=False)
    ]
    return frame[[*COLUMNS, *InboundProblem]]


def with_problems(frame: pd.DataFrame, kinds: Iterable[InboundProblem] = InboundProblem) -> pd.DataFrame:
    """The rows with at least one of ``kinds`` (by default, any problem)."""
    return frame[frame[list(kinds)].any(axis=1)]


def excess_by_po(contexts: Iterable[Mapping[str, Any] | None]) -> dict[str, int]:
    """Units DCL received beyond the order, per DCL PO, from the receipt exceptions' contexts."""
    excess: dict[str, int] = defaultdict(int)
    for context in contexts:
        if context:
            excess[str(context.get("dcl_po_number"))] += sum(
                int(e["quantity"]) for e in context.get("excess") or []
            )
    return excess


def receipt_moment(receipt: Mapping[str, Any] | Receipt) -> datetime:
    """A receipt's date is DCL's Pacific calendar day; its start is the earliest it can have happened."""
    day = date.fromisoformat(str(parse_receipt(receipt).receipt_date)[:10])
    return datetime.combine(day, time(0, 0), tzinfo=PACIFIC).astimezone(UTC)


def _order_record(
    order: InboundOrder, announced: Mapping[str, int | None], dcl_numbers: Mapping[str, str]
) -> dict[str, Any]:
    number = dcl_numbers.get(order.id) or order.dcl_po_number
    return {
        "order": f"{order.record_type} {order.tranid}",
        "netsuite_id": order.id,
        "dcl_po_number": str(number or ""),
        "ordered": order.ordered_total,
        "announced": announced.get(order.id),
        "received_netsuite": order.received_total,
        "has_po": number is not None,
    }


def _receipts_per_po(
    receipts_by_po: Mapping[str, Sequence[Mapping[str, Any] | Receipt]], posted_keys: Collection[str]
) -> pd.DataFrame:
    """Per DCL PO: units received at DCL, receipts not posted, the oldest of those, any unreadable."""
    records = []
    for number, receipts in receipts_by_po.items():
        for receipt in map(parse_receipt, receipts):  # each receipt read once
            unposted = f"{number}-{receipt_key(receipt)}" not in posted_keys
            records.append(
                {
                    "dcl_po_number": str(number),
                    "received_dcl": received_at_dcl([receipt]),
                    "unposted": unposted,
                    "moment": receipt_moment(receipt) if unposted else pd.NaT,
                    "unreadable": bool(unreadable_receipts([receipt])),
                }
            )
    frame = pd.DataFrame(
        records, columns=["dcl_po_number", "received_dcl", "unposted", "moment", "unreadable"]
    )
    frame["moment"] = pd.to_datetime(frame["moment"], utc=True)
    return frame.groupby("dcl_po_number").agg(
        received_dcl=("received_dcl", "sum"),
        unposted_receipts=("unposted", "sum"),
        oldest_unposted=("moment", "min"),
        unreadable=("unreadable", "any"),
    )
