"""Open the database (SQLite by default, PostgreSQL in real deployments) and hand out sessions."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import URL, Engine, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from sqlalchemy.util.concurrency import await_
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.files import create_private_file

# How long a SQLite writer waits for another to finish (as PRAGMA busy_timeout, in seconds).
SQLITE_BUSY_SECONDS = 10.0


def async_url(database_url: str) -> URL:
    """Return the URL with the async driver this project uses for its dialect."""
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite":
        return url.set(drivername="sqlite+aiosqlite")
    if url.get_backend_name() in ("postgresql", "postgres"):
        return url.set(drivername="postgresql+psycopg")
    raise ValueError(f"unsupported database {url.get_backend_name()!r}")


def sync_url(database_url: str) -> URL:
    """Return the URL with the blocking driver (used by migrations and backups)."""
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite":
        return url.set(drivername="sqlite+pysqlite")
    if url.get_backend_name() in ("postgresql", "postgres"):
        return url.set(drivername="postgresql+psycopg")
    raise ValueError(f"unsupported database {url.get_backend_name()!r}")


def _prepare_sqlite_file(url: URL) -> None:
    """Create the database file 0600 in a 0700 folder before SQLite opens it with the umask."""
    if not url.database or url.database == ":memory:" or url.database.startswith("file:"):
        return
    path = Path(url.database).expanduser()
    create_private_file(path)
    # SQLite gives its journal and WAL files the database file's mode; older ones are mended.
    for suffix in ("-wal", "-shm", "-journal"):
        companion = path.with_name(path.name + suffix)
        if companion.exists():
            create_private_file(companion)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # WAL lets the scheduler, the sender and turns read while one of them writes;
    # busy_timeout makes a writer wait for the lock instead of failing at once.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    # The purge overwrites evidence with ""; SQLite would otherwise leave the old text in
    # the freed space of its pages. (The default depends on how SQLite was compiled.)
    cursor.execute("PRAGMA secure_delete=ON")
    cursor.close()


class _SqliteWriters:
    """Let one connection of this engine write at a time, waking the next writer at once.

    SQLite allows one writer. Left to itself, a connection that finds the database locked
    polls with sleeps of up to 100 ms (its busy handler), so under load most of a turn's
    time went on sleeping while the lock was free. Here a connection takes an asyncio lock
    before its first write and gives it back when it returns to the pool (after its commit
    or rollback); SQLite's busy timeout still covers other processes.
    """

    def __init__(self, engine: Engine) -> None:
        self._holders: set[int] = set()
        self._lock: asyncio.Lock | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        event.listen(engine, "before_cursor_execute", self._before_execute)
        event.listen(engine.pool, "checkin", self._release)
        event.listen(engine.pool, "invalidate", self._release_invalidated)

    def _current_lock(self) -> asyncio.Lock:
        loop = asyncio.get_running_loop()
        if self._lock is None or self._loop is not loop:
            self._lock, self._loop = asyncio.Lock(), loop  # a lock serves one event loop
        return self._lock

    def _before_execute(
        self, connection: Any, _cursor: Any, statement: str, parameters: Any, *_: Any
    ) -> tuple[str, Any]:
        key = id(connection.connection.dbapi_connection)
        if key in self._holders or statement.lstrip()[:6].upper() in ("SELECT", "PRAGMA"):
            return statement, parameters
        try:
            await_(asyncio.wait_for(self._current_lock().acquire(), SQLITE_BUSY_SECONDS))
        except TimeoutError:
            # What SQLite itself raises when the busy timeout runs out.
            raise sqlite3.OperationalError("database is locked") from None
        self._holders.add(key)
        return statement, parameters

    def _release(self, dbapi_connection: Any, *_: Any) -> None:
        key = id(dbapi_connection)
        if key in self._holders:
            self._holders.discard(key)
            if self._lock is not None and self._lock.locked():
                self._lock.release()

    def _release_invalidated(self, dbapi_connection: Any, *_: Any) -> None:
        self._release(dbapi_connection)


class Database:
    """An async engine and its session factory; close it with `dispose()`."""

    def __init__(self, database_url: str, *, echo: bool = False) -> None:
        url = async_url(database_url)
        self.url = url
        self.dialect = url.get_backend_name()
        # hide_parameters: SQL errors would otherwise quote evidence and names into logs.
        options: dict[str, Any] = {"echo": echo, "hide_parameters": True}
        if self.dialect == "sqlite":
            _prepare_sqlite_file(url)
        else:
            options.update(pool_size=10, max_overflow=10, pool_pre_ping=True)
        self.engine: AsyncEngine = create_async_engine(url, **options)
        if self.dialect == "sqlite":
            event.listen(self.engine.sync_engine, "connect", _sqlite_pragmas)
            _SqliteWriters(self.engine.sync_engine)
        self._sessions = async_sessionmaker(
            self.engine, class_=AsyncSession, expire_on_commit=False
        )

    @asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncSession]:
        """Yield a session; commit when the block ends cleanly, roll back otherwise."""
        async with self._sessions() as session:
            try:
                yield session
                await session.commit()
            except BaseException:
                await session.rollback()
                raise

    async def ping(self) -> None:
        """Ask the database a trivial question; raise if it cannot answer."""
        async with self.session() as session:
            await session.exec(select(1))

    async def forget_erased(self) -> None:
        """Make erased text leave the disk now: on SQLite, fold the WAL in and empty it.

        With `secure_delete` the database pages hold zeros where erased text was, but the
        WAL still holds the pages as they were until it is checkpointed and truncated.
        PostgreSQL keeps old row versions until VACUUM (see the README's retention notes).
        """
        if self.dialect != "sqlite":
            return
        async with self.engine.connect() as connection:
            await connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")

    async def dispose(self) -> None:
        """Close every pooled connection."""
        await self.engine.dispose()
