"""Property: for any desired and live state, apply then plan gives no changes, and
applying twice leaves the platform exactly as applying once (real SQLite files).

Along the way, every plan is checked against the rules a user relies on, each restated
here independently of the code under test:

- the safety limits refuse exactly when the changes they count exceed the limit, and
  ownership conflicts are refused even with --force;
- users of another owner are refused unless taken over, and never pruned;
- protected users are never deactivated, deleted or banned;
- seed mode only creates what is missing.

The live users belong to no one, to this manifest's owner or to another owner; the
mode, the prune setting, the four limits, the protected users and --allow-takeover
are drawn as well.
"""

from __future__ import annotations

import tempfile
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chatroster.apply import apply
from chatroster.changes import Action
from chatroster.errors import UnsafePlanError
from chatroster.model import Ban, Limit, Manifest, Policy, ProviderConfig, State, User
from chatroster.plan import Plan
from chatroster.providers.local import LocalProvider
from chatroster.runner import Options, make_plan, read_live
from chatroster.safety import check

NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
UIDS = [f"u{i}" for i in range(6)]
OWNER = "team"
OTHER = "other-team"
LIMITS = {  # policy field -> the action its limit counts
    "max_deactivate": Action.DEACTIVATE_USER,
    "max_delete": Action.DELETE_USER,
    "max_unban": Action.UNBAN_USER,
    "max_update": Action.UPDATE_USER,
}

uids = st.sampled_from(UIDS)
texts = st.text(alphabet="abc xyz", min_size=1, max_size=6)


def maybe(strategy: st.SearchStrategy) -> st.SearchStrategy:  # type: ignore[type-arg]
    return st.none() | strategy


@cache  # building a strategy costs more than drawing from it
def user(uid: str, owner: str | None) -> st.SearchStrategy[User]:
    others = st.sampled_from([other for other in UIDS if other != uid])
    return st.builds(
        User,
        uid=st.just(uid),
        name=texts,
        avatar=maybe(texts),
        role=maybe(st.sampled_from(["agent", "admin"])),
        metadata=maybe(st.dictionaries(st.sampled_from("xyz"), st.integers(0, 3), max_size=2)),
        tags=maybe(st.lists(st.sampled_from(["a", "b", "c"]), max_size=3)),
        profile=maybe(
            st.fixed_dictionaries({}, optional={"email": st.just("p@x.io"), "level": st.integers(0, 5)})
        ),
        active=maybe(st.booleans()),
        blocklist=maybe(st.frozensets(others, max_size=3)),
        whitelist=maybe(st.frozensets(others, max_size=3)),
        tokens_valid_after=maybe(st.sampled_from([NOW - timedelta(days=d) for d in (1, 5)])),
        owner=st.just(owner),
    ).map(with_mode)


def with_mode(user: User) -> User:
    return user.evolve(whitelist_mode=True) if user.whitelist is not None else user


bans = st.dictionaries(uids, st.sampled_from([None, NOW + timedelta(days=3)]), max_size=3).map(
    lambda found: {uid: Ban(uid, until) for uid, until in found.items()}
)
owners = st.sampled_from([None, OWNER, OWNER, OTHER])
presence = st.sampled_from(["declared", "live", "both", "both", "neither"])


@st.composite
def states(draw: st.DrawFn) -> tuple[State, State]:
    """(desired, live): each uid is declared, live, both or neither; a live user belongs
    to no one, to this owner or to another, and is drawn afresh or is the declared user
    as it stands (so that both changed and unchanged users are common)."""
    desired: dict[str, User] = {}
    live: dict[str, User] = {}
    for uid in UIDS:
        where = draw(presence)
        if where in ("declared", "both"):
            desired[uid] = draw(user(uid, None))
        if where in ("live", "both"):
            owner = draw(owners)
            if where == "both" and draw(st.booleans()):
                live[uid] = desired[uid].evolve(owner=owner)
            else:
                live[uid] = draw(user(uid, owner))
    return (State(users=desired, bans=draw(maybe(bans))), State(users=live, bans=draw(bans)))


