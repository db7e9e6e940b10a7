"""The emulator speaks Nexconn: the vendor's own SDK and OpenAPI spec are the judges.

The emulator runs as a real process on loopback. Every v4 endpoint is driven through
the vendor's Python SDK ``ncsdk`` (which signs requests itself and rejects responses of
the wrong JSON types), and every response the emulator gives, to the SDK or to plain
httpx, is validated against the response schema in the vendor's OpenAPI file, with
undeclared fields refused too. The legacy whitelist endpoints, which the SDK does not
cover, are driven with httpx in their documented form-encoded format.
"""

from __future__ import annotations

import asyncio
import copy
import hashlib
import json
import secrets
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlparse

import httpx
import pytest
import yaml
from emulator_process import EmulatorProcess, running_emulator
from jsonschema import Draft4Validator, FormatChecker
from ncsdk import (
    ApiClient,
    ApiException,
    Configuration,
    FriendshipApi,
    UserBlocklistApi,
    UserManagementApi,
    UserProfileHostingApi,
)
from ncsdk import models as m
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT4

from chatroster.emulator import nexconn
from chatroster.emulator.config import DEFAULT_APP_KEY, DEFAULT_APP_SECRET, EmulatorConfig
from chatroster.store import Store

SPEC_PATH = Path(__file__).resolve().parents[2] / "shared/conformance/nexconn/openapi.yaml"
"""The vendor's OpenAPI file, beside the repository (never copied into it)."""

KEY, SECRET = DEFAULT_APP_KEY, DEFAULT_APP_SECRET

# ------------------------------------------------------------- OpenAPI conformance

ERROR_BODY = {
    "type": "object",
    "required": ["code", "errorMessage"],
    "properties": {
        "code": {"type": "integer", "not": {"enum": [0]}},
        "errorMessage": {"type": "string"},
    },
    "additionalProperties": False,
}
"""The vendor's error body (the OpenAPI file describes success bodies only)."""

LEGACY_BODY = {
    "type": "object",
    "required": ["code"],
    "properties": {"code": {"type": "integer"}},
}

FORMATS = FormatChecker()
FORMATS.checks("int32")(lambda v: not isinstance(v, int) or -(2**31) <= v < 2**31)
FORMATS.checks("int64")(lambda v: not isinstance(v, int) or -(2**63) <= v < 2**63)


def _closed(node: Any) -> Any:
    """The schema with undeclared properties refused wherever it lists properties and
    says nothing else, so that a misspelt or invented field fails validation."""
    if isinstance(node, dict):
        closed = {key: _closed(value) for key, value in node.items()}
        if "properties" in closed and "additionalProperties" not in closed:
            closed["additionalProperties"] = False
        return closed
    if isinstance(node, list):
        return [_closed(item) for item in node]
    return node


class Conformance:
    """Validates the emulator's responses against the vendor's OpenAPI file."""

    def __init__(self, spec: dict[str, Any]) -> None:
        self.spec = spec
        closed = _closed(copy.deepcopy(spec))
        resource = Resource.from_contents(closed, default_specification=DRAFT4)
        self._registry = Registry().with_resource("urn:nexconn", resource)
        self.checked: list[tuple[str, int]] = []

    def response_schema(self, path: str) -> dict[str, Any]:
        operation = self.spec["paths"][path]["post"]
        ref = operation["responses"]["200"]["content"]["application/json"]["schema"]["$ref"]
        return {"$ref": f"urn:nexconn{ref}"}

    def check(self, path: str, status: int, raw: bytes) -> None:
        body = json.loads(raw)
        if not path.startswith("/v4/"):
            self._validate(ERROR_BODY if status != 200 else LEGACY_BODY, body)
        elif status != 200:
            self._validate(ERROR_BODY, body)
        else:
            if body.get("code") != 0:  # a refusal in the 200 schema (profile/set)
                self._validate(ERROR_BODY, {k: body[k] for k in ("code", "errorMessage")})
                body = {k: v for k, v in body.items() if k != "errorMessage"}
            self._validate(self.response_schema(path), body)
        self.checked.append((path, status))

    def _validate(self, schema: dict[str, Any], body: Any) -> None:
        validator = Draft4Validator(schema, registry=self._registry, format_checker=FORMATS)
        errors = sorted(validator.iter_errors(body), key=lambda e: list(e.path))
        assert not errors, f"{body} does not conform: " + "; ".join(e.message for e in errors)


@pytest.fixture(scope="session")
def conformance() -> Conformance | None:
    """None (and the schema checks skipped) if the spec is not beside the repository."""
    if not SPEC_PATH.is_file():
        return None
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    return Conformance(yaml.load(SPEC_PATH.read_text(encoding="utf-8"), Loader=loader))


@pytest.fixture
def spec(conformance: Conformance | None) -> Conformance:
    if conformance is None:
        pytest.skip(f"the vendor's OpenAPI file is missing: {SPEC_PATH}")
    return conformance


# ------------------------------------------------------------------------- clients


class CheckedApiClient(ApiClient):  # type: ignore[misc]
    """The SDK's client, with every response checked against the OpenAPI file."""

    def __init__(self, configuration: Configuration, conformance: Conformance | None) -> None:
        super().__init__(configuration)
        self.conformance = conformance

    def call_api(self, method: str, url: str, *args: Any, **kwargs: Any) -> Any:
        response = super().call_api(method, url, *args, **kwargs)
        if self.conformance is not None:
            self.conformance.check(urlparse(url).path, response.status, response.read())
        return response


@dataclass
class Sdk:
    users: UserManagementApi
    blocklist: UserBlocklistApi
    profiles: UserProfileHostingApi
    friends: FriendshipApi


def make_sdk(base_url: str, conformance: Conformance | None, secret: str = SECRET) -> Sdk:
    config = Configuration().set_nexconn_credentials(KEY, secret)
    config.set_primary_backup_domains(base_url, base_url)
    config.set_auto_failover_enabled(False)
    client = CheckedApiClient(config, conformance)
    return Sdk(
        UserManagementApi(client),
        UserBlocklistApi(client),
        UserProfileHostingApi(client),
        FriendshipApi(client),
    )


def signed(
    unit: str = "ms",
    *,
    secret: str = SECRET,
    nonce: str | None = None,
    timestamp: str | None = None,
    key: str = KEY,
) -> dict[str, str]:
    """The four signing headers, computed as the reference gives the formula."""
    nonce = nonce or str(secrets.randbelow(10**18 - 1) + 1)
    now = time.time() if unit == "s" else time.time() * 1000
    timestamp = timestamp or str(int(now))
    signature = hashlib.sha1((secret + nonce + timestamp).encode()).hexdigest()
    return {"App-Key": key, "Nonce": nonce, "Timestamp": timestamp, "Signature": signature}


