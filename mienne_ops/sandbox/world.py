"""The sandbox's world: one SQLite file holding the state of every fake system.

Every request of every system fake runs inside `World.tx()`, which serialises access with one lock
and one SQLite transaction, so a request either happens completely or not at all, and every Dagster
run process (talking HTTP to the one sandbox server) sees the same world. Document-shaped systems
(Shopify orders, DCL orders, StateSet records) use the small document store here; NetSuite keeps
relational tables beside it so that SuiteQL can run as SQL.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

_DOCS_SCHEMA = """
CREATE TABLE IF NOT EXISTS sandbox_docs (
    system TEXT NOT NULL,
    kind   TEXT NOT NULL,
    key    TEXT NOT NULL,
    seq    INTEGER NOT NULL,
    body   TEXT NOT NULL,
    PRIMARY KEY (system, kind, key)
);
CREATE INDEX IF NOT EXISTS sandbox_docs_seq ON sandbox_docs (system, kind, seq);
CREATE TABLE IF NOT EXISTS sandbox_counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
"""


class World:
    """Shared, durable state for all system fakes (thread-safe)."""

    def __init__(self, path: str | Path = ":memory:") -> None:
        self.path = str(path)
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self.conn = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self.conn.row_factory = sqlite3.Row
        self.conn.execute("PRAGMA journal_mode=WAL")
        self.conn.execute("PRAGMA synchronous=NORMAL")
        self.lock = threading.RLock()
        self._depth = 0
        self.clock_offset = timedelta(0)
        self.conn.executescript(_DOCS_SCHEMA)

    # -- transactions ---------------------------------------------------------------------------
    @contextmanager
    def tx(self) -> Iterator[sqlite3.Connection]:
        """One atomic unit of work; nested calls join the outer transaction."""
        with self.lock:
            outer = self._depth == 0
            if outer:
                self.conn.execute("BEGIN IMMEDIATE")
            self._depth += 1
            try:
                yield self.conn
            except BaseException:
                self._depth -= 1
                if outer:
                    self.conn.execute("ROLLBACK")
                raise
            self._depth -= 1
            if outer:
                self.conn.execute("COMMIT")

    # -- clock ----------------------------------------------------------------------------------
    def now(self) -> datetime:
        """UTC now, shifted by `clock_offset` (tests move time forward instead of sleeping)."""
        return datetime.now(UTC) + self.clock_offset

    # -- counters -------------------------------------------------------------------------------
    def next_id(self, name: str, start: int = 1) -> int:
        with self.tx() as conn:
            row = conn.execute("SELECT value FROM sandbox_counters WHERE name = ?", (name,)).fetchone()
            value = start if row is None else row["value"] + 1
            conn.execute(
                "INSERT INTO sandbox_counters (name, value) VALUES (?, ?) "
                "ON CONFLICT(name) DO UPDATE SET value = excluded.value",
                (name, value),
            )
            return value

    # -- documents ------------------------------------------------------------------------------
    def put(self, system: str, kind: str, key: str | int, doc: dict[str, Any]) -> None:
        with self.tx() as conn:
            seq = self.next_id("__doc_seq__")
            conn.execute(
                "INSERT INTO sandbox_docs (system, kind, key, seq, body) VALUES (?, ?, ?, ?, ?) "
                "ON CONFLICT(system, kind, key) DO UPDATE SET seq = excluded.seq, body = excluded.body",
                (system, kind, str(key), seq, json.dumps(doc, default=str)),
            )

    def get(self, system: str, kind: str, key: str | int) -> dict[str, Any] | None:
        with self.tx() as conn:
            row = conn.execute(
                "SELECT body FROM sandbox_docs WHERE system = ? AND kind = ? AND key = ?",
                (system, kind, str(key)),
            ).fetchone()
        return None if row is None else json.loads(row["body"])

    def list(self, system: str, kind: str) -> list[dict[str, Any]]:
        """All documents of a kind, in the order they were last written."""
        with self.tx() as conn:
            rows = conn.execute(
                "SELECT body FROM sandbox_docs WHERE system = ? AND kind = ? ORDER BY seq",
                (system, kind),
            ).fetchall()
        return [json.loads(row["body"]) for row in rows]

    def delete(self, system: str, kind: str, key: str | int) -> None:
        with self.tx() as conn:
            conn.execute(
                "DELETE FROM sandbox_docs WHERE system = ? AND kind = ? AND key = ?",
                (system, kind, str(key)),
            )

    def clear_system(self, system: str) -> None:
        with self.tx() as conn:
            conn.execute("DELETE FROM sandbox_docs WHERE system = ?", (system,))
            conn.execute("DELETE FROM sandbox_counters WHERE name LIKE ?", (f"{system}:%",))

    def close(self) -> None:
        self.conn.close()
