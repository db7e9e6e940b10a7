"""The emulator's CometChat v3 API, driven over real HTTP on loopback.

Every response body a test receives is checked against the vendor's own OpenAPI file
(`shared/conformance/cometchat/chat-apis.json`, beside the repository; never copied
into it): the 200 schema of the matching operation, or, for errors (the file documents
only 200s), the error envelope of the API reference.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from openapi_schema_validator import OAS30ReadValidator
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from chatroster.emulator import cometchat, storage
from chatroster.emulator.config import EmulatorConfig
from chatroster.model import User
from chatroster.store import Store

try:  # the framework's fixture: runs `chatroster emulator` as a real process
    from emulator_process import running_emulator
except ImportError:  # pragma: no cover - only while that module is not in the tree
    running_emulator = None  # type: ignore[assignment]

SPEC_PATH = Path(__file__).resolve().parents[2] / "shared" / "conformance" / "cometchat" / "chat-apis.json"
CONFIG = EmulatorConfig()
START = 1_700_000_000

#: The reference's error envelope: the vendor file has no error responses to check against.
ERROR_ENVELOPE: dict[str, Any] = {
    "type": "object",
    "required": ["error"],
    "additionalProperties": False,
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message"],
            "additionalProperties": False,
            "properties": {
                "code": {"type": "string", "pattern": "^[A-Z_]+$"},
                "message": {"type": "string", "minLength": 1},
                "details": {
                    "type": "object",
                    "minProperties": 1,
                    "additionalProperties": {"type": "array", "items": {"type": "string"}},
                },
            },
        }
    },
}


# ------------------------------------------------------- the vendor's OpenAPI file


class VendorSpec:
    """Finds the vendor's operation for a method and concrete path, and checks bodies."""

    def __init__(self, document: dict[str, Any]) -> None:
        self.document = document
        self.checked: list[tuple[str, str, int]] = []
        self.templates = sorted(
            document["paths"], key=lambda template: template.count("{")
        )  # literal paths win over templated ones

    def operation(self, method: str, path: str) -> tuple[str, dict[str, Any]] | None:
        for template in self.templates:
            pattern = "^" + re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(template)) + "$"
            operation = self.document["paths"][template].get(method.lower())
            if operation is not None and re.match(pattern, path):
                return template, operation
        return None

    def schema(self, method: str, path: str, status: int) -> dict[str, Any]:
        found = self.operation(method, path)
        if status >= 400:
            response = found[1]["responses"].get(str(status)) if found else None
            if response is None:
                return ERROR_ENVELOPE
        assert found is not None, f"{method} {path} is not an operation of the vendor spec"
        response = found[1]["responses"].get(str(status))
        assert response is not None, f"the vendor spec has no {status} reply for {method} {path}"
        schema: dict[str, Any] = self.resolve(response["content"]["application/json"]["schema"])
        return schema

    def resolve(self, node: Any, depth: int = 0) -> Any:
        """Inline local $refs. The file has dangling refs (moderation section); one
        reached here would fail loudly, and no user, token or role path uses them."""
        assert depth < 32, "recursive $ref"
        if isinstance(node, list):
            return [self.resolve(item, depth) for item in node]
        if not isinstance(node, dict):
            return node
        if "$ref" in node:
            target: Any = self.document
            for part in node["$ref"].removeprefix("#/").split("/"):
                target = target[part.replace("~1", "/").replace("~0", "~")]
            return self.resolve(target, depth + 1)
        return {key: self.resolve(value, depth) for key, value in node.items()}

    def check(self, method: str, path: str, status: int, body: Any) -> None:
        OAS30ReadValidator(self.schema(method, path, status)).validate(body)
        self.checked.append((method, path, status))


def _load_spec() -> VendorSpec | None:
    if not SPEC_PATH.exists():
        return None
    return VendorSpec(json.loads(SPEC_PATH.read_text(encoding="utf-8")))


SPEC = _load_spec()
needs_spec = pytest.mark.skipif(
    SPEC is None, reason=f"the vendor's OpenAPI file is not at {SPEC_PATH} (it lives in ../shared)"
)


def _template_of(method: str, path: str) -> str | None:
    found = SPEC.operation(method, path) if SPEC is not None else None
    return found[0] if found else None


def _api_path(path: str) -> str:
    return re.sub(r"^/v3(\.0)?", "", path)


def check_response(response: httpx.Response) -> None:
    """Every response: JSON, the vendor envelope, and the vendor's schema where known."""
    response.read()
    body = response.json()
    path = response.request.url.path
    if SPEC is not None:
        SPEC.check(response.request.method, _api_path(path), response.status_code, body)
    elif response.status_code >= 400:
        OAS30ReadValidator(ERROR_ENVELOPE).validate(body)
    else:
        assert "data" in body


# ---------------------------------------------------------------------- fixtures


class Clock:
    """The store's clock, moved by the tests so that timestamps are predictable."""

    def __init__(self) -> None:
        self.now = float(START)

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float = 10) -> None:
        self.now += seconds


async def _throttled(request: Request) -> Response:
    """Serves the 429 the framework's rate limiter sends, to check it over HTTP."""
    return cometchat.rate_limited_response(500, START + 60, 42)