class Http:
    """httpx against the emulator; every Nexconn response is checked like the SDK's."""

    def __init__(self, base_url: str, conformance: Conformance | None) -> None:
        self.client = httpx.Client(base_url=base_url, timeout=10)
        self.conformance = conformance

    def post(
        self,
        path: str,
        body: Any = None,
        *,
        headers: dict[str, str] | None = None,
        content: bytes | None = None,
    ) -> httpx.Response:
        headers = signed() if headers is None else headers
        if content is None:
            content = json.dumps(body).encode()
        response = self.client.post(
            path, content=content, headers={**headers, "Content-Type": "application/json"}
        )
        self._check(path, response)
        return response

    def legacy(
        self, path: str, form: list[tuple[str, str]], *, headers: dict[str, str] | None = None
    ) -> httpx.Response:
        headers = signed("s") if headers is None else headers
        response = self.client.post(
            path,
            content=urlencode(form),  # a list is the same key repeated
            headers={**headers, "Content-Type": "application/x-www-form-urlencoded"},
        )
        self._check(path, response)
        return response

    def _check(self, path: str, response: httpx.Response) -> None:
        assert response.headers["content-type"].startswith("application/json")
        if self.conformance is not None:
            self.conformance.check(path, response.status_code, response.content)


# ------------------------------------------------------------------------ fixtures


@pytest.fixture(scope="module")
def shared_emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmulatorProcess]:
    """One emulator for the tests that use their own users (unique ids)."""
    with running_emulator(tmp_path_factory.mktemp("nexconn") / "store.db") as emulator:
        yield emulator


def server_errors(emulator: EmulatorProcess) -> dict[str, int]:
    # Plain HTTP to loopback: no TLS context to build for each of these calls.
    answer = httpx.get(f"{emulator.base_url}/_emulator/stats", verify=False)
    by_status: dict[str, int] = answer.json()["by_status"]
    return {status: n for status, n in by_status.items() if status.startswith("5")}


@pytest.fixture(autouse=True)
def no_request_gets_a_500(request: pytest.FixtureRequest) -> Iterator[None]:
    """Whatever a test sends the shared emulator, the answer is never a 5xx (checked
    after each test, so that the test that caused one is the one named)."""
    if "shared_emulator" not in request.fixturenames:
        yield
        return
    shared: EmulatorProcess = request.getfixturevalue("shared_emulator")
    before = server_errors(shared)
    yield
    assert server_errors(shared) == before, "the emulator answered with a 5xx"


@pytest.fixture
def emulator(emulator_factory: Callable[..., EmulatorProcess]) -> Iterator[EmulatorProcess]:
    """A fresh emulator of the test's own, likewise never answering with a 5xx."""
    started = emulator_factory()
    yield started
    assert server_errors(started) == {}, "the emulator answered with a 5xx"


@pytest.fixture
def sdk(shared_emulator: EmulatorProcess, conformance: Conformance | None) -> Sdk:
    return make_sdk(shared_emulator.base_url, conformance)


@pytest.fixture
def http(shared_emulator: EmulatorProcess, conformance: Conformance | None) -> Iterator[Http]:
    client = Http(shared_emulator.base_url, conformance)
    yield client
    client.client.close()


def new_uid() -> str:
    return "u" + uuid.uuid4().hex[:16]


def register(sdk: Sdk, *uids: str) -> list[str]:
    uids = uids or (new_uid(),)
    for uid in uids:
        sdk.users.issue_access_token(m.AccessTokenIssueRequest(userId=uid, name=f"Name {uid}"))
    return list(uids)


def refused(call: Any) -> ApiException:
    with pytest.raises(ApiException) as caught:
        call()
    return caught.value


