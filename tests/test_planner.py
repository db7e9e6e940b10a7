"""The planner's rules, one requirement per test (pure: no I/O)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from chatroster.changes import Action
from chatroster.errors import UnsafePlanError
from chatroster.model import Ban, Limit, Policy, State, User, thaw
from chatroster.planner import Context, plan
from chatroster.providers import CAPABILITIES
from chatroster.safety import check, limit_reasons

NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
OWNER = "team"


def ctx(provider: str = "local", **policy: object) -> Context:
    return Context(owner=OWNER, policy=Policy(**policy), capabilities=CAPABILITIES[provider], now=NOW)


def owned(uid: str, **fields: object) -> User:
    defaults: dict[str, object] = {
        "name": uid,
        "metadata": {},
        "tags": (),
        "profile": {},
        "active": True,
        "whitelist_mode": False,
        "owner": OWNER,
    }
    return User(uid, **{**defaults, **fields})  # type: ignore[arg-type]


def actions(result) -> list[tuple[str, str, str | None]]:  # type: ignore[no-untyped-def]
    return [(c.action.value, c.uid, c.target) for c in result.changes]


def test_creates_users_missing_from_the_platform_with_every_managed_field() -> None:
    desired = State({"alice": User("alice", name="Alice", tags=("b", "a"), metadata={"t": 1})})
    result = plan(desired, State({}), ctx())
    [change] = result.changes
    assert change.action is Action.CREATE_USER
    assert thaw(change.after) == {"name": "Alice", "tags": ["a", "b"], "metadata": {"t": 1}, "owner": OWNER}


def test_no_changes_when_live_matches_desired() -> None:
    desired = State({"alice": User("alice", name="Alice", tags=("x",))})
    live = State({"alice": owned("alice", name="Alice", tags=("x",))})
    assert plan(desired, live, ctx()).empty


def test_updates_only_the_fields_that_differ() -> None:
    desired = State({"alice": User("alice", name="Alice", role="agent")})
    live = State({"alice": owned("alice", name="Alicia", role="agent")})
    [change] = plan(desired, live, ctx()).changes
    assert change.action is Action.UPDATE_USER
    assert dict(change.before) == {"name": "Alicia"}
    assert dict(change.after) == {"name": "Alice"}


def test_absent_fields_are_left_as_they_are() -> None:
    desired = State({"alice": User("alice", name="Alice")})
    live = State(
        {"alice": owned("alice", name="Alice", role="admin", tags=("x",), blocklist=frozenset({"bob"}))}
    )
    assert plan(desired, live, ctx()).empty


def test_an_empty_blocklist_removes_every_block() -> None:
    desired = State({"alice": User("alice", name="a", blocklist=frozenset())})
    live = State({"alice": owned("alice", name="a", blocklist=frozenset({"bob", "carl"}))})
    assert actions(plan(desired, live, ctx())) == [
        ("remove_block", "alice", "bob"),
        ("remove_block", "alice", "carl"),
    ]


def test_blocklist_adds_and_removes_exactly_the_difference() -> None:
    desired = State({"alice": User("alice", name="a", blocklist=frozenset({"bob", "dan"}))})
    live = State(
        {
            "alice": owned("alice", name="a", blocklist=frozenset({"bob", "carl"})),
            "dan": owned("dan", owner=None),
        }
    )
    assert actions(plan(desired, live, ctx())) == [
        ("remove_block", "alice", "carl"),
        ("add_block", "alice", "dan"),
    ]


def test_relations_and_bans_naming_unknown_users_are_skipped_with_a_warning() -> None:
    desired = State(
        {"alice": User("alice", name="a", blocklist=frozenset({"ghost"}))}, bans={"phantom": Ban("phantom")}
    )
    result = plan(desired, State({}, bans={}), ctx())
    assert actions(result) == [("create_user", "alice", None)]
    assert len(result.warnings) == 2 and "'ghost' is not a user" in " ".join(result.warnings)


def test_a_user_being_deleted_is_not_banned() -> None:
    desired = State({}, bans={"gone": Ban("gone")})
    result = plan(desired, State({"gone": owned("gone")}, bans={}), ctx(prune="delete"))
    assert actions(result) == [("delete_user", "gone", None)]


def test_whitelist_turns_whitelist_mode_on_and_sets_entries() -> None:
    desired = State({"alice": User("alice", name="a", whitelist=frozenset({"bob"}), whitelist_mode=True)})
    live = State({"alice": owned("alice", name="a", whitelist=frozenset()), "bob": owned("bob")})
    assert actions(plan(desired, live, ctx())) == [
        ("set_whitelist_mode", "alice", None),
        ("add_whitelist", "alice", "bob"),
    ]


def test_adopts_users_without_an_owner() -> None:
    desired = State({"alice": User("alice", name="a")})
    live = State({"alice": owned("alice", name="a", owner=None)})
    [change] = plan(desired, live, ctx()).changes
    assert change.action is Action.ADOPT_USER and change.after["owner"] == OWNER


def test_refuses_users_of_another_owner_unless_takeover_is_allowed() -> None:
    desired = State({"alice": User("alice", name="new")})
    live = State({"alice": owned("alice", name="old", owner="other")})
    refused = plan(desired, live, ctx())
    assert refused.conflicts == ("alice",) and refused.empty
    with pytest.raises(UnsafePlanError, match="--allow-takeover"):
        check(refused, Policy(), "local", force=True)
    taken = plan(desired, live, Context(OWNER, Policy(), CAPABILITIES["local"], NOW, allow_takeover=True))
    assert [c.action for c in taken.changes] == [Action.ADOPT_USER, Action.UPDATE_USER]


def test_never_touches_users_it_does_not_own_when_pruning() -> None:
    live = State({"stranger": owned("stranger", owner="other"), "orphan": owned("orphan", owner=None)})
    assert plan(State({}), live, ctx(prune="deactivate")).empty


def test_deactivates_owned_users_removed_from_the_manifest() -> None:
    live = State({"gone": owned("gone"), "kept": owned("kept")})
    desired = State({"kept": User("kept", name="kept")})
    assert actions(plan(desired, live, ctx(prune="deactivate"))) == [("deactivate_user", "gone", None)]


def test_does_not_prune_unless_the_policy_asks() -> None:
    assert plan(State({}), State({"gone": owned("gone")}), ctx()).empty


def test_deletes_owned_users_removed_from_the_manifest_when_prune_is_delete() -> None:
    result = plan(State({}), State({"gone": owned("gone")}), ctx(prune="delete"))
    assert actions(result) == [("delete_user", "gone", None)]


def test_protected_users_are_never_deactivated_deleted_or_banned() -> None:
    policy = {"prune": "delete", "protected": frozenset({"admin"})}
    desired = State({}, bans={"admin": Ban("admin")})
    assert plan(desired, State({"admin": owned("admin")}, bans={}), ctx(**policy)).empty


def test_deactivation_and_reactivation_follow_active() -> None:
    desired = State({"a": User("a", name="a", active=False), "b": User("b", name="b", active=True)})
    live = State({"a": owned("a", name="a"), "b": owned("b", name="b", active=False)})
    assert actions(plan(desired, live, ctx())) == [
        ("reactivate_user", "b", None),
        ("deactivate_user", "a", None),
    ]


def test_changes_are_ordered_users_first_relations_next_deactivation_last() -> None:
    desired = State(
        {
            "new": User("new", name="n", blocklist=frozenset({"old"})),
            "old": User("old", name="o", active=False),
        }
    )
    live = State({"old": owned("old", name="o")})
    assert actions(plan(desired, live, ctx())) == [
        ("create_user", "new", None),
        ("add_block", "new", "old"),
        ("deactivate_user", "old", None),
    ]


def test_bans_are_added_and_unbans_only_touch_managed_users() -> None:
    desired = State({"a": User("a", name="a")}, bans={"a": Ban("a")})
    live = State(
        {"a": owned("a", name="a"), "mine": owned("mine")},
        bans={"stranger": Ban("stranger"), "mine": Ban("mine")},
    )
    assert actions(plan(desired, live, ctx())) == [("unban_user", "mine", None), ("ban_user", "a", None)]


def test_an_absent_bans_section_leaves_bans_alone() -> None:
    live = State({"a": owned("a", name="a")}, bans={"a": Ban("a")})
    assert plan(State({"a": User("a", name="a")}), live, ctx()).empty


def test_a_ban_longer_than_the_platform_allows_is_capped_and_renewed_later() -> None:
    until = NOW + timedelta(days=90)
    desired = State({}, bans={"m": Ban("m", until)})
    users = {"m": owned("m", owner=None)}
    [first] = plan(desired, State(users, bans={}), ctx("nexconn")).changes
    assert first.after["until"] == "2026-12-21T12:00:00Z" and "renewed" in (first.note or "")
    fresh = State(users, bans={"m": Ban("m", NOW + timedelta(days=30))})
    assert plan(desired, fresh, ctx("nexconn")).empty
    ageing = State(users, bans={"m": Ban("m", NOW + timedelta(days=10))})
    [renewal] = plan(desired, ageing, ctx("nexconn")).changes
    assert renewal.action is Action.BAN_USER and renewal.note and renewal.note.startswith("renew")


def test_a_changed_ban_expiry_is_set_again() -> None:
    desired = State({}, bans={"m": Ban("m", NOW + timedelta(days=3))})
    live = State({"m": owned("m")}, bans={"m": Ban("m", NOW + timedelta(days=1))})
    [change] = plan(desired, live, ctx()).changes
    assert change.before["until"] == "2026-11-22T12:00:00Z"


def test_expires_tokens_only_when_the_watermark_moves_forward() -> None:
    t = NOW - timedelta(days=1)
    desired = State({"a": User("a", name="a", tokens_valid_after=t)})
    assert actions(plan(desired, State({"a": owned("a", name="a")}), ctx())) == [("expire_tokens", "a", None)]
    later = State({"a": owned("a", name="a", tokens_valid_after=NOW)})
    assert plan(desired, later, ctx()).empty


def test_seed_mode_only_creates_what_is_missing() -> None:
    desired = State(
        {"new": User("new", name="n"), "old": User("old", name="changed", active=False)},
        bans={"old": Ban("old")},
    )
    live = State({"old": owned("old", name="o"), "gone": owned("gone")}, bans={})
    result = plan(desired, live, ctx(mode="seed", prune="delete"))
    assert actions(result) == [("create_user", "new", None)]


def test_fields_the_provider_cannot_manage_are_not_planned() -> None:
    desired = State({"a": User("a", name="a", metadata={"x": 1})})
    live = State({"a": owned("a", name="a", metadata=None)})
    assert plan(desired, live, ctx("nexconn")).empty


def test_empty_and_never_set_mean_the_same() -> None:
    desired = State({"a": User("a", name="a", tags=(), metadata={})})
    live = State({"a": owned("a", name="a", tags=None, metadata=None)})
    assert plan(desired, live, ctx()).empty


@pytest.mark.parametrize(
    ("limit", "managed", "count", "refused"),
    [
        (Limit(count=2), 100, 2, False),
        (Limit(count=2), 100, 3, True),
        (Limit(percent=25), 40, 10, False),
        (Limit(percent=25), 40, 11, True),
        (Limit(percent=25), 4, 1, False),  # a percentage always allows one
        (Limit(percent=25), 4, 2, True),
    ],
)
def test_deactivation_limit_refuses_over_the_limit(
    limit: Limit, managed: int, count: int, refused: bool
) -> None:
    live = State({f"u{i}": owned(f"u{i}") for i in range(managed)})
    desired = State({f"u{i}": User(f"u{i}", name=f"u{i}") for i in range(count, managed)})
    result = plan(desired, live, ctx(prune="deactivate", max_deactivate=limit))
    assert result.count(Action.DEACTIVATE_USER) == count
    reasons = limit_reasons(result, Policy(max_deactivate=limit), "local")
    assert bool(reasons) is refused
    if refused:
        assert "re-run with --force" in reasons[0] and "max_deactivate" in reasons[0]
        with pytest.raises(UnsafePlanError):
            check(result, Policy(max_deactivate=limit), "local", force=False)
        check(result, Policy(max_deactivate=limit), "local", force=True)


def test_deleting_anything_needs_force_by_default() -> None:
    result = plan(State({}), State({"gone": owned("gone")}), ctx(prune="delete"))
    with pytest.raises(UnsafePlanError, match="max_delete"):
        check(result, Policy(), "local", force=False)


def test_a_live_list_that_cannot_be_read_is_left_alone_with_a_warning() -> None:
    desired = State({"a": User("a", name="a", blocklist=frozenset({"b"}))})
    live = State({"a": owned("a", name="a", blocklist=None), "b": owned("b")})
    result = plan(desired, live, ctx("cometchat"))
    assert result.empty
    assert result.warnings and "blocklist cannot be read" in result.warnings[0]


def test_a_deactivated_user_is_left_alone_where_the_platform_refuses_changes_to_it() -> None:
    desired = State({"a": User("a", name="new name", active=False)})
    live = State({"a": owned("a", name="old", active=False)})
    frozen = plan(desired, live, ctx("cometchat"))
    assert frozen.empty and "a is deactivated" in frozen.warnings[0]
    assert actions(plan(desired, live, ctx("local"))) == [("update_user", "a", None)]
    revived = State({"a": User("a", name="new name", active=True)})
    assert actions(plan(revived, live, ctx("cometchat"))) == [
        ("reactivate_user", "a", None),
        ("update_user", "a", None),
    ]


def test_a_deactivated_nexconn_user_that_stays_so_has_nothing_to_compare() -> None:
    # Nexconn deleted its data when it was deactivated: no change, and no warning either.
    desired = State({"a": User("a", name="new name", active=False, blocklist=frozenset({"b"}))})
    live = State({"a": owned("a", name=None, active=False, owner=None, blocklist=None), "b": owned("b")})
    result = plan(desired, live, ctx("nexconn"))
    assert result.empty and not result.warnings


def test_a_declared_user_without_active_is_reactivated() -> None:
    desired = State({"a": User("a", name="a")})
    live = State({"a": owned("a", active=False)})
    assert actions(plan(desired, live, ctx("local"))) == [("reactivate_user", "a", None)]
    assert actions(plan(desired, live, ctx("cometchat"))) == [("reactivate_user", "a", None)]
    assert plan(desired, live, ctx("local", mode="seed")).empty  # seed only creates


def test_a_nexconn_reactivation_writes_every_declared_field_again() -> None:
    # The restore brings back the uid alone, whatever the read showed of the user.
    want = User(
        "a",
        name="Alice",
        avatar="https://x/a.png",
        tags=("t",),
        profile={"email": "a@x.io"},
        blocklist=frozenset({"b"}),
        whitelist=frozenset({"b"}),
        whitelist_mode=True,
        tokens_valid_after=NOW,
    )
    have = owned("a", name="Alice", avatar="https://x/a.png", tags=("t",), active=False, blocklist=None)
    result = plan(State({"a": want}), State({"a": have, "b": owned("b")}), ctx("nexconn"))
    assert actions(result) == [
        ("reactivate_user", "a", None),
        ("update_user", "a", None),
        ("add_block", "a", "b"),
        ("set_whitelist_mode", "a", None),
        ("add_whitelist", "a", "b"),
        ("expire_tokens", "a", None),
    ]
    reactivate, update = result.changes[:2]
    assert "every declared field is written again" in (reactivate.note or "")
    assert set(update.after) == {"name", "avatar", "tags", "profile"}
    # Filling what the restore left empty overwrites nothing: no --force needed.
    assert limit_reasons(result, Policy(max_update=Limit(count=0)), "nexconn") == []
    assert not result.warnings


def test_updates_of_users_adopted_by_the_same_plan_do_not_count_against_max_update() -> None:
    live = State({f"u{i}": owned(f"u{i}", owner=None) for i in range(20)})
    desired = State({f"u{i}": User(f"u{i}", name="renamed") for i in range(20)})
    result = plan(desired, live, ctx())
    assert result.count(Action.UPDATE_USER) == 20
    assert limit_reasons(result, Policy(max_update=Limit(percent=10)), "local") == []