class Server:
    """The CometChat routes in a uvicorn server on 127.0.0.1, on a free port, in a thread.

    Serving just this module's routes lets the tests move the store's clock and seed
    the store directly; the last section runs the real `chatroster emulator` process
    (`tests/emulator_process.py`) to check the module as the product wires it.
    """

    def __init__(self, store: Store) -> None:
        routes = [Route("/test/throttled", _throttled), *cometchat.routes(store, CONFIG)]
        config = uvicorn.Config(
            Starlette(routes=routes),
            host="127.0.0.1",
            port=0,
            log_level="warning",
            lifespan="off",
            ws="none",
            http="h11",
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> str:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            assert time.monotonic() < deadline, "the emulator did not start"
            time.sleep(0.01)
        port = self.server.servers[0].sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}"

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(10)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def store(tmp_path: Path, clock: Clock) -> Iterator[Store]:
    store = Store(tmp_path / "emulator.db", clock=clock)
    yield store
    store.close()


@pytest.fixture
def base_url(store: Store) -> Iterator[str]:
    with Server(store) as url:
        yield url


def _client(base_url: str, **headers: str) -> httpx.Client:
    return httpx.Client(
        base_url=base_url,
        headers=headers,
        timeout=30,
        event_hooks={"response": [check_response]},
    )


@pytest.fixture
def api(base_url: str) -> Iterator[httpx.Client]:
    """A client of ``/v3`` with the right API key and app id."""
    with _client(f"{base_url}/v3", apikey=CONFIG.api_key, appId=CONFIG.app_id) as client:
        yield client


@pytest.fixture
def raw(base_url: str) -> Iterator[httpx.Client]:
    """A client of the server root with no credentials."""
    with _client(base_url) as client:
        yield client


# ----------------------------------------------------------------------- helpers


def create(api: httpx.Client, uid: str, **fields: Any) -> dict[str, Any]:
    response = api.post("/users", json={"uid": uid, "name": fields.pop("name", uid), **fields})
    assert response.status_code == 200, response.text
    data: dict[str, Any] = response.json()["data"]
    return data