def parse_time(text: str) -> float:
    return datetime.strptime(text, "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC).timestamp()


# ------------------------------------------------------------------ users, tokens


def test_issuing_a_token_registers_the_user_without_an_owner(
    sdk: Sdk, shared_emulator: EmulatorProcess
) -> None:
    uid = new_uid()
    start = int(time.time())  # created_at has whole seconds
    issued = sdk.users.issue_access_token(
        m.AccessTokenIssueRequest(userId=uid, name="Alice", avatarUrl="https://x.test/a.png")
    )
    end = time.time()
    assert issued.code == 0 and issued.result.user_id == uid and issued.result.access_token
    got = sdk.users.get_user(m.UserGetRequest(userId=uid)).result
    assert (got.name, got.avatar_url) == ("Alice", "https://x.test/a.png")
    assert start <= parse_time(got.created_at) <= end
    store = Store(shared_emulator.db_path)
    try:
        user = store.get_user(uid)
        assert user is not None and user.owner is None and user.name == "Alice"
        assert len(store.tokens(uid)) == 1
    finally:
        store.close()


def test_issuing_again_issues_another_token_and_overwrites_the_name(sdk: Sdk) -> None:
    (uid,) = register(sdk)
    first = sdk.users.issue_access_token(m.AccessTokenIssueRequest(userId=uid, name="One"))
    second = sdk.users.issue_access_token(m.AccessTokenIssueRequest(userId=uid, name="Two"))
    assert first.result.access_token != second.result.access_token
    assert sdk.users.get_user(m.UserGetRequest(userId=uid)).result.name == "Two"


def test_update_changes_only_the_fields_given(sdk: Sdk) -> None:
    (uid,) = register(sdk)
    sdk.users.update_user(m.UserUpdateRequest(userId=uid, avatarUrl="https://x.test/b.png"))
    got = sdk.users.get_user(m.UserGetRequest(userId=uid)).result
    assert (got.name, got.avatar_url) == (f"Name {uid}", "https://x.test/b.png")
    sdk.users.update_user(m.UserUpdateRequest(userId=uid, name="Renamed"))
    got = sdk.users.get_user(m.UserGetRequest(userId=uid)).result
    assert (got.name, got.avatar_url) == ("Renamed", "https://x.test/b.png")


@pytest.mark.parametrize(
    "call",
    [
        lambda sdk, uid: sdk.users.get_user(m.UserGetRequest(userId=uid)),
        lambda sdk, uid: sdk.users.update_user(m.UserUpdateRequest(userId=uid, name="x")),
        lambda sdk, uid: sdk.users.get_user_connection_status(m.UserConnectionStatusRequest(userId=uid)),
        lambda sdk, uid: sdk.users.ban_users(m.UserBanRequest(userIds=[uid], durationMinutes=1)),
        lambda sdk, uid: sdk.blocklist.get_user_blocklist(m.UserBlocklistGetRequest(userId=uid)),
    ],
    ids=["get", "update", "connection-status", "ban", "blocklist-get"],
)
def test_an_unknown_user_is_the_vendors_not_found_error(sdk: Sdk, call: Any) -> None:
    error = refused(lambda: call(sdk, new_uid()))
    assert (error.status, error.error_code) == (404, nexconn.USER_NOT_FOUND)
    assert "does not exist" in (error.error_message or "")


def test_expiring_tokens_records_the_time_in_the_store(sdk: Sdk, shared_emulator: EmulatorProcess) -> None:
    uids = register(sdk, new_uid(), new_uid())
    expires_ms = 1_893_456_000_000  # 2030-01-01T00:00:00Z
    answer = sdk.users.expire_access_token(m.AccessTokenExpireRequest(userIds=uids, expiresAt=expires_ms))
    assert answer.code == 0
    store = Store(shared_emulator.db_path)
    try:
        for uid in uids:
            user = store.get_user(uid)
            assert user is not None and user.tokens_valid_after is not None
            assert user.tokens_valid_after.timestamp() == expires_ms / 1000
    finally:
        store.close()


def test_connection_status_is_offline_as_a_string(sdk: Sdk) -> None:
    (uid,) = register(sdk)
    answer = sdk.users.get_user_connection_status(m.UserConnectionStatusRequest(userId=uid))
    assert answer.result.status == "0"


# --------------------------------------------------------------------------- bans


def test_a_ban_lasts_the_minutes_given_and_unban_lifts_it(sdk: Sdk) -> None:
    uids = register(sdk, new_uid(), new_uid())
    start = int(time.time())  # expiry times have whole seconds
    sdk.users.ban_users(m.UserBanRequest(userIds=uids, durationMinutes=90))
    end = time.time()
    listed = sdk.users.list_banned_users(m.UserBanListRequest()).result.banned_users
    expiry = {ban.user_id: parse_time(ban.ban_expires_at) for ban in listed}
    for uid in uids:
        assert start + 90 * 60 <= expiry[uid] <= end + 90 * 60
    sdk.users.unban_users(m.UserIdsMax20Request(userIds=uids[:1]))
    listed = sdk.users.list_banned_users(m.UserBanListRequest()).result.banned_users
    assert uids[0] not in {ban.user_id for ban in listed}
    assert uids[1] in {ban.user_id for ban in listed}


def test_ban_list_pages_latest_expiry_first(emulator: EmulatorProcess, conformance: Any) -> None:
    sdk = make_sdk(emulator.base_url, conformance)
    uids = register(sdk, *(new_uid() for _ in range(5)))
    for minutes, uid in enumerate(uids, start=1):
        sdk.users.ban_users(m.UserBanRequest(userIds=[uid], durationMinutes=minutes))
    everything = sdk.users.list_banned_users(m.UserBanListRequest()).result.banned_users
    assert [ban.user_id for ban in everything] == uids[::-1]
    pages = [
        sdk.users.list_banned_users(m.UserBanListRequest(page=page, pageSize=2)).result
        for page in (1, 2, 3, 4)
    ]
    assert [[ban.user_id for ban in page.banned_users or []] for page in pages] == [
        uids[4:2:-1],
        uids[2:0:-1],
        uids[:1],
        [],
    ]


def test_a_ban_is_limited_to_30_days(http: Http, sdk: Sdk) -> None:
    (uid,) = register(sdk)
    for minutes in (0, 43201):
        response = http.post("/v4/user/ban", {"userIds": [uid], "durationMinutes": minutes})
        assert (response.status_code, response.json()["code"]) == (400, nexconn.BAD_PARAMETER)
    assert http.post("/v4/user/ban", {"userIds": [uid], "durationMinutes": 43200}).json() == {"code": 0}


# ----------------------------------------------------------- soft-delete and restore


def test_soft_delete_hides_the_user_and_lists_it_as_deleted(
    emulator: EmulatorProcess, conformance: Any
) -> None:
    sdk = make_sdk(emulator.base_url, conformance)
    uids = register(sdk, new_uid(), new_uid(), new_uid())
    answer = sdk.users.soft_delete_users(m.UserIdsMax100Request(userIds=uids[:2]))
    assert answer.code == 0 and answer.result.operation_id
    listed = sdk.users.list_soft_deleted_users(m.UserSoftDeletedListRequest()).result.user_ids
    assert listed == uids[:2]
    paged = sdk.users.list_soft_deleted_users(m.UserSoftDeletedListRequest(page=2, pageSize=1))
    assert paged.result.user_ids == uids[1:2]
    error = refused(lambda: sdk.users.get_user(m.UserGetRequest(userId=uids[0])))
    assert (error.status, error.error_code) == (404, nexconn.USER_NOT_FOUND)
    store = Store(emulator.db_path)
    try:
        assert [store.get_user(uid).active for uid in uids] == [False, False, True]  # type: ignore[union-attr]
    finally:
        store.close()


def test_restore_is_refused_within_an_hour_of_the_soft_delete(sdk: Sdk) -> None:
    (uid,) = register(sdk)
    sdk.users.soft_delete_users(m.UserIdsMax100Request(userIds=[uid]))
    error = refused(lambda: sdk.users.restore_users(m.UserIdsMax100Request(userIds=[uid])))
    assert (error.status, error.error_code) == (400, nexconn.BAD_PARAMETER)
    assert "1 hour" in (error.error_message or "") and uid in (error.error_message or "")


def test_restore_succeeds_an_hour_later_on_the_same_store(tmp_path: Path, conformance: Any) -> None:
    db = tmp_path / "store.db"
    uid = new_uid()
    with running_emulator(db) as before:
        sdk = make_sdk(before.base_url, conformance)
        register(sdk, uid)
        sdk.users.soft_delete_users(m.UserIdsMax100Request(userIds=[uid]))
    with running_emulator(db, "--clock-offset", "3601") as after:
        sdk = make_sdk(after.base_url, conformance)
        assert sdk.users.restore_users(m.UserIdsMax100Request(userIds=[uid])).code == 0
        # "Personal data cannot be recovered": the id is back, its name is not.
        assert sdk.users.get_user(m.UserGetRequest(userId=uid)).result.name == ""
        listed = sdk.users.list_soft_deleted_users(m.UserSoftDeletedListRequest())
        assert uid not in (listed.result.user_ids or [])


def test_a_soft_deleted_user_cannot_get_a_token(sdk: Sdk) -> None:
    (uid,) = register(sdk)
    sdk.users.soft_delete_users(m.UserIdsMax100Request(userIds=[uid]))
    error = refused(lambda: sdk.users.issue_access_token(m.AccessTokenIssueRequest(userId=uid, name="x")))
    assert (error.status, error.error_code) == (404, nexconn.USER_NOT_FOUND)


# --------------------------------------------------------------------------- tags


def test_tags_replace_the_whole_set_and_an_empty_list_clears_them(sdk: Sdk) -> None:
    uids = register(sdk, new_uid(), new_uid())
    sdk.users.batch_set_user_tags(m.UserTagBatchSetRequest(userIds=uids, tags=["staff", "beta"]))
    sdk.users.batch_set_user_tags(m.UserTagBatchSetRequest(userIds=uids[:1], tags=["vip"]))
    got = sdk.users.batch_get_user_tags(m.UserTagBatchGetRequest(userIds=uids)).result.users
    assert {item.user_id: sorted(item.tags) for item in got} == {
        uids[0]: ["vip"],
        uids[1]: ["beta", "staff"],
    }
    sdk.users.batch_set_user_tags(m.UserTagBatchSetRequest(userIds=uids, tags=[]))
    got = sdk.users.batch_get_user_tags(m.UserTagBatchGetRequest(userIds=uids)).result.users
    assert [item.tags for item in got] == [[], []]


def test_tag_rules_are_the_vendors(http: Http, sdk: Sdk) -> None:
    (uid,) = register(sdk)
    for tags in (["t"] * 21, ["x" * 41], ["has space"]):
        response = http.post("/v4/user/tag/batch/set", {"userIds": [uid], "tags": tags})
        assert (response.status_code, response.json()["code"]) == (400, nexconn.BAD_PARAMETER)


# ---------------------------------------------------------------------- blocklist


def test_blocklist_add_get_and_remove(sdk: Sdk) -> None:
    uid, *targets = register(sdk, new_uid(), new_uid(), new_uid())
    sdk.blocklist.add_user_blocklist(m.UserBlocklistAddRequest(userId=uid, targetUserIds=targets))
    got = sdk.blocklist.get_user_blocklist(m.UserBlocklistGetRequest(userId=uid)).result
    assert sorted(got.blocked_user_ids) == sorted(targets) and got.page_token is None
    sdk.blocklist.remove_user_blocklist(m.UserBlocklistRemoveRequest(userId=uid, blockedUserIds=targets[:1]))
    got = sdk.blocklist.get_user_blocklist(m.UserBlocklistGetRequest(userId=uid)).result
    assert got.blocked_user_ids == targets[1:]


def test_blocklist_pages_with_a_page_token(sdk: Sdk) -> None:
    (uid,) = register(sdk)
    targets = [f"t{i:02d}" for i in range(5)]
    sdk.blocklist.add_user_blocklist(m.UserBlocklistAddRequest(userId=uid, targetUserIds=targets))
    seen: list[str] = []
    token: str | None = None
    for _ in range(10):
        request = m.UserBlocklistGetRequest(userId=uid, pageSize=2, pageToken=token)
        page = sdk.blocklist.get_user_blocklist(request).result
        seen += page.blocked_user_ids
        token = page.page_token
        if token is None:
            break
    assert sorted(seen) == targets and len(seen) == 5


# ------------------------------------------------------------------ hosted profiles


def test_profile_set_merges_keys_and_counts_versions(sdk: Sdk) -> None:
    (uid,) = register(sdk)
    sdk.profiles.set_user_profile(
        m.UserProfileSetRequest(
            userId=uid,
            userProfile={"email": "a@example.com", "gender": 2, "level": 3},
            userExtProfile={"ext_dept": "eng"},
        )
    )
    sdk.profiles.set_user_profile(
        m.UserProfileSetRequest(userId=uid, userProfile={"location": "SG", "uniqueId": "A1"})
    )
    (item,) = sdk.profiles.batch_get_user_profiles(m.UserIdsMax20Request(userIds=[uid])).result.users
    assert item.version == 2
    assert item.user_profile == {
        "email": "a@example.com",
        "gender": 2,
        "level": 3,
        "location": "SG",
        "uniqueId": "A1",
    }
    assert item.user_ext_profile == {"ext_dept": "eng"}


@pytest.mark.parametrize(
    ("profile", "ext", "key"),
    [
        ({"gender": "female"}, None, "gender"),
        ({"level": 101}, None, "level"),
        ({"nickname": "x"}, None, "nickname"),
        ({"email": "x" * 129}, None, "email"),
        (None, {"dept": "eng"}, "dept"),
        (None, {"ext_" + "x" * 29: "v"}, "ext_" + "x" * 29),
        (None, {"ext_dept": "x" * 257}, "ext_dept"),
    ],
)
def test_profile_set_names_the_key_it_refuses(sdk: Sdk, profile: Any, ext: Any, key: str) -> None:
    (uid,) = register(sdk)
    answer = sdk.profiles.set_user_profile(
        m.UserProfileSetRequest(userId=uid, userProfile=profile, userExtProfile=ext)
    )
    assert (answer.code, answer.profile_key) == (nexconn.BAD_PARAMETER, key)
    (item,) = sdk.profiles.batch_get_user_profiles(m.UserIdsMax20Request(userIds=[uid])).result.users
    assert item.version == 0 and item.user_profile == {} and item.user_ext_profile == {}


def test_profile_list_pages_users_with_a_profile_in_either_order(
    emulator: EmulatorProcess, conformance: Any
) -> None:
    sdk = make_sdk(emulator.base_url, conformance)
    uids = register(sdk, *(new_uid() for _ in range(4)))
    for uid in uids[:3]:
        sdk.profiles.set_user_profile(m.UserProfileSetRequest(userId=uid, userProfile={"level": 1}))
    oldest = sdk.profiles.list_user_profiles(m.UserProfileListRequest()).result.users
    assert [item.user_id for item in oldest] == uids[:3]
    newest = sdk.profiles.list_user_profiles(m.UserProfileListRequest(order=1, pageSize=2))
    assert [item.user_id for item in newest.result.users] == [uids[2], uids[1]]
    page_two = sdk.profiles.list_user_profiles(m.UserProfileListRequest(page=2, pageSize=2))
    assert [item.user_id for item in page_two.result.users] == [uids[2]]
    sdk.profiles.delete_user_profiles(m.UserIdsMax20Request(userIds=uids[:1]))
    after = sdk.profiles.list_user_profiles(m.UserProfileListRequest()).result.users
    assert [item.user_id for item in after] == uids[1:3]


# --------------------------------------------------------------- legacy whitelist


def test_legacy_whitelist_setting_entries_and_pages(http: Http, sdk: Sdk) -> None:
    uid, other = register(sdk, new_uid(), new_uid())
    assert http.legacy(
        "/user/whitesetting/set.json", [("userId", uid), ("userId", other), ("whiteSetting", "1")]
    ).json() == {"code": 200}
    query = http.legacy("/user/whitesetting/query.json", [("userId", uid)]).json()
    assert query["code"] == 200 and query["whiteSetting"] == 1
    targets = [f"w{i}" for i in range(5)]
    added = http.legacy("/user/whitelist/add.json", [("userId", uid)] + [("whiteUserId", t) for t in targets])
    assert added.json() == {"code": 200}
    http.legacy("/user/whitelist/remove.json", [("userId", uid), ("whiteUserId", "w0")])
    seen: list[str] = []
    form = [("userId", uid), ("size", "2")]
    for _ in range(10):
        page = http.legacy("/user/whitelist/query.json", form).json()
        assert page["code"] == 200
        seen += page["users"]
        if "next" not in page:
            break
        form = [("userId", uid), ("size", "2"), ("pageToken", page["next"])]
    assert sorted(seen) == targets[1:]


def test_legacy_endpoints_sign_with_seconds(http: Http, sdk: Sdk) -> None:
    (uid,) = register(sdk)
    in_ms = http.legacy("/user/whitesetting/query.json", [("userId", uid)], headers=signed("ms"))
    assert (in_ms.status_code, in_ms.json()["code"]) == (401, nexconn.BAD_SIGNATURE)


@pytest.mark.parametrize(
    "form",
    [
        [("whiteSetting", "1")],
        [("userId", "a"), ("whiteSetting", "2")],
        [("userId", "a"), ("whiteSetting", "one")],
        [("userId", f"u{i}") for i in range(21)] + [("whiteSetting", "1")],
    ],
    ids=["no-user", "bad-setting", "not-a-number", "over-20"],
)
def test_legacy_bad_parameters_are_1002(http: Http, form: list[tuple[str, str]]) -> None:
    response = http.legacy("/user/whitesetting/set.json", form)
    assert (response.status_code, response.json()["code"]) == (400, nexconn.BAD_PARAMETER)


def test_legacy_whitelist_of_an_unknown_user_is_not_found(http: Http) -> None:
    response = http.legacy("/user/whitelist/add.json", [("userId", new_uid()), ("whiteUserId", "x")])
    assert (response.status_code, response.json()["code"]) == (404, nexconn.USER_NOT_FOUND)


# ------------------------------------------------------------------------ signing


def test_a_wrong_secret_is_refused_with_the_vendors_body(
    shared_emulator: EmulatorProcess, conformance: Any
) -> None:
    sdk = make_sdk(shared_emulator.base_url, conformance, secret="not-the-secret")
    error = refused(lambda: sdk.users.get_user(m.UserGetRequest(userId="anyone")))
    assert (error.status, error.error_code) == (401, nexconn.BAD_SIGNATURE)


@pytest.mark.parametrize(
    "headers",
    [
        lambda: signed(timestamp=str(int(time.time() * 1000) - 10 * 60 * 1000)),
        lambda: signed(timestamp=str(int(time.time() * 1000) + 10 * 60 * 1000)),
        lambda: signed(timestamp=str(int(time.time()))),  # seconds on a v4 endpoint
        lambda: {k: v for k, v in signed().items() if k != "Nonce"},
        lambda: signed(key="another-app"),
        lambda: {**signed(), "Signature": "0" * 40},
        lambda: signed(nonce="1" * 19),
    ],
    ids=["stale", "future", "seconds", "no-nonce", "unknown-key", "bad-signature", "long-nonce"],
)
def test_a_badly_signed_request_is_refused(http: Http, headers: Any) -> None:
    response = http.post("/v4/user/get", {"userId": "anyone"}, headers=headers())
    assert response.status_code == 401
    assert response.json()["code"] == nexconn.BAD_SIGNATURE


def test_a_replayed_nonce_is_refused(http: Http, sdk: Sdk) -> None:
    (uid,) = register(sdk)
    headers = signed()
    assert http.post("/v4/user/get", {"userId": uid}, headers=headers).status_code == 200
    again = http.post("/v4/user/get", {"userId": uid}, headers=headers)
    assert (again.status_code, again.json()["code"]) == (401, nexconn.BAD_SIGNATURE)
    assert "replay" in again.json()["errorMessage"]


def test_headers_with_the_rc_prefix_are_accepted(http: Http, sdk: Sdk) -> None:
    (uid,) = register(sdk)
    headers = {f"RC-{name}": value for name, value in signed().items()}
    assert http.post("/v4/user/get", {"userId": uid}, headers=headers).status_code == 200


# ------------------------------------------------------------------- error paths


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/v4/user/get", {"userId": 42}),
        ("/v4/user/get", {}),
        ("/v4/user/get", {"userId": ""}),
        ("/v4/user/get", ["not", "an", "object"]),
        ("/v4/user/ban", {"userIds": ["a"], "durationMinutes": "10"}),
        ("/v4/user/ban", {"userIds": ["a"], "durationMinutes": 10.0}),
        ("/v4/user/ban", {"userIds": ["a"], "durationMinutes": True}),
        ("/v4/user/ban", {"userIds": "a", "durationMinutes": 10}),
        ("/v4/user/ban", {"userIds": [1], "durationMinutes": 10}),
        ("/v4/user/ban", {"userIds": [], "durationMinutes": 10}),
        ("/v4/user/update", {"userId": "a", "name": None}),
        ("/v4/user/profile/set", {"userId": "a", "userProfile": "email"}),
        ("/v4/user/profile/set", {"userId": "a"}),
        ("/v4/user/blocklist/get", {"userId": "a", "pageToken": "not-ours"}),
        ("/v4/user/ban/list", {"page": 0}),
    ],
)
def test_wrong_types_and_missing_fields_are_1002(http: Http, path: str, body: Any) -> None:
    response = http.post(path, body)
    assert (response.status_code, response.json()["code"]) == (400, nexconn.BAD_PARAMETER)