limits = st.one_of(st.integers(0, 3), st.sampled_from(["0%", "25%", "50%", "100%"]))


@st.composite
def policies(draw: st.DrawFn) -> Policy:
    return Policy(
        mode=draw(st.sampled_from(["sync", "sync", "sync", "seed"])),
        prune=draw(st.sampled_from(["none", "deactivate", "delete"])),
        protected=draw(st.frozensets(uids, max_size=2)),
        **{name: Limit.parse(draw(limits)) for name in LIMITS},
    )


def seed(provider: LocalProvider, live: State) -> None:
    store = provider.store
    store.insert_users(live.users.values())
    for user in live.users.values():
        store.add_relations("blocks", [(user.uid, t) for t in user.blocklist or ()])
        store.add_relations("whitelist", [(user.uid, t) for t in user.whitelist or ()])
    for ban in (live.bans or {}).values():
        store.ban([ban.uid], ban.until)


def snapshot(provider: LocalProvider) -> tuple[object, ...]:
    store = provider.store
    return (store.all_users(), store.bans(), store.relations("blocks"), store.relations("whitelist"))


# ------------------------------------------------- the rules, restated independently


def loses_data(before: Any, after: Any) -> bool:
    """An update overwrites or removes a value set on the platform; filling an empty
    field loses nothing (PRODUCT.md, "Safety limits")."""
    if before in (None, "", [], {}):
        return False
    if isinstance(before, Mapping) and isinstance(after, Mapping):
        return any(loses_data(value, after.get(key)) for key, value in before.items())
    if isinstance(before, list) and isinstance(after, list):
        return any(item not in after for item in before)
    return bool(before != after)


def counted(plan: Plan, action: Action) -> int:
    """How many changes count against the limit on ``action``. Updates count only when
    they lose data, and not for users the same plan adopts: the limit guards users
    already managed."""
    changes = [change.to_json() for change in plan.changes]
    if action is not Action.UPDATE_USER:
        return sum(1 for c in changes if c["action"] == action.value)
    adopted = {c["uid"] for c in changes if c["action"] == Action.ADOPT_USER.value}
    return sum(
        1
        for c in changes
        if c["action"] == action.value
        and c["uid"] not in adopted
        and any(loses_data(c["before"].get(name), value) for name, value in c["after"].items())
    )


