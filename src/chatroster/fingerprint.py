"""What a change was computed from, and whether its end state is already reached.

A saved plan records, per change, a fingerprint of the live object the change was
computed from. `apply --plan` reads those objects again: an unchanged fingerprint
means the change still holds; a change whose end state is already live is skipped
(so re-applying a half-applied plan finishes it); anything else is stale.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from functools import lru_cache
from typing import Any

from .changes import ROLE_ACTIONS, Action, Change
from .model import USER_FIELDS, Role, State, User, thaw, utc
from .planner import BAN_TOLERANCE

_USER_ACTIONS = frozenset(
    {
        Action.CREATE_USER,
        Action.ADOPT_USER,
        Action.UPDATE_USER,
        Action.REACTIVATE_USER,
        Action.DEACTIVATE_USER,
        Action.DELETE_USER,
        Action.SET_WHITELIST_MODE,
        Action.EXPIRE_TOKENS,
        Action.SET_FRIEND_PERMISSION,
    }
)
_FRIEND_ACTIONS = frozenset({Action.ADD_FRIEND, Action.REMOVE_FRIEND})


def live_object(change: Change, live: State, owner: str) -> Any:
    """The part of live state ``change`` depends on, as plain JSON-able data.

    Only the fields the change writes count, so that applying one change of a plan
    does not make the next change on the same user look stale; plus whether the user
    still belongs to ``owner`` (or to no one), since every user change rests on that.
    A role change likewise depends on the role's fields it writes and its owner.
    """
    if change.action in ROLE_ACTIONS:
        return _role_object(change, (live.roles or {}).get(change.uid), owner)
    user = live.users.get(change.uid)
    if change.action in _USER_ACTIONS or change.action is Action.DELETE_USER:
        if user is None:
            return None
        claimable = user.owner in (None, owner)
        if change.action in (Action.CREATE_USER, Action.DELETE_USER):
            return {"exists": True, "claimable": claimable}
        data = _user_data(user)
        fields = {name: data.get(name) for name in sorted(change.after) if name != "owner"}
        return {**fields, "claimable": claimable}
    if change.action in (Action.BAN_USER, Action.UNBAN_USER):
        ban = (live.bans or {}).get(change.uid)
        return None if ban is None else {"until": _iso(ban.until)}
    if change.action is Action.UPDATE_FRIEND:
        return _friend_profile(change, user)
    relation = _relation(change, user)
    return None if relation is None else change.target in relation


def _friend_profile(change: Change, user: User | None) -> Any:
    """What ``change.uid`` keeps about friend ``change.target``; None: not friends (or
    not read)."""
    if user is None or user.friends is None or change.target not in user.friends:
        return None
    return thaw(user.friends[str(change.target)])


def fingerprint(change: Change, live: State, owner: str) -> str:
    return _digest(_JSON(live_object(change, live, owner)))


_JSON = json.JSONEncoder(sort_keys=True, default=str).encode
"""``json.dumps(value, sort_keys=True, default=str)`` without a new encoder per call."""


@lru_cache(maxsize=1024)
def _digest(text: str) -> str:
    # A plan of 100k creates has 100k fingerprints of the same few texts ("null").
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def fingerprints(changes: tuple[Change, ...], live: State, owner: str) -> dict[str, str]:
    return {change.key: fingerprint(change, live, owner) for change in changes}


def reached(change: Change, live: State) -> bool:
    """Whether the live state already is what ``change`` would make it."""
    action = change.action
    if action in ROLE_ACTIONS:
        return _role_reached(change, (live.roles or {}).get(change.uid))
    user = live.users.get(change.uid)
    if action is Action.DELETE_USER:
        return user is None
    if action in (Action.BAN_USER, Action.UNBAN_USER):
        return _ban_reached(change, live)
    if user is None:
        return False
    if action in (Action.ADD_BLOCK, Action.REMOVE_BLOCK, Action.ADD_WHITELIST, Action.REMOVE_WHITELIST):
        relation = _relation(change, user) or frozenset()
        return bool((change.target in relation) == action.value.startswith("add"))
    if action in _FRIEND_ACTIONS:
        return bool((change.target in (user.friends or {})) == (action is Action.ADD_FRIEND))
    if action is Action.UPDATE_FRIEND:
        current = _friend_profile(change, user)
        return current is not None and all(_same(current.get(k), v) for k, v in thaw(change.after).items())
    if action is Action.EXPIRE_TOKENS:
        wanted = _parse(change.after.get("tokens_valid_after"))
        return (
            user.tokens_valid_after is not None and wanted is not None and user.tokens_valid_after >= wanted
        )
    current = _user_data(user)
    return all(_same(current.get(name), value) for name, value in thaw(change.after).items())


def _role_object(change: Change, role: Role | None, owner: str) -> Any:
    if role is None:
        return None
    claimable = role.owner in (None, owner)
    if change.action is not Action.UPDATE_ROLE:
        return {"exists": True, "claimable": claimable}
    data = _role_data(role)
    fields = {name: data.get(name) for name in sorted(change.after) if name != "owner"}
    return {**fields, "claimable": claimable}


def _role_reached(change: Change, role: Role | None) -> bool:
    if change.action is Action.DELETE_ROLE:
        return role is None
    if role is None:
        return False
    current = _role_data(role)
    return all(_same(current.get(name), value) for name, value in thaw(change.after).items())


def _role_data(role: Role) -> dict[str, Any]:
    return {"description": role.description, "metadata": thaw(role.metadata), "owner": role.owner}


def _user_data(user: User) -> dict[str, Any]:
    data = {name: thaw(value) for name, value in user.fields().items()}
    data.update(
        active=user.active,
        owner=user.owner,
        whitelist_mode=user.whitelist_mode,
        tokens_valid_after=_iso(user.tokens_valid_after),
        friend_permission=user.friend_permission,
    )
    return {name: value for name, value in data.items() if name in USER_FIELDS or value is not None}


def _relation(change: Change, user: User | None) -> frozenset[str] | None:
    if user is None:
        return None
    if change.action in (Action.ADD_BLOCK, Action.REMOVE_BLOCK):
        return user.blocklist
    if change.action in _FRIEND_ACTIONS:
        return None if user.friends is None else frozenset(user.friends)
    return user.whitelist


def _ban_reached(change: Change, live: State) -> bool:
    ban = (live.bans or {}).get(change.uid)
    if change.action is Action.UNBAN_USER:
        return ban is None
    if ban is None:
        return False
    wanted = change.after.get("until")
    if wanted in (None, "forever"):
        return ban.until is None
    target = _parse(wanted)
    return ban.until is not None and target is not None and abs(ban.until - target) <= BAN_TOLERANCE


def _same(current: Any, wanted: Any) -> bool:
    empty: tuple[Any, ...] = (None, "", [], {})
    if current in empty and wanted in empty:
        return True
    if isinstance(current, list) and isinstance(wanted, list):
        return sorted(map(str, current)) == sorted(map(str, wanted))
    return bool(current == wanted)


def _iso(value: datetime | None) -> str | None:
    return None if value is None else utc(value).strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    return utc(datetime.fromisoformat(value.replace("Z", "+00:00")))