@pytest.mark.parametrize(
    ("path", "body", "limit"),
    [
        ("/v4/auth/access-token/expire", {"expiresAt": 0}, 20),
        ("/v4/user/ban", {"durationMinutes": 1}, 20),
        ("/v4/user/unban", {}, 20),
        ("/v4/user/profile/batch/get", {}, 20),
        ("/v4/user/profile/delete", {}, 20),
        ("/v4/user/tag/batch/get", {}, 50),
        ("/v4/user/soft-delete", {}, 100),
        ("/v4/user/restore", {}, 100),
        ("/v4/user/tag/batch/set", {"tags": []}, 1000),
    ],
)
def test_lists_over_the_vendors_limit_are_refused(
    http: Http, path: str, body: dict[str, Any], limit: int
) -> None:
    too_many = [f"u{i}" for i in range(limit + 1)]
    response = http.post(path, {**body, "userIds": too_many})
    assert (response.status_code, response.json()["code"]) == (400, nexconn.BAD_PARAMETER)
    assert f"at most {limit}" in response.json()["errorMessage"]


@pytest.mark.parametrize(
    ("path", "field"),
    [("/v4/user/blocklist/add", "targetUserIds"), ("/v4/user/blocklist/remove", "blockedUserIds")],
)
def test_blocklist_changes_over_20_are_refused(http: Http, path: str, field: str) -> None:
    response = http.post(path, {"userId": "a", field: [f"u{i}" for i in range(21)]})
    assert (response.status_code, response.json()["code"]) == (400, nexconn.BAD_PARAMETER)


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/v4/user/soft-deleted/list", {"pageSize": 51}),
        ("/v4/user/profile/list", {"pageSize": 101}),
        ("/v4/user/blocklist/get", {"userId": "a", "pageSize": 1001}),
        ("/v4/user/ban/list", {"pageSize": 1001}),
    ],
)
def test_page_sizes_over_the_vendors_maximum_are_refused(http: Http, path: str, body: dict[str, Any]) -> None:
    response = http.post(path, body)
    assert (response.status_code, response.json()["code"]) == (400, nexconn.BAD_PARAMETER)


