"""The local provider against real SQLite files: what it reads, what each action writes,
and how a batch fails."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from chatroster.changes import Action, Change
from chatroster.errors import PartialFailure, ProviderError
from chatroster.model import Ban, ProviderConfig, User
from chatroster.providers.base import Scope
from chatroster.providers.local import LocalProvider, open_local
from chatroster.store.rows import load_json

NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
OWNER = "team"


class Clock:
    """A clock the test moves by hand, so token times are exact."""

    def __init__(self, at: datetime) -> None:
        self.at = at.timestamp()

    def __call__(self) -> float:
        return self.at


@pytest.fixture
def clock() -> Clock:
    return Clock(NOW)


@pytest.fixture
def local(tmp_path: Path, clock: Clock) -> Iterator[LocalProvider]:
    provider = LocalProvider(tmp_path / "local.db", clock=clock)
    yield provider
    provider.close()


def scope(*uids: str, **options: Any) -> Scope:
    return Scope(uids=frozenset(uids), owner=OWNER, **options)


def create(uid: str, **after: Any) -> Change:
    return Change(Action.CREATE_USER, uid, after={"name": uid.title(), "owner": OWNER, **after})


def seed(local: LocalProvider, *uids: str, owner: str | None = OWNER) -> None:
    local.store.insert_users([User(uid, name=uid.title(), owner=owner) for uid in uids])


def read_user(local: LocalProvider, uid: str, **options: Any) -> User:
    return local.read(scope(uid, **options)).users[uid]


ALICE = {
    "name": "Alice Ng",
    "avatar": "https://example.com/alice.png",
    "link": "https://example.com/u/alice",
    "role": "agent",
    "status_message": "On call",
    "metadata": {"team": "core", "seat": 4},
    "tags": ["staff", "beta"],
    "profile": {"email": "alice@example.com", "gender": 2, "ext": {"ext_dept": "eng"}},
    "active": False,
    "whitelist_mode": True,
    "tokens_valid_after": "2026-11-01T00:00:00Z",
}


# ----------------------------------------------------------------------------- read


def test_create_then_read_returns_every_field(local: LocalProvider) -> None:
    local.create_users([create("alice", **ALICE)])

    assert read_user(local, "alice") == User(
        "alice",
        name="Alice Ng",
        avatar="https://example.com/alice.png",
        link="https://example.com/u/alice",
        role="agent",
        status_message="On call",
        metadata={"team": "core", "seat": 4},
        tags=("beta", "staff"),
        profile={"email": "alice@example.com", "gender": 2, "ext": {"ext_dept": "eng"}},
        active=False,
        whitelist_mode=True,
        tokens_valid_after=datetime(2026, 11, 1, tzinfo=UTC),
        owner=OWNER,
    )


def test_reads_declared_and_extra_uids_that_exist_and_nothing_else(local: LocalProvider) -> None:
    seed(local, "alice", "bob", "carol")

    live = local.read(scope("alice", "ghost", extra_uids=frozenset({"bob"})))

    assert set(live.users) == {"alice", "bob"}


@pytest.mark.parametrize(
    "wanted",
    [
        pytest.param(range(0, 6000, 2), id="half of the users in their span: read as a range"),
        pytest.param(range(0, 6000, 3), id="a third of them: read by uid"),
        pytest.param(range(100, 2600), id="a run in the middle: read as a range"),
        pytest.param(range(0, 6000, 30), id="a few: read by uid"),
    ],
)
def test_reads_exactly_the_users_asked_for_however_spread(local: LocalProvider, wanted: range) -> None:
    local.store.insert_users([User(f"u{i:04}", name=f"U{i}") for i in range(6000)], owner=OWNER)
    uids = {f"u{i:04}" for i in wanted} | {"u9999"}  # and one that does not exist

    users = local.store.get_users(uids)

    assert set(users) == uids - {"u9999"}
    assert all(user.name == f"U{int(uid[1:])}" for uid, user in users.items())


@pytest.mark.parametrize(
    "text",
    ['{"email":"a@example.com","level":1}', ' {"a": [1, 2.5, null]} ', "[]", '{"a":1}x', "", '"\\ud800"'],
)
def test_stored_json_reads_as_json_loads_reads_it(text: str) -> None:
    try:
        expected: Any = json.loads(text)
    except ValueError as error:
        with pytest.raises(type(error)):
            load_json(text)
    else:
        assert load_json(text) == expected


def test_owned_users_are_read_for_pruning(local: LocalProvider) -> None:
    seed(local, "alice", "old")
    seed(local, "theirs", owner="other-team")
    seed(local, "nobodys", owner=None)

    assert set(local.read(scope("alice", owned=True)).users) == {"alice", "old"}
    assert set(local.read(scope("alice")).users) == {"alice"}


def test_read_only_fills_managed_blocklists(local: LocalProvider) -> None:
    seed(local, "alice", "bob", "carol")
    local.store.add_relations("blocks", [("alice", "carol"), ("bob", "carol")])

    live = local.read(scope("alice", "bob", "carol", blocklists=frozenset({"alice", "carol"})))

    assert live.users["alice"].blocklist == frozenset({"carol"})
    assert live.users["carol"].blocklist == frozenset()  # managed and empty: none
    assert live.users["bob"].blocklist is None  # unmanaged: not read


def test_read_only_fills_managed_whitelists(local: LocalProvider) -> None:
    seed(local, "alice", "bob")
    local.store.add_relations("whitelist", [("alice", "bob"), ("bob", "alice")])

    live = local.read(scope("alice", "bob", whitelists=frozenset({"alice"})))

    assert live.users["alice"].whitelist == frozenset({"bob"})
    assert live.users["bob"].whitelist is None


def test_everything_reads_every_user_with_every_list(local: LocalProvider) -> None:
    seed(local, "alice", "bob")
    seed(local, "theirs", owner="other-team")
    local.store.add_relations("blocks", [("alice", "bob")])
    local.store.add_relations("whitelist", [("bob", "alice")])

    live = local.read(scope(everything=True))

    assert set(live.users) == {"alice", "bob", "theirs"}
    assert live.users["alice"].blocklist == frozenset({"bob"})
    assert live.users["alice"].whitelist == frozenset()
    assert live.users["bob"].whitelist == frozenset({"alice"})
    assert live.users["theirs"].blocklist == frozenset()


def test_bans_in_force_are_always_read(local: LocalProvider) -> None:
    seed(local, "mallory", "eve", "trudy")
    local.store.ban(["mallory"], datetime(2026, 12, 31, tzinfo=UTC))
    local.store.ban(["eve"], None)
    local.store.ban(["trudy"], datetime(2026, 1, 1, tzinfo=UTC))  # already over

    assert local.read(scope()).bans == {
        "mallory": Ban("mallory", datetime(2026, 12, 31, tzinfo=UTC)),
        "eve": Ban("eve"),
    }


def test_identity_names_the_resolved_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    with LocalProvider("data/app.db") as provider:
        assert provider.identity() == {"type": "local", "path": str(tmp_path / "data" / "app.db")}


def test_the_path_is_relative_to_the_manifest_that_names_it(tmp_path: Path) -> None:
    config = ProviderConfig("local", {"path": "db/app.db"}, str(tmp_path / "manifests"))
    with open_local(config) as provider:
        assert provider.identity()["path"] == str(tmp_path / "manifests" / "db" / "app.db")


def test_without_a_path_the_store_is_dot_chatroster_local_db(tmp_path: Path) -> None:
    with open_local(ProviderConfig("local", {}, str(tmp_path))) as provider:
        assert provider.identity()["path"] == str(tmp_path / ".chatroster" / "local.db")


def test_not_a_store_file_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "notes.db"
    path.write_text("these are my notes, not a database\n" * 100)

    with pytest.raises(ProviderError) as caught:
        LocalProvider(path)

    message = str(caught.value)
    assert str(path) in message and "not a chatroster store" in message
    assert "provider.path" in message  # says what to do


# ---------------------------------------------------------------------- users: write


def test_create_again_for_the_same_owner_converges_instead_of_failing(
    local: LocalProvider,
) -> None:
    local.create_users([create("alice", role="agent")])

    # An interrupted apply, run again, hands over the same create with newer values.
    local.create_users([create("alice", role="admin", active=False)])

    user = read_user(local, "alice")
    assert (user.role, user.active, user.owner) == ("admin", False, OWNER)


def test_create_refuses_a_user_that_another_owner_holds(local: LocalProvider) -> None:
    seed(local, "alice", owner="other-team")

    with pytest.raises(PartialFailure) as caught:
        local.create_users([create("alice")])

    assert "owner other-team" in caught.value.failed["create_user:alice"]
    assert read_user(local, "alice").owner == "other-team"


def test_adopt_sets_the_ownership_marker(local: LocalProvider) -> None:
    seed(local, "alice", owner=None)

    local.adopt_users([Change(Action.ADOPT_USER, "alice", after={"owner": OWNER})])

    assert read_user(local, "alice").owner == OWNER


def test_update_sets_the_changed_fields_and_none_clears_one(local: LocalProvider) -> None:
    local.create_users([create("alice", **ALICE)])

    local.update_users(
        [Change(Action.UPDATE_USER, "alice", after={"role": "admin", "tags": ["x"], "avatar": None})]
    )

    user = read_user(local, "alice")
    assert (user.role, user.tags, user.avatar) == ("admin", ("x",), None)
    assert user.link == ALICE["link"]  # not in the change: untouched


def test_deactivate_then_reactivate(local: LocalProvider) -> None:
    seed(local, "alice")

    local.deactivate_users([Change(Action.DEACTIVATE_USER, "alice", after={"active": False})])
    assert read_user(local, "alice").active is False

    local.reactivate_users([Change(Action.REACTIVATE_USER, "alice", after={"active": True})])
    assert read_user(local, "alice").active is True


def test_delete_removes_the_user_and_everything_that_names_it(local: LocalProvider) -> None:
    seed(local, "alice", "bob")
    local.store.add_relations("blocks", [("bob", "alice")])

    local.delete_users([Change(Action.DELETE_USER, "alice")])

    live = local.read(scope("alice", "bob", blocklists=frozenset({"bob"})))
    assert set(live.users) == {"bob"} and live.users["bob"].blocklist == frozenset()


# ---------------------------------------------------------------- bans and relations


def test_ban_until_a_time_or_forever_then_unban(local: LocalProvider) -> None:
    seed(local, "mallory", "eve")

    local.ban_users(
        [
            Change(Action.BAN_USER, "mallory", after={"until": "2026-12-31T00:00:00Z"}),
            Change(Action.BAN_USER, "eve", after={"until": "forever"}),
        ]
    )
    assert local.read(scope()).bans == {
        "mallory": Ban("mallory", datetime(2026, 12, 31, tzinfo=UTC)),
        "eve": Ban("eve"),
    }

    local.unban_users([Change(Action.UNBAN_USER, "mallory"), Change(Action.UNBAN_USER, "eve")])
    assert local.read(scope()).bans == {}


def test_a_ban_until_none_is_forever(local: LocalProvider) -> None:
    seed(local, "eve")

    local.ban_users([Change(Action.BAN_USER, "eve", after={"until": None})])

    assert local.read(scope()).bans == {"eve": Ban("eve")}


def test_blocks_are_added_and_removed(local: LocalProvider) -> None:
    seed(local, "alice", "bob", "carol")
    local.add_blocks(
        [
            Change(Action.ADD_BLOCK, "alice", target="bob"),
            Change(Action.ADD_BLOCK, "alice", target="carol"),
        ]
    )

    local.remove_blocks([Change(Action.REMOVE_BLOCK, "alice", target="bob")])

    user = read_user(local, "alice", blocklists=frozenset({"alice"}))
    assert user.blocklist == frozenset({"carol"})


def test_whitelist_entries_and_mode_are_set(local: LocalProvider) -> None:
    seed(local, "alice", "bob", "carol")
    local.set_whitelist_modes([Change(Action.SET_WHITELIST_MODE, "alice", after={"whitelist_mode": True})])
    local.add_whitelist(
        [
            Change(Action.ADD_WHITELIST, "alice", target="bob"),
            Change(Action.ADD_WHITELIST, "alice", target="carol"),
        ]
    )

    local.remove_whitelist([Change(Action.REMOVE_WHITELIST, "alice", target="carol")])

    user = read_user(local, "alice", whitelists=frozenset({"alice"}))
    assert (user.whitelist_mode, user.whitelist) == (True, frozenset({"bob"}))


def test_expire_tokens_records_the_time_and_drops_older_tokens(local: LocalProvider, clock: Clock) -> None:
    seed(local, "alice")
    clock.at = datetime(2026, 10, 1, tzinfo=UTC).timestamp()
    local.store.issue_token("alice")
    clock.at = datetime(2026, 11, 2, tzinfo=UTC).timestamp()
    newer, _ = local.store.issue_token("alice")

    local.expire_tokens(
        [Change(Action.EXPIRE_TOKENS, "alice", after={"tokens_valid_after": "2026-11-01T00:00:00Z"})]
    )

    user = read_user(local, "alice")
    assert user.tokens_valid_after == datetime(2026, 11, 1, tzinfo=UTC)
    assert [token for token, _ in local.store.tokens("alice")] == [newer]


# -------------------------------------------------------------------------- failures


def test_a_failed_change_does_not_stop_the_rest_of_its_batch(local: LocalProvider) -> None:
    seed(local, "alice", "carol")

    with pytest.raises(PartialFailure) as caught:
        local.deactivate_users(
            [
                Change(Action.DEACTIVATE_USER, "alice", after={"active": False}),
                Change(Action.DEACTIVATE_USER, "ghost", after={"active": False}),
                Change(Action.DEACTIVATE_USER, "carol", after={"active": False}),
            ]
        )

    assert caught.value.failed == {"deactivate_user:ghost": "user 'ghost' does not exist"}
    live = local.read(scope("alice", "carol"))
    assert not live.users["alice"].active and not live.users["carol"].active


@pytest.mark.parametrize(
    ("method", "change"),
    [
        ("adopt_users", Change(Action.ADOPT_USER, "ghost", after={"owner": OWNER})),
        ("update_users", Change(Action.UPDATE_USER, "ghost", after={"role": "x"})),
        ("reactivate_users", Change(Action.REACTIVATE_USER, "ghost")),
        ("delete_users", Change(Action.DELETE_USER, "ghost")),
        ("ban_users", Change(Action.BAN_USER, "ghost", after={"until": "forever"})),
        ("unban_users", Change(Action.UNBAN_USER, "ghost")),
        ("add_blocks", Change(Action.ADD_BLOCK, "ghost", target="alice")),
        ("add_blocks", Change(Action.ADD_BLOCK, "alice", target="ghost")),
        ("remove_blocks", Change(Action.REMOVE_BLOCK, "ghost", target="alice")),
        ("add_whitelist", Change(Action.ADD_WHITELIST, "alice", target="ghost")),
        ("remove_whitelist", Change(Action.REMOVE_WHITELIST, "ghost", target="alice")),
        (
            "set_whitelist_modes",
            Change(Action.SET_WHITELIST_MODE, "ghost", after={"whitelist_mode": True}),
        ),
        (
            "expire_tokens",
            Change(Action.EXPIRE_TOKENS, "ghost", after={"tokens_valid_after": "2026-11-01"}),
        ),
    ],
)
def test_every_action_reports_a_user_that_does_not_exist(
    local: LocalProvider, method: str, change: Change
) -> None:
    seed(local, "alice")

    with pytest.raises(PartialFailure) as caught:
        getattr(local, method)([change])

    assert caught.value.failed == {change.key: "user 'ghost' does not exist"}


def test_a_bad_value_fails_only_its_own_change(local: LocalProvider) -> None:
    seed(local, "alice", "bob")

    with pytest.raises(PartialFailure) as caught:
        local.ban_users(
            [
                Change(Action.BAN_USER, "alice", after={"until": "next tuesday"}),
                Change(Action.BAN_USER, "bob", after={"until": "forever"}),
            ]
        )

    assert "'next tuesday' is not an ISO-8601 time" in caught.value.failed["ban_user:alice"]
    assert set(local.read(scope()).bans or ()) == {"bob"}


def test_a_batch_is_one_transaction(local: LocalProvider) -> None:
    seed(local, "alice", "bob")

    # The second change breaks a store constraint (a user always has a name): the
    # whole batch is rolled back, including the first change, already written.
    with pytest.raises(ProviderError, match="nothing in this batch was written"):
        local.update_users(
            [
                Change(Action.UPDATE_USER, "alice", after={"role": "admin"}),
                Change(Action.UPDATE_USER, "bob", after={"name": None}),
            ]
        )

    assert read_user(local, "alice").role is None
    assert read_user(local, "bob").name == "Bob"
