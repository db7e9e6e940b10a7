"""Friends in the plan: pure rules, used by the planner.

Friendship is mutual on every platform chatroster manages friends on. Nexconn's
``friend/relationship/get`` knows only "not friends" (1) and "mutual" (4); adding a
friend directly (``friend/add`` with ``action: 2``) makes both users friends, and
``friend/remove`` ends the friendship for both. What is one-sided is what each user
keeps about the other: the alias and the ext fields.

So a manifest states one fact twice when both users declare ``friends``: validate
refuses a manifest whose two sides disagree (alice lists bob, bob's list leaves alice
out), because no apply could satisfy both and plans would flip-flop. A user declared
on one side only (bob has no ``friends`` key, or is not in the manifest) simply gains
or loses the friendship with the declaring user; bob's other friends stay as they are.

Each user's wanted friends are first diffed on their own (`diff`), then `mutual`
merges the two halves of a friendship that both users declare, so that a plan adds or
removes it once, and sets the second user's alias and ext with an ``update_friend``
after the friendship exists. Apply, then plan again: no changes.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from types import MappingProxyType
from typing import Any

from .changes import Action, Change
from .model import User

NO_PROFILE: Mapping[str, Any] = MappingProxyType({"alias": "", "ext": MappingProxyType({})})
"""What a user keeps about a friend it has not described: no alias, no ext."""


def diff(want: User, have: User) -> Iterator[Change]:
    """One user's friends: additions, removals, and alias/ext updates, as if one-sided."""
    if want.friends is None or have.friends is None:
        return  # unmanaged, or unreadable on the platform: left as it is
    uid = want.uid
    for target in sorted(set(want.friends) - set(have.friends)):
        after = {"friend": True, **_declared(want.friends[target])}
        yield Change(Action.ADD_FRIEND, uid, target=target, before={"friend": False}, after=after)
    for target in sorted(set(have.friends) - set(want.friends)):
        yield Change(
            Action.REMOVE_FRIEND, uid, target=target, before={"friend": True}, after={"friend": False}
        )
    for target in sorted(set(want.friends) & set(have.friends)):
        change = _update(uid, target, want.friends[target], have.friends[target])
        if change is not None:
            yield change


def _declared(entry: Mapping[str, Any]) -> dict[str, Any]:
    """The alias and ext an entry sets, leaving out empty ones (a new friend has none)."""
    return {key: entry[key] for key in ("alias", "ext") if entry.get(key)}


def _update(uid: str, target: str, want: Mapping[str, Any], have: Mapping[str, Any]) -> Change | None:
    current: dict[str, Any] = {"alias": have.get("alias") or "", "ext": dict(have.get("ext") or {})}
    wanted: dict[str, Any] = {
        "alias": current["alias"] if want.get("alias") is None else want["alias"],
        "ext": current["ext"] if want.get("ext") is None else dict(want["ext"]),
    }
    if wanted == current:
        return None
    # Both values always: the vendor's profile/set replaces the alias and ext together.
    return Change(Action.UPDATE_FRIEND, uid, target=target, before=current, after=wanted)


def mutual(changes: Iterable[Change]) -> list[Change]:
    """``changes`` with each friendship added or removed once, not once per side.

    When both users add each other, the add of the user first by uid is kept and the
    other becomes an ``update_friend`` of its own alias and ext (dropped when it
    declares none); when both remove each other, only the first removal is kept.
    """
    changes = list(changes)
    pairs = {
        (c.action, c.uid, c.target) for c in changes if c.action in (Action.ADD_FRIEND, Action.REMOVE_FRIEND)
    }
    kept: list[Change] = []
    for change in changes:
        twin = (change.action, change.target, change.uid)
        if twin not in pairs or str(change.target) > change.uid:
            kept.append(change)
        elif change.action is Action.ADD_FRIEND:
            kept += _second_side(change)
    return kept


def _second_side(change: Change) -> Iterator[Change]:
    if change.after.get("alias") or change.after.get("ext"):
        after = {**NO_PROFILE, **{key: value for key, value in change.after.items() if key != "friend"}}
        yield Change(Action.UPDATE_FRIEND, change.uid, target=change.target, before=NO_PROFILE, after=after)


def permission(want: User, have: User | None) -> Iterator[Change]:
    """The friend permission, when declared and different (or the user is new)."""
    if want.friend_permission is None:
        return
    current = None if have is None else have.friend_permission
    if have is not None and (current is None or current == want.friend_permission):
        return  # as wanted, or unreadable (a deactivated user): left as it is
    yield Change(
        Action.SET_FRIEND_PERMISSION,
        want.uid,
        before={"friend_permission": current},
        after={"friend_permission": want.friend_permission},
    )
