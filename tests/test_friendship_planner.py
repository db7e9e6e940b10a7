"""The planner's rules for friends, one requirement per test (pure: no I/O).

Friendship is mutual, so live states here always hold both sides of a friendship, as
every platform reads them.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from chatroster.changes import ORDER, Action
from chatroster.model import Policy, State, User, thaw
from chatroster.planner import Context, plan
from chatroster.providers import CAPABILITIES

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