@pytest.mark.parametrize("content", [b"{not json", b"", b"\xff\xfe", b"[1, 2"])
def test_malformed_json_is_1002(http: Http, content: bytes) -> None:
    response = http.post("/v4/user/get", content=content)
    assert (response.status_code, response.json()["code"]) == (400, nexconn.BAD_PARAMETER)


def test_a_batch_naming_an_unknown_user_changes_nothing(http: Http, sdk: Sdk) -> None:
    (uid,) = register(sdk)
    ghost = new_uid()
    response = http.post("/v4/user/tag/batch/set", {"userIds": [uid, ghost], "tags": ["x"]})
    assert (response.status_code, response.json()["code"]) == (404, nexconn.USER_NOT_FOUND)
    assert ghost in response.json()["errorMessage"]
    got = sdk.users.batch_get_user_tags(m.UserTagBatchGetRequest(userIds=[uid, ghost]))
    assert [(item.user_id, item.tags) for item in got.result.users] == [(uid, [])]


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/v4/user/nope"),
        ("POST", "/v4/user/get/"),
        ("GET", "/v4/user/get"),
        ("POST", "/v4/user/online-status/get"),
        ("POST", "/nope.json"),
    ],
)
def test_an_unknown_route_is_the_vendors_404(
    shared_emulator: EmulatorProcess, method: str, path: str
) -> None:
    response = httpx.request(method, shared_emulator.base_url + path, headers=signed(), json={})
    assert response.status_code == 404
    assert response.json() == {"code": 404, "errorMessage": f"Not Found: {method} {path}"}