def error_of(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    error: dict[str, Any] = response.json()["error"]
    return error


def delete(api: httpx.Client, path: str, body: Any) -> httpx.Response:
    return api.request("DELETE", path, json=body)


def uids(response: httpx.Response) -> list[str]:
    assert response.status_code == 200, response.text
    return [user["uid"] for user in response.json()["data"]]


def seed(store: Store, count: int, **fields: Any) -> list[str]:
    made = [f"user-{n:05d}" for n in range(count)]
    store.insert_users(User(uid=uid, name=f"User {uid}", **fields) for uid in made)
    return made


# ------------------------------------------------------------------------- users


def test_create_lowercases_the_uid_and_answers_the_user_with_tags(api: httpx.Client) -> None:
    user = create(
        api,
        "Alice-01",
        name="Alice Ng",
        tags=["staff", "beta"],
        metadata={"a": 1},
        statusMessage="On call",
        link="https://example.com/u/alice",
    )
    assert user == {
        "uid": "alice-01",
        "name": "Alice Ng",
        "link": "https://example.com/u/alice",
        "metadata": {"a": 1},
        "status": "offline",
        "statusMessage": "On call",
        "role": "default",
        "createdAt": START,
        "tags": ["beta", "staff"],
    }
    assert api.get("/users/ALICE-01").json()["data"]["uid"] == "alice-01"


def test_create_leaves_unset_optional_fields_out_of_the_user(api: httpx.Client) -> None:
    user = create(api, "bob")
    assert set(user) == {"uid", "name", "status", "role", "createdAt", "tags"}
    assert set(api.get("/users/bob").json()["data"]) == {
        "uid",
        "name",
        "status",
        "role",
        "createdAt",
    }


def test_create_with_auth_token_answers_a_token_that_is_listed(api: httpx.Client) -> None:
    user = create(api, "carol", withAuthToken=True)
    assert user["authToken"].startswith("carol_")
    listed = api.get("/users/carol/auth_tokens").json()["data"]
    assert [token["authToken"] for token in listed] == [user["authToken"]]


def test_creating_a_taken_uid_fails_with_uid_already_exists(api: httpx.Client) -> None:
    create(api, "dave")
    assert error_of(api.post("/users", json={"uid": "DAVE", "name": "D"}), 400)["code"] == (
        "ERR_UID_ALREADY_EXISTS"
    )
    delete(api, "/users", {"uidsToDeactivate": ["dave"]})
    # deactivated users keep their uid
    assert error_of(api.post("/users", json={"uid": "dave", "name": "D"}), 400)["code"] == (
        "ERR_UID_ALREADY_EXISTS"
    )


def test_create_reports_every_invalid_field_at_once(api: httpx.Client) -> None:
    response = api.post(
        "/users",
        json={
            "uid": "bad uid!",
            "tags": [f"t{n}" for n in range(26)],
            "avatar": "x" * 3001,
            "metadata": ["not", "an", "object"],
        },
    )
    error = error_of(response, 400)
    assert error["code"] == "ERR_BAD_REQUEST"
    assert set(error["details"]) == {"uid", "name", "tags", "avatar", "metadata"}


def test_create_rejects_a_uid_over_100_characters_and_a_tag_over_100(api: httpx.Client) -> None:
    response = api.post("/users", json={"uid": "u" * 101, "name": "n", "tags": ["t" * 101]})
    assert set(error_of(response, 400)["details"]) == {"uid", "tags"}
    create(api, "u" * 100, tags=["t" * 100])


def test_create_with_an_unknown_role_is_a_bad_request(api: httpx.Client) -> None:
    error = error_of(api.post("/users", json={"uid": "erin", "name": "E", "role": "ghost"}), 400)
    assert error["code"] == "ERR_BAD_REQUEST" and "role" in error["details"]
    api.post("/roles", json={"role": "agent", "name": "Agent"})
    assert create(api, "erin", role="agent")["role"] == "agent"


def test_get_of_a_deactivated_or_missing_user_is_uid_not_found(api: httpx.Client) -> None:
    create(api, "frank")
    delete(api, "/users/frank", {"permanent": False})
    assert error_of(api.get("/users/frank"), 404)["code"] == "ERR_UID_NOT_FOUND"
    assert error_of(api.put("/users/frank", json={"name": "F"}), 404)["code"] == "ERR_UID_NOT_FOUND"
    assert error_of(api.get("/users/nobody"), 404)["code"] == "ERR_UID_NOT_FOUND"


def test_update_replaces_tags_and_metadata_whole_and_leaves_absent_fields(
    api: httpx.Client, clock: Clock
) -> None:
    create(api, "gina", avatar="https://a/1.png", tags=["a", "b"], metadata={"x": 1, "y": 2})
    clock.advance()
    updated = api.put("/users/gina", json={"tags": ["c"], "metadata": {"z": 3}}).json()["data"]
    assert updated["tags"] == ["c"] and updated["metadata"] == {"z": 3}
    assert updated["avatar"] == "https://a/1.png" and updated["name"] == "gina"
    assert updated["updatedAt"] == START + 10


def test_update_with_unset_clears_avatar_link_and_metadata(api: httpx.Client) -> None:
    create(api, "hank", avatar="https://a/1.png", link="https://l", metadata={"x": 1})
    updated = api.put("/users/hank", json={"unset": ["avatar", "link", "metadata"]})
    assert not {"avatar", "link", "metadata"} & set(updated.json()["data"])


def test_update_refuses_unset_of_other_fields_or_of_a_field_it_sets(api: httpx.Client) -> None:
    create(api, "ivan")
    assert "unset" in error_of(api.put("/users/ivan", json={"unset": ["tags"]}), 400)["details"]
    both = api.put("/users/ivan", json={"avatar": "https://a", "unset": ["avatar"]})
    assert "unset" in error_of(both, 400)["details"]


def test_delete_without_permanent_deactivates_and_keeps_the_data(api: httpx.Client, store: Store) -> None:
    create(api, "jill", tags=["keep"])
    assert api.request("DELETE", "/users/jill").json()["data"]["success"] is True
    row = storage.user_row(store, "jill")
    assert row is not None and row["active"] == 0 and json.loads(row["tags"]) == ["keep"]


def test_delete_permanent_removes_the_user_and_their_blocks(api: httpx.Client, store: Store) -> None:
    create(api, "kim")
    create(api, "lee")
    api.post("/users/lee/blockedusers", json={"blockedUids": ["kim"]})
    delete(api, "/users/kim", {"permanent": True})
    assert storage.user_row(store, "kim") is None
    assert store.relations("blocks") == {}
    assert error_of(delete(api, "/users/kim", {"permanent": True}), 404)["code"] == ("ERR_UID_NOT_FOUND")


def test_a_deactivated_user_can_still_be_deleted_permanently(api: httpx.Client, store: Store) -> None:
    create(api, "max")
    delete(api, "/users", {"uidsToDeactivate": ["max"]})
    assert delete(api, "/users/max", {"permanent": True}).status_code == 200
    assert storage.user_row(store, "max") is None


def test_bulk_deactivate_and_reactivate_answer_the_users_in_that_state(api: httpx.Client) -> None:
    for uid in ("n1", "n2", "n3"):
        create(api, uid)
    gone = delete(api, "/users", {"uidsToDeactivate": ["N1", "n2", "missing"]})
    assert gone.json()["data"] == {"deactivatedUids": ["n1", "n2"]}
    assert uids(api.get("/users")) == ["n3"]
    back = api.put("/users", json={"uidsToActivate": ["n1", "n2"]})
    assert back.json()["data"] == {"nonDeactivatedUids": ["n1", "n2"]}
    assert uids(api.get("/users")) == ["n1", "n2", "n3"]


def test_bulk_deactivate_or_reactivate_of_more_than_25_uids_is_a_bad_request(
    api: httpx.Client,
) -> None:
    many = [f"u{n}" for n in range(26)]
    assert "uidsToDeactivate" in error_of(delete(api, "/users", {"uidsToDeactivate": many}), 400)["details"]
    assert "uidsToActivate" in error_of(api.put("/users", json={"uidsToActivate": many}), 400)["details"]
    assert error_of(delete(api, "/users", {}), 400)["code"] == "ERR_BAD_REQUEST"


# ------------------------------------------------------------------------- lists


def test_list_pages_through_2500_users_1000_at_a_time(api: httpx.Client, store: Store) -> None:
    made = seed(store, 2500)
    seen, metas = [], []
    for page in (1, 2, 3):
        body = api.get("/users", params={"perPage": 1000, "page": page}).json()
        seen += [user["uid"] for user in body["data"]]
        metas.append(body["meta"]["pagination"])
    assert seen == made
    assert metas == [
        {"total": 2500, "count": count, "per_page": 1000, "current_page": page, "total_pages": 3}
        for page, count in ((1, 1000), (2, 1000), (3, 500))
    ]


def test_a_page_of_1000_users_is_two_queries_not_one_per_user(api: httpx.Client, store: Store) -> None:
    seed(store, 1000, tags=("t",))
    statements: list[str] = []
    store._db.set_trace_callback(statements.append)  # the store's own connection
    body = api.get("/users", params={"perPage": 1000, "withTags": "true"}).json()
    store._db.set_trace_callback(None)
    assert len(body["data"]) == 1000
    # Two queries whatever the page size: the count guards speed without a clock.
    assert len([s for s in statements if s.lstrip().upper().startswith("SELECT")]) == 2


def test_list_defaults_to_100_per_page_and_refuses_more_than_1000(api: httpx.Client, store: Store) -> None:
    seed(store, 150)
    assert len(uids(api.get("/users"))) == 100
    assert "perPage" in error_of(api.get("/users", params={"perPage": 1001}), 400)["details"]
    assert "page" in error_of(api.get("/users", params={"page": 0}), 400)["details"]
    past_the_end = api.get("/users", params={"page": 9}).json()
    assert past_the_end["data"] == [] and past_the_end["meta"]["pagination"]["count"] == 0


def test_list_hides_deactivated_users_unless_asked(api: httpx.Client) -> None:
    create(api, "on")
    create(api, "off")
    delete(api, "/users/off", {})
    assert uids(api.get("/users")) == ["on"]
    assert uids(api.get("/users", params={"withDeactivated": "true"})) == ["on", "off"]
    only = api.get("/users", params={"onlyDeactivated": "true"}).json()["data"]
    assert [user["uid"] for user in only] == ["off"] and only[0]["deactivatedAt"] == START


def test_list_carries_tags_only_with_with_tags(api: httpx.Client) -> None:
    create(api, "tagged", tags=["x"])
    create(api, "untagged")
    assert all("tags" not in user for user in api.get("/users").json()["data"])
    rows = api.get("/users", params={"withTags": "true"}).json()["data"]
    assert [user["tags"] for user in rows] == [["x"], []]


def test_list_search_key_matches_a_prefix_of_uid_or_name(api: httpx.Client) -> None:
    create(api, "sam", name="Zed")
    create(api, "zoe", name="Samantha")
    create(api, "xsam", name="Other")
    assert uids(api.get("/users", params={"searchKey": "sa"})) == ["sam", "zoe"]
    assert uids(api.get("/users", params={"searchKey": "sa", "searchIn": "uid"})) == ["sam"]
    assert uids(api.get("/users", params={"searchKey": "sa", "searchIn": "name"})) == ["zoe"]
    assert uids(api.get("/users", params={"searchKey": "%"})) == []


def test_list_filters_by_role_counting_unset_roles_as_default(api: httpx.Client) -> None:
    api.post("/roles", json={"role": "agent", "name": "Agent"})
    create(api, "plain")
    create(api, "agent1", role="agent")
    create(api, "explicit", role="default")
    assert uids(api.get("/users", params={"role": "agent"})) == ["agent1"]
    assert uids(api.get("/users", params={"role": "default"})) == ["plain", "explicit"]
    assert uids(api.get("/users", params={"roles": "agent,default"})) == [
        "plain",
        "agent1",
        "explicit",
    ]


def test_list_filters_by_tags_keeping_users_with_any_of_them(api: httpx.Client) -> None:
    create(api, "t1", tags=["red"])
    create(api, "t2", tags=["blue", "red"])
    create(api, "t3", tags=["green"])
    assert uids(api.get("/users", params={"tags": "red"})) == ["t1", "t2"]
    assert uids(api.get("/users", params={"tags": "blue,green"})) == ["t2", "t3"]


def test_status_available_lists_nobody_because_no_one_is_connected(api: httpx.Client) -> None:
    create(api, "offline")
    assert uids(api.get("/users", params={"status": "available"})) == []
    assert uids(api.get("/users", params={"status": "offline"})) == ["offline"]


# ------------------------------------------------------------------ blocked users


def test_block_then_list_by_direction(api: httpx.Client, clock: Clock) -> None:
    for uid in ("amy", "ben", "cat"):
        create(api, uid)
    blocked = api.post("/users/amy/blockedusers", json={"blockedUids": ["BEN"]}).json()["data"]
    assert blocked["ben"]["success"] is True
    clock.advance()
    api.post("/users/cat/blockedusers", json={"blockedUids": ["amy"]})
    by_me = api.get("/users/amy/blockedusers", params={"direction": "blockedByMe"}).json()
    assert [(u["uid"], u["blockedByMe"], u["blockedByMeAt"]) for u in by_me["data"]] == [("ben", True, START)]
    has_me = api.get("/users/amy/blockedusers", params={"direction": "hasBlockedMe"}).json()
    assert [(u["uid"], u["hasBlockedMe"], u["blockedByMe"]) for u in has_me["data"]] == [("cat", True, False)]
    both = api.get("/users/amy/blockedusers").json()
    assert [u["uid"] for u in both["data"]] == ["cat", "ben"]  # newest block first
    assert both["meta"]["pagination"]["total"] == 2


def test_blocked_users_list_pages(api: httpx.Client, store: Store) -> None:
    create(api, "owner")
    targets = seed(store, 5)
    api.post("/users/owner/blockedusers", json={"blockedUids": targets})
    first = api.get("/users/owner/blockedusers", params={"perPage": 2, "page": 3}).json()
    assert len(first["data"]) == 1
    assert first["meta"]["pagination"] == {
        "total": 5,
        "count": 1,
        "per_page": 2,
        "current_page": 3,
        "total_pages": 3,
    }


def test_unblock_removes_the_block_and_repeating_it_succeeds(api: httpx.Client, store: Store) -> None:
    create(api, "dan")
    create(api, "eve")
    api.post("/users/dan/blockedusers", json={"blockedUids": ["eve"]})
    for _ in range(2):
        gone = delete(api, "/users/dan/blockedusers", {"blockedUids": ["eve"]}).json()["data"]
        assert gone["eve"]["success"] is True
    assert store.relations("blocks") == {}


def test_blocking_self_fails_with_cannot_block_self_and_writes_nothing(
    api: httpx.Client, store: Store
) -> None:
    create(api, "fay")
    create(api, "gus")
    response = api.post("/users/fay/blockedusers", json={"blockedUids": ["gus", "FAY"]})
    assert error_of(response, 400)["code"] == "ERR_CANNOT_BLOCK_SELF"
    assert store.relations("blocks") == {}


def test_blocking_an_unknown_user_fails_for_that_target_only(api: httpx.Client, store: Store) -> None:
    create(api, "hal")
    create(api, "ida")
    data = api.post("/users/hal/blockedusers", json={"blockedUids": ["ghost", "ida"]}).json()["data"]
    assert data["ghost"]["success"] is False and data["ida"]["success"] is True
    assert store.relations("blocks") == {"hal": {"ida"}}


def test_block_calls_need_a_blocker_that_exists_and_a_blocked_uids_list(api: httpx.Client) -> None:
    assert error_of(api.get("/users/ghost/blockedusers"), 404)["code"] == "ERR_UID_NOT_FOUND"
    create(api, "jo")
    assert "blockedUids" in error_of(api.post("/users/jo/blockedusers", json={}), 400)["details"]
    bad = api.get("/users/jo/blockedusers", params={"direction": "sideways"})
    assert "direction" in error_of(bad, 400)["details"]


def test_get_user_on_behalf_of_another_shows_the_block_between_them(api: httpx.Client) -> None:
    create(api, "kay")
    create(api, "lou")
    api.post("/users/kay/blockedusers", json={"blockedUids": ["lou"]})
    seen = api.get("/users/lou", headers={"onBehalfOf": "kay"}).json()["data"]
    assert (seen["blockedByMe"], seen["hasBlockedMe"], seen["conversationId"]) == (
        True,
        False,
        "kay_user_lou",
    )
    other_way = api.get("/users/kay", headers={"onBehalfOf": "lou"}).json()["data"]
    assert (other_way["blockedByMe"], other_way["hasBlockedMe"]) == (False, True)


# -------------------------------------------------------------------- auth tokens


def test_auth_tokens_can_be_created_listed_read_deleted_and_flushed(api: httpx.Client, clock: Clock) -> None:
    create(api, "mia")
    first = api.post("/users/mia/auth_tokens", json={}).json()["data"]
    assert first == {"uid": "mia", "authToken": first["authToken"], "createdAt": START}
    clock.advance()
    second = api.post("/users/mia/auth_tokens", json={"force": True}).json()["data"]
    listed = api.get("/users/mia/auth_tokens").json()
    assert [t["authToken"] for t in listed["data"]] == [second["authToken"], first["authToken"]]
    assert listed["meta"]["pagination"]["total"] == 2
    assert api.get(f"/users/mia/auth_tokens/{first['authToken']}").json()["data"] == first
    api.request("DELETE", f"/users/mia/auth_tokens/{first['authToken']}")
    missing = api.get(f"/users/mia/auth_tokens/{first['authToken']}")
    assert error_of(missing, 404)["code"] == "ERR_AUTH_TOKEN_NOT_FOUND"
    flushed = api.request("DELETE", "/users/mia/auth_tokens").json()["data"]
    assert flushed["success"] is True
    assert api.get("/users/mia/auth_tokens").json()["data"] == []


def test_auth_token_without_force_reuses_the_newest_token(api: httpx.Client) -> None:
    create(api, "ned")
    first = api.post("/users/ned/auth_tokens").json()["data"]
    assert api.post("/users/ned/auth_tokens").json()["data"] == first


def test_auth_tokens_of_a_deactivated_user_answer_uid_not_found(api: httpx.Client) -> None:
    create(api, "oli")
    delete(api, "/users/oli", {})
    assert error_of(api.post("/users/oli/auth_tokens"), 404)["code"] == "ERR_UID_NOT_FOUND"


# -------------------------------------------------------------------------- roles


def test_the_default_role_always_exists_and_cannot_be_deleted(api: httpx.Client) -> None:
    roles = api.get("/roles").json()["data"]
    assert [role["role"] for role in roles] == ["default"]
    refused = api.request("DELETE", "/roles/default")
    assert error_of(refused, 400)["code"] == "ERR_ROLE_DELETE_DENIED"


def test_roles_can_be_created_read_updated_and_deleted(api: httpx.Client, clock: Clock) -> None:
    made = api.post(
        "/roles",
        json={
            "role": "Manager",
            "name": "Managers",
            "description": "Leads",
            "metadata": {"team": "ops"},
            "settings": {"sendMessagesTo": "friendsOnly"},
        },
    ).json()["data"]
    assert made == {
        "role": "manager",
        "name": "Managers",
        "description": "Leads",
        "metadata": {"team": "ops"},
        "settings": {"sendMessagesTo": "friendsOnly"},
        "createdAt": START,
    }
    clock.advance()
    updated = api.put("/roles/manager", json={"name": "Leads", "unset": ["settings", "metadata"]})
    assert updated.json()["data"] == {
        "role": "manager",
        "name": "Leads",
        "description": "Leads",
        "createdAt": START,
        "updatedAt": START + 10,
    }
    assert api.get("/roles/MANAGER").json()["data"]["name"] == "Leads"
    assert api.request("DELETE", "/roles/manager").json()["data"]["success"] is True
    assert error_of(api.get("/roles/manager"), 404)["code"] == "ERR_ROLE_NOT_FOUND"


def test_a_duplicate_role_fails_with_role_already_exists(api: httpx.Client) -> None:
    api.post("/roles", json={"role": "agent", "name": "Agent"})
    again = api.post("/roles", json={"role": "agent", "name": "Agent"})
    assert error_of(again, 400)["code"] == "ERR_ROLE_ALREADY_EXISTS"


def test_an_app_holds_at_most_25_roles(api: httpx.Client) -> None:
    for n in range(24):  # with default: 25
        assert api.post("/roles", json={"role": f"r{n}", "name": f"R{n}"}).status_code == 200
    assert error_of(api.post("/roles", json={"role": "r99", "name": "R"}), 400)["code"] == ("ERR_BAD_REQUEST")
    assert api.get("/roles").json()["meta"]["pagination"]["total"] == 25


def test_role_settings_must_use_the_vendor_values(api: httpx.Client) -> None:
    bad = api.post("/roles", json={"role": "r", "name": "R", "settings": {"listUsers": "some"}})
    assert "settings" in error_of(bad, 400)["details"]


# --------------------------------------------------------- authentication, errors


def test_a_missing_api_key_is_auth_err_empty_apikey(raw: httpx.Client) -> None:
    assert error_of(raw.get("/v3/users"), 401)["code"] == "AUTH_ERR_EMPTY_APIKEY"


def test_a_wrong_api_key_is_auth_err_apikey_not_found(raw: httpx.Client) -> None:
    response = raw.get("/v3/users", headers={"apikey": "wrong"})
    assert error_of(response, 401)["code"] == "AUTH_ERR_APIKEY_NOT_FOUND"


def test_a_wrong_app_id_is_auth_err_invalid_appid(raw: httpx.Client) -> None:
    response = raw.get("/v3/users", headers={"apikey": CONFIG.api_key, "appId": "other"})
    assert error_of(response, 401)["code"] == "AUTH_ERR_INVALID_APPID"
    assert raw.get("/v3/users", headers={"apikey": CONFIG.api_key}).status_code == 200


def test_the_js_sdk_v3_0_prefix_is_served(raw: httpx.Client) -> None:
    headers = {"apikey": CONFIG.api_key}
    assert raw.post("/v3.0/users", json={"uid": "x", "name": "X"}, headers=headers).status_code == 200
    assert raw.get("/v3.0/users/x", headers=headers).json()["data"]["uid"] == "x"


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/users"),
        ("PUT", "/users/pat"),
        ("DELETE", "/users/pat"),
        ("DELETE", "/users"),
        ("PUT", "/users"),
        ("POST", "/users/pat/blockedusers"),
        ("POST", "/users/pat/auth_tokens"),
        ("POST", "/roles"),
        ("PUT", "/roles/default"),
    ],
)
def test_malformed_json_is_a_bad_request_never_a_500(api: httpx.Client, method: str, path: str) -> None:
    create(api, "pat")
    bodies = (b"{not json", b"[1, 2]", b"\xff\xfe", b'{"metadata": {"x": NaN}}', b"[" * 100_000)
    for body in bodies:
        response = api.request(method, path, content=body, headers={"content-type": "application/json"})
        assert error_of(response, 400)["code"] == "ERR_BAD_REQUEST"


