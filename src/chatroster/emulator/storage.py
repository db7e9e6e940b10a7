"""The emulator's own queries on the store: reads shaped as the vendors' endpoints page
and filter, and the CometChat roles. Each function takes the `Store` the emulator
serves and runs its SQL through `Store.query` and `Store.transaction`, so it shares the
store's lock and transactions; the meaning of users, bans and relations stays with the
`Store` methods the API modules call directly.

Each list read is one COUNT and one page query (or one page query alone), never a
query per user. Raw records (``dict`` rows) carry what the vendors show and the neutral
model does not: timestamps and the profile version.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from ..store import Store

#: The relation tables a page may be read from.
_RELATIONS = ("blocks", "whitelist")

#: A condition on ``users`` and its arguments; None: no condition.
_Filter = tuple[str, list[Any]] | None


# ------------------------------------------------------------------------- users


def user_row(store: Store, uid: str) -> dict[str, Any] | None:
    """The raw record of ``uid`` (timestamps, profile version); None: no such user."""
    rows = store.query("SELECT * FROM users WHERE uid = ?", (uid,))
    return dict(rows[0]) if rows else None


def count_users(store: Store) -> int:
    """Every registered user, deactivated ones included."""
    return int(store.query("SELECT COUNT(*) AS n FROM users")[0]["n"])


def uids_page(
    store: Store,
    *,
    offset: int,
    limit: int,
    active: bool | None = None,
    with_profile: bool = False,
    newest_first: bool = False,
) -> list[str]:
    """Uids in registration order (or newest first), as Nexconn's list endpoints page
    them; CometChat's filtered listing is `user_rows_page`."""
    profile: _Filter = ("profile IS NOT NULL AND profile != '{}'", []) if with_profile else None
    clause, args = _where(_active_filter(active), profile)
    order = "DESC" if newest_first else "ASC"
    rows = store.query(
        f"SELECT uid FROM users WHERE {clause} ORDER BY created_at {order}, rowid {order} LIMIT ? OFFSET ?",
        [*args, limit, offset],
    )
    return [row["uid"] for row in rows]


