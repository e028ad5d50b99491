"""Flow F's requests in the ledger: recorded once per idempotency key, then moved through their
statuses; every decision (policy, approval, denial) is in the audit log.

`record_request` is the only way in and is idempotent: a ticket delivered twice, a webhook and the
poll that backs it, or an operator typing the same command again all land on the same row (the
database's unique key decides, never a check-then-insert). The row's ``outcome`` is where each step
notes what it did (the Shopify refund, the NetSuite record, the reply), so a run that stopped halfway
continues from the step it reached.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import timedelta
from typing import Any

import sqlalchemy as sa

from mienne_ops.domain.service_requests import (
    CLAIMABLE_STATUSES,
    OPEN_STATUSES,
    RequestDetails,
    RequestKind,
    RequestSource,
    RequestStatus,
    ServiceRequest,
    TicketRef,
)
from mienne_ops.ledger import schema
from mienne_ops.ledger.audit import AuditRecords
from mienne_ops.ledger.sql import aware, insert_once, merge_json, now, rows_by_status


class RequestRecords(AuditRecords):
    """The `Ledger`'s ``service_requests`` (mixed into `Ledger`, which owns the engine)."""

    engine: sa.Engine

    def record_request(
        self,
        request_key: str,
        kind: RequestKind,
        source: RequestSource,
        details: RequestDetails,
        *,
        ticket: TicketRef | None = None,
        shopify_order_id: str | None = None,
        order_name: str | None = None,
        requester: str | None = None,
    ) -> tuple[ServiceRequest, bool]:
        """The request under this key, recorded now if it is new; True when it is new."""
        table = schema.service_requests
        at = now()
        values = {
            "request_key": request_key,
            "kind": str(kind),
            "source": str(source),
            "ticket_system": ticket.system if ticket else None,
            "ticket_id": ticket.id if ticket else None,
            "shopify_order_id": shopify_order_id,
            "order_name": order_name,
            "requester": requester,
            "details": json.loads(details.model_dump_json()),
            "status": str(RequestStatus.RECEIVED),
            "created_at": at,
            "updated_at": at,
        }
        inserted = insert_once(self.engine, table, "request_key", values)
        request = self.request_by_key(request_key)
        assert request is not None  # inserted now or before
        if inserted:
            self.audit("ledger", "request.record", request_key, "ok", detail=f"{kind} from {source}")
        return request, bool(inserted)

    def request(self, request_id: int) -> ServiceRequest | None:
        return self._request_where(schema.service_requests.c.id == request_id)

    def request_by_key(self, request_key: str) -> ServiceRequest | None:
        return self._request_where(schema.service_requests.c.request_key == request_key)

    def requests(
        self,
        *,
        statuses: Iterable[RequestStatus] | None = None,
        shopify_order_id: str | None = None,
        limit: int = 500,
    ) -> list[ServiceRequest]:
        rows = rows_by_status(
            self.engine,
            schema.service_requests,
            statuses=statuses,
            shopify_order_id=shopify_order_id,
            limit=limit,
        )
        return [_request(row) for row in rows]

    def open_requests(self, limit: int = 500) -> list[ServiceRequest]:
        """Requests a run still has work for, oldest first."""
        return self.requests(statuses=OPEN_STATUSES, limit=limit)

    def bind_request_order(self, request_id: int, shopify_order_id: str, order_name: str | None) -> None:
        """The order a request turned out to be about (a ticket names it by ``#1001``)."""
        table = schema.service_requests
        with self.engine.begin() as conn:
            conn.execute(
                sa.update(table)
                .where(table.c.id == request_id)
                .values(shopify_order_id=shopify_order_id, order_name=order_name, updated_at=now())
            )

    def note_outcome(self, request_id: int, **facts: Any) -> ServiceRequest:
        """Merge what a step did into the request's outcome (read-modify-write in one transaction)."""
        merge_json(self.engine, schema.service_requests.c.outcome, request_id, facts)
        request = self.request(request_id)
        assert request is not None
        return request

    def set_request_status(
        self,
        request_id: int,
        status: RequestStatus,
        *,
        reasons: Iterable[str] = (),
        decided_by: str | None = None,
        expect: Iterable[RequestStatus] | None = None,
    ) -> bool:
        """Move a request to ``status`` (only from one of ``expect`` when given); False when it was not
        in an expected status (someone else decided first)."""
        table = schema.service_requests
        at = now()
        values: dict[str, Any] = {"status": str(status), "updated_at": at}
        reasons = list(reasons)
        if reasons:
            values["decision"] = reasons
        if decided_by is not None:
            values |= {"decided_by": decided_by, "decided_at": at}
        query = sa.update(table).where(table.c.id == request_id)
        if expect is not None:
            query = query.where(table.c.status.in_([str(s) for s in expect]))
        with self.engine.begin() as conn:
            changed = conn.execute(query.values(values)).rowcount
            key = conn.execute(sa.select(table.c.request_key).where(table.c.id == request_id)).scalar()
        if changed:
            detail = (
                f"{status}"
                + (f" by {decided_by}" if decided_by else "")
                + (f": {'; '.join(reasons)}" if reasons else "")
            )
            self.audit("ledger", "request.status", str(key), "ok", detail=detail[:500])
        return bool(changed)

    def claim_request(self, request_id: int, lease: timedelta) -> bool:
        """Take a request to carry it out: from a claimable status, or from a run whose lease ran out
        (it died). Two runs never work on one request at once: the database decides who claimed it."""
        table = schema.service_requests
        at = now()
        claimable = table.c.status.in_([str(s) for s in CLAIMABLE_STATUSES])
        expired = (table.c.status == str(RequestStatus.IN_PROGRESS)) & (table.c.updated_at < at - lease)
        with self.engine.begin() as conn:
            claimed = conn.execute(
                sa.update(table)
                .where(table.c.id == request_id, claimable | expired)
                .values(status=str(RequestStatus.IN_PROGRESS), updated_at=at)
            ).rowcount
        return bool(claimed)

    def approve_request(self, request_id: int, approver: str) -> bool:
        """A person approves a refund waiting for approval; False when it was not waiting."""
        table = schema.service_requests
        with self.engine.begin() as conn:
            current = conn.execute(sa.select(table.c.outcome).where(table.c.id == request_id)).scalar()
            changed = conn.execute(
                sa.update(table)
                .where(table.c.id == request_id, table.c.status == str(RequestStatus.AWAITING_APPROVAL))
                .values(
                    status=str(RequestStatus.APPROVED),
                    decided_by=approver,
                    decided_at=now(),
                    updated_at=now(),
                    outcome={**(current or {}), "approvals": ["approved"]},
                )
            ).rowcount
            key = conn.execute(sa.select(table.c.request_key).where(table.c.id == request_id)).scalar()
        if changed:
            self.audit("ledger", "request.approve", str(key), "ok", detail=f"approved by {approver}")
        return bool(changed)

    def _request_where(self, where: Any) -> ServiceRequest | None:
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(schema.service_requests).where(where)).mappings().first()
        return None if row is None else _request(row)


def _request(row: Any) -> ServiceRequest:
    ticket = TicketRef(row["ticket_system"], row["ticket_id"]) if row["ticket_system"] else None
    return ServiceRequest(
        id=row["id"],
        request_key=row["request_key"],
        kind=RequestKind(row["kind"]),
        source=RequestSource(row["source"]),
        details=RequestDetails.model_validate(row["details"]),
        status=RequestStatus(row["status"]),
        ticket=ticket,
        shopify_order_id=row["shopify_order_id"],
        order_name=row["order_name"],
        requester=row["requester"],
        decision=list(row["decision"] or []),
        outcome=dict(row["outcome"] or {}),
        decided_by=row["decided_by"],
        decided_at=aware(row["decided_at"]),
        created_at=aware(row["created_at"]),
        updated_at=aware(row["updated_at"]),
    )
