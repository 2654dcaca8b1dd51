"""Bring a database's schema up to date with Alembic, and report whether it is current."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, pool

import storage.migrations
from storage.database import _prepare_sqlite_file, sync_url

MIGRATIONS = Path(storage.migrations.__file__).parent


def _alembic_config(database_url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    url = sync_url(database_url)
    config.set_main_option("sqlalchemy.url", url.render_as_string(hide_password=False))
    return config


def upgrade(database_url: str, revision: str = "head") -> None:
    """Apply every migration up to `revision` (default: the newest)."""
    url = sync_url(database_url)
    if url.get_backend_name() == "sqlite":
        _prepare_sqlite_file(url)
    command.upgrade(_alembic_config(database_url), revision)


def head_revision(database_url: str) -> str | None:
    """Return the newest migration this release ships."""
    return ScriptDirectory.from_config(_alembic_config(database_url)).get_current_head()


def current_revision(database_url: str) -> str | None:
    """Return the migration the database is at, or None for an empty database."""
    url = sync_url(database_url)
    if url.get_backend_name() == "sqlite":
        _prepare_sqlite_file(url)
    engine = create_engine(url, poolclass=pool.NullPool)
    try:
        with engine.connect() as connection:
            return MigrationContext.configure(connection).get_current_revision()
    finally:
        engine.dispose()


def is_current(database_url: str) -> bool:
    """Return whether the database has every migration applied."""
    return current_revision(database_url) == head_revision(database_url)
