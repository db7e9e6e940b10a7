"""Rows of the ``users`` table and the `User` values they hold, in mirrored pairs:
`user_from_row` / `user_to_row` for whole users, `column_updates` for some fields.

Timestamps are stored as unix seconds and objects as compact JSON with sorted keys.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from ..model import User, freeze, thaw

#: The columns `user_from_row` reads, in its order.
USER_COLUMNS = (
    "uid, name, avatar, link, role, status_message, metadata, tags, profile, active,"
    " whitelist_mode, tokens_valid_after, owner"
)

#: The columns `user_to_row` fills, in its order.
_INSERT_COLUMNS = (
    "uid, name, avatar, link, role, status_message, metadata, tags, profile, profile_version,"
    " active, deactivated_at, whitelist_mode, tokens_valid_after, owner, created_at, updated_at"
)

#: Inserts one row of `user_to_row`.
INSERT_USER = (
    f"INSERT INTO users ({_INSERT_COLUMNS}) VALUES ({','.join('?' * len(_INSERT_COLUMNS.split(',')))})"
)


def to_epoch(value: datetime | None) -> int | None:
    return None if value is None else int(value.timestamp())


def from_epoch(value: int | None) -> datetime | None:
    return None if value is None else datetime.fromtimestamp(value, tz=UTC)


_DECODE = json.JSONDecoder().raw_decode


def load_json(text: str) -> Any:
    """``json.loads(text)``, without its search for blanks around the value: a value
    this module wrote has none. Three times faster, once for each of 100k profiles."""
    try:
        value, end = _DECODE(text)
    except ValueError:
        end = -1
    return value if end == len(text) else json.loads(text)  # json.loads: its value, or its error


@lru_cache(maxsize=4096)
def _frozen_json(text: str) -> Any:
    """Stored JSON as read-only data. Tag lists and metadata repeat across many users
    (a team, a few tags), so each distinct text is decoded once, not once per user."""
    return freeze(load_json(text))


_COMPACT_JSON = json.JSONEncoder(sort_keys=True, separators=(",", ":")).encode
"""``json.dumps`` with these options, without a new encoder for each value written."""


def dump_json(value: Any) -> str | None:
    return None if value is None else _COMPACT_JSON(thaw(value))


def user_from_row(row: Sequence[Any]) -> User:
    """The user in a row of `USER_COLUMNS` (unpacked by position: 100k rows a plan)."""
    (
        uid,
        name,
        avatar,
        link,
        role,
        status_message,
        metadata,
        tags,
        profile,
        active,
        whitelist_mode,
        tokens_valid_after,
        owner,
    ) = row
    return User(
        uid=uid,
        name=name,
        avatar=avatar,
        link=link,
        role=role,
        status_message=status_message,
        metadata=_frozen_json(metadata) if metadata is not None else {},
        tags=_frozen_json(tags),
        profile=load_json(profile) if profile is not None else {},
        active=bool(active),
        whitelist_mode=bool(whitelist_mode),
        tokens_valid_after=from_epoch(tokens_valid_after),
        owner=owner,
    )


def user_to_row(user: User, *, owner: str | None, now: int) -> tuple[Any, ...]:
    """The `INSERT_USER` values of a new user, with every field it carries (``None`` fields
    stay unset), owned by ``owner`` and created ``now``."""
    return (
        user.uid,
        user.name or user.uid,
        user.avatar,
        user.link,
        user.role,
        user.status_message,
        dump_json(user.metadata),
        json.dumps(list(user.tags or ())),
        dump_json(user.profile),
        1 if user.profile else 0,
        0 if user.active is False else 1,
        now if user.active is False else None,
        1 if user.whitelist_mode else 0,
        to_epoch(user.tokens_valid_after),
        owner,
        now,
        now,
    )


def _same(value: Any) -> Any:
    return value


def _sorted_tags(value: Any) -> str:
    return json.dumps(sorted(set(value or ())))


def _flag(value: Any) -> int:
    return int(bool(value))


#: How each `User` field an update may set is stored, in its column of the same name.
_STORED_AS: dict[str, Callable[[Any], Any]] = {
    "name": _same,
    "avatar": _same,
    "link": _same,
    "role": _same,
    "status_message": _same,
    "owner": _same,
    "metadata": dump_json,
    "profile": dump_json,
    "tags": _sorted_tags,
    "tokens_valid_after": to_epoch,
    "whitelist_mode": _flag,
}


def column_updates(fields: Mapping[str, Any]) -> tuple[list[str], list[Any]]:
    """The ``SET`` assignments and their arguments that store `User` ``fields``
    (``None`` clears an optional one). A new profile also counts a new profile version."""
    sets: list[str] = []
    args: list[Any] = []
    for name, value in fields.items():
        stored_as = _STORED_AS.get(name)
        if stored_as is None:
            raise ValueError(f"not a stored user field: {name}")
        sets.append(f"{name} = ?")
        args.append(stored_as(value))
        if name == "profile":
            sets.append("profile_version = profile_version + 1")
    return sets, args
