"""Shared fixtures: the sandbox over real HTTP, shared fixture files, an isolated state dir."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from mienne_ops import settings
from mienne_ops.ledger.migrate import upgrade_ledger
from mienne_ops.sandbox.server import SandboxServer

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DIR = Path(os.environ.get("MIENNE_SHARED_DIR", REPO_ROOT.parent / "shared"))
SHOPIFY_FIXTURES = SHARED_DIR / "fixtures" / "shopify"
PG_ADMIN_URL = os.environ.get(
    "MIENNE_TEST_PG_ADMIN_URL", "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres"
)


@pytest.fixture(scope="session", autouse=True)
def prometheus_multiproc_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """One metrics directory per test session (per xdist worker), out of the repository's `.mienne`:
    every process of the session (run workers of the real daemon included) counts into it."""
    path = tmp_path_factory.mktemp("prometheus")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PROMETHEUS_MULTIPROC_DIR", str(path))
        yield path


@pytest.fixture(scope="session")
def shopify_fixtures() -> Path:
    """`../shared/fixtures/shopify` (override with MIENNE_SHARED_DIR)."""
    if not SHOPIFY_FIXTURES.is_dir():
        pytest.fail(f"shared fixtures not found at {SHOPIFY_FIXTURES}; set MIENNE_SHARED_DIR")
    return SHOPIFY_FIXTURES


@pytest.fixture(scope="session")
def sandbox_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SandboxServer]:
    """One sandbox server per test session (per xdist worker), state in a temp SQLite file."""
    with SandboxServer(tmp_path_factory.mktemp("sandbox") / "world.db") as server:
        yield server


@pytest.fixture
def sandbox(sandbox_server: SandboxServer) -> Iterator[SandboxServer]:
    """The sandbox, reset to the seed catalog with no faults, for one test."""
    httpx.post(f"{sandbox_server.url}/_sandbox/reset", timeout=30).raise_for_status()
    yield sandbox_server
    httpx.post(f"{sandbox_server.url}/_sandbox/faults", json={"clear": True}, timeout=30)


@pytest.fixture
def state_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private MIENNE_STATE_DIR (ledger file and friends) for one test, its ledger migrated as
    `mienne-ops ledger upgrade` leaves it."""
    monkeypatch.setenv("MIENNE_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.delenv("MIENNE_LEDGER_URL", raising=False)
    upgrade_ledger(settings.ledger_url())
    return tmp_path / "state"


@pytest.fixture
def database_url():
    """A throw-away database on the local PostgreSQL server."""
    name = f"mienne_test_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    yield PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()
