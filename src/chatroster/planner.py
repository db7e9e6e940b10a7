"""The planner: a pure function from (desired, live) to a `Plan`. It never does I/O.

Rules it encodes, each named in PRODUCT.md:
- absent means unmanaged, empty means none (a ``None`` desired field is skipped);
- only what it owns is pruned, and only when the policy asks;
- unowned users are adopted, users of another owner are refused unless taken over;
- protected users are never deactivated, deleted or banned;
- seed mode only creates what is missing;
- declared roles are created and updated before the users that hold them, owned roles
  the manifest leaves out are deleted under prune once no user holds them, and the
  built-in ``default`` role is never touched.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from operator import attrgetter
from typing import Any

from . import friendship
from .changes import Action, Change, ordered
from .model import DEFAULT_ROLE, USER_FIELDS, Ban, Policy, Role, State, User, utc
from .plan import Plan
from .providers.base import Capabilities

#: Two ban expiries this close are the same ban (platforms store minutes or seconds).
BAN_TOLERANCE = timedelta(minutes=2)


@dataclass(frozen=True)
class Context:
    """Everything the planner needs besides the two states."""

    owner: str
    policy: Policy
    capabilities: Capabilities
    now: datetime
    allow_takeover: bool = False


def iso(value: datetime | None) -> str | None:
    return None if value is None else utc(value).strftime("%Y-%m-%dT%H:%M:%SZ")


def plan(desired: State, live: State, ctx: Context) -> Plan:
    """Diff ``desired`` against ``live`` into an ordered plan of immutable changes."""
    changes: list[Change] = []
    conflicts: list[str] = []
    created: set[str] = set()
    frozen: list[str] = []
    exists = set(desired.users) | set(live.users)
    for uid, want in desired.users.items():
        have = live.users.get(uid)
        if have is None:
            created.add(uid)
            changes += _create(want, ctx)
        elif ctx.policy.mode == "sync":
            if have.owner not in (None, ctx.owner) and not ctx.allow_takeover:
                conflicts.append(uid)
                continue
            if _stays_wiped(want, have, ctx.capabilities):
                continue  # nothing of it left to converge until it is reactivated
            converge = list(_converge(want, have, ctx))
            if converge and _stays_frozen(want, have, ctx.capabilities):
                frozen.append(
                    f"{uid} is deactivated, and {len(converge)} change(s) to it "
                    "are left until it is reactivated (remove active: false): the platform "
                    "refuses changes to deactivated users"
                )
                continue
            changes += converge
    if ctx.policy.mode == "sync":
        changes += _prune(desired, live, ctx)
    deleted = {c.uid for c in changes if c.action is Action.DELETE_USER}
    changes += _bans(desired, live, ctx, created, deleted)
    changes, warnings = _drop_unknown_targets(friendship.mutual(changes), exists)
    role_changes, role_warnings = _roles(desired, live, ctx, deleted)
    changes += role_changes
    warnings += _unreadable_lists(desired, live, ctx.capabilities) + frozen + role_warnings
    return Plan(
        changes=ordered(changes),
        warnings=tuple(warnings),
        owner=ctx.owner,
        managed=_managed_count(desired, live, ctx.owner),
        conflicts=tuple(sorted(conflicts)),
        conflict_owners={uid: live.users[uid].owner or "" for uid in conflicts},
        created_at=ctx.now,
    )


def _drop_unknown_targets(changes: list[Change], exists: set[str]) -> tuple[list[Change], list[str]]:
    """Bans, blocks and whitelist entries naming a uid that is neither declared nor on
    the platform cannot be made: leave them out and say so, rather than fail apply."""
    kept, warnings = [], []
    for change in changes:
        missing = None
        if change.action in (Action.BAN_USER, Action.ADD_BLOCK, Action.ADD_WHITELIST, Action.ADD_FRIEND):
            missing = change.target if change.target else change.uid
        if missing is not None and missing not in exists:
            what = "ban" if change.action is Action.BAN_USER else change.action.value
            warnings.append(
                f"{what} {change.key.split(':', 1)[1]} skipped: '{missing}' is not a "
                "user on the platform and not declared in the manifest"
            )
            continue
        kept.append(change)
    return kept, warnings


_LISTS = ("blocklist", "whitelist", "whitelist_mode", "friends")
_LISTS_OF = attrgetter(*_LISTS)
_UNMANAGED = (None,) * len(_LISTS)


def _unreadable_lists(desired: State, live: State, caps: Capabilities) -> list[str]:
    found: list[tuple[str, str]] = []
    for uid, want in desired.users.items():
        have = live.users.get(uid)
        wanted = _LISTS_OF(want)
        if have is None or wanted == _UNMANAGED:
            continue  # a new user, or one whose lists the manifest leaves alone
        if _reactivating(want, have) and not caps.restore_keeps_data:
            continue  # its lists are written again from nothing (see `_restored`)
        if _stays_wiped(want, have, caps):
            continue
        for name, mine, theirs in zip(_LISTS, wanted, _LISTS_OF(have), strict=True):
            if mine is not None and theirs is None:
                warning = (
                    f"{uid}: the live {name} cannot be read (for example, the user "
                    "is deactivated); it is left as it is"
                )
                found.append((uid, warning))
    # By uid, and per uid in the order above; only the few found are sorted.
    return [warning for _, warning in sorted(found, key=lambda item: item[0])]


def _stays_frozen(want: User, have: User, caps: Capabilities) -> bool:
    """A deactivated user that stays so, on a platform that refuses to change one."""
    return not caps.edit_inactive and have.active is False and want.active is False


def _stays_wiped(want: User, have: User, caps: Capabilities) -> bool:
    """A deactivated user that stays so, on a platform whose deactivation deleted its
    data (Nexconn): there is nothing to compare until it is reactivated, when every
    declared field is written again."""
    return not caps.restore_keeps_data and have.active is False and want.active is False


def _reactivating(want: User, have: User) -> bool:
    """Declared users are active unless they say ``active: false``."""
    return have.active is False and want.active is not False


def _restored(have: User) -> User:
    """What a restore brings back on a platform that keeps nothing but the uid (Nexconn:
    "personal data cannot be recovered"): no fields, tags, profile, lists or watermark.
    Its owner is kept as read, so that adoption and takeover are decided on what the
    platform shows."""
    return User(
        have.uid,
        active=False,
        tags=(),
        blocklist=frozenset(),
        whitelist=frozenset(),
        whitelist_mode=False,
        owner=have.owner,
    )


def _managed_count(desired: State, live: State, owner: str) -> int:
    """Users on the platform this manifest manages: the base of percentage limits."""
    return sum(1 for uid, user in live.users.items() if uid in desired.users or user.owner == owner)


# ------------------------------------------------------------------------- users


def _managed_fields(want: User, caps: Capabilities) -> dict[str, Any]:
    return {
        name: value for name, value in want.fields().items() if value is not None and name in caps.user_fields
    }


def _create(want: User, ctx: Context) -> Iterator[Change]:
    after: dict[str, Any] = {**_managed_fields(want, ctx.capabilities), "owner": ctx.owner}
    if want.active is False:
        after["active"] = False
    if want.whitelist_mode is not None and ctx.capabilities.whitelist:
        after["whitelist_mode"] = want.whitelist_mode
    if want.tokens_valid_after is not None and ctx.capabilities.expire_tokens:
        after["tokens_valid_after"] = iso(want.tokens_valid_after)
    yield Change(Action.CREATE_USER, want.uid, after=after)  # Change freezes a copy
    yield from _relations(want, _NEW_USER, ctx.capabilities)
    if ctx.capabilities.friends:
        yield from friendship.permission(want, None)


_NEW_USER = User("", blocklist=frozenset(), whitelist=frozenset(), friends={})
"""The live side of a user about to be created: no relations yet (shared: 100k creates
need no 100k copies of it)."""


def _converge(want: User, have: User, ctx: Context) -> Iterator[Change]:
    uid = want.uid
    if _reactivating(want, have) and not ctx.capabilities.restore_keeps_data:
        have = _restored(have)  # so that every declared field is planned again
    if have.owner != ctx.owner:
        note = "adopt: no owner yet" if have.owner is None else f"take over from '{have.owner}'"
        if have.owner is None and _reactivating(want, have) and not ctx.capabilities.restore_keeps_data:
            note = "adopt: the ownership marker was deleted with the user's data"
        yield Change(
            Action.ADOPT_USER,
            uid,
            before={"owner": have.owner},
            after={"owner": ctx.owner},
            note=note,
        )
    before, after = _field_diff(want, have, ctx.capabilities)
    if after:
        yield Change(Action.UPDATE_USER, uid, before=before, after=after)
    if _reactivating(want, have):
        restored = None if ctx.capabilities.restore_keeps_data else _RESTORE_NOTE
        yield Change(
            Action.REACTIVATE_USER, uid, before={"active": False}, after={"active": True}, note=restored
        )
    elif want.active is False and have.active is not False and uid not in ctx.policy.protected:
        yield Change(Action.DEACTIVATE_USER, uid, before={"active": True}, after={"active": False})
    if (
        ctx.capabilities.whitelist
        and want.whitelist_mode is not None
        and have.whitelist_mode is not None  # None: unreadable, left as it is
        and want.whitelist_mode != have.whitelist_mode
    ):
        yield Change(
            Action.SET_WHITELIST_MODE,
            uid,
            before={"whitelist_mode": have.whitelist_mode},
            after={"whitelist_mode": want.whitelist_mode},
        )
    yield from _relations(want, have, ctx.capabilities)
    if ctx.capabilities.friends:
        yield from friendship.permission(want, have)
    yield from _tokens(want, have, ctx.capabilities)


_RESTORE_NOTE = "the platform restores the uid alone: every declared field is written again"

_USER_FIELDS_OF = attrgetter(*USER_FIELDS)


def _field_diff(want: User, have: User, caps: Capabilities) -> tuple[dict[str, Any], dict[str, Any]]:
    before: dict[str, Any] = {}
    after: dict[str, Any] = {}
    wanted, current = _USER_FIELDS_OF(want), _USER_FIELDS_OF(have)
    if wanted == current:
        return before, after  # the usual case in a large plan, decided in one comparison
    for name, value, live in zip(USER_FIELDS, wanted, current, strict=True):
        if value is None or name not in caps.user_fields:
            continue
        if value == live or (_empty(value) and _empty(live)):
            continue  # "no tags" and "tags never set" mean the same to a user
        before[name], after[name] = live, value
    return before, after


def _empty(value: Any) -> bool:
    return value is None or value == "" or (hasattr(value, "__len__") and len(value) == 0)


def _relations(want: User, have: User, caps: Capabilities) -> Iterator[Change]:
    # A live list of None could not be read (CometChat hides a deactivated user's
    # blocks): it is left as it is rather than planned as if it were empty.
    if caps.blocklist and want.blocklist is not None and have.blocklist is not None:
        yield from _set_diff(
            want.uid,
            want.blocklist,
            have.blocklist,
            Action.ADD_BLOCK,
            Action.REMOVE_BLOCK,
            "blocked",
        )
    if caps.whitelist and want.whitelist is not None and have.whitelist is not None:
        yield from _set_diff(
            want.uid,
            want.whitelist,
            have.whitelist,
            Action.ADD_WHITELIST,
            Action.REMOVE_WHITELIST,
            "whitelisted",
        )
    if caps.friends:
        yield from friendship.diff(want, have)


def _set_diff(
    uid: str, want: frozenset[str], have: frozenset[str], add: Action, remove: Action, word: str
) -> Iterator[Change]:
    for target in sorted(want - have):
        yield Change(add, uid, target=target, before={word: False}, after={word: True})
    for target in sorted(have - want):
        yield Change(remove, uid, target=target, before={word: True}, after={word: False})


def _tokens(want: User, have: User, caps: Capabilities) -> Iterator[Change]:
    if not caps.expire_tokens or want.tokens_valid_after is None:
        return
    if have.tokens_valid_after is None or have.tokens_valid_after < want.tokens_valid_after:
        yield Change(
            Action.EXPIRE_TOKENS,
            want.uid,
            before={"tokens_valid_after": iso(have.tokens_valid_after)},
            after={"tokens_valid_after": iso(want.tokens_valid_after)},
        )


# ------------------------------------------------------------------------- prune


def _prune(desired: State, live: State, ctx: Context) -> Iterator[Change]:
    prune = ctx.policy.prune
    if prune == "none":
        return
    for uid, have in live.users.items():
        if uid in desired.users or have.owner != ctx.owner or uid in ctx.policy.protected:
            continue
        if prune == "delete" and ctx.capabilities.delete:
            yield Change(Action.DELETE_USER, uid, before={"name": have.name, "active": have.active})
        elif have.active and ctx.capabilities.deactivate:
            yield Change(
                Action.DEACTIVATE_USER,
                uid,
                before={"active": True},
                after={"active": False},
                note="pruned: not in the manifest",
            )


# ------------------------------------------------------------------------- roles


def unknown_roles(desired: State, live: State) -> list[tuple[str, str]]:
    """(uid, role) for each declared user whose role is neither declared, nor the
    built-in ``default``, nor on the platform: no apply could give it that role."""
    if live.roles is None:
        return []  # a platform without roles (its capability check refused the field)
    known = {DEFAULT_ROLE, *(desired.roles or ()), *live.roles}
    return sorted(
        (uid, user.role)
        for uid, user in desired.users.items()
        if user.role is not None and user.role not in known
    )


def _roles(desired: State, live: State, ctx: Context, deleted: set[str]) -> tuple[list[Change], list[str]]:
    """Role changes and why some were left out. No ``roles`` section: roles unmanaged."""
    if desired.roles is None or live.roles is None or not ctx.capabilities.roles:
        return [], []
    changes: list[Change] = []
    warnings: list[str] = []
    for name, want in sorted(desired.roles.items()):
        if name == DEFAULT_ROLE:
            continue  # built in: validation refuses to declare it; never touched anyway
        have = live.roles.get(name)
        if have is None:
            changes.append(_create_role(want, ctx.owner))
        elif ctx.policy.mode == "sync":
            if have.owner not in (None, ctx.owner) and not ctx.allow_takeover:
                warnings.append(
                    f"role {name} belongs to owner '{have.owner}' and is left as it is "
                    "(re-run with --allow-takeover to take it over)"
                )
                continue
            changes += _converge_role(want, have, ctx.owner)
    if ctx.policy.mode == "sync" and ctx.policy.prune != "none":
        held = _held_roles(desired, live, deleted)
        for name, have in sorted(live.roles.items()):
            if name in desired.roles or name == DEFAULT_ROLE or have.owner != ctx.owner:
                continue
            holders = held.get(name)
            if holders:
                shown = ", ".join(sorted(holders)[:5]) + (" ..." if len(holders) > 5 else "")
                warnings.append(
                    f"role {name} is not in the manifest but is not deleted: {len(holders)} "
                    f"user(s) still hold it ({shown}); give them another role first"
                )
                continue
            changes.append(Change(Action.DELETE_ROLE, name, before=_role_fields(have), note="pruned"))
    return changes, warnings


def _create_role(want: Role, owner: str) -> Change:
    return Change(Action.CREATE_ROLE, want.name, after={**_role_fields(want), "owner": owner})


def _converge_role(want: Role, have: Role, owner: str) -> Iterator[Change]:
    before: dict[str, Any] = {}
    after: dict[str, Any] = {}
    for name, value in _role_fields(want).items():
        live = getattr(have, name)
        if value != live and not (_empty(value) and _empty(live)):
            before[name], after[name] = live, value
    note = None
    if have.owner != owner:
        before["owner"], after["owner"] = have.owner, owner
        note = "adopt: no owner yet" if have.owner is None else f"take over from '{have.owner}'"
    if after:
        yield Change(Action.UPDATE_ROLE, want.name, before=before, after=after, note=note)


def _role_fields(role: Role) -> dict[str, Any]:
    """The role's set fields (``None``: unmanaged, left out)."""
    fields = {"description": role.description, "metadata": role.metadata}
    return {name: value for name, value in fields.items() if value is not None}


