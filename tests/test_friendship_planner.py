"""The planner's rules for friends, one requirement per test (pure: no I/O), and the
convergence property on a real SQLite store.

Friendship is mutual, so live states here always hold both sides of a friendship, as
every platform reads them.
"""

from __future__ import annotations

import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chatroster.apply import apply
from chatroster.changes import ORDER, Action
from chatroster.model import Manifest, Policy, ProviderConfig, State, User, thaw
from chatroster.planner import Context, plan
from chatroster.providers import CAPABILITIES
from chatroster.providers.local import LocalProvider
from chatroster.runner import Options, make_plan
from chatroster.store import friends as stored

NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
OWNER = "team"
NONE = {"alias": "", "ext": {}}


def ctx(provider: str = "local") -> Context:
    return Context(owner=OWNER, policy=Policy(), capabilities=CAPABILITIES[provider], now=NOW)


def live_user(uid: str, friends: dict[str, Any] | None = None, **fields: Any) -> User:
    return User(uid, name=uid, active=True, owner=OWNER, friends=friends, **fields)


def actions(result: Any) -> list[tuple[str, str, str | None]]:
    return [(c.action.value, c.uid, c.target) for c in result.changes if c.action is not Action.CREATE_USER]


def test_a_friendship_both_users_declare_is_added_once_and_the_second_alias_after_it() -> None:
    desired = State(
        {
            "bob": User("bob", name="bob", friends={"alice": {"alias": "A"}}),
            "alice": User("alice", name="alice", friends={"bob": {"alias": "B", "ext": {"ext_x": "1"}}}),
        }
    )
    result = plan(desired, State({"alice": live_user("alice", {}), "bob": live_user("bob", {})}), ctx())

    assert actions(result) == [("add_friend", "alice", "bob"), ("update_friend", "bob", "alice")]
    add, update = result.changes
    assert thaw(add.after) == {"friend": True, "alias": "B", "ext": {"ext_x": "1"}}
    assert (thaw(update.before), thaw(update.after)) == (NONE, {"alias": "A", "ext": {}})


def test_a_friendship_both_users_drop_is_removed_once() -> None:
    desired = State(
        {"alice": User("alice", name="alice", friends=[]), "bob": User("bob", name="bob", friends=[])}
    )
    live = State({"alice": live_user("alice", {"bob": NONE}), "bob": live_user("bob", {"alice": NONE})})

    assert actions(plan(desired, live, ctx())) == [("remove_friend", "alice", "bob")]


def test_two_new_users_that_declare_each_other_are_made_friends_once() -> None:
    desired = State({"a": User("a", name="a", friends=["b"]), "b": User("b", name="b", friends=["a"])})

    result = plan(desired, State({}), ctx())

    assert [c.action for c in result.changes] == [Action.CREATE_USER, Action.CREATE_USER, Action.ADD_FRIEND]


def test_a_friend_that_is_neither_declared_nor_on_the_platform_is_skipped_with_a_warning() -> None:
    desired = State({"alice": User("alice", name="alice", friends=["ghost"])})

    result = plan(desired, State({"alice": live_user("alice", {})}), ctx())

    assert result.empty
    assert "add_friend alice:ghost skipped: 'ghost' is not a user on the platform" in result.warnings[0]


def test_friends_that_cannot_be_read_are_left_alone_with_a_warning() -> None:
    desired = State({"alice": User("alice", name="alice", friends=["bob"])})
    live = State({"alice": live_user("alice", None), "bob": live_user("bob", None)})

    result = plan(desired, live, ctx())

    assert result.empty
    assert "alice: the live friends cannot be read" in result.warnings[0]


def test_the_permission_is_set_for_a_new_user_and_when_it_differs_but_never_when_unread() -> None:
    want = User("alice", name="alice", friend_permission="nobody")

    assert actions(plan(State({"alice": want}), State({}), ctx())) == [
        ("set_friend_permission", "alice", None)
    ]
    differs = State({"alice": live_user("alice", friend_permission="anyone")})
    assert actions(plan(State({"alice": want}), differs, ctx())) == [("set_friend_permission", "alice", None)]
    same = State({"alice": live_user("alice", friend_permission="nobody")})
    assert plan(State({"alice": want}), same, ctx()).empty
    assert plan(State({"alice": want}), State({"alice": live_user("alice")}), ctx()).empty


