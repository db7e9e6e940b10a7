"""The emulator is as strict as Nexconn about what an app holds and declares.

- soft-delete deletes the user's data, and restore brings back the id alone ("personal
  data cannot be recovered");
- ``userExtProfile`` keys must be declared in the console first (``--nexconn-ext-keys``);
- a development app registers at most its limit of users (``--nexconn-max-users``).

Driven through the vendor's SDK against the emulator as a real process, every answer
checked against the vendor's OpenAPI file (see test_emulator_nexconn.py).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest
from emulator_process import EmulatorProcess
from ncsdk import models as m
from test_emulator_nexconn import Http, conformance, make_sdk, new_uid, refused, register

from chatroster.emulator import nexconn
from chatroster.store import Store

__all__ = ["conformance"]  # the session fixture that checks answers against the OpenAPI file


def test_soft_delete_deletes_the_users_data_and_restore_brings_back_the_id_alone(
    emulator_factory: Callable[..., EmulatorProcess], conformance: Any
) -> None:
    emulator = emulator_factory()
    sdk = make_sdk(emulator.base_url, conformance)
    http = Http(emulator.base_url, conformance)
    alice, bob = register(sdk, new_uid(), new_uid())
    sdk.users.issue_access_token(
        m.AccessTokenIssueRequest(userId=alice, name="Alice", avatarUrl="https://a/p")
    )
    sdk.users.batch_set_user_tags(m.UserTagBatchSetRequest(userIds=[alice], tags=["staff"]))
    sdk.profiles.set_user_profile(
        m.UserProfileSetRequest(
            userId=alice, userProfile={"email": "a@x.io"}, userExtProfile={"ext_dept": "eng"}
        )
    )
    sdk.blocklist.add_user_blocklist(m.UserBlocklistAddRequest(userId=alice, targetUserIds=[bob]))
    sdk.blocklist.add_user_blocklist(m.UserBlocklistAddRequest(userId=bob, targetUserIds=[alice]))
    http.legacy("/user/whitelist/add.json", [("userId", alice), ("whiteUserId", bob)])
    http.legacy("/user/whitesetting/set.json", [("userId", alice), ("whiteSetting", "1")])

    sdk.users.soft_delete_users(m.UserIdsMax100Request(userIds=[alice]))
    store = Store(emulator.db_path)  # restore needs an hour: the deletion is made older
    with store.transaction() as db:
        db.execute("UPDATE users SET deactivated_at = deactivated_at - 7200 WHERE uid = ?", (alice,))
    store.close()
    sdk.users.restore_users(m.UserIdsMax100Request(userIds=[alice]))

    got = sdk.users.get_user(m.UserGetRequest(userId=alice)).result
    assert (got.name, got.avatar_url) == ("", "")
    tags = sdk.users.batch_get_user_tags(m.UserTagBatchGetRequest(userIds=[alice])).result.users
    assert [(item.user_id, item.tags or []) for item in tags] == [(alice, [])]
    (profile,) = sdk.profiles.batch_get_user_profiles(m.UserIdsMax20Request(userIds=[alice])).result.users
    assert profile.user_profile == {} and profile.user_ext_profile == {}
    own = sdk.blocklist.get_user_blocklist(m.UserBlocklistGetRequest(userId=alice)).result
    assert not own.blocked_user_ids
    # Others' lists are theirs: bob still blocks alice.
    theirs = sdk.blocklist.get_user_blocklist(m.UserBlocklistGetRequest(userId=bob)).result
    assert theirs.blocked_user_ids == [alice]
    listed = http.legacy("/user/whitelist/query.json", [("userId", alice)]).json()
    assert listed["users"] == []
    mode = http.legacy("/user/whitesetting/query.json", [("userId", alice)]).json()
    assert str(mode["whiteSetting"]) == "0"
    http.client.close()


def test_an_undeclared_ext_key_is_refused_naming_it(emulator: EmulatorProcess, conformance: Any) -> None:
    sdk = make_sdk(emulator.base_url, conformance)
    (uid,) = register(sdk)
    answer = sdk.profiles.set_user_profile(
        m.UserProfileSetRequest(userId=uid, userExtProfile={"ext_dept": "eng", "ext_vip": "yes"})
    )
    assert (answer.code, answer.profile_key) == (nexconn.BAD_PARAMETER, "ext_vip")
    (item,) = sdk.profiles.batch_get_user_profiles(m.UserIdsMax20Request(userIds=[uid])).result.users
    assert item.user_ext_profile == {}  # the whole call had no effect
    for key in nexconn.DEFAULT_EXT_KEYS:  # chatroster's marker and the examples' keys
        done = sdk.profiles.set_user_profile(m.UserProfileSetRequest(userId=uid, userExtProfile={key: "v"}))
        assert done.code == 0


@pytest.mark.parametrize(("declared", "accepted"), [("ext_vip", True), ("ext_dept", False), ("*", True)])
def test_the_declared_ext_keys_are_the_ones_given(
    emulator_factory: Callable[..., EmulatorProcess], conformance: Any, declared: str, accepted: bool
) -> None:
    emulator = emulator_factory("--nexconn-ext-keys", declared)
    sdk = make_sdk(emulator.base_url, conformance)
    (uid,) = register(sdk)
    request = m.UserProfileSetRequest(userId=uid, userExtProfile={"ext_vip": "y"})
    answer = sdk.profiles.set_user_profile(request)
    assert (answer.code == 0) is accepted
    info = httpx.get(f"{emulator.base_url}/_emulator/info").json()
    assert info["nexconn_ext_keys"] == [declared]


def test_a_development_app_registers_no_more_users_than_its_limit(
    emulator_factory: Callable[..., EmulatorProcess], conformance: Any
) -> None:
    emulator = emulator_factory("--nexconn-max-users", "3")
    sdk = make_sdk(emulator.base_url, conformance)
    uids = register(sdk, *(new_uid() for _ in range(3)))
    sdk.users.soft_delete_users(m.UserIdsMax100Request(userIds=uids[:1]))  # still registered
    error = refused(lambda: register(sdk, new_uid()))
    assert error.status == 403
    http = Http(emulator.base_url, conformance)
    answer = http.post("/v4/auth/access-token/issue", {"userId": new_uid(), "name": "Over"})
    body = answer.json()
    assert (answer.status_code, body["code"]) == (403, nexconn.USER_LIMIT_REACHED)
    assert "3 of 3" in body["errorMessage"]
    # A registered user still gets tokens and a new name.
    again = http.post("/v4/auth/access-token/issue", {"userId": uids[1], "name": "Renamed"})
    assert again.json()["code"] == 0
    http.client.close()
