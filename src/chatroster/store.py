"""The embedded platform's store: one SQLite file that holds the meaning.

The local provider writes to it directly; `chatroster emulator` serves the same file
over the Nexconn and CometChat HTTP APIs, whose modules only translate. Every write
runs inside `transaction()`, so a crash never leaves half a change.

A store is opened writable (apply, the emulator: created and migrated as needed) or
read-only (plan, drift, export: nothing is ever created, migrated or changed). Either
way a file is checked before anything is written to it, so a file that is not a
chatroster store, or is damaged, is refused untouched. `ApplyLock` keeps applies to
one at a time.
"""

from __future__ import annotations

import fcntl
import json
import os
import secrets
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any

from .errors import ProviderError
from .model import Ban, User, freeze, thaw

SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS users (
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
);
CREATE INDEX IF NOT EXISTS users_owner ON users(owner);
CREATE TABLE IF NOT EXISTS bans (
    uid TEXT PRIMARY KEY,
    until INTEGER,            -- unix seconds; NULL: forever
    created_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS blocks (
    uid TEXT NOT NULL, target TEXT NOT NULL, created_at INTEGER NOT NULL,
    PRIMARY KEY (uid, target)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS whitelist (
    uid TEXT NOT NULL, target TEXT NOT NULL, created_at INTEGER NOT NULL,
    PRIMARY KEY (uid, target)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS tokens (
    token TEXT PRIMARY KEY, uid TEXT NOT NULL, created_at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS tokens_uid ON tokens(uid);
CREATE TABLE IF NOT EXISTS roles (
    role TEXT PRIMARY KEY, name TEXT NOT NULL, description TEXT, metadata TEXT,
    created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL
);
"""

#: The columns `Store._user_from_row` reads, in its order.
_USER_COLUMNS = (
    "uid, name, avatar, link, role, status_message, metadata, tags, profile, active,"
    " whitelist_mode, tokens_valid_after, owner"
)

#: From this many uids, `Store.get_users` scans the table when they are most of it.
_SCAN_FROM = 2000

#: Columns of ``users`` that map one to one onto `User` fields of the same name.
_PLAIN = ("name", "avatar", "link", "role", "status_message")
_JSON = ("metadata", "profile")

Clock = Callable[[], float]

#: The ``meta`` key of the store's random key for masks (hex), made once when opened
#: writable: without credentials, masks keyed by a constant could be looked up.
MASK_KEY = "mask_key"

#: What a damaged store's message tells the user to do.
_REPAIR = "restore it from a backup or remove it"

#: What identifies a file: its first 100 bytes, the SQLite header.
_HEADER_SIZE = 100
_SQLITE_MAGIC = b"SQLite format 3\x00"
#: Header bytes 18 and 19 (read and write format) are 2 in WAL mode.
_WAL_FORMAT = b"\x02\x02"

#: A file's identity and last write (inode, size, mtime in ns); None when missing.
_FileStat = tuple[int, int, int] | None


class StoreError(ProviderError):
    """The file cannot be used as a chatroster store: damaged, from a newer version,
    unreadable or busy. The message names the file and says what to do. A
    `ProviderError` (exit 1): the store is the local platform."""


class NotAStoreError(StoreError):
    """The file is not a chatroster store; it was left untouched."""


class StoreLockedError(StoreError):
    """Another apply holds the store's `ApplyLock`."""


def _to_epoch(value: datetime | None) -> int | None:
    return None if value is None else int(value.timestamp())


def _from_epoch(value: int | None) -> datetime | None:
    return None if value is None else datetime.fromtimestamp(value, tz=UTC)


@lru_cache(maxsize=4096)
def _frozen_json(text: str) -> Any:
    """Stored JSON as read-only data. Tag lists and metadata repeat across many users
    (a team, a few tags), so each distinct text is decoded once, not once per user."""
    return freeze(json.loads(text))


_COMPACT_JSON = json.JSONEncoder(sort_keys=True, separators=(",", ":")).encode
"""``json.dumps`` with these options, without a new encoder for each value written."""


def _dump(value: Any) -> str | None:
    return None if value is None else _COMPACT_JSON(thaw(value))


@dataclass(frozen=True)
class UserPage:
    """A page of users and the total that matched, for the vendors' list endpoints."""

    users: list[User]
    total: int


class Store:
    """A chatroster SQLite store. Safe to share between threads; writes are serialised.

    ``writable`` (apply, the emulator): a missing file is created, private to its
    owner, with its directories; the schema is migrated and a mask key made once.
    Read-only (plan, drift, export): nothing is created, migrated or changed, and a
    missing file reads as an empty store. Either way an existing file is first checked
    read-only (`_check_store`), so one that is not a store, or is damaged, is refused
    untouched with a `StoreError` naming it.
    """

    def __init__(
        self, path: str | Path, *, clock: Clock = time.time, writable: bool = True
    ) -> None:
        self.path = Path(path)
        self.clock = clock
        self.writable = writable
        self.exists = True
        """False when a read-only store stands for a file that does not exist yet (or is
        empty): it then reads as a platform with no data."""
        self._lock = threading.RLock()
        self._opened_as: _FileStat = None
        self._db = self._open_writable() if writable else self._open_read_only()

    def _open_writable(self) -> sqlite3.Connection:
        """Check an existing file read-only first, so that one that is not a store is
        refused untouched; create a missing one readable by its owner only."""
        header = _header(self.path)
        if header:
            _open_checked(self.path, header, immutable=_wal_at_rest(self.path, header)).close()
        else:
            _create_private(self.path)
        try:
            db = _connect(str(self.path))
        except sqlite3.Error as exc:
            raise failure(self.path, exc) from None
        try:
            _migrate(db)
        except sqlite3.Error as exc:
            db.close()
            raise failure(self.path, exc) from None
        return db

    def _open_read_only(self) -> sqlite3.Connection:
        header = _header(self.path)
        if not header:
            self.exists = False
            return _empty_database()
        immutable = _wal_at_rest(self.path, header)
        # Taken before the first read: `changed_since_open` compares against it.
        self._opened_as = _file_stat(self.path) if immutable else None
        return _open_checked(self.path, header, immutable=immutable)

    def changed_since_open(self) -> bool:
        """Whether the file was written since it was opened without locks (a WAL store
        at rest, see `_wal_at_rest`): what was read may then mix two states and must be
        read again. Always False for other stores, which SQLite locks for each read."""
        return self._opened_as is not None and _file_stat(self.path) != self._opened_as

    def mask_key(self) -> bytes | None:
        """The store's own random key for masks in printed output; None when it has none:
        it does not exist yet, or an older chatroster made it and nothing has opened it
        for writing since."""
        if not self.exists:
            return None
        rows = self._query("SELECT value FROM meta WHERE key = ?", (MASK_KEY,))
        try:
            return bytes.fromhex(rows[0][0]) if rows else None
        except ValueError:
            return None

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def now(self) -> int:
        return int(self.clock())

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """All-or-nothing: commit when the block ends, roll back if it raises."""
        with self._lock:
            if self._db.in_transaction:  # nested: the outer transaction decides
                yield self._db
                return
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def _query(self, sql: str, args: Sequence[Any] = ()) -> list[sqlite3.Row]:
        with self._lock:
            return self._db.execute(sql, args).fetchall()

    # ----------------------------------------------------------------- users: read

    @staticmethod
    def _user_from_row(row: Sequence[Any]) -> User:
        """The user in a row of `_USER_COLUMNS` (unpacked by position: 100k rows a plan)."""
        (uid, name, avatar, link, role, status_message, metadata, tags, profile, active,
         whitelist_mode, tokens_valid_after, owner) = row
        return User(
            uid=uid,
            name=name,
            avatar=avatar,
            link=link,
            role=role,
            status_message=status_message,
            metadata=_frozen_json(metadata) if metadata is not None else {},
            tags=_frozen_json(tags),
            profile=json.loads(profile) if profile is not None else {},
            active=bool(active),
            whitelist_mode=bool(whitelist_mode),
            tokens_valid_after=_from_epoch(tokens_valid_after),
            owner=owner,
        )

    def get_user(self, uid: str) -> User | None:
        rows = self._query(f"SELECT {_USER_COLUMNS} FROM users WHERE uid = ?", (uid,))
        return self._user_from_row(rows[0]) if rows else None

    def get_users(self, uids: Iterable[str]) -> dict[str, User]:
        wanted = uids if isinstance(uids, (set, frozenset)) else set(uids)
        if len(wanted) >= _SCAN_FROM and len(wanted) * 2 >= self._count_users():
            # Most of the table: one scan beats hundreds of 500-uid IN (...) queries.
            rows = self._query(f"SELECT {_USER_COLUMNS} FROM users")
            return {row[0]: self._user_from_row(row) for row in rows if row[0] in wanted}
        found: dict[str, User] = {}
        chunk: list[str] = []
        for uid in wanted:
            chunk.append(uid)
            if len(chunk) == 500:
                found.update(self._get_chunk(chunk))
                chunk = []
        if chunk:
            found.update(self._get_chunk(chunk))
        return found

    def _count_users(self) -> int:
        return int(self._query("SELECT COUNT(*) FROM users")[0][0])

    def _get_chunk(self, uids: list[str]) -> dict[str, User]:
        marks = ",".join("?" * len(uids))
        rows = self._query(f"SELECT {_USER_COLUMNS} FROM users WHERE uid IN ({marks})", uids)
        return {row[0]: self._user_from_row(row) for row in rows}

    def all_users(self) -> dict[str, User]:
        rows = self._query(f"SELECT {_USER_COLUMNS} FROM users")
        return {row[0]: self._user_from_row(row) for row in rows}

    def owned_uids(self, owner: str) -> set[str]:
        """The uids whose ownership marker is ``owner`` (what a manifest may prune)."""
        return {row["uid"] for row in self._query("SELECT uid FROM users WHERE owner = ?", (owner,))}

    def has_user(self, uid: str) -> bool:
        return bool(self._query("SELECT 1 FROM users WHERE uid = ?", (uid,)))

    def user_row(self, uid: str) -> dict[str, Any] | None:
        """The raw record (timestamps, profile version), for the vendor API modules."""
        rows = self._query("SELECT * FROM users WHERE uid = ?", (uid,))
        return dict(rows[0]) if rows else None

    def page_users(
        self,
        *,
        offset: int,
        limit: int,
        active: bool | None = None,
        with_profile: bool = False,
        newest_first: bool = False,
    ) -> UserPage:
        """Users in registration order (or newest first), as Nexconn's list endpoints
        page them; CometChat's filtered listing is `user_rows_page`."""
        where: list[str] = ["1=1"]
        args: list[Any] = []
        if active is not None:
            where.append("active = ?")
            args.append(int(active))
        if with_profile:
            where.append("profile IS NOT NULL AND profile != '{}'")
        clause = " AND ".join(where)
        order = "DESC" if newest_first else "ASC"
        total = self._query(f"SELECT COUNT(*) AS n FROM users WHERE {clause}", args)[0]["n"]
        rows = self._query(
            f"SELECT {_USER_COLUMNS} FROM users WHERE {clause}"
            f" ORDER BY created_at {order}, rowid {order} LIMIT ? OFFSET ?",
            [*args, limit, offset],
        )
        return UserPage([self._user_from_row(row) for row in rows], total)

    # ---------------------------------------------------------------- users: write

    def insert_users(self, users: Iterable[User], *, owner: str | None = None) -> None:
        """Create users with every field they carry (``None`` fields stay unset)."""
        now = self.now()
        rows = [
            (
                user.uid,
                user.name or user.uid,
                user.avatar,
                user.link,
                user.role,
                user.status_message,
                _dump(user.metadata),
                json.dumps(list(user.tags or ())),
                _dump(user.profile),
                1 if user.profile else 0,
                0 if user.active is False else 1,
                now if user.active is False else None,
                1 if user.whitelist_mode else 0,
                _to_epoch(user.tokens_valid_after),
                owner if owner is not None else user.owner,
                now,
                now,
            )
            for user in users
        ]
        with self.transaction() as db:
            db.executemany(
                "INSERT INTO users (uid, name, avatar, link, role, status_message, metadata,"
                " tags, profile, profile_version, active, deactivated_at, whitelist_mode,"
                " tokens_valid_after, owner, created_at, updated_at)"
                " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                rows,
            )

    def update_user(self, uid: str, fields: Mapping[str, Any]) -> bool:
        """Set the given `User` fields (``None`` clears an optional one). False: no such user."""
        sets, args = [], []
        for name, value in fields.items():
            if name in _PLAIN:
                sets.append(f"{name} = ?")
                args.append(value)
            elif name in _JSON:
                sets.append(f"{name} = ?")
                args.append(_dump(value))
                if name == "profile":
                    sets.append("profile_version = profile_version + 1")
            elif name == "tags":
                sets.append("tags = ?")
                args.append(json.dumps(sorted(set(value or ()))))
            elif name == "owner":
                sets.append("owner = ?")
                args.append(value)
            elif name == "tokens_valid_after":
                sets.append("tokens_valid_after = ?")
                args.append(_to_epoch(value))
            elif name == "whitelist_mode":
                sets.append("whitelist_mode = ?")
                args.append(int(bool(value)))
            else:
                raise ValueError(f"not a stored user field: {name}")
        if not sets:
            return self.get_user(uid) is not None
        sets.append("updated_at = ?")
        args += [self.now(), uid]
        with self.transaction() as db:
            cursor = db.execute(f"UPDATE users SET {', '.join(sets)} WHERE uid = ?", args)
            return cursor.rowcount == 1

    def set_active(self, uids: Iterable[str], active: bool) -> list[str]:
        """(De)activate users; returns the uids that exist."""
        now = self.now()
        done = []
        with self.transaction() as db:
            for uid in uids:
                cursor = db.execute(
                    "UPDATE users SET active = ?, deactivated_at = ?, updated_at = ? WHERE uid = ?",
                    (int(active), None if active else now, now, uid),
                )
                if cursor.rowcount:
                    done.append(uid)
        return done

    def delete_users(self, uids: Iterable[str]) -> list[str]:
        """Permanently delete users and everything that names them; returns those that existed."""
        done = []
        with self.transaction() as db:
            for uid in uids:
                if db.execute("DELETE FROM users WHERE uid = ?", (uid,)).rowcount:
                    done.append(uid)
                for table in ("blocks", "whitelist"):
                    db.execute(f"DELETE FROM {table} WHERE uid = ? OR target = ?", (uid, uid))
                db.execute("DELETE FROM bans WHERE uid = ?", (uid,))
                db.execute("DELETE FROM tokens WHERE uid = ?", (uid,))
        return done

    # ----------------------------------------------------------------------- bans

    def bans(self) -> dict[str, Ban]:
        """Bans in force now (expired ones are lifted, as the vendors do)."""
        now = self.now()
        rows = self._query("SELECT uid, until FROM bans WHERE until IS NULL OR until > ?", (now,))
        return {row["uid"]: Ban(row["uid"], _from_epoch(row["until"])) for row in rows}

    def ban(self, uids: Iterable[str], until: datetime | None) -> None:
        now = self.now()
        with self.transaction() as db:
            db.executemany(
                "INSERT INTO bans (uid, until, created_at) VALUES (?, ?, ?) "
                "ON CONFLICT(uid) DO UPDATE SET until = excluded.until",
                [(uid, _to_epoch(until), now) for uid in uids],
            )

    def unban(self, uids: Iterable[str]) -> None:
        with self.transaction() as db:
            db.executemany("DELETE FROM bans WHERE uid = ?", [(uid,) for uid in uids])

    # ---------------------------------------------------- blocklists and whitelists

    def relations(self, table: str, uids: Iterable[str] | None = None) -> dict[str, set[str]]:
        """``blocks`` or ``whitelist`` entries by uid (of ``uids``, or of everyone)."""
        if table not in ("blocks", "whitelist"):
            raise ValueError(table)
        found: dict[str, set[str]] = {}
        if uids is None:
            rows = self._query(f"SELECT uid, target FROM {table}")
        else:
            wanted = list(uids)
            rows = []
            for start in range(0, len(wanted), 500):
                chunk = wanted[start : start + 500]
                marks = ",".join("?" * len(chunk))
                rows += self._query(
                    f"SELECT uid, target FROM {table} WHERE uid IN ({marks})", chunk
                )
        for row in rows:
            found.setdefault(row["uid"], set()).add(row["target"])
        return found

    def relation_page(
        self, table: str, uid: str, *, offset: int, limit: int, newest_first: bool = True
    ) -> list[str]:
        if table not in ("blocks", "whitelist"):
            raise ValueError(table)
        order = "DESC" if newest_first else "ASC"
        rows = self._query(
            f"SELECT target FROM {table} WHERE uid = ? ORDER BY created_at {order}, target "
            "LIMIT ? OFFSET ?",
            (uid, limit, offset),
        )
        return [row["target"] for row in rows]

    def add_relations(self, table: str, pairs: Iterable[tuple[str, str]]) -> None:
        if table not in ("blocks", "whitelist"):
            raise ValueError(table)
        now = self.now()
        with self.transaction() as db:
            db.executemany(
                f"INSERT OR IGNORE INTO {table} (uid, target, created_at) VALUES (?, ?, ?)",
                [(uid, target, now) for uid, target in pairs],
            )

    def remove_relations(self, table: str, pairs: Iterable[tuple[str, str]]) -> None:
        if table not in ("blocks", "whitelist"):
            raise ValueError(table)
        with self.transaction() as db:
            db.executemany(f"DELETE FROM {table} WHERE uid = ? AND target = ?", list(pairs))

    # --------------------------------------------------------------------- tokens

    def issue_token(self, uid: str) -> tuple[str, int]:
        """A new auth token for ``uid`` and its creation time."""
        token = f"{uid}_{self.now()}{secrets.token_hex(15)}"
        now = self.now()
        with self.transaction() as db:
            db.execute("INSERT INTO tokens VALUES (?, ?, ?)", (token, uid, now))
        return token, now

    def tokens(self, uid: str) -> list[tuple[str, int]]:
        rows = self._query(
            "SELECT token, created_at FROM tokens WHERE uid = ? ORDER BY created_at DESC, token",
            (uid,),
        )
        return [(row["token"], row["created_at"]) for row in rows]

    def delete_tokens(self, uid: str, token: str | None = None) -> int:
        """Delete one token, or every token of ``uid``; returns how many were deleted."""
        with self.transaction() as db:
            if token is None:
                return db.execute("DELETE FROM tokens WHERE uid = ?", (uid,)).rowcount
            return db.execute(
                "DELETE FROM tokens WHERE uid = ? AND token = ?", (uid, token)
            ).rowcount

    def delete_tokens_before(self, uid: str, before: datetime) -> int:
        """Delete the tokens of ``uid`` issued before ``before``; returns how many."""
        with self.transaction() as db:
            return db.execute(
                "DELETE FROM tokens WHERE uid = ? AND created_at < ?", (uid, _to_epoch(before))
            ).rowcount

    # ---------------------------------------------------------------------- roles

    def roles(self) -> list[dict[str, Any]]:
        return [dict(row) for row in self._query("SELECT * FROM roles ORDER BY created_at, role")]

    def get_role(self, role: str) -> dict[str, Any] | None:
        rows = self._query("SELECT * FROM roles WHERE role = ?", (role,))
        return dict(rows[0]) if rows else None

    def put_role(self, role: str, fields: Mapping[str, Any]) -> None:
        now = self.now()
        current = self.get_role(role) or {"name": role, "description": None, "metadata": None}
        merged = {**current, **fields}
        with self.transaction() as db:
            db.execute(
                "INSERT INTO roles (role, name, description, metadata, created_at, updated_at)"
                " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT(role) DO UPDATE SET name = excluded.name,"
                " description = excluded.description, metadata = excluded.metadata,"
                " updated_at = excluded.updated_at",
                (role, merged["name"], merged["description"], merged["metadata"], now, now),
            )

    def delete_role(self, role: str) -> bool:
        with self.transaction() as db:
            return db.execute("DELETE FROM roles WHERE role = ?", (role,)).rowcount == 1

    # ==========================================================================
    # CometChat emulator reads and role settings (emulator/cometchat*.py).
    # Kept together so that other additions to the store do not interleave.
    # Each list read is one COUNT and one page query, never a query per user.
    # ==========================================================================

    def user_rows_page(
        self,
        *,
        offset: int,
        limit: int,
        active: bool | None = True,
        search: str | None = None,
        search_in: Sequence[str] = ("uid", "name"),
        roles: Sequence[str] = (),
        unset_role: str | None = None,
        any_tags: Sequence[str] = (),
    ) -> tuple[list[dict[str, Any]], int]:
        """Raw user records in registration order, and how many matched in all.

        ``unset_role`` is the role a NULL ``role`` stands for, so that filtering on it
        also finds users whose role was never set. ``any_tags`` keeps users that carry
        at least one of the tags.
        """
        where: list[str] = ["1=1"]
        args: list[Any] = []
        if active is not None:
            where.append("active = ?")
            args.append(int(active))
        if search:
            columns = [column for column in ("uid", "name") if column in search_in]
            pattern = _like_prefix(search)
            where.append("(" + " OR ".join(f"{c} LIKE ? ESCAPE '\\'" for c in columns) + ")")
            args += [pattern] * len(columns)
        if roles:
            test = f"role IN ({','.join('?' * len(roles))})"
            if unset_role is not None and unset_role in roles:
                test = f"(role IS NULL OR {test})"
            where.append(test)
            args += list(roles)
        if any_tags:
            marks = ",".join("?" * len(any_tags))
            where.append(f"EXISTS (SELECT 1 FROM json_each(users.tags) WHERE value IN ({marks}))")
            args += list(any_tags)
        clause = " AND ".join(where)
        total = self._query(f"SELECT COUNT(*) AS n FROM users WHERE {clause}", args)[0]["n"]
        rows = self._query(
            f"SELECT * FROM users WHERE {clause} ORDER BY created_at, rowid LIMIT ? OFFSET ?",
            [*args, limit, offset],
        )
        return [dict(row) for row in rows], total

    def block_rows_page(
        self, uid: str, *, direction: str, offset: int, limit: int, search: str | None = None
    ) -> tuple[list[dict[str, Any]], int]:
        """The users ``uid`` blocks (``blockedByMe``), is blocked by (``hasBlockedMe``)
        or either (``both``), newest block first, each record with ``blocked_by_me_at``
        and ``has_blocked_me_at`` (unix seconds or NULL)."""
        others = {
            "blockedByMe": "SELECT target AS uid FROM blocks WHERE uid = :me",
            "hasBlockedMe": "SELECT uid FROM blocks WHERE target = :me",
        }
        others["both"] = f"{others['blockedByMe']} UNION {others['hasBlockedMe']}"
        args: dict[str, Any] = {"me": uid, "limit": limit, "offset": offset}
        match = ""
        if search:
            match = "AND (u.uid LIKE :pattern ESCAPE '\\' OR u.name LIKE :pattern ESCAPE '\\')"
            args["pattern"] = _like_prefix(search)
        body = (
            f"FROM ({others[direction]}) AS other JOIN users u ON u.uid = other.uid "
            "LEFT JOIN blocks mine ON mine.uid = :me AND mine.target = u.uid "
            f"LEFT JOIN blocks theirs ON theirs.uid = u.uid AND theirs.target = :me WHERE 1=1 {match}"
        )
        total = self._named_query(f"SELECT COUNT(*) AS n {body}", args)[0]["n"]
        rows = self._named_query(
            "SELECT u.*, mine.created_at AS blocked_by_me_at, theirs.created_at AS has_blocked_me_at "
            f"{body} ORDER BY MAX(COALESCE(mine.created_at, 0), COALESCE(theirs.created_at, 0)) "
            "DESC, u.uid LIMIT :limit OFFSET :offset",
            args,
        )
        return [dict(row) for row in rows], total

    def _named_query(self, sql: str, args: Mapping[str, Any]) -> list[sqlite3.Row]:
        with self._lock:
            return self._db.execute(sql, args).fetchall()

    def block_pair(self, uid: str, other: str) -> tuple[int | None, int | None]:
        """When ``uid`` blocked ``other`` and when ``other`` blocked ``uid`` (None: not)."""
        rows = self._query(
            "SELECT uid, created_at FROM blocks WHERE (uid = ? AND target = ?)"
            " OR (uid = ? AND target = ?)",
            (uid, other, other, uid),
        )
        times = {row["uid"]: row["created_at"] for row in rows}
        return times.get(uid), times.get(other)

    def ensure_role(self, role: str, name: str) -> None:
        """Create ``role`` unless it exists (the vendor's apps always have ``default``)."""
        now = self.now()
        with self.transaction() as db:
            db.execute(
                "INSERT OR IGNORE INTO roles (role, name, created_at, updated_at)"
                " VALUES (?, ?, ?, ?)",
                (role, name, now, now),
            )

    def _role_settings_table(self) -> None:
        """Create the role settings table on first use (it came after schema version 1)."""
        if not getattr(self, "_role_settings_ready", False):
            with self._lock:
                self._db.execute(
                    "CREATE TABLE IF NOT EXISTS role_settings"
                    " (role TEXT PRIMARY KEY, settings TEXT NOT NULL)"
                )
            self._role_settings_ready = True

    def role_settings(self) -> dict[str, Any]:
        """Each role's settings object (CometChat ``listUsers``/``sendMessagesTo``)."""
        self._role_settings_table()
        rows = self._query("SELECT role, settings FROM role_settings")
        return {row["role"]: json.loads(row["settings"]) for row in rows}

    def set_role_settings(self, role: str, settings: Mapping[str, Any] | None) -> None:
        """Replace a role's settings; ``None`` removes them."""
        self._role_settings_table()
        with self.transaction() as db:
            db.execute("DELETE FROM role_settings WHERE role = ?", (role,))
            if settings is not None:
                db.execute("INSERT INTO role_settings VALUES (?, ?)", (role, _dump(settings)))

def _like_prefix(text: str) -> str:
    """A LIKE pattern matching values that start with ``text`` (wildcards escaped)."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


# ------------------------------------------------------------ opening and checking


def _header(path: Path) -> bytes:
    """The first bytes of ``path``: b"" when it is missing or empty."""
    try:
        with path.open("rb") as stream:
            return stream.read(_HEADER_SIZE)
    except FileNotFoundError:
        return b""
    except OSError as exc:
        raise StoreError(f"cannot read {path}: {exc.strerror or exc}") from None


def _wal_at_rest(path: Path, header: bytes) -> bool:
    """A WAL database with no -wal file: nothing has it open, and the file holds all of
    it. SQLite would create -wal and -shm files to read it, even read-only, and leave
    them behind; opened ``immutable`` it creates nothing. Such a read takes no lock, so
    a writer that starts meanwhile is detected by `Store.changed_since_open`."""
    wal = path.with_name(path.name + "-wal")
    return header[18:20] == _WAL_FORMAT and not wal.exists()


def _file_stat(path: Path) -> _FileStat:
    try:
        stat = path.stat()
    except FileNotFoundError:
        return None
    return stat.st_ino, stat.st_size, stat.st_mtime_ns


def _read_only_uri(path: Path, immutable: bool) -> str:
    """A URI that opens ``path`` read-only. `Path.as_uri` percent-encodes what a URI
    would misread ('?', '#', '%', spaces), and SQLite decodes it."""
    query = "mode=ro&immutable=1" if immutable else "mode=ro"
    return f"{path.absolute().as_uri()}?{query}"


def _connect(target: str, *, uri: bool = False) -> sqlite3.Connection:
    db = sqlite3.connect(
        target, uri=uri, isolation_level=None, check_same_thread=False, timeout=30
    )
    db.row_factory = sqlite3.Row
    return db


def _open_checked(path: Path, header: bytes, *, immutable: bool) -> sqlite3.Connection:
    """A read-only connection to ``path``, once `_check_store` has accepted it."""
    if not header.startswith(_SQLITE_MAGIC):
        raise NotAStoreError(
            f"{path} is not a chatroster store (not an SQLite database); it was left untouched"
        )
    try:
        db = _connect(_read_only_uri(path, immutable), uri=True)
    except sqlite3.Error as exc:
        raise failure(path, exc) from None
    try:
        _check_store(db, path)
    except BaseException:
        db.close()
        raise
    return db


def _check_store(db: sqlite3.Connection, path: Path) -> None:
    """Refuse a file that is not a chatroster store, is from a newer chatroster, or
    lacks a table or column of the schema (which later queries would trip on)."""
    try:
        version = _schema_version(db, path)
        problems = _schema_problems(db)
    except sqlite3.Error as exc:
        raise failure(path, exc) from None
    if version > SCHEMA_VERSION:
        raise StoreError(
            f"{path} was written by a newer chatroster (store version {version}); "
            "upgrade chatroster"
        )
    if problems:
        raise StoreError(f"{path} is damaged: {'; '.join(problems)}; {_REPAIR}")


def _schema_version(db: sqlite3.Connection, path: Path) -> int:
    """The version ``meta`` records. Another program's file may have a ``meta`` table
    too, so a store also needs a version number and one of the store's own tables."""
    tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    row = None
    if "meta" in tables and {"key", "value"} <= _columns(db, "meta"):
        row = db.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone()
    if row is None or not str(row[0]).isdigit() or not tables & _data_tables():
        raise NotAStoreError(
            f"{path} is not a chatroster store (it has no chatroster schema); "
            "it was left untouched"
        )
    return int(row[0])


def _schema_problems(db: sqlite3.Connection) -> list[str]:
    """Every table and column of the schema the file lacks (extra ones are fine)."""
    problems: list[str] = []
    for table, expected in _expected_columns().items():
        found = _columns(db, table)
        if not found:
            problems.append(f"table {table} is missing")
        problems += [f"table {table} has no column {name}" for name in
                     sorted(expected - found) if found]
    return problems


def _columns(db: sqlite3.Connection, table: str) -> frozenset[str]:
    rows = db.execute("SELECT name FROM pragma_table_info(?)", (table,))
    return frozenset(row[0] for row in rows)


@lru_cache(maxsize=1)
def _expected_columns() -> dict[str, frozenset[str]]:
    """Each table of `_SCHEMA` and its columns, as SQLite itself reads the schema."""
    db = sqlite3.connect(":memory:")
    try:
        db.executescript(_SCHEMA)
        rows = db.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY rowid")
        return {table: _columns(db, table) for (table,) in rows.fetchall()}
    finally:
        db.close()


def _data_tables() -> frozenset[str]:
    return frozenset(_expected_columns()) - {"meta"}


def _migrate(db: sqlite3.Connection) -> None:
    """Bring a checked (or new, empty) store to the current schema: idempotent."""
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    db.executescript(_SCHEMA)  # CREATE ... IF NOT EXISTS; executescript commits itself
    # One statement, so atomic: the version, and the mask key made once, never replaced.
    db.execute(
        "INSERT OR IGNORE INTO meta (key, value) VALUES ('schema', ?), (?, ?)",
        (str(SCHEMA_VERSION), MASK_KEY, secrets.token_hex(32)),
    )


def _empty_database() -> sqlite3.Connection:
    """The schema with no data, in memory: how read-only commands see a store that
    does not exist yet (nothing is created for them)."""
    db = _connect(":memory:")
    db.executescript(_SCHEMA)
    return db


def _create_private(path: Path) -> None:
    """Create an empty ``path`` (and its directories) readable by its owner only: a
    store holds personal data. SQLite gives its -wal and -shm files the same mode."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))
    except OSError as exc:
        raise StoreError(f"cannot create {path}: {exc.strerror or exc}") from None


def failure(path: Path, exc: sqlite3.Error) -> StoreError:
    """The `StoreError` an SQLite error on ``path`` stands for, saying what to do."""
    name = getattr(exc, "sqlite_errorname", "")
    if name == "SQLITE_NOTADB":
        return NotAStoreError(f"{path} is not a chatroster store ({exc}); it was left untouched")
    if name.startswith(("SQLITE_BUSY", "SQLITE_LOCKED")):
        return StoreError(f"{path} is busy ({exc}): another program is writing to it; "
                          "try again when it is done")
    if name.startswith("SQLITE_CANTOPEN"):
        return StoreError(
            f"cannot open {path} ({exc}): check that it and its directory can be read; a "
            "store with a -wal file also needs its -shm file, or a directory it can be made in"
        )
    if name.startswith("SQLITE_READONLY"):
        return StoreError(f"cannot use {path} ({exc}): it needs writing to before it can be "
                          "read (a journal left by a crash); run apply once, or check its "
                          "permissions")
    if name.startswith(("SQLITE_CORRUPT", "SQLITE_ERROR", "SQLITE_MISMATCH")):
        # Our SQL is fixed: an SQLITE_ERROR here is a table or column that is not there.
        return StoreError(f"{path} is damaged: {exc}; {_REPAIR}")
    return StoreError(f"cannot use {path}: {exc}")


# ----------------------------------------------------------------------- apply lock


class ApplyLock:
    """One apply at a time on a store: an exclusive `flock` on ``<store>.lock``.

    The flock is what counts; the file's text (pid and time) is only for the message a
    second apply shows. The OS drops the flock when its process dies, so a file left by
    a killed apply never blocks. The file is never deleted: a waiter may have it open
    already, and a lock taken on a deleted file would let two applies in.

    Only the local provider opened for apply takes it; plan, drift and export never
    take or wait for it. The emulator does not take it either: it serves a store for
    hours, which would shut out every apply meanwhile, and its writes and an apply's
    interleave safely, each in its own SQLite transaction (the apply then converges on
    what it finds, as after any concurrent change on a vendor's platform).
    """

    def __init__(self, path: Path, descriptor: int) -> None:
        self.path = path
        self._descriptor: int | None = descriptor

    @classmethod
    def take(cls, store: Path, timeout: timedelta, *, poll: float = 0.1) -> ApplyLock:
        """Lock ``store`` for this process, waiting up to ``timeout`` for another apply
        to finish; `StoreLockedError` names the holder when it does not."""
        path = store.with_name(store.name + ".lock")
        descriptor = _open_lock_file(path)
        try:
            _wait_for_flock(descriptor, store, timeout, poll)
            _write_holder(descriptor)
        except BaseException:
            os.close(descriptor)
            raise
        return cls(path, descriptor)

    def release(self) -> None:
        """Let the next apply in (idempotent)."""
        if self._descriptor is None:
            return
        descriptor, self._descriptor = self._descriptor, None
        try:
            os.ftruncate(descriptor, 0)  # no holder to describe any more
        finally:
            os.close(descriptor)  # drops the flock


def _open_lock_file(path: Path) -> int:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        return os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    except OSError as exc:
        raise StoreError(f"cannot create the lock file {path}: {exc.strerror or exc}") from None


def _wait_for_flock(descriptor: int, store: Path, timeout: timedelta, poll: float) -> None:
    deadline = time.monotonic() + timeout.total_seconds()
    while True:
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            left = deadline - time.monotonic()
            if left <= 0:
                raise StoreLockedError(
                    _locked_message(store, _holder(descriptor), timeout)) from None
            time.sleep(min(poll, left))
        except OSError as exc:
            raise StoreError(f"cannot lock {store} for apply: {exc.strerror or exc}") from None


def _write_holder(descriptor: int) -> None:
    since = datetime.now(UTC).isoformat(timespec="seconds")
    text = json.dumps({"pid": os.getpid(), "since": since}) + "\n"
    os.ftruncate(descriptor, 0)
    os.pwrite(descriptor, text.encode(), 0)


def _holder(descriptor: int) -> tuple[str, str]:
    """The holder's pid and since when, as its lock file says ("unknown" if it does
    not yet: the holder writes them just after it takes the lock)."""
    try:
        found = json.loads(os.pread(descriptor, 4096, 0))
        return str(found["pid"]), str(found["since"])
    except (OSError, ValueError, TypeError, KeyError):
        return "unknown", "an unknown time"


def _locked_message(store: Path, holder: tuple[str, str], waited: timedelta) -> str:
    pid, since = holder
    if not waited:
        return (f"another apply holds {store} since {since} (pid {pid}); wait for it to "
                "finish or re-run with --lock-timeout 5m")
    return (f"another apply has held {store} since {since} (pid {pid}), longer than the "
            f"{_duration(waited)} waited; wait for it to finish or re-run with a longer "
            "--lock-timeout")


def _duration(value: timedelta) -> str:
    seconds = int(value.total_seconds())
    for unit, size in (("h", 3600), ("m", 60)):
        if seconds and seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{value.total_seconds():g}s"
