"""Alembic environment of the ledger: one metadata (`ledger.schema`), SQLite or PostgreSQL.

Used both by `alembic upgrade head` (alembic.ini at the repo's top, URL from ``MIENNE_LEDGER_URL``
or the default SQLite file) and by `mienne_ops.ledger.migrate.upgrade_ledger`, which passes its own
URL. SQLite alters tables in batch mode (copy and move), the only way it can change a column.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import context

from mienne_ops import settings
from mienne_ops.ledger import schema

config = context.config


def _url() -> str:
    return config.get_main_option("sqlalchemy.url") or settings.ledger_url()


def run_migrations_offline() -> None:
    context.configure(url=_url(), target_metadata=schema.metadata, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    engine = sa.create_engine(_url(), poolclass=sa.pool.NullPool, hide_parameters=True)
    with engine.connect() as connection:
        if connection.dialect.name == "postgresql":
            # Two processes upgrading at once (two deploys, a test and a dev server) take turns.
            connection.execute(sa.text("SELECT pg_advisory_lock(7264001)"))
            connection.commit()
        context.configure(
            connection=connection,
            target_metadata=schema.metadata,
            render_as_batch=connection.dialect.name == "sqlite",
        )
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
