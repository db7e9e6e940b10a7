"""Friends in the store: mutual friendships, each side with its own alias and ext, and
each user's friend permission. Shared by the local provider and the emulator's Nexconn
friend endpoints, so that both keep the one rule: a friendship is added and removed for
both users at once.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from .store import Store, _chunks

#: The permission names of the model and Nexconn's numbers for them.
PERMISSIONS = {"anyone": 1, "approval": 2, "nobody": 3}
PERMISSION_NAMES = {number: name for name, number in PERMISSIONS.items()}

#: What a user that never set its friend permission answers: anyone may add it.
DEFAULT_PERMISSION = 1

Profile = dict[str, Any]
"""What one side keeps about a friend: ``{"alias": str, "ext": dict}``."""


def _present(store: Store, table: str) -> bool:
    """Whether ``table`` exists: a store of an older version opened read-only has none
    (and no friends)."""
    return bool(store.query("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (table,)))


def friends(store: Store, uids: Iterable[str] | None = None) -> dict[str, dict[str, Profile]]:
    """The friends of ``uids`` (of everyone: ``None``), each with this side's profile."""
    if not _present(store, "friends"):
        return {}
    sql = "SELECT uid, target, alias, ext FROM friends"
    if uids is None:
        rows = store.query(sql)
    else:
        rows = []
        for chunk in _chunks(list(uids)):
            rows += store.query(f"{sql} WHERE uid IN ({','.join('?' * len(chunk))})", chunk)
    found: dict[str, dict[str, Profile]] = {}
    for row in rows:
        found.setdefault(row["uid"], {})[row["target"]] = {
            "alias": row["alias"],
            "ext": json.loads(row["ext"]),
        }
    return found


def count(store: Store, uid: str) -> int:
    return int(store.query("SELECT COUNT(*) FROM friends WHERE uid = ?", (uid,))[0][0])


def add(store: Store, uid: str, target: str) -> bool:
    """Make ``uid`` and ``target`` friends (both sides); False if they already were."""
    now = store.now()
    with store.transaction() as db:
        added = db.execute(
            "INSERT OR IGNORE INTO friends (uid, target, created_at) VALUES (?, ?, ?)", (uid, target, now)
        ).rowcount
        db.execute(
            "INSERT OR IGNORE INTO friends (uid, target, created_at) VALUES (?, ?, ?)", (target, uid, now)
        )
    return bool(added)


def remove(store: Store, uid: str, targets: Iterable[str]) -> None:
    """End the friendships of ``uid`` with ``targets``, for both sides."""
    pairs = [(uid, target) for target in targets]
    with store.transaction() as db:
        db.executemany("DELETE FROM friends WHERE uid = ? AND target = ?", pairs)
        db.executemany("DELETE FROM friends WHERE target = ? AND uid = ?", pairs)


def remove_all(store: Store, uid: str) -> None:
    with store.transaction() as db:
        db.execute("DELETE FROM friends WHERE uid = ? OR target = ?", (uid, uid))


def set_profile(store: Store, uid: str, target: str, alias: str, ext: Mapping[str, str]) -> bool:
    """Set what ``uid`` keeps about friend ``target``; False if they are not friends."""
    with store.transaction() as db:
        cursor = db.execute(
            "UPDATE friends SET alias = ?, ext = ? WHERE uid = ? AND target = ?",
            (alias, json.dumps(dict(ext), sort_keys=True), uid, target),
        )
        return cursor.rowcount == 1


def page(store: Store, uid: str, *, offset: int, limit: int, newest_first: bool) -> list[dict[str, Any]]:
    """One page of the friends of ``uid``, in the order they were added."""
    order = "DESC" if newest_first else "ASC"
    rows = store.query(
        "SELECT f.target, f.alias, f.ext, f.created_at, u.name FROM friends f"
        " LEFT JOIN users u ON u.uid = f.target WHERE f.uid = ?"
        f" ORDER BY f.created_at {order}, f.target {order} LIMIT ? OFFSET ?",
        (uid, limit, offset),
    )
    return [dict(row) for row in rows]


def permissions(store: Store, uids: Iterable[str] | None = None) -> dict[str, int]:
    """The friend permission of ``uids`` (of everyone: ``None``) that set one."""
    if not _present(store, "friend_permissions"):
        return {}
    if uids is None:
        rows = store.query("SELECT uid, permission FROM friend_permissions")
    else:
        rows = []
        for chunk in _chunks(list(uids)):
            marks = ",".join("?" * len(chunk))
            rows += store.query(
                f"SELECT uid, permission FROM friend_permissions WHERE uid IN ({marks})", chunk
            )
    return {row["uid"]: int(row["permission"]) for row in rows}


def set_permission(store: Store, uids: Iterable[str], permission: int) -> None:
    with store.transaction() as db:
        db.executemany(
            "INSERT INTO friend_permissions (uid, permission) VALUES (?, ?)"
            " ON CONFLICT(uid) DO UPDATE SET permission = excluded.permission",
            [(uid, permission) for uid in uids],
        )