def _held_roles(desired: State, live: State, deleted: set[str]) -> dict[str, set[str]]:
    """Who holds each role once the plan is applied: the declared role of each declared
    user, else the live one (users deleted by the plan hold none)."""
    held: dict[str, set[str]] = {}
    for uid in set(desired.users) | set(live.users):
        if uid in deleted:
            continue
        want, have = desired.users.get(uid), live.users.get(uid)
        role = want.role if want is not None and want.role is not None else (have.role if have else None)
        if role is not None:
            held.setdefault(role, set()).add(uid)
    return held


# -------------------------------------------------------------------------- bans


def _bans(
    desired: State, live: State, ctx: Context, created: set[str], deleted: set[str]
) -> Iterator[Change]:
    if desired.bans is None or not ctx.capabilities.bans:
        return
    live_bans = live.bans or {}
    seed = ctx.policy.mode == "seed"
    for uid, ban in sorted(desired.bans.items()):
        if uid in ctx.policy.protected or uid in deleted or (seed and uid not in created):
            continue
        change = _ban(ban, live_bans.get(uid), ctx)
        if change is not None:
            yield change
    if seed:
        return
    managed = set(desired.users) | {u for u, user in live.users.items() if user.owner == ctx.owner}
    for uid in sorted(set(live_bans) - set(desired.bans)):
        if uid in managed and uid not in deleted:
            until = iso(live_bans[uid].until)
            yield Change(Action.UNBAN_USER, uid, before={"until": until or "forever"})


