"""Shared fixtures: the framework, databases on SQLite and PostgreSQL, a fixed clock."""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, date, datetime
from pathlib import Path

import psycopg
import pytest
from sqlalchemy.engine import make_url

from practice.framework import Framework, load_framework
from storage.database import Database
from storage.migrate import upgrade

ROOT = Path(__file__).resolve().parent.parent
OUTPUT = ROOT / "test-output"
POSTGRES_ADMIN_URL = os.environ.get(
    "PQF_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
# A Monday in an audit month (standard 3, self-audits), with the due date a week away.
TODAY = date(2026, 11, 23)
NOW = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)


def required(variable: str) -> bool:
    """Return whether CI demands the tests guarded by this variable run rather than skip."""
    return os.environ.get(variable) == "1"


def skip_or_fail(variable: str, reason: str) -> None:
    """Skip with the reason, unless the environment variable says the tests must run."""
    if required(variable):
        pytest.fail(f"{reason} ({variable}=1 requires these tests to run)")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def framework() -> Framework:
    """Return the framework shipped with the bot."""
    return load_framework()


@pytest.fixture
def clock() -> object:
    """Return a clock fixed at NOW."""
    return lambda: NOW


@pytest.fixture(scope="session")
def output_dir() -> Path:
    """Return the folder for test artefacts (screenshots, logs)."""
    OUTPUT.mkdir(exist_ok=True)
    return OUTPUT


# -- SQLite -------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Return a migrated SQLite file to copy for each test (migrating once is faster)."""
    path = tmp_path_factory.mktemp("sqlite-template") / "template.db"
    upgrade(f"sqlite:///{path}")
    return path


# -- PostgreSQL ---------------------------------------------------------------------------


def _with_database(url: str, name: str) -> str:
    return make_url(url).set(database=name).render_as_string(hide_password=False)


def _admin(sql: str) -> None:
    with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True, connect_timeout=5) as connection:
        connection.execute(sql)  # type: ignore[arg-type]


@pytest.fixture(scope="session")
def postgres_template() -> Iterator[str]:
    """Return the name of a migrated template database on the test PostgreSQL server."""
    try:
        psycopg.connect(POSTGRES_ADMIN_URL, connect_timeout=5).close()
    except psycopg.Error as error:
        skip_or_fail(
            "PQF_REQUIRE_POSTGRES",
            f"PostgreSQL is not reachable at {POSTGRES_ADMIN_URL} (set PQF_TEST_POSTGRES_URL): "
            f"{error}".strip(),
        )
    name = f"pqf_template_{uuid.uuid4().hex[:10]}"
    _admin(f'CREATE DATABASE "{name}"')
    try:
        upgrade(_with_database(POSTGRES_ADMIN_URL, name))
        yield name
    finally:
        _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def new_postgres_database(template: str) -> str:
    """Create a fresh, migrated database from the template and return its URL."""
    name = f"pqf_test_{uuid.uuid4().hex[:12]}"
    _admin(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
    return _with_database(POSTGRES_ADMIN_URL, name)


def drop_postgres_database(url: str) -> None:
    """Drop a test database, disconnecting anyone still using it."""
    _admin(f'DROP DATABASE IF EXISTS "{make_url(url).database}" WITH (FORCE)')


# -- a database of either kind ------------------------------------------------------------


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(
    request: pytest.FixtureRequest, tmp_path: Path, sqlite_template: Path
) -> Iterator[str]:
    """Return the URL of a fresh, migrated database: SQLite, then PostgreSQL."""
    if request.param == "sqlite":
        path = tmp_path / "pqf.db"
        shutil.copyfile(sqlite_template, path)
        yield f"sqlite:///{path}"
        return
    url = new_postgres_database(request.getfixturevalue("postgres_template"))
    try:
        yield url
    finally:
        drop_postgres_database(url)


@pytest.fixture
def sqlite_url(tmp_path: Path, sqlite_template: Path) -> str:
    """Return the URL of a fresh, migrated SQLite database (for tests of behaviour, not SQL)."""
    path = tmp_path / "pqf.db"
    shutil.copyfile(sqlite_template, path)
    return f"sqlite:///{path}"


@pytest.fixture
def postgres_url(postgres_template: str) -> Iterator[str]:
    """Return the URL of a fresh, migrated PostgreSQL database."""
    url = new_postgres_database(postgres_template)
    try:
        yield url
    finally:
        drop_postgres_database(url)


@pytest.fixture
async def database(database_url: str) -> AsyncIterator[Database]:
    """Return an open Database on each kind of server."""
    db = Database(database_url)
    try:
        yield db
    finally:
        await db.dispose()


@pytest.fixture
async def sqlite_database(sqlite_url: str) -> AsyncIterator[Database]:
    """Return an open Database on SQLite only."""
    db = Database(sqlite_url)
    try:
        yield db
    finally:
        await db.dispose()
