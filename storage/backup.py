"""Copy a SQLite database consistently while the bot keeps writing to it."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from storage.files import create_private_file


def backup_sqlite(database: str, target: Path) -> str:
    """Copy the SQLite file `database` to a new private file; return the copy's integrity check."""
    create_private_file(target)  # before SQLite creates it with the umask's mode
    # SQLite's backup API copies a consistent snapshot while the bot keeps writing.
    source = sqlite3.connect(f"file:{database}?mode=ro", uri=True)
    copy = sqlite3.connect(target)
    try:
        with copy:
            source.backup(copy)
        check: str = copy.execute("PRAGMA integrity_check").fetchone()[0]
    finally:
        source.close()
        copy.close()
    return check
