"""What a store file holds: its tables, version by version, and the migrations between.

A store records its version in ``meta`` (key ``schema``). ``MIGRATIONS[n - 1]`` takes a
store from version n - 1 to n; a new file is version 0 and gets every step. A new version
is a new step at the end: a step that has shipped is never edited, because files made by
it exist. An older chatroster refuses a file of a newer version (see `opening`).

The ``users``, ``bans``, ``blocks`` and ``whitelist`` tables are the local platform's;
``tokens``, ``roles`` and ``role_settings`` are there for the vendors' APIs that
`chatroster emulator` serves from the same file. ``friends`` and ``friend_permissions``
serve both.
"""

from __future__ import annotations

import secrets
import sqlite3
from functools import cache

#: The ``meta`` key of the store's random key for masks (hex), made once when opened
#: writable: without credentials, masks keyed by a constant could be looked up.
MASK_KEY = "mask_key"

#: The DDL statements of one migration step.
Step = tuple[str, ...]

_VERSION_1: Step = (
    "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    """CREATE TABLE users (
    uid TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    avatar TEXT,
    link TEXT,
    role TEXT,
    status_message TEXT,
    metadata TEXT,            -- JSON object, NULL when never set
    tags TEXT NOT NULL DEFAULT '[]',
    profile TEXT,             -- JSON object (hosted profile, ext fields under "ext")
    profile_version INTEGER NOT NULL DEFAULT 0,
    active INTEGER NOT NULL DEFAULT 1,
    deactivated_at INTEGER,   -- unix seconds
    whitelist_mode INTEGER NOT NULL DEFAULT 0,
    tokens_valid_after INTEGER,
    owner TEXT,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
)""",
    "CREATE INDEX users_owner ON users(owner)",
    """CREATE TABLE bans (
    uid TEXT PRIMARY KEY,
    until INTEGER,            -- unix seconds; NULL: forever
    created_at INTEGER NOT NULL
)""",
    """CREATE TABLE blocks (
    uid TEXT NOT NULL, target TEXT NOT NULL, created_at INTEGER NOT NULL,
    PRIMARY KEY (uid, target)
) WITHOUT ROWID""",
    """CREATE TABLE whitelist (
    uid TEXT NOT NULL, target TEXT NOT NULL, created_at INTEGER NOT NULL,
    PRIMARY KEY (uid, target)
) WITHOUT ROWID""",
    "CREATE TABLE tokens (token TEXT PRIMARY KEY, uid TEXT NOT NULL, created_at INTEGER NOT NULL)",
    "CREATE INDEX tokens_uid ON tokens(uid)",
    """CREATE TABLE roles (
    role TEXT PRIMARY KEY, name TEXT NOT NULL, description TEXT, metadata TEXT,
    created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL
)""",
)

_VERSION_2: Step = (
    # IF NOT EXISTS: the emulator made this table on first use in version-1 files.
    "CREATE TABLE IF NOT EXISTS role_settings (role TEXT PRIMARY KEY, settings TEXT NOT NULL)",
)

_ROLE_OWNERS: Step = (
    # The local platform's ownership marker of a role, as ``users.owner`` is a user's
    # (CometChat keeps it in the role's metadata instead; the emulator leaves it NULL).
    "ALTER TABLE roles ADD COLUMN owner TEXT",
)

_FRIENDS: Step = (
    # One row per side of a friendship (friendship is mutual; both rows are written and
    # removed together); each side keeps its own alias and ext about the other.
    """CREATE TABLE friends (
    uid TEXT NOT NULL, target TEXT NOT NULL,
    alias TEXT NOT NULL DEFAULT '',
    ext TEXT NOT NULL DEFAULT '{}',   -- JSON object of ext_* fields
    created_at INTEGER NOT NULL,
    PRIMARY KEY (uid, target)
) WITHOUT ROWID""",
    # 1 anyone, 2 approval, 3 nobody (Nexconn's numbers); no row: never set.
    "CREATE TABLE friend_permissions (uid TEXT PRIMARY KEY, permission INTEGER NOT NULL)",
)

MIGRATIONS: tuple[Step, ...] = (_VERSION_1, _VERSION_2, _ROLE_OWNERS, _FRIENDS)

#: The version a new store gets, and the newest this chatroster can open.
SCHEMA_VERSION = len(MIGRATIONS)


def migrate(db: sqlite3.Connection) -> None:
    """Bring a checked (or new, empty) store to `SCHEMA_VERSION` and give it a mask key
    if it has none: idempotent, and safe while another process opens the file too."""
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    if recorded_version(db) < SCHEMA_VERSION:
        for version in range(1, SCHEMA_VERSION + 1):
            _step(db, version)
    # Made once, never replaced: a file an older chatroster made may have none yet.
    db.execute("INSERT OR IGNORE INTO meta (key, value) VALUES (?, ?)", (MASK_KEY, secrets.token_hex(32)))


def _step(db: sqlite3.Connection, version: int) -> None:
    """Migrate to ``version`` unless the store is there already. One write transaction
    checks, migrates and records it, so neither a crash nor a second process opening
    the file at the same time applies a step twice or by half."""
    db.execute("BEGIN IMMEDIATE")
    try:
        if recorded_version(db) < version:
            for statement in MIGRATIONS[version - 1]:
                db.execute(statement)
            db.execute(
                "INSERT INTO meta (key, value) VALUES ('schema', ?)"
                " ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                (str(version),),
            )
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")


def recorded_version(db: sqlite3.Connection) -> int:
    """The version ``meta`` records: 0 for a new, empty file. (Whether a file is a store
    at all is for `opening` to check before this is asked.)"""
    if not db.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'meta'").fetchone():
        return 0
    row = db.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone()
    return 0 if row is None else int(row[0])


def create(db: sqlite3.Connection, version: int = SCHEMA_VERSION) -> None:
    """The tables of ``version`` in a new database, with no data and no ``meta`` rows."""
    for step in MIGRATIONS[:version]:
        for statement in step:
            db.execute(statement)


@cache
def expected_columns(version: int = SCHEMA_VERSION) -> dict[str, frozenset[str]]:
    """Each table a store of ``version`` has and its columns, as SQLite itself reads
    the schema."""
    db = sqlite3.connect(":memory:")
    try:
        create(db, version)
        rows = db.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY rowid")
        return {table: columns(db, table) for (table,) in rows.fetchall()}
    finally:
        db.close()


def columns(db: sqlite3.Connection, table: str) -> frozenset[str]:
    rows = db.execute("SELECT name FROM pragma_table_info(?)", (table,))
    return frozenset(row[0] for row in rows)
