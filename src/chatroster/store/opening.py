"""Opening a store file: writable (created and migrated as needed) or read-only (nothing
is ever created, migrated or changed).

Either way an existing file is first checked read-only (`_check_store`), so a file that
is not a chatroster store, is from a newer chatroster, or is damaged, is refused
untouched with a `StoreError` naming it. A file of an older version is accepted: a
writable open migrates it, a read-only one reads it as it is.
"""

from __future__ import annotations

import os
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from . import schema
from .errors import NotAStoreError, StoreError, damaged, failure

#: What identifies a file: its first 100 bytes, the SQLite header.
_HEADER_SIZE = 100
_SQLITE_MAGIC = b"SQLite format 3\x00"
#: Header bytes 18 and 19 (read and write format) are 2 in WAL mode.
_WAL_FORMAT = b"\x02\x02"

#: A file's identity and last write (inode, size, mtime in ns); None when missing.
FileStat = tuple[int, int, int] | None


@dataclass(frozen=True)
class Opened:
    """A connection to a store, and how it was opened."""

    db: sqlite3.Connection
    exists: bool = True
    """False when a read-only store stands for a file that does not exist yet (or is
    empty): ``db`` is then the schema with no data, in memory."""
    unlocked_at: FileStat = None
    """The file as it was when opened without locks (a WAL store at rest, see
    `_wal_at_rest`); None when SQLite locks it for each read."""


def open_store(path: Path, *, writable: bool) -> Opened:
    return Opened(_open_writable(path)) if writable else _open_read_only(path)


def _open_writable(path: Path) -> sqlite3.Connection:
    """Check an existing file read-only first, so that one that is not a store is
    refused untouched; create a missing one readable by its owner only."""
    header = _header(path)
    if header:
        before = _state_of(path)
        try:
            _open_checked(path, header, immutable=_wal_at_rest(path, header)).close()
        except StoreError:
            # An immutable read takes no lock: another apply that began migrating the
            # file meanwhile can make it read pages half old, half new. If the file moved
            # while it was checked, check it once more, as it is now.
            if _state_of(path) == before:
                raise
            header = _header(path)
            _open_checked(path, header, immutable=_wal_at_rest(path, header)).close()
    else:
        _create_private(path)
    try:
        db = connect(str(path))
    except sqlite3.Error as exc:
        raise failure(path, exc) from None
    try:
        schema.migrate(db)
    except sqlite3.Error as exc:
        db.close()
        raise failure(path, exc) from None
    return db


def _open_read_only(path: Path) -> Opened:
    header = _header(path)
    if not header:
        return Opened(_empty_database(), exists=False)
    immutable = _wal_at_rest(path, header)
    # Taken before the first read: `Store.changed_since_open` compares against it.
    unlocked_at = file_stat(path) if immutable else None
    return Opened(_open_checked(path, header, immutable=immutable), unlocked_at=unlocked_at)


def connect(target: str, *, uri: bool = False) -> sqlite3.Connection:
    db = sqlite3.connect(target, uri=uri, isolation_level=None, check_same_thread=False, timeout=30)
    db.row_factory = sqlite3.Row
    return db


def file_stat(path: Path) -> FileStat:
    try:
        stat = path.stat()
    except FileNotFoundError:
        return None
    return stat.st_ino, stat.st_size, stat.st_mtime_ns


# ----------------------------------------------------------------- reading the file


def _header(path: Path) -> bytes:
    """The first bytes of ``path``: b"" when it is missing or empty."""
    try:
        with path.open("rb") as stream:
            return stream.read(_HEADER_SIZE)
    except FileNotFoundError:
        return b""
    except OSError as exc:
        raise StoreError(f"cannot read {path}: {exc.strerror or exc}") from None


def _state_of(path: Path) -> tuple[int, int, bool]:
    """What changes when another process writes the store: its size, its modification
    time, and whether it has a -wal file."""
    try:
        stat = path.stat()
    except OSError:
        return (-1, -1, False)
    return (stat.st_size, stat.st_mtime_ns, path.with_name(path.name + "-wal").exists())