@pytest.mark.parametrize(
    ("method", "path", "body", "field"),
    [
        ("POST", "/users", {"uid": 7, "name": "n"}, "uid"),
        ("POST", "/users", {"uid": "u", "name": ["n"]}, "name"),
        ("POST", "/users", {"uid": "u", "name": "n", "tags": "a,b"}, "tags"),
        ("POST", "/users", {"uid": "u", "name": "n", "tags": [1]}, "tags"),
        ("POST", "/users", {"uid": "u", "name": "n", "metadata": "{}"}, "metadata"),
        ("POST", "/users", {"uid": "u", "name": "n", "withAuthToken": "yes"}, "withAuthToken"),
        ("PUT", "/users/quinn", {"name": ""}, "name"),
        ("PUT", "/users/quinn", {"statusMessage": 5}, "statusMessage"),
        ("PUT", "/users/quinn", {"unset": "avatar"}, "unset"),
        ("DELETE", "/users/quinn", {"permanent": "true"}, "permanent"),
        ("DELETE", "/users", {"uidsToDeactivate": "quinn"}, "uidsToDeactivate"),
        ("POST", "/users/quinn/blockedusers", {"blockedUids": [1]}, "blockedUids"),
        ("POST", "/users/quinn/auth_tokens", {"force": 1}, "force"),
        ("POST", "/roles", {"role": "r", "name": "R", "metadata": []}, "metadata"),
    ],
)
def test_wrong_types_are_bad_requests_naming_the_field(
    api: httpx.Client, method: str, path: str, body: dict[str, Any], field: str
) -> None:
    create(api, "quinn")
    response = api.request(method, path, json=body)
    error = error_of(response, 400)
    assert error["code"] == "ERR_BAD_REQUEST" and field in error["details"], error


