"""Friends and the friend permission, as a user of chatroster relies on them.

Each behaviour runs on the local platform (a real SQLite file) and on Nexconn
(`chatroster emulator` as a real process on loopback), through the real pipeline
(`open_provider` → `read_live` → `make_plan` → `apply`), with the platform helpers of
`test_providers_behaviour`. Friendship is mutual on both, so a friendship is checked
from both sides. Friendships "made in the app" are written straight into the store the
platform (or the emulator) serves, as the vendor's own clients would make them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from emulator_process import EmulatorProcess
from test_providers_behaviour import OWNER, PLATFORMS, Platform

from chatroster.changes import Action
from chatroster.export import dump_yaml, export_manifest
from chatroster.manifest import load
from chatroster.model import User
from chatroster.plan import Plan
from chatroster.runner import read_live
from chatroster.store import friends as stored


@pytest.fixture(params=["local", "nexconn"])
def platform(
    request: pytest.FixtureRequest, tmp_path: Path, emulator_factory: Callable[..., EmulatorProcess]
) -> Iterator[Platform]:
    """A platform that keeps friends, as a manifest builder."""
    made = PLATFORMS[request.param](tmp_path, emulator_factory)
    yield made
    made.close()


def user(uid: str, **fields: Any) -> User:
    return User(uid=uid, name=uid.title(), **fields)


def actions(made: Plan) -> list[tuple[str, str, str | None]]:
    return [(c.action.value, c.uid, c.target) for c in made.changes if c.action is not Action.CREATE_USER]


def friends_of(platform: Platform, uid: str) -> dict[str, dict[str, Any]]:
    """What the platform holds: ``uid``'s friends, each with ``uid``'s alias and ext."""
    return stored.friends(platform.store, [uid]).get(uid, {})


def made_in_the_app(platform: Platform, uid: str, target: str) -> None:
    stored.add(platform.store, uid, target)


def no_profile() -> dict[str, Any]:
    return {"alias": "", "ext": {}}


# ------------------------------------------------------------------ friendships


def test_friends_both_users_declare_are_made_once_each_with_its_own_alias(platform: Platform) -> None:
    manifest = platform(
        user("alice", friends={"bob": {"alias": "Bobby", "ext": {"ext_team": "core"}}}),
        user("bob", friends={"alice": {"alias": "Ally"}}),
    )

    made = platform.converge(manifest)

    assert actions(made) == [("add_friend", "alice", "bob"), ("update_friend", "bob", "alice")]
    assert friends_of(platform, "alice") == {"bob": {"alias": "Bobby", "ext": {"ext_team": "core"}}}
    assert friends_of(platform, "bob") == {"alice": {"alias": "Ally", "ext": {}}}


def test_a_friend_declared_on_one_side_only_becomes_the_other_users_friend_too(
    platform: Platform,
) -> None:
    first = platform(user("alice"), user("bob"), user("carol"))
    platform.converge(first)
    made_in_the_app(platform, "bob", "carol")  # bob's friends are not in the manifest

    manifest = platform(user("alice", friends=["bob"]), user("bob"), user("carol"))
    made = platform.converge(manifest)

    assert actions(made) == [("add_friend", "alice", "bob")]
    assert set(friends_of(platform, "alice")) == {"bob"}
    assert set(friends_of(platform, "bob")) == {"alice", "carol"}, "bob's own friend is left alone"


def test_changes_a_friends_alias_and_ext_and_empty_values_clear_them(platform: Platform) -> None:
    friend = {"alias": "Bobby", "ext": {"ext_team": "core", "ext_since": "2020"}}
    platform.converge(platform(user("alice", friends={"bob": friend}), user("bob")))

    changed = platform(
        user("alice", friends={"bob": {"alias": "Rob", "ext": {"ext_team": "ops"}}}), user("bob")
    )
    made = platform.converge(changed)
    assert actions(made) == [("update_friend", "alice", "bob")]
    assert made.changes[0].before == {"alias": "Bobby", "ext": {"ext_team": "core", "ext_since": "2020"}}
    assert friends_of(platform, "alice") == {"bob": {"alias": "Rob", "ext": {"ext_team": "ops"}}}

    cleared = platform(user("alice", friends={"bob": {"alias": "", "ext": {}}}), user("bob"))
    platform.converge(cleared)
    assert friends_of(platform, "alice") == {"bob": no_profile()}


def test_an_alias_or_ext_left_out_is_kept_as_it_is(platform: Platform) -> None:
    friend = {"alias": "Bobby", "ext": {"ext_team": "core"}}
    platform.converge(platform(user("alice", friends={"bob": friend}), user("bob")))

    for entry in ({}, {"alias": "Bobby"}, {"ext": {"ext_team": "core"}}):
        assert platform.plan(platform(user("alice", friends={"bob": entry}), user("bob"))).empty, entry
    assert platform.plan(platform(user("alice", friends=["bob"]), user("bob"))).empty


def test_removes_a_friend_for_both_users_once(platform: Platform) -> None:
    platform.converge(
        platform(user("alice", friends=["bob", "carol"]), user("bob", friends=["alice"]), user("carol"))
    )

    made = platform.converge(
        platform(user("alice", friends=["carol"]), user("bob", friends=[]), user("carol"))
    )

    assert actions(made) == [("remove_friend", "alice", "bob")]
    assert set(friends_of(platform, "alice")) == {"carol"}
    assert friends_of(platform, "bob") == {}


def test_friends_left_out_are_unmanaged_and_an_empty_list_removes_every_one(platform: Platform) -> None:
    platform.converge(platform(user("alice"), user("bob"), user("carol")))
    made_in_the_app(platform, "alice", "bob")
    made_in_the_app(platform, "alice", "carol")

    assert platform.plan(platform(user("alice"), user("bob"), user("carol"))).empty

    made = platform.converge(platform(user("alice", friends=[]), user("bob"), user("carol")))
    assert actions(made) == [("remove_friend", "alice", "bob"), ("remove_friend", "alice", "carol")]
    assert friends_of(platform, "alice") == friends_of(platform, "bob") == {}


def test_a_new_user_is_created_with_its_friends(platform: Platform) -> None:
    platform.converge(platform(user("alice")))

    made = platform.converge(platform(user("alice"), user("bob", friends={"alice": {"alias": "A"}})))

    assert [c.action for c in made.changes] == [Action.CREATE_USER, Action.ADD_FRIEND]
    assert friends_of(platform, "bob") == {"alice": {"alias": "A", "ext": {}}}
    assert friends_of(platform, "alice") == {"bob": no_profile()}


# ------------------------------------------------------------- friend permission


def test_sets_and_changes_the_friend_permission_and_leaves_it_when_absent(platform: Platform) -> None:
    made = platform.converge(platform(user("alice", friend_permission="approval"), user("bob")))
    assert actions(made) == [("set_friend_permission", "alice", None)]
    assert stored.permissions(platform.store, ["alice"]) == {"alice": 2}

    made = platform.converge(platform(user("alice", friend_permission="nobody"), user("bob")))
    assert [(c.before, c.after) for c in made.changes] == [
        ({"friend_permission": "approval"}, {"friend_permission": "nobody"})
    ]
    assert platform.plan(platform(user("alice"), user("bob"))).empty
    assert stored.permissions(platform.store, ["alice", "bob"]) == {"alice": 3}


# ------------------------------------------------------------------------ export


def test_export_writes_friends_and_permission_so_that_its_plan_has_no_changes(
    platform: Platform, tmp_path: Path
) -> None:
    users = [
        user("alice", friends={"bob": {"alias": "Bobby", "ext": {"ext_team": "core"}}, "carol": {}}),
        user("bob", friends=["alice"], friend_permission="nobody"),
        user("carol"),
    ]
    platform.converge(platform(*users))
    with platform.open() as provider:
        live = read_live(platform(*users), provider, everything=True)
    exported = tmp_path / "exported.yaml"
    data = export_manifest(live, provider=platform.config, owner=OWNER)
    exported.write_text(dump_yaml(data))

    assert data["users"]["alice"]["friends"] == {
        "bob": {"alias": "Bobby", "ext": {"ext_team": "core"}},
        "carol": {},
    }
    assert data["users"]["bob"]["friends"] == ["alice"]
    assert data["users"]["bob"]["friend_permission"] == "nobody"
    assert data["users"]["carol"]["friends"] == ["alice"]
    env = {
        f"{platform.kind.upper()}_{key.upper()}": str(value)
        for key, value in platform.config.settings.items()
        if key in platform.config.SECRET_KEYS
    }
    assert platform.plan(load([exported], env=env)).empty


# ---------------------------------------------------------------------- batching


def test_removing_more_than_100_friends_takes_several_calls_of_at_most_100(
    tmp_path: Path, emulator_factory: Callable[..., EmulatorProcess]
) -> None:
    platform = PLATFORMS["nexconn"](tmp_path, emulator_factory)
    assert platform.emulator is not None
    others = [user(f"f{n:03d}") for n in range(130)]
    platform.converge(platform(user("alice", friends=[u.uid for u in others]), *others))
    platform.emulator.reset()

    made = platform.converge(platform(user("alice", friends=[]), *others))

    assert made.summary() == {"remove_friend": 130}
    assert platform.emulator.stats()["by_endpoint"]["POST /v4/friend/remove"] == {"200": 2}
    assert friends_of(platform, "alice") == {}
    platform.close()


def test_only_users_that_declare_friends_have_their_friends_read(
    tmp_path: Path, emulator_factory: Callable[..., EmulatorProcess]
) -> None:
    platform = PLATFORMS["nexconn"](tmp_path, emulator_factory)
    assert platform.emulator is not None
    manifest = platform(
        user("alice", friends=["bob"]), user("bob"), user("carol", friend_permission="nobody")
    )
    platform.converge(manifest)
    platform.emulator.reset()

    platform.plan(manifest)

    calls = platform.emulator.stats()["by_endpoint"]
    assert calls["POST /v4/friend/list"] == {"200": 1}
    assert calls["POST /v4/friend/permission/get"] == {"200": 1}
    platform.close()