# --------------------------------------------------------------------- friends


def friend_ids(sdk: Sdk, uid: str) -> list[str]:
    listed = sdk.friends.list_friends(m.FriendListRequest(userId=uid, pageSize=100))
    return [item.user_id for item in listed.result.friends or []]


def test_adding_a_friend_directly_makes_both_users_friends(sdk: Sdk) -> None:
    alice, bob, carol = register(sdk, new_uid(), new_uid(), new_uid())

    sdk.friends.add_friend(m.FriendAddRequest(userId=alice, targetId=bob, action=2))

    assert friend_ids(sdk, alice) == [bob] and friend_ids(sdk, bob) == [alice]
    found = sdk.friends.get_friend_relationships(
        m.FriendRelationshipGetRequest(userId=alice, targetIds=[bob, carol])
    )
    assert [(f.user_id, f.result) for f in found.result.friendships] == [(bob, 4), (carol, 1)]


def test_a_friend_request_obeys_the_targets_permission(sdk: Sdk, http: Http) -> None:
    alice, bob, carol, dave = register(sdk, new_uid(), new_uid(), new_uid(), new_uid())
    sdk.friends.set_friend_permission(m.FriendPermissionSetRequest(userIds=[bob], permissionType=2))
    sdk.friends.set_friend_permission(m.FriendPermissionSetRequest(userIds=[carol], permissionType=3))

    sdk.friends.add_friend(m.FriendAddRequest(userId=alice, targetId=bob))  # a request for bob
    refusal = http.post("/v4/friend/add", {"userId": alice, "targetId": carol, "action": 1})
    sdk.friends.add_friend(m.FriendAddRequest(userId=alice, targetId=dave))  # dave: anyone

    assert friend_ids(sdk, alice) == [dave]
    assert refusal.status_code == 400 and refusal.json()["code"] == 1002
    found = sdk.friends.get_friend_permission(m.FriendPermissionGetRequest(userIds=[bob, carol, dave]))
    assert [(p.user_id, p.permission_type) for p in found.result.permissions] == [
        (bob, 2),
        (carol, 3),
        (dave, 1),
    ]