def test_bad_query_values_are_bad_requests(api: httpx.Client) -> None:
    for params in ({"perPage": "ten"}, {"withTags": "maybe"}, {"searchIn": "email"}):
        assert error_of(api.get("/users", params=params), 400)["code"] == "ERR_BAD_REQUEST"


def test_unknown_routes_and_wrong_methods_answer_api_not_found(api: httpx.Client) -> None:
    for method, path in (
        ("GET", "/nothing"),
        ("GET", "/users/a/b/c/d"),
        ("PATCH", "/users"),
        ("POST", "/users/x"),
        ("PUT", "/users/x/auth_tokens/t"),
    ):
        assert error_of(api.request(method, path), 404)["code"] == "ERR_API_NOT_FOUND"


def test_unknown_routes_answer_api_not_found_without_credentials(raw: httpx.Client) -> None:
    assert error_of(raw.get("/v3/nothing"), 404)["code"] == "ERR_API_NOT_FOUND"


# ------------------------------------------------------- the framework's contract


def test_rate_classes_put_create_delete_and_token_creation_in_core() -> None:
    core = [
        ("POST", "/v3/users"),
        ("DELETE", "/v3/users/alice"),
        ("POST", "/v3/users/alice/auth_tokens"),
        ("post", "/v3.0/users"),
    ]
    standard = [
        ("GET", "/v3/users"),
        ("PUT", "/v3/users/alice"),
        ("DELETE", "/v3/users"),
        ("POST", "/v3/users/alice/blockedusers"),
        ("GET", "/v3/users/alice/auth_tokens"),
        ("DELETE", "/v3/users/alice/auth_tokens"),
        ("POST", "/v3/roles"),
    ]
    assert {cometchat.rate_class(m, p) for m, p in core} == {"core"}
    assert {cometchat.rate_class(m, p) for m, p in standard} == {"standard"}