def test_nothing_about_friends_is_planned_on_a_platform_without_them() -> None:
    desired = State({"alice": User("alice", name="alice", friends=["bob"], friend_permission="nobody")})
    live = State({"alice": live_user("alice", {}), "bob": live_user("bob", {})})

    assert plan(desired, live, ctx("cometchat")).empty


def test_friend_removals_come_before_additions_and_both_before_deactivation() -> None:
    rank = {action: index for index, action in enumerate(ORDER)}
    assert rank[Action.CREATE_USER] < rank[Action.REMOVE_FRIEND] < rank[Action.ADD_FRIEND]
    assert rank[Action.ADD_FRIEND] < rank[Action.UPDATE_FRIEND] < rank[Action.DEACTIVATE_USER]
    assert rank[Action.SET_FRIEND_PERMISSION] < rank[Action.DEACTIVATE_USER]


# ------------------------------------------------------------ convergence (property)

UIDS = ("a", "b", "c", "d", "e")
PAIRS = [(x, y) for i, x in enumerate(UIDS) for y in UIDS[i + 1 :]]


@st.composite
def friend_graphs(
    draw: st.DrawFn,
) -> tuple[set[tuple[str, str]], set[tuple[str, str]], set[str], dict[str, Any]]:
    """A live friendship graph, a wanted one, the users whose friends the manifest
    manages (their wanted friends always agree, as validate requires) and aliases."""
    live = set(draw(st.lists(st.sampled_from(PAIRS), unique=True)))
    wanted = set(draw(st.lists(st.sampled_from(PAIRS), unique=True)))
    managed = set(draw(st.lists(st.sampled_from(UIDS), unique=True)))
    aliases = draw(
        st.dictionaries(
            st.sampled_from([(x, y) for x in UIDS for y in UIDS if x != y]), st.sampled_from(["", "A", "B"])
        )
    )
    return live, wanted, managed, aliases


def neighbours(graph: set[tuple[str, str]], uid: str) -> set[str]:
    return {y for x, y in graph if x == uid} | {x for x, y in graph if y == uid}


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(graphs=friend_graphs())
def test_apply_then_plan_gives_no_friend_changes_on_a_real_store(
    graphs: tuple[set[tuple[str, str]], set[tuple[str, str]], set[str], dict[Any, str]],
) -> None:
    live, wanted, managed, aliases = graphs
    users = {}
    for uid in UIDS:
        friends = None
        if uid in managed:
            friends = {
                other: {"alias": aliases[(uid, other)]} if (uid, other) in aliases else {}
                for other in neighbours(wanted, uid)
            }
        users[uid] = User(uid, name=uid, friends=friends)
    with tempfile.TemporaryDirectory() as tmp:
        config = ProviderConfig("local", {"path": str(Path(tmp) / "local.db")})
        manifest = Manifest(desired=State(users=users), provider=config, owner=OWNER)
        provider = LocalProvider(Path(tmp) / "local.db", clock=lambda: NOW.timestamp())
        try:
            provider.store.insert_users([User(uid, name=uid, owner=OWNER) for uid in UIDS])
            for x, y in live:
                stored.add(provider.store, x, y)
            apply(make_plan(manifest, provider, Options(now=lambda: NOW)).changes, provider)
            again = make_plan(manifest, provider, Options(now=lambda: NOW))
            assert again.empty, [c.key for c in again.changes]
            found = stored.friends(provider.store)
        finally:
            provider.close()
    for x, y in PAIRS:
        expected = (x, y) in (wanted if x in managed or y in managed else live)
        assert (y in found.get(x, {})) == expected == (x in found.get(y, {})), (x, y)
    for (uid, other), alias in aliases.items():
        if uid in managed and (min(uid, other), max(uid, other)) in wanted:
            assert found[uid][other]["alias"] == alias
