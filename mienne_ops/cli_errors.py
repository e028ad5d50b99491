"""The CLI's answer when the ledger cannot be reached: one line, never a traceback.

Every command that reads or writes our own state opens the ledger. When its database is down, on the
wrong port or locked, SQLAlchemy raises an `OperationalError` whose traceback (a hundred lines through
the driver) buried the one fact an operator needs: which database, and what it said. `LedgerErrorsGroup`
is the top-level command group; it turns those errors into click's one-line ``Error: …`` with exit
code 1. The URL is shown without its password; the driver's message is cut to its first line.
"""

from __future__ import annotations

from typing import Any

import click
import sqlalchemy as sa
from sqlalchemy.exc import InterfaceError, OperationalError

from mienne_ops import settings


class LedgerErrorsGroup(click.Group):
    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (OperationalError, InterfaceError) as error:
            raise click.ClickException(unreachable_ledger_message(error)) from None
        except Exception as error:
            from mienne_ops.ledger.migrate import LedgerSchemaError  # alembic: only when needed

            if isinstance(error, LedgerSchemaError):  # its message says what to run
                raise click.ClickException(str(error)) from None
            raise


def unreachable_ledger_message(error: Exception) -> str:
    cause = str(getattr(error, "orig", None) or error).strip().splitlines()
    first = cause[0].strip() if cause else type(error).__name__
    return f"the ledger at {_shown_url()} cannot be used: {first}"


def _shown_url() -> str:
    try:
        return sa.engine.make_url(settings.ledger_url()).render_as_string(hide_password=True)
    except sa.exc.ArgumentError:
        return "MIENNE_LEDGER_URL (not a database URL)"