def _wal_at_rest(path: Path, header: bytes) -> bool:
    """A WAL database with no -wal file: nothing has it open, and the file holds all of
    it. SQLite would create -wal and -shm files to read it, even read-only, and leave
    them behind; opened ``immutable`` it creates nothing. Such a read takes no lock, so
    a writer that starts meanwhile is detected by `Store.changed_since_open`."""
    wal = path.with_name(path.name + "-wal")
    return header[18:20] == _WAL_FORMAT and not wal.exists()


def _read_only_uri(path: Path, immutable: bool) -> str:
    """A URI that opens ``path`` read-only. `Path.as_uri` percent-encodes what a URI
    would misread ('?', '#', '%', spaces), and SQLite decodes it."""
    query = "mode=ro&immutable=1" if immutable else "mode=ro"
    return f"{path.absolute().as_uri()}?{query}"


def _open_checked(path: Path, header: bytes, *, immutable: bool) -> sqlite3.Connection:
    """A read-only connection to ``path``, once `_check_store` has accepted it."""
    if not header.startswith(_SQLITE_MAGIC):
        raise NotAStoreError(
            f"{path} is not a chatroster store (not an SQLite database); it was left untouched"
        )
    try:
        db = connect(_read_only_uri(path, immutable), uri=True)
    except sqlite3.Error as exc:
        raise failure(path, exc) from None
    try:
        _check_store(db, path)
    except BaseException:
        db.close()
        raise
    return db


# -------------------------------------------------------------------------- checks


def _check_store(db: sqlite3.Connection, path: Path) -> None:
    """Refuse a file that is not a chatroster store, is from a newer chatroster, or
    lacks a table or column of its version's schema (which later queries would trip on)."""
    try:
        version = _schema_version(db, path)
        problems = _schema_problems(db, version) if version <= schema.SCHEMA_VERSION else []
    except sqlite3.Error as exc:
        raise failure(path, exc) from None
    if version > schema.SCHEMA_VERSION:
        raise StoreError(
            f"{path} was written by a newer chatroster (store version {version}); upgrade chatroster"
        )
    if problems:
        raise damaged(path, "; ".join(problems))


def _schema_version(db: sqlite3.Connection, path: Path) -> int:
    """The version ``meta`` records. Another program's file may have a ``meta`` table
    too, so a store also needs a version number and one of the store's own tables."""
    tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    row = None
    if "meta" in tables and {"key", "value"} <= schema.columns(db, "meta"):
        row = db.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone()
    version = str(row[0]) if row is not None else ""
    if not version.isdecimal() or int(version) < 1 or not tables & _data_tables():
        raise NotAStoreError(
            f"{path} is not a chatroster store (it has no chatroster schema); it was left untouched"
        )
    return int(version)


def _schema_problems(db: sqlite3.Connection, version: int) -> list[str]:
    """Every table and column of ``version``'s schema the file lacks (extra ones are
    fine: a version-1 file may have a table that came later)."""
    problems: list[str] = []
    for table, expected in schema.expected_columns(version).items():
        found = schema.columns(db, table)
        if not found:
            problems.append(f"table {table} is missing")
        problems += [f"table {table} has no column {name}" for name in sorted(expected - found) if found]
    return problems


def _data_tables() -> frozenset[str]:
    return frozenset(schema.expected_columns()) - {"meta"}


# ------------------------------------------------------------------------ creating


def _empty_database() -> sqlite3.Connection:
    """The schema with no data, in memory: how read-only commands see a store that
    does not exist yet (nothing is created for them)."""
    db = connect(":memory:")
    schema.create(db)
    return db


def _create_private(path: Path) -> None:
    """Create an empty ``path`` (and its directories) readable by its owner only: a
    store holds personal data. SQLite gives its -wal and -shm files the same mode."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))
    except OSError as exc:
        raise StoreError(f"cannot create {path}: {exc.strerror or exc}") from None