def test_each_side_keeps_its_own_alias_and_ext_and_omitting_the_alias_clears_it(sdk: Sdk) -> None:
    alice, bob = register(sdk, new_uid(), new_uid())
    sdk.friends.add_friend(m.FriendAddRequest(userId=alice, targetId=bob, action=2))

    sdk.friends.set_friend_profile(
        m.FriendProfileSetRequest(
            userId=alice, targetId=bob, alias="Bobby", friendExtProfile={"ext_team": "core"}
        )
    )
    [seen] = sdk.friends.list_friends(m.FriendListRequest(userId=alice)).result.friends
    [other_side] = sdk.friends.list_friends(m.FriendListRequest(userId=bob)).result.friends
    assert (seen.alias, seen.friend_ext_profile, seen.name) == ("Bobby", {"ext_team": "core"}, f"Name {bob}")
    assert (other_side.alias, other_side.friend_ext_profile) == ("", {})

    sdk.friends.set_friend_profile(m.FriendProfileSetRequest(userId=alice, targetId=bob))
    [seen] = sdk.friends.list_friends(m.FriendListRequest(userId=alice)).result.friends
    assert (seen.alias, seen.friend_ext_profile) == ("", {})


def test_friend_list_pages_with_a_page_token_and_a_total(sdk: Sdk) -> None:
    alice, *others = register(sdk, *[new_uid() for _ in range(6)])
    for other in others:
        sdk.friends.add_friend(m.FriendAddRequest(userId=alice, targetId=other, action=2))

    seen, token, totals = [], None, set()
    while True:
        page = sdk.friends.list_friends(m.FriendListRequest(userId=alice, pageSize=2, pageToken=token)).result
        seen += [item.user_id for item in page.friends]
        totals.add(page.total_count)
        token = page.page_token
        if not token:
            break
    # Oldest first to the second (the store's clock); within a second, by uid.
    assert sorted(seen) == sorted(others) and len(seen) == 5 and totals == {5}


def test_removing_friends_ends_them_for_both_and_remove_all_clears_every_one(sdk: Sdk) -> None:
    alice, bob, carol = register(sdk, new_uid(), new_uid(), new_uid())
    for other in (bob, carol):
        sdk.friends.add_friend(m.FriendAddRequest(userId=alice, targetId=other, action=2))

    sdk.friends.remove_friends(m.FriendDeleteRequest(userId=bob, targetIds=[alice]))
    assert friend_ids(sdk, alice) == [carol] and friend_ids(sdk, bob) == []

    sdk.friends.remove_all_friends(m.FriendCleanRequest(userId=alice))
    assert friend_ids(sdk, alice) == [] and friend_ids(sdk, carol) == []


@pytest.mark.parametrize(
    ("path", "body", "words"),
    [
        ("/v4/friend/remove", {"targetIds": [f"x{n}" for n in range(101)]}, "at most 100 items"),
        ("/v4/friend/profile/set", {"alias": "x" * 65}, "at most 64 characters"),
        (
            "/v4/friend/profile/set",
            {"friendExtProfile": {f"ext_k{n}": "v" for n in range(11)}},
            "at most 10 items",
        ),
        ("/v4/friend/profile/set", {"friendExtProfile": {"team": "v"}}, "'team' is not ext_"),
        ("/v4/friend/add", {"extra": "x" * 129}, "at most 128 characters"),
        ("/v4/friend/add", {"action": 3}, "at most 2"),
        ("/v4/friend/relationship/get", {"targetIds": [f"x{n}" for n in range(21)]}, "at most 20 items"),
        ("/v4/friend/list", {"pageSize": 101}, "at most 100"),
    ],
)
def test_friend_calls_over_the_vendors_limits_are_1002(
    http: Http, sdk: Sdk, path: str, body: dict[str, Any], words: str
) -> None:
    alice, bob = register(sdk, new_uid(), new_uid())
    sdk.friends.add_friend(m.FriendAddRequest(userId=alice, targetId=bob, action=2))
    request = {"userId": alice, "targetId": bob, **body}
    if path in ("/v4/friend/remove", "/v4/friend/relationship/get", "/v4/friend/list"):
        request.pop("targetId")

    response = http.post(path, request)

    assert response.status_code == 400, response.text
    assert response.json()["code"] == 1002 and words in response.json()["errorMessage"]
    assert friend_ids(sdk, alice) == [bob]


def test_a_user_with_3000_friends_can_add_no_more(
    http: Http, sdk: Sdk, shared_emulator: EmulatorProcess
) -> None:
    alice, bob = register(sdk, new_uid(), new_uid())
    db = Store(shared_emulator.db_path)
    try:
        with db.transaction() as sql:
            sql.executemany(
                "INSERT INTO friends (uid, target, created_at) VALUES (?, ?, 0)",
                [(alice, f"{alice}x{n}") for n in range(3000)],
            )
    finally:
        db.close()

    response = http.post("/v4/friend/add", {"userId": alice, "targetId": bob, "action": 2})

    assert response.status_code == 400 and "3000 friends already" in response.json()["errorMessage"]
    assert friend_ids(sdk, bob) == []


def test_friends_of_an_unknown_user_are_the_vendors_not_found(http: Http, sdk: Sdk) -> None:
    [alice] = register(sdk)
    for path, body in [
        ("/v4/friend/add", {"userId": alice, "targetId": new_uid(), "action": 2}),
        ("/v4/friend/list", {"userId": new_uid()}),
        ("/v4/friend/permission/get", {"userIds": [alice, new_uid()]}),
    ]:
        response = http.post(path, body)
        assert response.status_code == 404 and response.json()["code"] == 24366, path


# ------------------------------------------------------- the emulator and the spec


def test_the_emulator_serves_exactly_the_user_endpoints_of_the_issue(spec: Conformance) -> None:
    wanted = {
        "/v4/auth/access-token/issue",
        "/v4/auth/access-token/expire",
        "/v4/user/get",
        "/v4/user/update",
        "/v4/user/connection-status/get",
        "/v4/user/ban",
        "/v4/user/unban",
        "/v4/user/ban/list",
        "/v4/user/soft-delete",
        "/v4/user/restore",
        "/v4/user/soft-deleted/list",
        "/v4/user/tag/batch/set",
        "/v4/user/tag/batch/get",
        "/v4/user/blocklist/add",
        "/v4/user/blocklist/remove",
        "/v4/user/blocklist/get",
        "/v4/user/profile/set",
        "/v4/user/profile/batch/get",
        "/v4/user/profile/list",
        "/v4/user/profile/delete",
        "/v4/friend/add",
        "/v4/friend/remove",
        "/v4/friend/remove-all",
        "/v4/friend/profile/set",
        "/v4/friend/list",
        "/v4/friend/relationship/get",
        "/v4/friend/permission/set",
        "/v4/friend/permission/get",
    }
    assert set(nexconn.ENDPOINTS) == wanted
    assert wanted <= set(spec.spec["paths"])


