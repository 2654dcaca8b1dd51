"""Create files that hold personal data readable by their owner only, whatever the umask.

The database, exports, subject access records and backups hold evidence and feedback about
people: they are created 0600, and any folder created for them 0700, so that other users of
the machine cannot read them even where the umask would let them.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

FILE_MODE = 0o600
FOLDER_MODE = 0o700


def private_folder(folder: Path) -> None:
    """Create the folder and any missing parents as 0700 (folders already there are kept)."""
    missing: list[Path] = []
    current = folder
    while not current.exists():
        missing.append(current)
        if current.parent == current:
            break
        current = current.parent
    for created in reversed(missing):
        with contextlib.suppress(FileExistsError):
            created.mkdir(mode=FOLDER_MODE)
        # mkdir's mode passes through the umask; set it outright.
        os.chmod(created, FOLDER_MODE)


def create_private_file(path: Path) -> None:
    """Create an empty 0600 file (in a 0700 folder if new), or make an existing one 0600."""
    private_folder(path.parent)
    if path.exists():
        if path.stat().st_mode & 0o077:
            os.chmod(path, FILE_MODE)
        return
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT, FILE_MODE))
    os.chmod(path, FILE_MODE)


def write_private(path: Path, data: bytes) -> None:
    """Write the file whole, 0600 from its first byte, replacing any file of that name."""
    private_folder(path.parent)
    partial = path.with_name(f".{path.name}.{os.getpid()}.partial")
    try:
        with os.fdopen(
            os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE), "wb"
        ) as file:
            os.fchmod(file.fileno(), FILE_MODE)
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.replace(partial, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            partial.unlink()
        raise
