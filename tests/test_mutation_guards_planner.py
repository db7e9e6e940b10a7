"""The planner's output in full, found open by mutation testing (docs/mutation.md): the
tests in test_planner.py check which changes a plan holds; these also check what each
change says it was and will be (``before``, ``after``, ``note``), which is what plan
output shows, saved plans record and `apply --plan` compares. Expected values are
written out by hand from PRODUCT.md's rules.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from chatroster.model import Ban, Policy, Role, State, User
from chatroster.planner import Context, plan
from chatroster.providers import CAPABILITIES

NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
OWNER = "team"


def ctx(provider: str = "local", *, allow_takeover: bool = False, **policy: Any) -> Context:
    return Context(
        owner=OWNER,
        policy=Policy(**policy),
        capabilities=CAPABILITIES[provider],
        now=NOW,
        allow_takeover=allow_takeover,
    )


def live_user(uid: str, **fields: Any) -> User:
    """A user as a provider reads it: every list read, owned by ``team``."""
    defaults: dict[str, Any] = {
        "name": uid,
        "active": True,
        "blocklist": frozenset(),
        "whitelist": frozenset(),
        "whitelist_mode": False,
        "owner": OWNER,
    }
    return User(uid, **{**defaults, **fields})


def changes(desired: State, live: State, context: Context) -> list[dict[str, Any]]:
    return [change.to_json() for change in plan(desired, live, context).changes]


# ------------------------------------------------------------------ creation


def test_a_new_user_is_created_inactive_with_its_whitelist_mode_and_token_cutoff() -> None:
    want = User(
        "alice",
        name="Alice",
        active=False,
        whitelist_mode=True,
        tokens_valid_after=datetime(2026, 11, 1, tzinfo=UTC),
    )
    assert changes(State({"alice": want}), State({}), ctx()) == [
        {
            "action": "create_user",
            "uid": "alice",
            "before": {},
            "after": {
                "name": "Alice",
                "owner": OWNER,
                "active": False,
                "whitelist_mode": True,
                "tokens_valid_after": "2026-11-01T00:00:00Z",
            },
        }
    ]


def test_a_new_active_user_carries_no_active_flag_and_a_platform_without_whitelists_no_mode() -> None:
    want = User("alice", name="Alice", active=True, whitelist_mode=True)
    assert changes(State({"alice": want}), State({}), ctx("cometchat")) == [
        {"action": "create_user", "uid": "alice", "before": {}, "after": {"name": "Alice", "owner": OWNER}}
    ]


def test_a_new_users_relations_are_added_in_full() -> None:
    want = User("alice", name="Alice", blocklist=frozenset({"bob"}), whitelist=frozenset({"carol"}))
    others = {uid: live_user(uid) for uid in ("bob", "carol")}
    assert changes(State({"alice": want}), State(others), ctx())[1:] == [
        {
            "action": "add_block",
            "uid": "alice",
            "target": "bob",
            "before": {"blocked": False},
            "after": {"blocked": True},
        },
        {
            "action": "add_whitelist",
            "uid": "alice",
            "target": "carol",
            "before": {"whitelisted": False},
            "after": {"whitelisted": True},
        },
    ]


# ----------------------------------------------------------------- existing users


def test_adopting_an_unowned_user_says_so() -> None:
    result = changes(State({"a": User("a", name="a")}), State({"a": live_user("a", owner=None)}), ctx())
    assert result == [
        {
            "action": "adopt_user",
            "uid": "a",
            "before": {"owner": None},
            "after": {"owner": OWNER},
            "note": "adopt: no owner yet",
        }
    ]


def test_taking_over_another_owners_user_names_the_owner() -> None:
    live = State({"a": live_user("a", owner="sales")})
    result = changes(State({"a": User("a", name="a")}), live, ctx(allow_takeover=True))
    assert result == [
        {
            "action": "adopt_user",
            "uid": "a",
            "before": {"owner": "sales"},
            "after": {"owner": OWNER},
            "note": "take over from 'sales'",
        }
    ]


def test_conflicts_are_listed_by_uid_with_their_owners_and_the_rest_is_still_planned() -> None:
    desired = State({uid: User(uid, name=uid.upper()) for uid in ("a", "b", "c", "d")})
    live = State(
        {
            "a": live_user("a", owner="sales"),
            "b": live_user("b", owner="ops"),
            "c": live_user("c"),
            "d": live_user("d"),
        }
    )
    result = plan(desired, live, ctx())
    assert result.conflicts == ("a", "b")
    assert dict(result.conflict_owners) == {"a": "sales", "b": "ops"}
    assert [(c.action.value, c.uid) for c in result.changes] == [("update_user", "c"), ("update_user", "d")]
    assert result.owner == OWNER and result.created_at == NOW


def test_reactivating_and_deactivating_say_from_what_to_what() -> None:
    desired = State({"on": User("on", active=True), "off": User("off", active=False)})
    live = State({"on": live_user("on", active=False), "off": live_user("off", active=True)})
    assert changes(desired, live, ctx()) == [
        {"action": "reactivate_user", "uid": "on", "before": {"active": False}, "after": {"active": True}},
        {"action": "deactivate_user", "uid": "off", "before": {"active": True}, "after": {"active": False}},
    ]


def test_a_whitelist_mode_switch_says_from_what_to_what() -> None:
    result = changes(State({"a": User("a", whitelist_mode=True)}), State({"a": live_user("a")}), ctx())
    assert result == [
        {
            "action": "set_whitelist_mode",
            "uid": "a",
            "before": {"whitelist_mode": False},
            "after": {"whitelist_mode": True},
        }
    ]


def test_removed_relations_say_they_were_there() -> None:
    have = live_user("a", blocklist=frozenset({"b"}), whitelist=frozenset({"b"}))
    desired = State({"a": User("a", blocklist=frozenset(), whitelist=frozenset())})
    assert changes(desired, State({"a": have, "b": live_user("b")}), ctx()) == [
        {
            "action": "remove_block",
            "uid": "a",
            "target": "b",
            "before": {"blocked": True},
            "after": {"blocked": False},
        },
        {
            "action": "remove_whitelist",
            "uid": "a",
            "target": "b",
            "before": {"whitelisted": True},
            "after": {"whitelisted": False},
        },
    ]


def test_every_differing_field_is_updated_and_empty_means_the_same_as_unset() -> None:
    want = User("a", name="A", avatar="", role="admin", status_message="on call", tags=())
    have = live_user("a", name="a", avatar=None, role="agent", status_message=None, tags=None)
    assert changes(State({"a": want}), State({"a": have}), ctx()) == [
        {
            "action": "update_user",
            "uid": "a",
            "before": {"name": "a", "role": "agent", "status_message": None},
            "after": {"name": "A", "role": "admin", "status_message": "on call"},
        }
    ]


def test_an_empty_value_replacing_a_set_one_is_an_update() -> None:
    want = User("a", role="", tags=())
    have = live_user("a", role="agent", tags=("x",))
    assert changes(State({"a": want}), State({"a": have}), ctx()) == [
        {
            "action": "update_user",
            "uid": "a",
            "before": {"role": "agent", "tags": ["x"]},
            "after": {"role": "", "tags": []},
        }
    ]


def test_tokens_are_expired_only_when_the_cutoff_moves_later() -> None:
    cutoff = datetime(2026, 11, 1, tzinfo=UTC)
    desired = State(
        {uid: User(uid, tokens_valid_after=cutoff) for uid in ("never", "earlier", "same", "later")}
    )
    live = State(
        {
            "never": live_user("never"),
            "earlier": live_user("earlier", tokens_valid_after=cutoff - timedelta(seconds=1)),
            "same": live_user("same", tokens_valid_after=cutoff),
            "later": live_user("later", tokens_valid_after=cutoff + timedelta(days=1)),
        }
    )
    assert changes(desired, live, ctx()) == [
        {
            "action": "expire_tokens",
            "uid": "earlier",
            "before": {"tokens_valid_after": "2026-10-31T23:59:59Z"},
            "after": {"tokens_valid_after": "2026-11-01T00:00:00Z"},
        },
        {
            "action": "expire_tokens",
            "uid": "never",
            "before": {"tokens_valid_after": None},
            "after": {"tokens_valid_after": "2026-11-01T00:00:00Z"},
        },
    ]


def test_a_frozen_user_is_left_with_a_warning_and_the_next_users_are_still_planned() -> None:
    # A user declared `active: false` that is deactivated stays so; CometChat refuses
    # changes to it (Nexconn keeps nothing of it to compare: test_reactivation.py).
    desired = State({"a": User("a", name="New", active=False), "b": User("b", name="New")})
    live = State({"a": live_user("a", active=False), "b": live_user("b")})
    result = plan(desired, live, ctx("cometchat"))
    assert [(c.action.value, c.uid) for c in result.changes] == [("update_user", "b")]
    assert result.warnings == (
        "a is deactivated, and 1 change(s) to it are left until it is reactivated "
        "(remove active: false): the platform refuses changes to deactivated users",
    )


# ----------------------------------------------------------------- warnings


def test_relations_to_unknown_users_are_left_out_saying_what_and_why() -> None:
    desired = State(
        {"a": User("a", blocklist=frozenset({"ghost"}), whitelist=frozenset({"ghost"}))},
        bans={"phantom": Ban("phantom")},
    )
    result = plan(desired, State({"a": live_user("a")}, bans={}), ctx())
    assert result.changes == ()
    unknown = "is not a user on the platform and not declared in the manifest"
    assert set(result.warnings) == {
        f"add_block a:ghost skipped: 'ghost' {unknown}",
        f"add_whitelist a:ghost skipped: 'ghost' {unknown}",
        f"ban phantom skipped: 'phantom' {unknown}",
    }


def test_unreadable_live_lists_are_left_alone_with_a_warning_per_list_by_uid() -> None:
    desired = State(
        {
            "z": User("z", blocklist=frozenset()),
            "m": User("m", name="m"),  # leaves its lists alone: no warning
            "a": User("a", blocklist=frozenset(), whitelist=frozenset()),
        }
    )
    live = State(
        {
            "z": live_user("z", blocklist=None),
            "m": live_user("m", blocklist=None),
            "a": live_user("a", blocklist=None, whitelist=None),
        }
    )
    assert plan(desired, live, ctx()).warnings == (
        "a: the live blocklist cannot be read (for example, the user is deactivated); it is left as it is",
        "a: the live whitelist cannot be read (for example, the user is deactivated); it is left as it is",
        "z: the live blocklist cannot be read (for example, the user is deactivated); it is left as it is",
    )


# ----------------------------------------------------------------------- prune


def test_pruning_by_deletion_records_what_was_deleted() -> None:
    live = State({"gone": live_user("gone", name="Gone", active=False), "kept": live_user("kept")})
    result = changes(State({"kept": User("kept")}), live, ctx(prune="delete"))
    assert result == [
        {"action": "delete_user", "uid": "gone", "before": {"name": "Gone", "active": False}, "after": {}}
    ]


def test_pruning_by_deactivation_says_why_and_skips_every_user_it_must() -> None:
    live = State(
        {
            "a-unowned": live_user("a-unowned", owner=None),
            "b-protected": live_user("b-protected"),
            "c-inactive": live_user("c-inactive", active=False),
            "d-gone": live_user("d-gone"),
        }
    )
    result = changes(State({}), live, ctx(prune="deactivate", protected=frozenset({"b-protected"})))
    assert result == [
        {
            "action": "deactivate_user",
            "uid": "d-gone",
            "before": {"active": True},
            "after": {"active": False},
            "note": "pruned: not in the manifest",
        }
    ]


def test_a_platform_that_cannot_delete_deactivates_instead() -> None:
    live = State({"gone": live_user("gone"), "off": live_user("off", active=False)})
    assert [c["action"] for c in changes(State({}), live, ctx("nexconn", prune="delete"))] == [
        "deactivate_user"
    ]


def test_the_managed_count_is_declared_users_and_owned_users_on_the_platform() -> None:
    desired = State({"a": User("a"), "new": User("new")})
    live = State({"a": live_user("a", owner=None), "b": live_user("b"), "c": live_user("c", owner="sales")})
    assert plan(desired, live, ctx()).managed == 2  # a (declared) and b (owned)


# ------------------------------------------------------------------------ bans


def test_a_new_ban_and_an_unban_say_what_the_ban_was() -> None:
    until = datetime(2026, 12, 31, tzinfo=UTC)
    desired = State({"a": User("a"), "b": User("b"), "c": User("c")}, bans={"a": Ban("a", until)})
    live = State(
        {uid: live_user(uid) for uid in ("a", "b", "c")},
        bans={"b": Ban("b", until), "c": Ban("c")},
    )
    assert changes(desired, live, ctx()) == [
        {"action": "unban_user", "uid": "b", "before": {"until": "2026-12-31T00:00:00Z"}, "after": {}},
        {"action": "unban_user", "uid": "c", "before": {"until": "forever"}, "after": {}},
        {
            "action": "ban_user",
            "uid": "a",
            "before": {"until": None},
            "after": {"until": "2026-12-31T00:00:00Z"},
        },
    ]


def test_a_ban_changed_from_forever_to_a_date_and_back() -> None:
    until = datetime(2026, 12, 31, tzinfo=UTC)
    desired = State({"a": User("a"), "b": User("b")}, bans={"a": Ban("a", until), "b": Ban("b")})
    live = State({"a": live_user("a"), "b": live_user("b")}, bans={"a": Ban("a"), "b": Ban("b", until)})
    assert changes(desired, live, ctx()) == [
        {
            "action": "ban_user",
            "uid": "a",
            "before": {"until": "forever"},
            "after": {"until": "2026-12-31T00:00:00Z"},
        },
        {
            "action": "ban_user",
            "uid": "b",
            "before": {"until": "2026-12-31T00:00:00Z"},
            "after": {"until": "forever"},
        },
    ]


def test_a_ban_end_within_two_minutes_is_the_same_ban() -> None:
    until = datetime(2026, 12, 31, tzinfo=UTC)
    desired = State({"a": User("a"), "b": User("b")}, bans={"a": Ban("a", until), "b": Ban("b", until)})
    live = State(
        {"a": live_user("a"), "b": live_user("b")},
        bans={
            "a": Ban("a", until + timedelta(minutes=2)),
            "b": Ban("b", until - timedelta(minutes=2, seconds=1)),
        },
    )
    assert [(c["uid"], c["before"]) for c in changes(desired, live, ctx())] == [
        ("b", {"until": "2026-12-30T23:57:59Z"})
    ]


def test_protected_and_deleted_users_are_not_banned_and_later_bans_still_are() -> None:
    desired = State(
        {"x": User("x")},
        bans={"a-protected": Ban("a-protected"), "b-gone": Ban("b-gone"), "x": Ban("x")},
    )
    live = State({uid: live_user(uid) for uid in ("a-protected", "b-gone", "x")}, bans={})
    result = changes(desired, live, ctx(prune="delete", protected=frozenset({"a-protected"})))
    assert [(c["action"], c["uid"]) for c in result] == [("ban_user", "x"), ("delete_user", "b-gone")]


def test_a_ban_longer_than_one_call_allows_is_capped_and_says_so() -> None:
    desired = State(
        {"a": User("a"), "b": User("b")}, bans={"a": Ban("a"), "b": Ban("b", NOW + timedelta(days=31))}
    )
    live = State({"a": live_user("a"), "b": live_user("b")}, bans={})
    note = "longer than 30 days: set for 30 days, renewed by a later run"
    capped = "2026-12-21T12:00:00Z"
    assert changes(desired, live, ctx("nexconn")) == [
        {
            "action": "ban_user",
            "uid": "a",
            "before": {"until": None},
            "after": {"until": capped},
            "note": note,
        },
        {
            "action": "ban_user",
            "uid": "b",
            "before": {"until": None},
            "after": {"until": capped},
            "note": note,
        },
    ]


def test_a_ban_of_exactly_the_longest_call_is_not_capped() -> None:
    desired = State({"a": User("a")}, bans={"a": Ban("a", NOW + timedelta(days=30))})
    assert changes(desired, State({"a": live_user("a")}, bans={}), ctx("nexconn")) == [
        {
            "action": "ban_user",
            "uid": "a",
            "before": {"until": None},
            "after": {"until": "2026-12-21T12:00:00Z"},
        }
    ]


def test_a_capped_ban_is_renewed_once_less_than_half_is_left() -> None:
    desired = State(
        {uid: User(uid) for uid in ("half", "less")}, bans={"half": Ban("half"), "less": Ban("less")}
    )
    live = State(
        {uid: live_user(uid) for uid in ("half", "less")},
        bans={
            "half": Ban("half", NOW + timedelta(days=15)),
            "less": Ban("less", NOW + timedelta(days=15) - timedelta(seconds=1)),
        },
    )
    assert changes(desired, live, ctx("nexconn")) == [
        {
            "action": "ban_user",
            "uid": "less",
            "before": {"until": "2026-12-06T11:59:59Z"},
            "after": {"until": "2026-12-21T12:00:00Z"},
            "note": "renew: longer than 30 days: set for 30 days, renewed by a later run",
        }
    ]


def test_a_short_ban_on_a_capped_platform_is_compared_as_usual() -> None:
    until = NOW + timedelta(days=3)
    desired = State({"a": User("a"), "b": User("b")}, bans={"a": Ban("a", until), "b": Ban("b", until)})
    live = State({"a": live_user("a"), "b": live_user("b")}, bans={"a": Ban("a", until), "b": Ban("b", NOW)})
    assert changes(desired, live, ctx("nexconn")) == [
        {
            "action": "ban_user",
            "uid": "b",
            "before": {"until": "2026-11-21T12:00:00Z"},
            "after": {"until": "2026-11-24T12:00:00Z"},
        }
    ]


def test_seed_mode_bans_only_the_users_it_creates() -> None:
    desired = State({"new": User("new"), "old": User("old")}, bans={"new": Ban("new"), "old": Ban("old")})
    live = State({"old": live_user("old")}, bans={"gone": Ban("gone")})
    result = changes(desired, live, ctx(mode="seed"))
    assert [(c["action"], c["uid"]) for c in result] == [("create_user", "new"), ("ban_user", "new")]


def test_unreadable_list_warnings_are_sorted_by_uid_not_by_their_text() -> None:
    # By text, "a-b: ..." would come first ('-' sorts before ':'); by uid, "a" does.
    desired = State({uid: User(uid, blocklist=frozenset()) for uid in ("a-b", "a")})
    live = State({uid: live_user(uid, blocklist=None) for uid in ("a-b", "a")})
    assert [warning.split(":")[0] for warning in plan(desired, live, ctx()).warnings] == ["a", "a-b"]


def test_the_managed_count_counts_declared_users_whoever_owns_them() -> None:
    desired = State({"a": User("a"), "b": User("b")})
    live = State({"a": live_user("a", owner=None), "b": live_user("b")})
    assert plan(desired, live, ctx()).managed == 2  # a counts though it has no owner yet


def test_a_ban_for_good_on_a_capped_platform_is_set_for_the_longest_call_saying_so() -> None:
    desired = State({"a": User("a")}, bans={"a": Ban("a")})
    live = State({"a": live_user("a")}, bans={"a": Ban("a")})
    assert changes(desired, live, ctx("nexconn")) == [
        {
            "action": "ban_user",
            "uid": "a",
            "before": {"until": "forever"},
            "after": {"until": "2026-12-21T12:00:00Z"},
            "note": "longer than 30 days: set for 30 days, renewed by a later run",
        }
    ]


# -------------------------------------------------------------------- roles


def test_a_role_field_is_written_unless_both_sides_are_empty() -> None:
    live = State(
        roles={"agent": Role("agent", description="Old", owner=OWNER), "lead": Role("lead", owner=OWNER)}
    )
    desired = State(
        roles={"agent": Role("agent", description="", metadata={}), "lead": Role("lead", description="Leads")}
    )
    assert changes(desired, live, ctx("cometchat")) == [
        # "" empties a description; {} on a role without metadata changes nothing
        {
            "action": "update_role",
            "uid": "agent",
            "before": {"description": "Old"},
            "after": {"description": ""},
        },
        {
            "action": "update_role",
            "uid": "lead",
            "before": {"description": None},
            "after": {"description": "Leads"},
        },
    ]


def test_adopting_a_role_writes_its_owner_with_what_it_had_before() -> None:
    live = State(roles={"agent": Role("agent", description="Agents")})
    [adopt] = plan(
        State(roles={"agent": Role("agent", description="Agents")}), live, ctx("cometchat")
    ).changes
    assert (adopt.before, adopt.after, adopt.note) == (
        {"owner": None},
        {"owner": OWNER},
        "adopt: no owner yet",
    )


def test_roles_still_held_after_the_plan_are_not_pruned_whoever_holds_them() -> None:
    live = State(
        users={
            # not ours: not pruned, so it still holds its role
            "x": live_user("x", owner="sales", role="kept"),
            # ours and undeclared: deleted by the plan, so its role goes too
            **{f"d{i}": live_user(f"d{i}", role="gone") for i in range(3)},
            # declared with another role: moved off it
            **{f"m{i}": live_user(f"m{i}", role="old") for i in range(30)},
        },
        roles={name: Role(name, owner=OWNER) for name in ("kept", "gone", "old", "new", "spare")},
    )
    desired = State(
        users={
            **{f"m{i}": User(f"m{i}", name=f"m{i}", role="new") for i in range(30)},
            "n": User("n", name="N", role="spare"),  # created with an undeclared live role
            "plain": User("plain", name="Plain"),  # created without a role
        },
        roles={"new": Role("new")},
    )
    result = plan(desired, live, ctx("cometchat", prune="delete"))
    deleted_roles = sorted(c.uid for c in result.changes if c.action.value == "delete_role")
    assert deleted_roles == ["gone", "old"]
    assert result.warnings == (
        "role kept is not in the manifest but is not deleted: 1 user(s) still hold it (x); "
        "give them another role first",
        "role spare is not in the manifest but is not deleted: 1 user(s) still hold it (n); "
        "give them another role first",
    )


def test_a_user_reactivated_on_nexconn_has_its_fields_written_from_nothing() -> None:
    # Nexconn restores the uid alone: no name, and no tags (an empty list, not unknown).
    desired = State({"a": User("a", name="A", tags=("x",))})
    live = State({"a": live_user("a", active=False, tags=("x",))})
    assert changes(desired, live, ctx("nexconn"))[1] == {
        "action": "update_user",
        "uid": "a",
        "before": {"name": None, "tags": []},
        "after": {"name": "A", "tags": ["x"]},
    }