def allowed(limit: str | int, managed: int) -> int:
    """How many changes a limit allows: a count, or a percentage of the managed users
    rounded down, where a non-zero percentage allows at least one."""
    if isinstance(limit, int):
        return limit
    percent = int(limit.rstrip("%"))
    return max(1, managed * percent // 100) if percent else 0


def exceeded(plan: Plan, policy: Policy) -> set[str]:
    return {
        name
        for name, action in LIMITS.items()
        if counted(plan, action) > allowed(_raw(getattr(policy, name)), plan.managed)
    }


def _raw(limit: Limit) -> str | int:
    """The limit as the manifest wrote it (``3`` or ``"25%"``)."""
    return f"{limit.percent:g}%" if limit.percent is not None else int(limit.count or 0)


def refusals(plan: Plan, policy: Policy, *, force: bool) -> list[str] | None:
    try:
        check(plan, policy, "local", force=force)
    except UnsafePlanError as refused:
        return list(refused.reasons)
    return None


def check_the_rules(plan: Plan, desired: State, live: State, policy: Policy, allow_takeover: bool) -> None:
    by_uid: dict[str, set[Action]] = {}
    for change in plan.changes:
        by_uid.setdefault(change.uid, set()).add(change.action)

    # Ownership: another owner's users are refused unless taken over, never pruned.
    theirs = {uid for uid, user in live.users.items() if user.owner == OTHER}
    refused = sorted(
        uid for uid in theirs & set(desired.users) if policy.mode == "sync" and not allow_takeover
    )
    assert list(plan.conflicts) == refused
    for uid in theirs:
        acted = by_uid.get(uid, set()) - {Action.BAN_USER, Action.UNBAN_USER}
        if uid not in desired.users or policy.mode == "seed" or not allow_takeover:
            assert not acted, (uid, acted)

    # Pruning: only users this owner owns.
    for uid, actions in by_uid.items():
        if actions & {Action.DEACTIVATE_USER, Action.DELETE_USER} and uid not in desired.users:
            assert live.users[uid].owner == OWNER, uid

    # Protected users are never deactivated, deleted or banned.
    for uid in policy.protected:
        assert not by_uid.get(uid, set()) & {Action.DEACTIVATE_USER, Action.DELETE_USER, Action.BAN_USER}, uid

    # Seed mode creates what is missing, and touches nothing that exists.
    if policy.mode == "seed":
        assert not set(by_uid) & set(live.users), sorted(set(by_uid) & set(live.users))

    # Safety: refused without --force exactly when a limit is exceeded or a declared
    # user belongs to another owner; with --force, only for the latter.
    over = exceeded(plan, policy)
    reasons = refusals(plan, policy, force=False) or []
    assert len(reasons) == len(over) + bool(refused), (over, refused, reasons)
    for name in over:
        assert any(f"policy.{name} limit" in reason for reason in reasons), (name, reasons)
    assert bool(refusals(plan, policy, force=True)) == bool(refused)


# ---------------------------------------------------------------------- property


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(states=states(), policy=policies(), allow_takeover=st.booleans())
def test_apply_then_plan_gives_no_changes_and_apply_twice_equals_apply_once(
    states: tuple[State, State], policy: Policy, allow_takeover: bool
) -> None:
    desired, live = states
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "local.db"
        manifest = Manifest(
            desired=desired,
            provider=ProviderConfig("local", {"path": str(db)}, tmp),
            owner=OWNER,
            policy=policy,
        )
        options = Options(allow_takeover=allow_takeover, now=lambda: NOW)
        provider = LocalProvider(db, clock=lambda: NOW.timestamp())
        try:
            seed(provider, live)
            for role in ("agent", "admin"):  # the roles users may hold exist, unmanaged
                provider.store.put_role(role, {})
            first = make_plan(manifest, provider, options)
            check_the_rules(first, desired, live, policy, allow_takeover)
            apply(first.changes, provider)  # as apply --force would, conflicts left out
            after_once = snapshot(provider)
            second = make_plan(manifest, provider, options)
            assert second.empty, [c.to_json() for c in second.changes]
            assert second.conflicts == first.conflicts
            apply(second.changes, provider)
            assert snapshot(provider) == after_once
            assert read_live(manifest, provider) is not None
        finally:
            provider.close()


# ------------------------------------------------- the oracle, on cases worked by hand


@pytest.mark.parametrize(
    ("limit", "managed", "expected"),
    [
        (0, 10, 0),
        (3, 10, 3),
        ("0%", 10, 0),
        ("25%", 10, 2),
        ("25%", 2, 1),
        ("100%", 4, 4),
    ],
)
def test_the_limit_oracle_reads_counts_and_percentages_as_documented(
    limit: str | int, managed: int, expected: int
) -> None:
    assert allowed(limit, managed) == expected
    assert _raw(Limit.parse(limit)) == limit


@pytest.mark.parametrize(
    ("before", "after", "loses"),
    [
        (None, "x", False),
        ("", "x", False),
        ("x", "y", True),
        ("x", None, True),
        (["a"], ["a", "b"], False),
        (["a", "b"], ["a"], True),
        ({"x": 1}, {"x": 1, "y": 2}, False),
        ({"x": 1}, {"x": 2}, True),
        ({"x": 1}, {}, True),
    ],
)
def test_the_update_oracle_counts_only_updates_that_lose_data(before: Any, after: Any, loses: bool) -> None:
    assert loses_data(before, after) is loses
