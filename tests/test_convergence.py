"""Property: for any desired and live state, apply then plan gives no changes, and
applying twice leaves the platform exactly as applying once (real SQLite files)."""

from __future__ import annotations

import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chatroster.apply import apply
from chatroster.model import Ban, Manifest, Policy, ProviderConfig, State, User
from chatroster.providers.local import LocalProvider
from chatroster.runner import Options, make_plan, read_live

NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
UIDS = [f"u{i}" for i in range(6)]
OWNER = "team"

uids = st.sampled_from(UIDS)
texts = st.text(alphabet="abc xyz", min_size=1, max_size=6)
def maybe(strategy: st.SearchStrategy) -> st.SearchStrategy:  # type: ignore[type-arg]
    return st.none() | strategy


@st.composite
def users(draw: st.DrawFn, owner: str | None = None) -> User:
    uid = draw(uids)
    return User(
        uid=uid,
        name=draw(texts),
        avatar=draw(maybe(texts)),
        role=draw(maybe(st.sampled_from(["agent", "admin"]))),
        metadata=draw(maybe(st.dictionaries(st.sampled_from("xyz"), st.integers(0, 3), max_size=2))),
        tags=draw(maybe(st.lists(st.sampled_from(["a", "b", "c"]), max_size=3))),
        profile=draw(maybe(st.fixed_dictionaries({}, optional={"email": st.just("p@x.io"),
                                                               "level": st.integers(0, 5)}))),
        active=draw(maybe(st.booleans())),
        blocklist=draw(maybe(st.frozensets(uids.filter(lambda u: u != uid), max_size=3))),
        whitelist=draw(maybe(st.frozensets(uids.filter(lambda u: u != uid), max_size=3))),
        tokens_valid_after=draw(maybe(st.sampled_from([NOW - timedelta(days=d) for d in (1, 5)]))),
        owner=owner,
    )


def with_mode(user: User) -> User:
    return user.evolve(whitelist_mode=True) if user.whitelist is not None else user


@st.composite
def states(draw: st.DrawFn, desired: bool) -> State:
    found = draw(st.lists(users(None if desired else draw(st.sampled_from([None, OWNER]))),
                          max_size=5, unique_by=lambda u: u.uid))
    bans = draw(maybe(st.dictionaries(uids, st.sampled_from([None, NOW + timedelta(days=3)]),
                                      max_size=2)))
    return State(
        users={u.uid: with_mode(u) for u in found},
        bans=None if bans is None else {uid: Ban(uid, until) for uid, until in bans.items()},
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


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(desired=states(desired=True), live=states(desired=False),
       prune=st.sampled_from(["none", "deactivate", "delete"]))
def test_apply_then_plan_gives_no_changes_and_apply_twice_equals_apply_once(
    desired: State, live: State, prune: str
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "local.db"
        manifest = Manifest(
            desired=desired,
            provider=ProviderConfig("local", {"path": str(db)}, tmp),
            owner=OWNER,
            policy=Policy(prune=prune),  # type: ignore[arg-type]
        )
        options = Options(allow_takeover=True, now=lambda: NOW)
        provider = LocalProvider(db, clock=lambda: NOW.timestamp())
        try:
            seed(provider, live)
            first = make_plan(manifest, provider, options)
            apply(first.changes, provider)
            after_once = snapshot(provider)
            second = make_plan(manifest, provider, options)
            assert second.empty, [c.to_json() for c in second.changes]
            apply(second.changes, provider)
            assert snapshot(provider) == after_once
            assert read_live(manifest, provider) is not None
        finally:
            provider.close()
