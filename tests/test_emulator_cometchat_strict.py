"""The emulator's CometChat API is as strict as the vendor's reference: metadata over
the documented size is refused, list answers carry ``meta.cursor``, and every answer,
limited or not, carries the rate-limit headers.

Runs `chatroster emulator` as a real process on loopback; every body is checked against
the vendor's OpenAPI file as in test_emulator_cometchat.py.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from emulator_process import EmulatorProcess
from test_emulator_cometchat import check_response

from chatroster.emulator.cometchat.users import METADATA_MAX_BYTES
from chatroster.emulator.config import DEFAULT_API_KEY, DEFAULT_APP_ID

LIMIT_HEADERS = (
    "X-RateLimit-Limit",
    "X-RateLimit-Remaining",
    "X-RateLimit-Reset",
    "X-Rate-Limit",
    "X-Rate-Limit-Remaining",
    "X-Rate-Limit-Reset",
)


@pytest.fixture
def api(emulator: EmulatorProcess) -> Iterator[httpx.Client]:
    with httpx.Client(
        base_url=f"{emulator.base_url}/v3",
        headers={"apikey": DEFAULT_API_KEY, "appId": DEFAULT_APP_ID},
        timeout=30,
        event_hooks={"response": [check_response]},
    ) as client:
        yield client


def metadata_of(size: int) -> dict[str, str]:
    """Metadata whose compact JSON is exactly ``size`` bytes."""
    overhead = len(json.dumps({"k": ""}, separators=(",", ":")))
    return {"k": "x" * (size - overhead)}


def test_metadata_over_5_kb_is_refused_on_create_and_update(api: httpx.Client) -> None:
    too_big = api.post(
        "/users", json={"uid": "big", "name": "Big", "metadata": metadata_of(METADATA_MAX_BYTES + 1)}
    )
    assert too_big.status_code == 400
    error = too_big.json()["error"]
    assert error["code"] == "ERR_BAD_REQUEST" and "metadata" in error["details"]
    assert api.get("/users/big").status_code == 404  # nothing was created
    fits = api.post(
        "/users", json={"uid": "fits", "name": "Fits", "metadata": metadata_of(METADATA_MAX_BYTES)}
    )
    assert fits.status_code == 200
    grown = api.put("/users/fits", json={"metadata": metadata_of(METADATA_MAX_BYTES + 1)})
    assert grown.status_code == 400 and "metadata" in grown.json()["error"]["details"]
    assert api.get("/users/fits").json()["data"]["metadata"] == metadata_of(METADATA_MAX_BYTES)


def test_every_list_carries_a_cursor_in_meta(api: httpx.Client) -> None:
    for uid in ("ann", "ben"):
        assert api.post("/users", json={"uid": uid, "name": uid.title()}).status_code == 200
    api.post("/users/ann/blockedusers", json={"blockedUids": ["ben"]})
    api.post("/users/ann/auth_tokens", json={})
    for path in (
        "/users",
        "/users/ann/blockedusers",
        "/users/ann/auth_tokens",
        "/roles",
        "/users?status=available",
    ):
        meta = api.get(path).json()["meta"]
        assert set(meta) == {"pagination", "cursor"}, path
        cursor: dict[str, Any] = meta["cursor"]
        assert set(cursor) == {"updatedAt", "affix"} and isinstance(cursor["updatedAt"], int), path
    users = api.get("/users").json()
    latest = max(user.get("updatedAt", user["createdAt"]) for user in users["data"])
    assert users["meta"]["cursor"] == {"updatedAt": latest, "affix": "prepend"}


def test_every_answer_carries_the_rate_limit_headers_limited_or_not(api: httpx.Client) -> None:
    answers = [
        api.post("/users", json={"uid": "cat", "name": "Cat"}),
        api.get("/users/cat"),
        api.get("/users/nobody"),  # an error
        api.get("/no-such-route"),  # the emulator's own 404
    ]
    remaining = []
    for answer in answers:
        missing = [name for name in LIMIT_HEADERS if name not in answer.headers]
        assert not missing, f"{answer.request.method} {answer.request.url.path}: {missing}"
        assert int(answer.headers["X-RateLimit-Limit"]) == 20_000  # the standard class
        remaining.append(int(answer.headers["X-RateLimit-Remaining"]))
    # Counted per rate class (two standard GETs in a row), though nothing is refused.
    assert remaining[2] == remaining[1] - 1


def test_a_configured_limit_shows_in_the_headers_and_refuses_over_it(
    emulator_factory: Any,
) -> None:
    limited: EmulatorProcess = emulator_factory("--cometchat-rate", "3")
    headers = {"apikey": DEFAULT_API_KEY, "appId": DEFAULT_APP_ID}
    with httpx.Client(base_url=f"{limited.base_url}/v3", headers=headers, timeout=30) as client:
        answers = [client.get("/users") for _ in range(4)]
    assert [a.status_code for a in answers] == [200, 200, 200, 429]
    assert [a.headers["X-RateLimit-Remaining"] for a in answers] == ["2", "1", "0", "0"]
    assert all(a.headers["X-RateLimit-Limit"] == "3" for a in answers)
    assert "Retry-After" in answers[3].headers
