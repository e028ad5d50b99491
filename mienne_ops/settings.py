"""Environment settings: where the sandbox is and where mienne-ops keeps its own state.

Only *locations* are read here. Secrets are never read at import time: they reach resources through
`dg.EnvVar`, and `definitions.py` only checks whether a system's variables are set to decide
between the live service and the sandbox.
"""

from __future__ import annotations

import os
from pathlib import Path

DEFAULT_SANDBOX_PORT = 8765
DEFAULT_WEBHOOK_PORT = 8766
DEFAULT_SMTP_PORT = 8025  # the sandbox's SMTP sink (alerts by email)


def sandbox_url() -> str:
    """Base URL of the sandbox server (the dev command starts one here)."""
    return os.environ.get("MIENNE_SANDBOX_URL", f"http://127.0.0.1:{DEFAULT_SANDBOX_PORT}").rstrip("/")


def sandbox_smtp_port() -> int:
    """Port of the sandbox's SMTP sink, where email alerts go while no SMTP host is configured."""
    return int(os.environ.get("MIENNE_SANDBOX_SMTP_PORT", DEFAULT_SMTP_PORT))


def state_dir() -> Path:
    """Where local state lives (ledger SQLite file, sandbox world) unless URLs say otherwise."""
    path = Path(os.environ.get("MIENNE_STATE_DIR", ".mienne")).resolve()
    path.mkdir(parents=True, exist_ok=True)
    return path


def ledger_url() -> str:
    """SQLAlchemy URL of the ledger: SQLite under the state dir by default, PostgreSQL in production."""
    return os.environ.get("MIENNE_LEDGER_URL") or f"sqlite:///{state_dir() / 'ledger.db'}"