def _ban(want: Ban, have: Ban | None, ctx: Context) -> Change | None:
    """A ban_user change when the live ban differs from the wanted one, else ``None``.

    Where one call can ban for at most ``max_ban`` (Nexconn: 30 days), the ban is set
    for the maximum and renewed once less than half of it remains, so that a run every
    two weeks keeps a long ban in force without a change on every run.
    """
    target, note = want.until, None
    cap = ctx.capabilities.max_ban
    if cap is not None and (target is None or target > ctx.now + cap):
        target = ctx.now + cap
        note = f"longer than {cap.days} days: set for {cap.days} days, renewed by a later run"
    before = {"until": None if have is None else (iso(have.until) or "forever")}
    after = {"until": iso(target) or "forever"}
    if have is None:
        return Change(Action.BAN_USER, want.uid, before=before, after=after, note=note)
    if cap is not None and note is not None and have.until is not None:
        if have.until - ctx.now >= cap / 2:
            return None  # still comfortably in force; renew later
        return Change(Action.BAN_USER, want.uid, before=before, after=after, note="renew: " + note)
    if _same_until(have.until, target):
        return None
    return Change(Action.BAN_USER, want.uid, before=before, after=after, note=note)


def _same_until(a: datetime | None, b: datetime | None) -> bool:
    if a is None or b is None:
        return a is b
    return abs(a - b) <= BAN_TOLERANCE