def test_limit_headers_use_both_spellings() -> None:
    assert cometchat.limit_headers(500, 7, START) == {
        "X-Rate-Limit": "500",
        "X-Rate-Limit-Remaining": "7",
        "X-Rate-Limit-Reset": str(START),
        "X-RateLimit-Limit": "500",
        "X-RateLimit-Remaining": "7",
        "X-RateLimit-Reset": str(START),
    }


def test_the_rate_limited_response_is_a_429_with_retry_after(raw: httpx.Client) -> None:
    response = raw.get("/test/throttled")
    assert error_of(response, 429)["code"] == "ERR_TOO_MANY_REQUESTS"
    assert response.headers["Retry-After"] == "42"
    for name in ("X-Rate-Limit", "X-RateLimit-Limit"):
        assert response.headers[name] == "500"
    for name in ("X-Rate-Limit-Remaining", "X-RateLimit-Remaining"):
        assert response.headers[name] == "0"
    for name in ("X-Rate-Limit-Reset", "X-RateLimit-Reset"):
        assert response.headers[name] == str(START + 60)


# ------------------------------------------------------------------- conformance


@needs_spec
def test_every_served_operation_is_an_operation_of_the_vendor_spec() -> None:
    assert SPEC is not None
    for path, handlers in cometchat.TABLE.items():
        for method in handlers:
            found = SPEC.operation(method, path)
            assert found is not None and found[0] == path, f"{method} {path}"