_KINDS = {
    "string": "string",
    "integer": "integer",
    "string[]": "array",
    "object": "object",
    "string-map": "object",
}


@pytest.mark.parametrize("path", sorted(nexconn.ENDPOINTS))
def test_request_fields_match_the_openapi_request_schema(spec: Conformance, path: str) -> None:
    operation = spec.spec["paths"][path]["post"]
    ref = operation["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    schema = spec.spec["components"]["schemas"][ref.rsplit("/", 1)[1]]
    fields = nexconn.ENDPOINTS[path].fields
    assert set(fields) == set(schema.get("properties", {}))
    assert {name for name, f in fields.items() if f.required} == set(schema.get("required", []))
    for name, field in fields.items():
        declared = schema["properties"][name]
        assert _KINDS[field.kind] == declared["type"], name
        if field.kind == "string[]":
            assert declared["items"]["type"] == "string"


def test_every_endpoint_answers_as_the_spec_says(emulator: EmulatorProcess, spec: Conformance) -> None:
    # A tour of every endpoint on an emulator of its own, each answer checked against
    # the spec as it comes (the SDK and `Http` check every response they get).
    before = len(spec.checked)
    sdk = make_sdk(emulator.base_url, spec)
    http = Http(emulator.base_url, spec)
    uid, other = register(sdk, new_uid(), new_uid())
    users = sdk.users
    users.expire_access_token(m.AccessTokenExpireRequest(userIds=[uid], expiresAt=1))
    users.get_user(m.UserGetRequest(userId=uid))
    users.update_user(m.UserUpdateRequest(userId=uid, name="Tour"))
    users.get_user_connection_status(m.UserConnectionStatusRequest(userId=uid))
    users.ban_users(m.UserBanRequest(userIds=[other], durationMinutes=5))
    users.list_banned_users(m.UserBanListRequest())
    users.unban_users(m.UserIdsMax20Request(userIds=[other]))
    users.batch_set_user_tags(m.UserTagBatchSetRequest(userIds=[uid], tags=["tour"]))
    users.batch_get_user_tags(m.UserTagBatchGetRequest(userIds=[uid]))
    blocklist = sdk.blocklist
    blocklist.add_user_blocklist(m.UserBlocklistAddRequest(userId=uid, targetUserIds=[other]))
    blocklist.get_user_blocklist(m.UserBlocklistGetRequest(userId=uid))
    blocklist.remove_user_blocklist(m.UserBlocklistRemoveRequest(userId=uid, blockedUserIds=[other]))
    profiles = sdk.profiles
    profiles.set_user_profile(m.UserProfileSetRequest(userId=uid, userProfile={"level": 1}))
    profiles.batch_get_user_profiles(m.UserIdsMax20Request(userIds=[uid]))
    profiles.list_user_profiles(m.UserProfileListRequest())
    profiles.delete_user_profiles(m.UserIdsMax20Request(userIds=[uid]))
    friends = sdk.friends
    friends.add_friend(m.FriendAddRequest(userId=uid, targetId=other, action=2))
    friends.set_friend_profile(m.FriendProfileSetRequest(userId=uid, targetId=other, alias="Tour"))
    friends.list_friends(m.FriendListRequest(userId=uid))
    friends.get_friend_relationships(m.FriendRelationshipGetRequest(userId=uid, targetIds=[other]))
    friends.set_friend_permission(m.FriendPermissionSetRequest(userIds=[uid], permissionType=2))
    friends.get_friend_permission(m.FriendPermissionGetRequest(userIds=[uid]))
    friends.remove_friends(m.FriendDeleteRequest(userId=uid, targetIds=[other]))
    friends.remove_all_friends(m.FriendCleanRequest(userId=uid))
    users.soft_delete_users(m.UserIdsMax100Request(userIds=[other]))
    users.list_soft_deleted_users(m.UserSoftDeletedListRequest())
    refused(lambda: users.restore_users(m.UserIdsMax100Request(userIds=[other])))  # < 1 hour
    assert http.post("/v4/user/get", {"userId": 42}).status_code == 400
    assert http.post("/v4/user/get", {"userId": uid}, headers={}).status_code == 401
    assert http.post("/v4/user/get", {"userId": new_uid()}).status_code == 404
    http.client.close()

    checked = spec.checked[before:]
    answered = {path for path, status in checked if status == 200}
    assert set(nexconn.ENDPOINTS) - {"/v4/user/restore"} <= answered
    assert ("/v4/user/restore", 400) in checked
    assert {status for _, status in checked} >= {200, 400, 401, 404}


# ---------------------------------------------------------- in process, with a clock


class InProcess:
    """The app driven in process through httpx's ASGI transport, on a store whose clock
    the test moves."""

    def __init__(self, path: Path) -> None:
        from chatroster.emulator.app import build_app

        self.now = time.time()
        self.store = Store(path, clock=lambda: self.now)
        self.app = build_app(self.store, EmulatorConfig())

    def post(self, path: str, body: Any) -> httpx.Response:
        async def send() -> httpx.Response:
            transport = httpx.ASGITransport(app=self.app)
            async with httpx.AsyncClient(transport=transport, base_url="http://emulator") as client:
                return await client.post(path, content=json.dumps(body), headers=signed())

        return asyncio.run(send())


@pytest.fixture
def in_process(tmp_path: Path) -> Iterator[InProcess]:
    emulator = InProcess(tmp_path / "store.db")
    yield emulator
    emulator.store.close()


def test_restore_is_allowed_once_the_hour_has_passed(in_process: InProcess) -> None:
    post = in_process.post
    post("/v4/auth/access-token/issue", {"userId": "alice", "name": "Alice"})
    post("/v4/user/soft-delete", {"userIds": ["alice"]})
    in_process.now += 3599
    assert post("/v4/user/restore", {"userIds": ["alice"]}).status_code == 400
    in_process.now += 2
    assert post("/v4/user/restore", {"userIds": ["alice"]}).json()["code"] == 0
    assert in_process.store.get_user("alice").active is True  # type: ignore[union-attr]


def test_bans_expire_on_the_stores_clock(in_process: InProcess) -> None:
    post = in_process.post
    post("/v4/auth/access-token/issue", {"userId": "bob", "name": "Bob"})
    post("/v4/user/ban", {"userIds": ["bob"], "durationMinutes": 2})
    assert len(post("/v4/user/ban/list", {}).json()["result"]["bannedUsers"]) == 1
    in_process.now += 121
    assert post("/v4/user/ban/list", {}).json()["result"]["bannedUsers"] == []
