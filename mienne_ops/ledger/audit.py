"""The audit log in the ledger: every external write we made or attempted, and what it returned.

A mixin of `Ledger` (which owns the engine), so the other record modules (`ledger.holds`) write to it
through the same object.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import sqlalchemy as sa

from mienne_ops.ledger import schema
from mienne_ops.ledger.sql import now


class AuditRecords:
    engine: sa.Engine

    def audit(
        self,
        system: str,
        operation: str,
        record: str,
        outcome: str,
        *,
        remote_id: str | None = None,
        detail: str | None = None,
    ) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                sa.insert(schema.audit_log).values(
                    at=now(),
                    system=system,
                    operation=operation,
                    record=str(record),
                    outcome=outcome,
                    remote_id=remote_id,
                    detail=(detail or "")[:1000],
                )
            )

    def audit_trail(self, records: Iterable[str]) -> list[dict[str, Any]]:
        """Every audit row of these records, oldest first, archived ones (`ledger.archive`) included."""
        wanted = [str(r) for r in records]
        trail: list[dict[str, Any]] = []
        with self.engine.connect() as conn:
            for table in (schema.archived_audit_log, schema.audit_log):
                columns = [table.c[c.name] for c in schema.audit_log.columns]  # not archived_at
                query = sa.select(*columns).where(table.c.record.in_(wanted)).order_by(table.c.id)
                trail += [dict(row) for row in conn.execute(query).mappings()]
        return trail
