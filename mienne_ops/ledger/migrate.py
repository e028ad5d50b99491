"""The ledger's schema versions (Alembic): upgrade a ledger, and refuse to run on a stale one.

`upgrade_ledger` brings any ledger to the newest revision: a new database, one at an older revision,
or one created before migrations existed (the baseline adopts its tables). `mienne-ops ledger
upgrade`, `make dev`, the tests and the deployment all call it; nothing else creates tables. A
`Ledger` opened on a database that is not at the newest revision raises `LedgerSchemaError` naming
the command to run, rather than failing later on a missing column.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from mienne_ops.errors import PermanentError

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


class LedgerSchemaError(PermanentError):
    """The ledger's database is not at the schema this code expects."""


def alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))  # ConfigParser interpolation
    return config


@cache
def head_revision() -> str:
    head = ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()
    assert head is not None, "the ledger has no migrations"
    return head


def current_revision(connection: sa.Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


def upgrade_ledger(url: str, revision: str = "head") -> None:
    """Migrate the ledger at ``url`` to ``revision`` (idempotent: at head it does nothing)."""
    command.upgrade(alembic_config(url), revision)


def check_revision(engine: sa.Engine) -> None:
    """Raise `LedgerSchemaError` unless the ledger is at the newest revision."""
    with engine.connect() as connection:
        current = current_revision(connection)
    if current != head_revision():
        state = f"at revision {current}" if current else "not initialised"
        raise LedgerSchemaError(
            f"the ledger ({engine.url.render_as_string(hide_password=True)}) is {state}; this code "
            f"needs revision {head_revision()}: run `mienne-ops ledger upgrade`",
            system="ledger",
            operation="open",
            code="schema_out_of_date",
        )
