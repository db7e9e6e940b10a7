"""`Store`: the local platform's users, bans, blocks, whitelists and tokens, read and
written in the neutral model (`User`, `Ban`). Every write runs inside `transaction()`,
so a crash never leaves half a change.

`transaction()` and `query()` are also how code outside this package runs SQL of its
own on the same file: the emulator's vendor-specific reads and its roles
(`chatroster.emulator.storage`).
"""

from __future__ import annotations

import json
import secrets
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

from ..model import DEFAULT_ROLE, Ban, Role, User
from .opening import FileStat, file_stat, open_store
from .rows import (
    INSERT_USER,
    USER_COLUMNS,
    column_updates,
    dump_json,
    from_epoch,
    to_epoch,
    user_from_row,
    user_to_row,
)
from .schema import MASK_KEY, columns

Clock = Callable[[], float]

#: From this many uids, `Store.get_users` scans the table when they are most of it.
_SCAN_FROM = 2000

#: How many uids one ``IN (...)`` query names at most.
_CHUNK = 500

#: The tables of relations between two users, each ``(uid, target, created_at)``.
_RELATIONS = ("blocks", "whitelist")

#: Query arguments: positional (``?``) or named (``:name``).
Args = Sequence[Any] | Mapping[str, Any]


class Store:
    """A chatroster SQLite store. Safe to share between threads; writes are serialised.

    ``writable`` (apply, the emulator): a missing file is created, private to its
    owner, with its directories; the schema is migrated and a mask key made once.
    Read-only (plan, drift, export): nothing is created, migrated or changed, and a
    missing file reads as an empty store. Either way an existing file is first checked
    read-only, so one that is not a store, or is damaged, is refused untouched with a
    `StoreError` naming it (see `chatroster.store.opening`).
    """

    def __init__(self, path: str | Path, *, clock: Clock = time.time, writable: bool = True) -> None:
        self.path = Path(path)
        self.clock = clock
        self.writable = writable
        self._lock = threading.RLock()
        opened = open_store(self.path, writable=writable)
        self._db = opened.db
        self.exists = opened.exists
        """False when a read-only store stands for a file that does not exist yet (or is
        empty): it then reads as a platform with no data."""
        self._opened_as: FileStat = opened.unlocked_at

    def changed_since_open(self) -> bool:
        """Whether the file was written since it was opened without locks (a WAL store
        at rest): what was read may then mix two states and must be read again. Always
        False for other stores, which SQLite locks for each read."""
        return self._opened_as is not None and file_stat(self.path) != self._opened_as

    def mask_key(self) -> bytes | None:
        """The store's own random key for masks in printed output; None when it has none:
        it does not exist yet, or an older chatroster made it and nothing has opened it
        for writing since."""
        if not self.exists:
            return None
        rows = self.query("SELECT value FROM meta WHERE key = ?", (MASK_KEY,))
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

    def query(self, sql: str, args: Args = ()) -> list[sqlite3.Row]:
        """The rows one read returns (writes go through `transaction`)."""
        with self._lock:
            return self._db.execute(sql, args).fetchall()

    # ----------------------------------------------------------------- users: read

    def get_user(self, uid: str) -> User | None:
        rows = self.query(f"SELECT {USER_COLUMNS} FROM users WHERE uid = ?", (uid,))
        return user_from_row(rows[0]) if rows else None

    def get_users(self, uids: Iterable[str]) -> dict[str, User]:
        wanted = uids if isinstance(uids, (set, frozenset)) else set(uids)
        if len(wanted) >= _SCAN_FROM:
            span = (min(wanted), max(wanted))
            if len(wanted) * 2 >= self._count_users(*span):
                # Most of the users from the first uid to the last: reading that range of
                # the table beats hundreds of 500-uid IN (...) queries.
                return self._users(
                    f"SELECT {USER_COLUMNS} FROM users WHERE uid BETWEEN ? AND ?", span, wanted
                )
        found: dict[str, User] = {}
        for chunk in _chunks(wanted):
            marks = ",".join("?" * len(chunk))
            found.update(self._users(f"SELECT {USER_COLUMNS} FROM users WHERE uid IN ({marks})", chunk))
        return found

    def _count_users(self, first: str, last: str) -> int:
        """How many users have a uid from ``first`` to ``last`` (the uid index alone)."""
        return int(self.query("SELECT COUNT(*) FROM users WHERE uid BETWEEN ? AND ?", (first, last))[0][0])

    def all_users(self) -> dict[str, User]:
        return self._users(f"SELECT {USER_COLUMNS} FROM users")

    def _users(
        self, sql: str, args: Args = (), wanted: frozenset[str] | set[str] | None = None
    ) -> dict[str, User]:
        """The users a query of `USER_COLUMNS` returns (of ``wanted``, when given).

        Each row becomes a `User` as it is fetched, never all rows first: 100k rows held
        at once were 50 MB more at the peak of an export. Rows come as plain tuples,
        which SQLite's module makes faster than its named ``Row``.
        """
        with self._lock:
            cursor = self._db.cursor()
            cursor.row_factory = None
            rows = cursor.execute(sql, args)
            if wanted is None:
                return {row[0]: user_from_row(row) for row in rows}
            return {row[0]: user_from_row(row) for row in rows if row[0] in wanted}

    def owned_uids(self, owner: str) -> set[str]:
        """The uids whose ownership marker is ``owner`` (what a manifest may prune)."""
        return {row["uid"] for row in self.query("SELECT uid FROM users WHERE owner = ?", (owner,))}

    def has_user(self, uid: str) -> bool:
        return bool(self.query("SELECT 1 FROM users WHERE uid = ?", (uid,)))

    # ---------------------------------------------------------------- users: write

    def insert_users(self, users: Iterable[User], *, owner: str | None = None) -> None:
        """Create users with every field they carry (``None`` fields stay unset)."""
        now = self.now()
        rows = [
            user_to_row(user, owner=owner if owner is not None else user.owner, now=now) for user in users
        ]
        with self.transaction() as db:
            db.executemany(INSERT_USER, rows)

    def update_user(self, uid: str, fields: Mapping[str, Any]) -> bool:
        """Set the given `User` fields (``None`` clears an optional one). False: no such user."""
        sets, args = column_updates(fields)
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
                for table in (*_RELATIONS, "friends"):
                    db.execute(f"DELETE FROM {table} WHERE uid = ? OR target = ?", (uid, uid))
                db.execute("DELETE FROM friend_permissions WHERE uid = ?", (uid,))
                db.execute("DELETE FROM bans WHERE uid = ?", (uid,))
                db.execute("DELETE FROM tokens WHERE uid = ?", (uid,))
        return done

    # ----------------------------------------------------------------------- bans

    def bans(self) -> dict[str, Ban]:
        """Bans in force now (expired ones are lifted, as the vendors do)."""
        now = self.now()
        rows = self.query("SELECT uid, until FROM bans WHERE until IS NULL OR until > ?", (now,))
        return {row["uid"]: Ban(row["uid"], from_epoch(row["until"])) for row in rows}

    def ban(self, uids: Iterable[str], until: datetime | None) -> None:
        now = self.now()
        with self.transaction() as db:
            db.executemany(
                "INSERT INTO bans (uid, until, created_at) VALUES (?, ?, ?) "
                "ON CONFLICT(uid) DO UPDATE SET until = excluded.until",
                [(uid, to_epoch(until), now) for uid in uids],
            )

    def unban(self, uids: Iterable[str]) -> None:
        with self.transaction() as db:
            db.executemany("DELETE FROM bans WHERE uid = ?", [(uid,) for uid in uids])

    # ---------------------------------------------------- blocklists and whitelists

    def relations(self, table: str, uids: Iterable[str] | None = None) -> dict[str, set[str]]:
        """``blocks`` or ``whitelist`` entries by uid (of ``uids``, or of everyone)."""
        _check_relation_table(table)
        if uids is None:
            rows = self.query(f"SELECT uid, target FROM {table}")
        else:
            rows = []
            for chunk in _chunks(list(uids)):
                marks = ",".join("?" * len(chunk))
                rows += self.query(f"SELECT uid, target FROM {table} WHERE uid IN ({marks})", chunk)
        found: dict[str, set[str]] = {}
        for row in rows:
            found.setdefault(row["uid"], set()).add(row["target"])
        return found

    def add_relations(self, table: str, pairs: Iterable[tuple[str, str]]) -> None:
        _check_relation_table(table)
        now = self.now()
        with self.transaction() as db:
            db.executemany(
                f"INSERT OR IGNORE INTO {table} (uid, target, created_at) VALUES (?, ?, ?)",
                [(uid, target, now) for uid, target in pairs],
            )

    def remove_relations(self, table: str, pairs: Iterable[tuple[str, str]]) -> None:
        _check_relation_table(table)
        with self.transaction() as db:
            db.executemany(f"DELETE FROM {table} WHERE uid = ? AND target = ?", list(pairs))

    # ---------------------------------------------------------------------- roles

    def roles(self) -> dict[str, Role]:
        """Every role but the built-in ``default`` (which the emulator keeps here for
        CometChat), with its owner; a store from before role owners reads as unowned."""
        with self._lock:
            owned = "owner" in columns(self._db, "roles")
        owner = "owner" if owned else "NULL AS owner"
        rows = self.query(
            f"SELECT role, description, metadata, {owner} FROM roles WHERE role != ? ORDER BY role",
            (DEFAULT_ROLE,),
        )
        return {
            row["role"]: Role(
                row["role"],
                description=row["description"],
                metadata=None if row["metadata"] is None else json.loads(row["metadata"]),
                owner=row["owner"],
            )
            for row in rows
        }

    def put_role(self, role: str, fields: Mapping[str, Any]) -> None:
        """Create ``role`` or change the given fields of it: ``description``,
        ``metadata`` (``None`` clears either) and ``owner``."""
        now = self.now()
        values = {
            "description": fields.get("description"),
            "metadata": dump_json(fields.get("metadata")),
            "owner": fields.get("owner"),
        }
        given = [name for name in values if name in fields]
        updates = "".join(f", {name} = excluded.{name}" for name in given)
        with self.transaction() as db:
            db.execute(
                "INSERT INTO roles (role, name, description, metadata, owner, created_at, updated_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)"
                f" ON CONFLICT(role) DO UPDATE SET updated_at = excluded.updated_at{updates}",
                (role, role, values["description"], values["metadata"], values["owner"], now, now),
            )

    def delete_role(self, role: str) -> bool:
        with self.transaction() as db:
            return bool(db.execute("DELETE FROM roles WHERE role = ?", (role,)).rowcount == 1)

    # --------------------------------------------------------------------- tokens

    def issue_token(self, uid: str) -> tuple[str, int]:
        """A new auth token for ``uid`` and its creation time."""
        token = f"{uid}_{self.now()}{secrets.token_hex(15)}"
        now = self.now()
        with self.transaction() as db:
            db.execute("INSERT INTO tokens VALUES (?, ?, ?)", (token, uid, now))
        return token, now

    def tokens(self, uid: str) -> list[tuple[str, int]]:
        """The tokens of ``uid`` and when each was issued, newest first."""
        rows = self.query(
            "SELECT token, created_at FROM tokens WHERE uid = ? ORDER BY created_at DESC, token",
            (uid,),
        )
        return [(row["token"], row["created_at"]) for row in rows]

    def delete_tokens_before(self, uid: str, before: datetime) -> int:
        """Delete the tokens of ``uid`` issued before ``before``; returns how many."""
        with self.transaction() as db:
            return db.execute(
                "DELETE FROM tokens WHERE uid = ? AND created_at < ?", (uid, to_epoch(before))
            ).rowcount


def _check_relation_table(table: str) -> None:
    if table not in _RELATIONS:
        raise ValueError(table)


def _chunks(uids: Iterable[str]) -> Iterator[list[str]]:
    """``uids`` in lists of at most `_CHUNK`, in their order."""
    chunk: list[str] = []
    for uid in uids:
        chunk.append(uid)
        if len(chunk) == _CHUNK:
            yield chunk
            chunk = []
    if chunk:
        yield chunk