@needs_spec
def test_the_conformance_check_rejects_a_body_the_vendor_spec_does_not_allow() -> None:
    assert SPEC is not None
    with pytest.raises(Exception, match="is not of type"):
        SPEC.check("GET", "/users", 200, {"data": {"not": "a list"}})
    with pytest.raises(Exception, match="is not of type"):
        SPEC.check("GET", "/users/{uid}/blockedusers", 200, {"data": [{"blockedByMe": "yes"}]})
    with pytest.raises(Exception, match="'message' is a required property"):
        SPEC.check("GET", "/users", 404, {"error": {"code": "X"}})


@needs_spec
def test_every_operation_the_tests_call_was_checked_against_the_vendor_spec(
    api: httpx.Client,
) -> None:
    """A tour of every operation; the response hook checks each body on the way."""
    assert SPEC is not None
    before = len(SPEC.checked)
    create(api, "tour-a", withAuthToken=True)
    create(api, "tour-b")
    api.get("/users/tour-a")
    api.get("/users", params={"withTags": "true"})
    api.put("/users/tour-a", json={"name": "A"})
    api.post("/users/tour-a/blockedusers", json={"blockedUids": ["tour-b"]})
    api.get("/users/tour-a/blockedusers")
    delete(api, "/users/tour-a/blockedusers", {"blockedUids": ["tour-b"]})
    token = api.post("/users/tour-a/auth_tokens", json={"force": True}).json()["data"]["authToken"]
    api.get("/users/tour-a/auth_tokens")
    api.get(f"/users/tour-a/auth_tokens/{token}")
    api.request("DELETE", f"/users/tour-a/auth_tokens/{token}")
    api.request("DELETE", "/users/tour-a/auth_tokens")
    api.post("/roles", json={"role": "tour", "name": "Tour"})
    api.get("/roles")
    api.get("/roles/tour")
    api.put("/roles/tour", json={"name": "T"})
    api.request("DELETE", "/roles/tour")
    delete(api, "/users", {"uidsToDeactivate": ["tour-b"]})
    api.put("/users", json={"uidsToActivate": ["tour-b"]})
    delete(api, "/users/tour-b", {"permanent": True})
    checked = {(method, _template_of(method, path)) for method, path, _ in SPEC.checked[before:]}
    served = {(method, path) for path, handlers in cometchat.TABLE.items() for method in handlers}
    assert served <= checked


