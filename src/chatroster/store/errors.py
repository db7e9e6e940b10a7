"""What can be wrong with a store file, and what the message tells the user to do.
The error classes are in `chatroster.errors` with the rest of the tree."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from ..errors import NotAStoreError, StoreError, StoreLockedError

#: What a damaged store's message tells the user to do.
_REPAIR = "restore it from a backup or remove it"


def damaged(path: Path, detail: str) -> StoreError:
    return StoreError(f"{path} is damaged: {detail}; {_REPAIR}")


def failure(path: Path, exc: sqlite3.Error) -> StoreError:
    """The `StoreError` an SQLite error on ``path`` stands for, saying what to do."""
    name = getattr(exc, "sqlite_errorname", "")
    if name == "SQLITE_NOTADB":
        return NotAStoreError(f"{path} is not a chatroster store ({exc}); it was left untouched")
    if name.startswith(("SQLITE_BUSY", "SQLITE_LOCKED")):
        return StoreError(
            f"{path} is busy ({exc}): another program is writing to it; try again when it is done"
        )
    if name.startswith("SQLITE_CANTOPEN"):
        return StoreError(
            f"cannot open {path} ({exc}): check that it and its directory can be read; a "
            "store with a -wal file also needs its -shm file, or a directory it can be made in"
        )
    if name.startswith("SQLITE_READONLY"):
        return StoreError(
            f"cannot use {path} ({exc}): it needs writing to before it can be "
            "read (a journal left by a crash); run apply once, or check its "
            "permissions"
        )
    if name.startswith(("SQLITE_CORRUPT", "SQLITE_ERROR", "SQLITE_MISMATCH")):
        # Our SQL is fixed: an SQLITE_ERROR here is a table or column that is not there.
        return damaged(path, str(exc))
    return StoreError(f"cannot use {path}: {exc}")


__all__ = ["NotAStoreError", "StoreError", "StoreLockedError", "damaged", "failure"]