def user_rows_page(
    store: Store,
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
    """Raw user records in registration order, and how many matched in all (CometChat).

    ``unset_role`` is the role a NULL ``role`` stands for, so that filtering on it
    also finds users whose role was never set. ``any_tags`` keeps users that carry
    at least one of the tags.
    """
    clause, args = _where(
        _active_filter(active),
        _search_filter(search, search_in),
        _role_filter(roles, unset_role),
        _tag_filter(any_tags),
    )
    total = store.query(f"SELECT COUNT(*) AS n FROM users WHERE {clause}", args)[0]["n"]
    rows = store.query(
        f"SELECT * FROM users WHERE {clause} ORDER BY created_at, rowid LIMIT ? OFFSET ?",
        [*args, limit, offset],
    )
    return [dict(row) for row in rows], total


def _where(*filters: _Filter) -> tuple[str, list[Any]]:
    """The filters that apply, as one ``WHERE`` clause and its arguments."""
    clause, args = ["1=1"], []
    for condition in filters:
        if condition is not None:
            clause.append(condition[0])
            args += condition[1]
    return " AND ".join(clause), args


def _active_filter(active: bool | None) -> _Filter:
    return None if active is None else ("active = ?", [int(active)])


def _search_filter(search: str | None, search_in: Sequence[str]) -> _Filter:
    """Users whose uid or name (those of ``search_in``) start with ``search``."""
    if not search:
        return None
    columns = [column for column in ("uid", "name") if column in search_in]
    test = " OR ".join(f"{column} LIKE ? ESCAPE '\\'" for column in columns)
    return f"({test})", [_like_prefix(search)] * len(columns)


def _role_filter(roles: Sequence[str], unset_role: str | None) -> _Filter:
    if not roles:
        return None
    test = f"role IN ({','.join('?' * len(roles))})"
    if unset_role is not None and unset_role in roles:
        test = f"(role IS NULL OR {test})"
    return test, list(roles)


def _tag_filter(any_tags: Sequence[str]) -> _Filter:
    if not any_tags:
        return None
    marks = ",".join("?" * len(any_tags))
    return f"EXISTS (SELECT 1 FROM json_each(users.tags) WHERE value IN ({marks}))", list(any_tags)


# ----------------------------------------------------------- blocks and whitelists


def relation_page(
    store: Store, table: str, uid: str, *, offset: int, limit: int, newest_first: bool = True
) -> list[str]:
    """The targets of ``uid`` in ``blocks`` or ``whitelist``, newest first (or oldest)."""
    if table not in _RELATIONS:
        raise ValueError(table)
    order = "DESC" if newest_first else "ASC"
    rows = store.query(
        f"SELECT target FROM {table} WHERE uid = ? ORDER BY created_at {order}, target LIMIT ? OFFSET ?",
        (uid, limit, offset),
    )
    return [row["target"] for row in rows]


def block_rows_page(
    store: Store, uid: str, *, direction: str, offset: int, limit: int, search: str | None = None
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
    total = store.query(f"SELECT COUNT(*) AS n {body}", args)[0]["n"]
    rows = store.query(
        "SELECT u.*, mine.created_at AS blocked_by_me_at, theirs.created_at AS has_blocked_me_at "
        f"{body} ORDER BY MAX(COALESCE(mine.created_at, 0), COALESCE(theirs.created_at, 0)) "
        "DESC, u.uid LIMIT :limit OFFSET :offset",
        args,
    )
    return [dict(row) for row in rows], total


def block_pair(store: Store, uid: str, other: str) -> tuple[int | None, int | None]:
    """When ``uid`` blocked ``other`` and when ``other`` blocked ``uid`` (None: not)."""
    rows = store.query(
        "SELECT uid, created_at FROM blocks WHERE (uid = ? AND target = ?) OR (uid = ? AND target = ?)",
        (uid, other, other, uid),
    )
    times = {row["uid"]: row["created_at"] for row in rows}
    return times.get(uid), times.get(other)


def _like_prefix(text: str) -> str:
    """A LIKE pattern matching values that start with ``text`` (wildcards escaped)."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


# ------------------------------------------------------------------------ tokens


def delete_tokens(store: Store, uid: str, token: str | None = None) -> int:
    """Delete one token, or every token of ``uid``; returns how many were deleted."""
    with store.transaction() as db:
        if token is None:
            return db.execute("DELETE FROM tokens WHERE uid = ?", (uid,)).rowcount
        return db.execute("DELETE FROM tokens WHERE uid = ? AND token = ?", (uid, token)).rowcount


# ------------------------------------------------------------------------- roles


def roles(store: Store) -> list[dict[str, Any]]:
    return [dict(row) for row in store.query("SELECT * FROM roles ORDER BY created_at, role")]


def get_role(store: Store, role: str) -> dict[str, Any] | None:
    rows = store.query("SELECT * FROM roles WHERE role = ?", (role,))
    return dict(rows[0]) if rows else None


def ensure_role(store: Store, role: str, name: str) -> None:
    """Create ``role`` unless it exists (the vendor's apps always have ``default``)."""
    now = store.now()
    with store.transaction() as db:
        db.execute(
            "INSERT OR IGNORE INTO roles (role, name, created_at, updated_at) VALUES (?, ?, ?, ?)",
            (role, name, now, now),
        )


def put_role(store: Store, role: str, fields: Mapping[str, Any]) -> None:
    """Create ``role`` or change the given fields of it."""
    now = store.now()
    current = get_role(store, role) or {"name": role, "description": None, "metadata": None}
    merged = {**current, **fields}
    with store.transaction() as db:
        db.execute(
            "INSERT INTO roles (role, name, description, metadata, created_at, updated_at)"
            " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT(role) DO UPDATE SET name = excluded.name,"
            " description = excluded.description, metadata = excluded.metadata,"
            " updated_at = excluded.updated_at",
            (role, merged["name"], merged["description"], merged["metadata"], now, now),
        )


def delete_role(store: Store, role: str) -> bool:
    with store.transaction() as db:
        return db.execute("DELETE FROM roles WHERE role = ?", (role,)).rowcount == 1


def role_settings(store: Store) -> dict[str, Any]:
    """Each role's settings object (CometChat ``listUsers``/``sendMessagesTo``)."""
    rows = store.query("SELECT role, settings FROM role_settings")
    return {row["role"]: json.loads(row["settings"]) for row in rows}


def set_role_settings(store: Store, role: str, settings: Mapping[str, Any] | None) -> None:
    """Replace a role's settings; ``None`` removes them."""
    with store.transaction() as db:
        db.execute("DELETE FROM role_settings WHERE role = ?", (role,))
        if settings is not None:
            text = json.dumps(settings, sort_keys=True, separators=(",", ":"))
            db.execute("INSERT INTO role_settings VALUES (?, ?)", (role, text))