# ------------------------------------------------------- the emulator as a process


@pytest.fixture
def process_db(tmp_path: Path) -> Path:
    return tmp_path / "process.db"


def test_the_emulator_process_pages_a_seeded_store_1000_users_at_a_time(process_db: Path) -> None:
    seeded = Store(process_db)
    made = seed(seeded, 2500)
    seeded.close()
    seen: list[str] = []
    with (
        running_emulator(process_db) as emulator,
        _client(f"{emulator.base_url}/v3", apikey=CONFIG.api_key) as api,
    ):
        for page in (1, 2, 3):
            body = api.get("/users", params={"perPage": 1000, "page": page}).json()
            assert body["meta"]["pagination"]["total_pages"] == 3
            seen += [user["uid"] for user in body["data"]]
    assert seen == made


def test_the_emulator_process_serves_both_prefixes_and_counts_them_by_route(
    process_db: Path,
) -> None:
    with (
        running_emulator(process_db) as emulator,
        _client(emulator.base_url, apikey=CONFIG.api_key) as api,
    ):
        assert api.post("/v3/users", json={"uid": "Proc-A", "name": "A"}).status_code == 200
        assert api.get("/v3.0/users/proc-a").json()["data"]["uid"] == "proc-a"
        assert error_of(api.get("/v3/nothing"), 404)["code"] == "ERR_API_NOT_FOUND"
        counted = emulator.stats()["by_endpoint"]
    assert counted["POST /v3/users"] == {"200": 1}
    assert counted["GET /v3.0/users/{uid}"] == {"200": 1}


def test_the_emulator_process_throttles_cometchat_with_the_vendor_429(process_db: Path) -> None:
    with (
        running_emulator(process_db, "--cometchat-rate", "2") as emulator,
        _client(f"{emulator.base_url}/v3", apikey=CONFIG.api_key) as api,
    ):
        replies = [api.get("/users")]
        # Until the first 429; more than 3 calls only if a minute window rolled over.
        while replies[-1].status_code == 200 and len(replies) < 5:
            replies.append(api.get("/users"))
    assert replies[-1].status_code == 429
    assert replies[0].headers["X-RateLimit-Remaining"] == "1"
    assert replies[0].headers["X-Rate-Limit-Remaining"] == "1"
    assert error_of(replies[-1], 429)["code"] == "ERR_TOO_MANY_REQUESTS"
    assert int(replies[-1].headers["Retry-After"]) >= 1


def test_the_emulator_process_checks_the_api_key_it_was_given(process_db: Path) -> None:
    with (
        running_emulator(process_db, "--api-key", "another-key") as emulator,
        _client(f"{emulator.base_url}/v3") as api,
    ):
        refused = api.get("/users", headers={"apikey": CONFIG.api_key})
        assert error_of(refused, 401)["code"] == "AUTH_ERR_APIKEY_NOT_FOUND"
        assert api.get("/users", headers={"apikey": "another-key"}).status_code == 200
