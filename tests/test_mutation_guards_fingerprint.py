"""What a saved plan's fingerprints are computed from, and the `Change` value's own
guarantees, found open by mutation testing (docs/mutation.md).

A fingerprint is the first 16 hex digits of the SHA-256 of the live object's JSON (keys
sorted); the expected digests here are computed from the object written out by hand.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from chatroster.changes import Action, Change
from chatroster.fingerprint import fingerprint, live_object, reached
from chatroster.model import Ban, Role, State, User, thaw

OWNER = "team"
UNTIL = datetime(2026, 12, 31, 8, 30, tzinfo=UTC)


def digest(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True).encode()).hexdigest()[:16]


def user(uid: str, **fields: Any) -> User:
    return User(uid, **{"name": uid.title(), "active": True, "owner": OWNER, **fields})


def test_a_ban_change_rests_on_the_live_ban_and_its_end() -> None:
    change = Change(Action.UNBAN_USER, "bob", before={"until": "2026-12-31T08:30:00Z"})
    banned = State({"bob": user("bob")}, bans={"bob": Ban("bob", UNTIL)})
    assert live_object(change, banned, OWNER) == {"until": "2026-12-31T08:30:00Z"}
    assert fingerprint(change, banned, OWNER) == digest({"until": "2026-12-31T08:30:00Z"})
    forever = State({"bob": user("bob")}, bans={"bob": Ban("bob")})
    assert live_object(change, forever, OWNER) == {"until": None}
    assert live_object(change, State({"bob": user("bob")}, bans={}), OWNER) is None
    assert live_object(change, State({"bob": user("bob")}), OWNER) is None  # bans not read
    other = State({"bob": user("bob")}, bans={"carol": Ban("carol", UNTIL)})
    assert live_object(change, other, OWNER) is None


def test_an_update_rests_on_the_fields_it_writes_and_on_ownership_never_on_the_owner_field() -> None:
    change = Change(Action.UPDATE_USER, "bob", before={"name": "Bob"}, after={"name": "Robert"})
    live = State({"bob": user("bob", role="agent")})
    assert live_object(change, live, OWNER) == {"name": "Bob", "claimable": True}
    assert fingerprint(change, live, OWNER) == digest({"claimable": True, "name": "Bob"})
    adopt = Change(Action.ADOPT_USER, "bob", before={"owner": None}, after={"owner": OWNER})
    assert live_object(adopt, State({"bob": user("bob", owner="sales")}), OWNER) == {"claimable": False}


def test_the_whitelist_mode_and_token_cutoff_are_read_from_the_live_user() -> None:
    live = State({"bob": user("bob", whitelist_mode=False, tokens_valid_after=UNTIL)})
    mode = Change(Action.SET_WHITELIST_MODE, "bob", after={"whitelist_mode": True})
    assert live_object(mode, live, OWNER) == {"whitelist_mode": False, "claimable": True}
    tokens = Change(Action.EXPIRE_TOKENS, "bob", after={"tokens_valid_after": "2027-01-01T00:00:00Z"})
    assert live_object(tokens, live, OWNER) == {
        "tokens_valid_after": "2026-12-31T08:30:00Z",
        "claimable": True,
    }


def test_a_relation_of_a_user_that_is_gone_rests_on_nothing() -> None:
    change = Change(Action.ADD_BLOCK, "bob", target="carol", after={"blocked": True})
    assert live_object(change, State({}), OWNER) is None
    assert live_object(change, State({"bob": user("bob", blocklist=frozenset({"carol"}))}), OWNER) is True


def test_an_adoption_is_reached_once_the_owner_is_set() -> None:
    adopt = Change(Action.ADOPT_USER, "bob", before={"owner": None}, after={"owner": OWNER})
    assert reached(adopt, State({"bob": user("bob")})) is True
    assert reached(adopt, State({"bob": user("bob", owner=None)})) is False


def test_a_whitelist_mode_switch_is_reached_once_the_mode_is_set() -> None:
    switch = Change(Action.SET_WHITELIST_MODE, "bob", after={"whitelist_mode": True})
    assert reached(switch, State({"bob": user("bob", whitelist_mode=True)})) is True
    assert reached(switch, State({"bob": user("bob", whitelist_mode=False)})) is False


# ----------------------------------------------------------------- Change


def test_a_change_keeps_a_frozen_copy_of_what_it_is_given() -> None:
    before: dict[str, Any] = {"tags": ["a"]}
    after: dict[str, Any] = {"tags": ["a", "b"]}
    change = Change(Action.UPDATE_USER, "bob", before=before, after=after)
    before["tags"].append("x")
    after["tags"].append("y")
    assert thaw(change.before) == {"tags": ["a"]}
    assert thaw(change.after) == {"tags": ["a", "b"]}
    with pytest.raises(TypeError):
        change.after["tags"] = []  # type: ignore[index]


def test_a_change_survives_its_json_form_whole() -> None:
    change = Change(
        Action.BAN_USER, "bob", before={"until": None}, after={"until": "forever"}, note="renew: longer"
    )
    data = change.to_json()
    assert data == {
        "action": "ban_user",
        "uid": "bob",
        "before": {"until": None},
        "after": {"until": "forever"},
        "note": "renew: longer",
    }
    assert Change.from_json(data) == change
    block = Change(
        Action.ADD_BLOCK, "bob", target="carol", before={"blocked": False}, after={"blocked": True}
    )
    assert block.to_json()["target"] == "carol"
    assert Change.from_json(block.to_json()) == block


def test_a_change_read_without_before_after_or_note_has_none_of_them() -> None:
    change = Change.from_json({"action": "delete_user", "uid": "bob"})
    assert (dict(change.before), dict(change.after), change.note, change.target) == ({}, {}, None, None)
    assert change.to_json() == {"action": "delete_user", "uid": "bob", "before": {}, "after": {}}


# ------------------------------------------------------------------ reached


def ban_change(until: str) -> Change:
    return Change(Action.BAN_USER, "bob", before={"until": None}, after={"until": until})


def banned(until: datetime | None) -> State:
    return State({"bob": user("bob")}, bans={"bob": Ban("bob", until)})


def test_a_ban_is_reached_when_its_end_is_within_two_minutes() -> None:
    wanted = ban_change("2026-12-31T08:30:00Z")
    assert reached(wanted, banned(UNTIL + timedelta(minutes=2))) is True
    assert reached(wanted, banned(UNTIL - timedelta(minutes=2))) is True
    assert reached(wanted, banned(UNTIL + timedelta(minutes=2, seconds=1))) is False
    assert reached(wanted, banned(None)) is False  # banned for good is not banned until then
    assert reached(wanted, State({"bob": user("bob")}, bans={})) is False


def test_a_ban_for_good_is_reached_only_by_a_ban_for_good() -> None:
    assert reached(ban_change("forever"), banned(None)) is True
    assert reached(ban_change("forever"), banned(UNTIL)) is False


def test_an_unban_is_reached_when_no_ban_is_left() -> None:
    unban = Change(Action.UNBAN_USER, "bob", before={"until": "forever"})
    assert reached(unban, State({"bob": user("bob")}, bans={})) is True
    assert reached(unban, banned(None)) is False


@pytest.mark.parametrize(
    ("action", "lists", "done"),
    [
        (Action.ADD_BLOCK, {"blocklist": frozenset({"carol"})}, True),
        (Action.ADD_BLOCK, {"blocklist": frozenset()}, False),
        (Action.ADD_BLOCK, {"blocklist": None}, False),  # unreadable: not known to be there
        (Action.REMOVE_BLOCK, {"blocklist": frozenset()}, True),
        (Action.REMOVE_BLOCK, {"blocklist": frozenset({"carol"})}, False),
        (Action.ADD_WHITELIST, {"whitelist": frozenset({"carol"}), "blocklist": frozenset()}, True),
        (Action.REMOVE_WHITELIST, {"whitelist": frozenset({"carol"}), "blocklist": frozenset()}, False),
    ],
)
def test_a_relation_change_is_reached_when_the_relation_is_as_wanted(
    action: Action, lists: dict[str, Any], done: bool
) -> None:
    change = Change(action, "bob", target="carol")
    assert reached(change, State({"bob": user("bob", **lists)})) is done


@pytest.mark.parametrize(
    ("live", "done"),
    [(None, False), (UNTIL - timedelta(seconds=1), False), (UNTIL, True), (UNTIL + timedelta(days=1), True)],
)
def test_expired_tokens_are_reached_once_the_cutoff_is_at_least_the_wanted_one(
    live: datetime | None, done: bool
) -> None:
    change = Change(Action.EXPIRE_TOKENS, "bob", after={"tokens_valid_after": "2026-12-31T08:30:00Z"})
    assert reached(change, State({"bob": user("bob", tokens_valid_after=live)})) is done


@pytest.mark.parametrize(
    ("after", "fields", "done"),
    [
        ({"tags": ["b", "a"]}, {"tags": ("a", "b")}, True),
        ({"tags": ["a"]}, {"tags": ("a", "b")}, False),
        ({"tags": "ab"}, {"tags": ("a", "b")}, False),  # a text is not a list of its letters
        ({"role": None}, {"role": ""}, True),  # empty and unset are the same
        ({"metadata": {}}, {"metadata": None}, True),
        ({"role": "x"}, {"role": None}, False),
        ({"name": "Bob"}, {}, True),
    ],
)
def test_an_update_is_reached_when_every_field_it_writes_is_as_wanted(
    after: dict[str, Any], fields: dict[str, Any], done: bool
) -> None:
    change = Change(Action.UPDATE_USER, "bob", after=after)
    assert reached(change, State({"bob": user("bob", **fields)})) is done


# ---------------------------------------------------------- roles and friends

ROLE = Role("agent", description="Agents", metadata={"tier": 1}, owner=OWNER)


def test_a_role_change_rests_on_the_live_role_its_fields_and_its_owner() -> None:
    live = State({}, roles={"agent": ROLE})
    create = Change(Action.CREATE_ROLE, "agent", after={"description": "Agents"})
    assert live_object(create, live, OWNER) == {"exists": True, "claimable": True}
    assert fingerprint(create, live, OWNER) == digest({"claimable": True, "exists": True})
    assert live_object(create, State({}, roles={}), OWNER) is None
    assert live_object(create, State({}), OWNER) is None  # roles not read
    theirs = State({}, roles={"agent": Role("agent", owner="sales")})
    assert live_object(create, theirs, OWNER) == {"exists": True, "claimable": False}
    unowned = State({}, roles={"agent": Role("agent")})
    assert live_object(Change(Action.DELETE_ROLE, "agent"), unowned, OWNER) == {
        "exists": True,
        "claimable": True,
    }
    update = Change(
        Action.UPDATE_ROLE,
        "agent",
        before={"description": "Old"},
        after={"description": "New", "metadata": {"tier": 2}, "owner": OWNER},
    )
    assert live_object(update, live, OWNER) == {
        "description": "Agents",
        "metadata": {"tier": 1},
        "claimable": True,
    }


def test_a_role_change_is_reached_when_the_live_role_has_what_it_writes() -> None:
    live = State({}, roles={"agent": ROLE})
    for after in ({"description": "Agents"}, {"metadata": {"tier": 1}}, {"owner": OWNER}):
        assert reached(Change(Action.UPDATE_ROLE, "agent", after=after), live), after
        assert reached(Change(Action.CREATE_ROLE, "agent", after=after), live), after
    for after in ({"description": "Other"}, {"metadata": {"tier": 2}}, {"owner": "sales"}):
        assert not reached(Change(Action.UPDATE_ROLE, "agent", after=after), live), after
    create = Change(Action.CREATE_ROLE, "agent", after={"description": "Agents"})
    assert not reached(create, State({}, roles={}))
    assert not reached(create, State({}))
    delete = Change(Action.DELETE_ROLE, "agent")
    assert not reached(delete, live)
    assert reached(delete, State({}, roles={}))
    assert reached(delete, State({}, roles={"other": ROLE}))


FRIENDS = {"carol": {"alias": "Caz", "ext": {"team": "red"}}}


def test_a_friendship_is_reached_when_the_live_friends_have_it_or_not() -> None:
    live = State({"bob": user("bob", friends=FRIENDS)})
    assert reached(Change(Action.ADD_FRIEND, "bob", target="carol"), live)
    assert not reached(Change(Action.ADD_FRIEND, "bob", target="dave"), live)
    assert not reached(Change(Action.REMOVE_FRIEND, "bob", target="carol"), live)
    assert reached(Change(Action.REMOVE_FRIEND, "bob", target="dave"), live)
    assert not reached(Change(Action.ADD_FRIEND, "bob", target="carol"), State({"bob": user("bob")}))
    assert live_object(Change(Action.ADD_FRIEND, "bob", target="carol"), live, OWNER) is True
    assert live_object(Change(Action.ADD_FRIEND, "bob", target="dave"), live, OWNER) is False
    assert (
        live_object(Change(Action.ADD_FRIEND, "bob", target="carol"), State({"bob": user("bob")}), OWNER)
        is None
    )


def test_a_friend_s_alias_and_ext_rest_on_what_the_user_keeps_about_that_friend() -> None:
    live = State({"bob": user("bob", friends=FRIENDS)})
    alias = Change(Action.UPDATE_FRIEND, "bob", target="carol", before={"alias": "C"}, after={"alias": "Caz"})
    assert live_object(alias, live, OWNER) == {"alias": "Caz", "ext": {"team": "red"}}
    assert fingerprint(alias, live, OWNER) == digest({"alias": "Caz", "ext": {"team": "red"}})
    assert reached(alias, live)
    assert reached(Change(Action.UPDATE_FRIEND, "bob", target="carol", after={"ext": {"team": "red"}}), live)
    assert not reached(Change(Action.UPDATE_FRIEND, "bob", target="carol", after={"alias": "C"}), live)
    stranger = Change(Action.UPDATE_FRIEND, "bob", target="dave", after={"alias": "Caz"})
    assert live_object(stranger, live, OWNER) is None and not reached(stranger, live)
    unread = State({"bob": user("bob")})
    assert live_object(alias, unread, OWNER) is None and not reached(alias, unread)
    assert live_object(alias, State({}), OWNER) is None and not reached(alias, State({}))


def test_the_friend_permission_is_read_from_the_live_user() -> None:
    live = State({"bob": user("bob", friend_permission="need_verify")})
    change = Change(
        Action.SET_FRIEND_PERMISSION,
        "bob",
        before={"friend_permission": "need_verify"},
        after={"friend_permission": "free"},
    )
    assert live_object(change, live, OWNER) == {"friend_permission": "need_verify", "claimable": True}
    assert not reached(change, live)
    assert reached(change, State({"bob": user("bob", friend_permission="free")}))


def test_tokens_are_expired_once_the_live_cutoff_is_at_or_after_the_wanted_one() -> None:
    change = Change(Action.EXPIRE_TOKENS, "bob", after={"tokens_valid_after": "2026-12-31T08:30:00Z"})
    assert reached(change, State({"bob": user("bob", tokens_valid_after=UNTIL)}))
    assert reached(change, State({"bob": user("bob", tokens_valid_after=UNTIL + timedelta(seconds=1))}))
    assert not reached(change, State({"bob": user("bob", tokens_valid_after=UNTIL - timedelta(seconds=1))}))
    assert not reached(change, State({"bob": user("bob")}))
    assert not reached(
        Change(Action.EXPIRE_TOKENS, "bob"), State({"bob": user("bob", tokens_valid_after=UNTIL)})
    )
