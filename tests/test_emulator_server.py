"""The emulator as a process: start-up, shutdown, stats, rate limits and faults.

Each test starts the real process (``python -m chatroster.emulator``) on a free
loopback port and talks to it over HTTP; the limiters and the fault chooser also get
unit tests on a fake clock.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import signal
import subprocess
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
import httpx
import pytest
from emulator_process import EmulatorProcess, emulator_command, environment, running_emulator

from chatroster.emulator import server
from chatroster.emulator.app import load_cometchat
from chatroster.emulator.config import (
    DEFAULT_API_KEY,
    DEFAULT_APP_ID,
    DEFAULT_APP_KEY,
    DEFAULT_APP_SECRET,
)
from chatroster.emulator.faults import FAULT_KINDS, FaultPlan, fault_for
from chatroster.emulator.ratelimit import FixedWindow, TokenBucket
from chatroster.emulator.signing import NonceCache
from chatroster.store import Store

Start = Callable[..., EmulatorProcess]


def signed(secret: str = DEFAULT_APP_SECRET) -> dict[str, str]:
    nonce = str(secrets.randbelow(10**18 - 1) + 1)
    timestamp = str(int(time.time() * 1000))
    signature = hashlib.sha1((secret + nonce + timestamp).encode()).hexdigest()
    return {
        "App-Key": DEFAULT_APP_KEY,
        "Nonce": nonce,
        "Timestamp": timestamp,
        "Signature": signature,
    }


def nexconn_post(emulator: EmulatorProcess, path: str, body: Any, **kwargs: Any) -> httpx.Response:
    return httpx.post(emulator.base_url + path, json=body, headers=signed(), **kwargs)


def register(emulator: EmulatorProcess, uid: str) -> None:
    answer = nexconn_post(emulator, "/v4/auth/access-token/issue", {"userId": uid, "name": uid})
    assert answer.json()["code"] == 0


# ------------------------------------------------------------------ the process


def test_starts_well_under_a_second_and_prints_its_port(emulator: EmulatorProcess) -> None:
    host, port = emulator.base_url.removeprefix("http://").rsplit(":", 1)
    assert host == "127.0.0.1" and 0 < int(port) < 65536
    assert httpx.get(emulator.base_url + "/_emulator/stats").status_code == 200


def test_prints_the_public_test_defaults(emulator: EmulatorProcess) -> None:
    for default in (DEFAULT_APP_KEY, DEFAULT_APP_SECRET):
        assert default in emulator.text
    if load_cometchat() is not None:
        assert DEFAULT_APP_ID in emulator.text and DEFAULT_API_KEY in emulator.text


def test_never_prints_credentials_the_user_gave(emulator_factory: Start) -> None:
    given = {
        "--app-key": "my-key-7f3a",
        "--app-secret": "my-secret-91bd",
        "--app-id": "my-app-22c1",
        "--api-key": "my-api-key-5e0f",
    }
    emulator = emulator_factory(*(part for pair in given.items() for part in pair))
    for value in given.values():
        assert value not in emulator.text
    emulator.stop()
    for value in given.values():
        assert value not in emulator.text


def test_secrets_can_come_from_the_environment(emulator_factory: Start) -> None:
    emulator = emulator_factory(env={"CHATROSTER_EMULATOR_APP_SECRET": "from-env-3c9d"})
    assert "from-env-3c9d" not in emulator.text
    headers = signed("from-env-3c9d")
    answer = httpx.post(emulator.base_url + "/v4/user/get", json={"userId": "x"}, headers=headers)
    assert answer.json()["code"] != 1004


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_stops_cleanly_on_a_signal(emulator_factory: Start, sig: int) -> None:
    emulator = emulator_factory()
    register(emulator, "alice")
    assert emulator.stop(sig) == 0  # stopped by the signal itself, not by the SIGKILL after it
    assert "Traceback" not in emulator.text
    store = Store(emulator.db_path)  # closed properly: the data is there
    try:
        assert store.get_user("alice") is not None
    finally:
        store.close()


def test_a_non_loopback_host_needs_allow_remote(tmp_path: Path) -> None:
    command = emulator_command(tmp_path / "x.db")
    command[command.index("--host") + 1] = "0.0.0.0"
    result = subprocess.run(
        command, capture_output=True, text=True, timeout=30, env=environment(), check=False
    )
    assert result.returncode == 1
    assert "--allow-remote" in result.stderr and "listening" not in result.stdout


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.2", "::1", "localhost"])
def test_loopback_hosts_are_recognised(host: str) -> None:
    assert server.is_loopback(host)


@pytest.mark.parametrize("host", ["0.0.0.0", "192.168.1.10", "example.com", "::"])
def test_other_hosts_are_not_loopback(host: str) -> None:
    assert not server.is_loopback(host)


def test_the_command_is_a_click_command_the_cli_can_mount() -> None:
    assert isinstance(server.emulator_command, click.Command)
    assert server.emulator_command.name == "emulator"
    assert server.main(["--help"]) == 0


def test_bad_options_are_refused(tmp_path: Path) -> None:
    assert server.main(["--db", str(tmp_path / "x.db"), "--fault-kinds", "melt"]) == 2
    assert server.main(["--db", str(tmp_path / "x.db"), "--fault-rate", "2"]) == 2


# ---------------------------------------------------------------------- counters


def test_counts_requests_by_endpoint_and_status_and_reset_clears_them(
    emulator: EmulatorProcess,
) -> None:
    register(emulator, "alice")
    nexconn_post(emulator, "/v4/user/get", {"userId": "alice"})
    nexconn_post(emulator, "/v4/user/get", {"userId": "nobody"})
    nexconn_post(emulator, "/v4/no/such/route", {})
    stats = emulator.stats()
    assert stats["by_endpoint"]["POST /v4/user/get"] == {"200": 1, "404": 1}
    assert stats["by_endpoint"]["POST /v4/auth/access-token/issue"] == {"200": 1}
    assert stats["by_endpoint"]["POST (unknown route)"] == {"404": 1}
    assert stats["by_status"] == {"200": 2, "404": 2} and stats["total"] == 4
    emulator.reset()
    stats = emulator.stats()
    assert stats["total"] == 0 and stats["by_endpoint"] == {}  # /_emulator is not counted


def test_cometchat_counters_use_the_route_template(emulator: EmulatorProcess) -> None:
    headers = {"apikey": DEFAULT_API_KEY}
    for uid in ("a1", "b2"):
        httpx.get(f"{emulator.base_url}/v3/users/{uid}", headers=headers)
    endpoints = emulator.stats()["by_endpoint"]
    assert sum(endpoints["GET /v3/users/{uid}"].values()) == 2


# ------------------------------------------------------------------ rate limits


def test_nexconn_rate_limit_answers_429_with_code_1008(emulator_factory: Start) -> None:
    emulator = emulator_factory("--nexconn-rate", "5")
    with httpx.Client(base_url=emulator.base_url) as client:
        answers = [client.post("/v4/user/get", json={"userId": "x"}, headers=signed()) for _ in range(12)]
        statuses = Counter(answer.status_code for answer in answers)
        assert statuses[429] >= 5 and statuses[404] >= 5
        limited = next(answer for answer in answers if answer.status_code == 429)
        assert limited.json()["code"] == 1008 and "errorMessage" in limited.json()
        time.sleep(1.1)
        again = client.post("/v4/user/get", json={"userId": "x"}, headers=signed())
        assert again.status_code == 404
        # Each endpoint has its own allowance, as the vendor counts them.
        other = client.post("/v4/user/ban/list", json={}, headers=signed())
        assert other.status_code == 200
    assert emulator.stats()["rate_limited"]["nexconn"] == statuses[429]


def test_rate_limits_are_off_by_default(emulator: EmulatorProcess) -> None:
    with httpx.Client(base_url=emulator.base_url) as client:
        for _ in range(150):
            answer = client.post("/v4/user/ban/list", json={}, headers=signed())
            assert answer.status_code == 200


def test_cometchat_rate_limit_per_class_with_headers(emulator_factory: Start) -> None:
    emulator = emulator_factory("--cometchat-rate", "3")
    headers = {"apikey": DEFAULT_API_KEY}
    with httpx.Client(base_url=emulator.base_url, headers=headers) as client:
        answers = [client.get("/v3/users") for _ in range(4)]
        assert [a.status_code for a in answers[:3]] == [200, 200, 200]
        assert [a.headers["X-RateLimit-Remaining"] for a in answers[:3]] == ["2", "1", "0"]
        assert all(a.headers["X-RateLimit-Limit"] == "3" for a in answers)
        limited = answers[3]
        assert limited.status_code == 429
        assert limited.json()["error"]["code"] == "ERR_TOO_MANY_REQUESTS"
        assert 1 <= int(limited.headers["Retry-After"]) <= 60
        assert int(limited.headers["X-RateLimit-Reset"]) > time.time()
        # Creating a user is in the other ("core") class, with its own allowance.
        created = client.post("/v3/users", json={"uid": "c1", "name": "C"})
        assert created.status_code == 200 and created.headers["X-RateLimit-Remaining"] == "2"


def test_the_rate_limit_is_checked_before_faults(emulator_factory: Start) -> None:
    emulator = emulator_factory("--nexconn-rate", "1", "--fault-rate", "1", "--fault-kinds", "error")
    first = nexconn_post(emulator, "/v4/user/get", {"userId": "x"})
    second = nexconn_post(emulator, "/v4/user/get", {"userId": "x"})
    assert first.status_code in (500, 503) and first.json()["code"] == 1000
    assert second.status_code == 429 and second.json()["code"] == 1008
    stats = emulator.stats()
    assert sum(stats["faults"].values()) == 1 and stats["rate_limited"] == {"nexconn": 1}


# ------------------------------------------------------------------------ faults


def _statuses(emulator: EmulatorProcess, count: int) -> list[int]:
    with httpx.Client(base_url=emulator.base_url) as client:
        return [client.post("/v4/user/ban/list", json={}, headers=signed()).status_code for _ in range(count)]


def test_faults_are_reproducible_from_the_seed(emulator_factory: Start) -> None:
    options = ("--fault-rate", "0.4", "--fault-seed", "7", "--fault-kinds", "error,throttle")
    first = emulator_factory(*options)
    statuses = _statuses(first, 40)
    expected = [
        {None: 200, "500": 500, "503": 503, "429": 429}[fault_for(7, i, 0.4, ("error", "throttle"))]
        for i in range(40)
    ]
    assert statuses == expected
    assert 5 <= sum(status != 200 for status in statuses) <= 30
    first.reset()  # restarts the sequence
    assert _statuses(first, 40) == statuses
    assert _statuses(emulator_factory(*options), 40) == statuses
    other_seed = emulator_factory(
        "--fault-rate", "0.4", "--fault-seed", "8", "--fault-kinds", "error,throttle"
    )
    assert _statuses(other_seed, 40) != statuses


def test_fault_answers_carry_the_vendors_error_body(emulator_factory: Start) -> None:
    emulator = emulator_factory("--fault-rate", "1", "--fault-kinds", "error,throttle")
    with httpx.Client(base_url=emulator.base_url) as client:
        for _ in range(10):
            answer = client.post("/v4/user/ban/list", json={}, headers=signed())
            body = answer.json()
            assert set(body) == {"code", "errorMessage"}
            assert body["code"] == {500: 1000, 503: 1000, 429: 1008}[answer.status_code]
        assert client.get("/_emulator/stats").status_code == 200  # never faulted


def test_cometchat_faults_use_cometchats_error_body(emulator_factory: Start) -> None:
    emulator = emulator_factory("--fault-rate", "1", "--fault-kinds", "error,throttle")
    with httpx.Client(base_url=emulator.base_url, headers={"apikey": DEFAULT_API_KEY}) as client:
        for _ in range(6):
            answer = client.get("/v3/users")
            assert answer.status_code in (429, 500, 503)
            assert answer.json()["error"]["code"].startswith("ERR_")


def test_a_dropped_connection_gets_no_response_at_all(emulator_factory: Start) -> None:
    emulator = emulator_factory("--fault-rate", "1", "--fault-kinds", "drop")
    with pytest.raises(httpx.RemoteProtocolError, match="without sending a response"):
        nexconn_post(emulator, "/v4/user/ban/list", {})
    stats = emulator.stats()
    assert stats["by_endpoint"]["POST /v4/user/ban/list"] == {"dropped": 1}
    assert stats["faults"] == {"drop": 1}
    emulator.stop()
    assert "ASGI callable" not in emulator.text and "Traceback" not in emulator.text


def test_a_hang_answers_503_after_the_hang_or_times_the_client_out(emulator_factory: Start) -> None:
    emulator = emulator_factory("--fault-rate", "1", "--fault-kinds", "hang", "--hang-seconds", "0.5")
    started = time.perf_counter()
    answer = nexconn_post(emulator, "/v4/user/ban/list", {})
    assert time.perf_counter() - started >= 0.5
    assert answer.status_code == 503 and answer.json()["code"] == 1000
    with pytest.raises(httpx.ReadTimeout):
        nexconn_post(emulator, "/v4/user/ban/list", {}, timeout=0.2)


def test_unknown_routes_get_each_vendors_404(emulator: EmulatorProcess) -> None:
    nexconn_404 = httpx.post(emulator.base_url + "/nowhere", json={})
    assert nexconn_404.status_code == 404 and nexconn_404.json()["code"] == 404
    cometchat_404 = httpx.get(emulator.base_url + "/v3/nowhere/at/all")
    assert cometchat_404.status_code == 404
    assert cometchat_404.json()["error"]["code"] == "ERR_API_NOT_FOUND"


# ------------------------------------------------------------ limiters and faults


class FakeClock:
    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_token_bucket_allows_the_rate_with_a_one_second_burst() -> None:
    clock = FakeClock()
    bucket = TokenBucket(10, clock)
    assert [bucket.acquire("k").allowed for _ in range(11)] == [True] * 10 + [False]
    assert bucket.acquire("other").allowed  # keys are independent
    denied = bucket.acquire("k")
    assert not denied.allowed and denied.retry_after == 1
    clock.now += 0.1
    assert bucket.acquire("k").allowed and not bucket.acquire("k").allowed


def test_fixed_window_reports_remaining_and_reset() -> None:
    minute = 60 * 16_667
    clock = FakeClock(minute + 20.0)
    window = FixedWindow(2, 60, clock)
    first, second, third = (window.acquire("core") for _ in range(3))
    assert (first.remaining, second.remaining, third.allowed) == (1, 0, False)
    assert third.reset_epoch == minute + 60 and third.retry_after == 40
    clock.now += 40
    assert window.acquire("core").allowed


def test_nonce_cache_forgets_after_its_ttl_and_beyond_its_size() -> None:
    clock = FakeClock()
    cache = NonceCache(ttl=10, max_size=3, clock=clock)
    assert not cache.seen_before("a") and cache.seen_before("a")
    clock.now += 11
    assert not cache.seen_before("a")
    for nonce in "bcd":
        cache.seen_before(nonce)
    assert len(cache) == 3 and not cache.seen_before("a")  # "a" was evicted first


def test_fault_choice_depends_only_on_seed_and_request_number() -> None:
    kinds = FAULT_KINDS
    faults = [fault_for(3, i, 0.25, kinds) for i in range(4000)]
    assert faults == [fault_for(3, i, 0.25, kinds) for i in range(4000)]
    hit = sum(fault is not None for fault in faults) / len(faults)
    assert 0.2 < hit < 0.3
    assert set(faults) == {None, "500", "503", "429", "hang", "drop"}
    plan = FaultPlan(0.25, 3, kinds)
    assert [plan.next() for _ in range(100)] == faults[:100]


def test_python_dash_m_runs_the_emulator(tmp_path: Path) -> None:
    with running_emulator(tmp_path / "x.db") as emulator:
        assert emulator.process.args[1:3] == ["-m", "chatroster.emulator"]  # type: ignore[index]
        info = httpx.get(emulator.base_url + "/_emulator/info").json()
        assert "nexconn" in info["vendors"]
        assert DEFAULT_APP_SECRET not in json.dumps(info)


def test_a_client_that_disconnects_mid_request_is_counted_dropped_not_a_server_error(
    emulator: EmulatorProcess,
) -> None:
    # A killed apply leaves requests half-sent; the emulator must not log a traceback
    # and count them as 500s, which would hide real server errors in the stats.
    import socket
    from urllib.parse import urlparse

    where = urlparse(emulator.base_url)
    with socket.create_connection((where.hostname, where.port)) as sock:
        head = (
            f"POST /v3/users HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            f"apikey: {DEFAULT_API_KEY}\r\nappId: {DEFAULT_APP_ID}\r\n"
            "Content-Length: 1000\r\n\r\n"
        )
        sock.sendall(head.encode() + b'{"uid"')
    for _ in range(50):
        counts = emulator.stats()
        if "dropped" in json.dumps(counts) or "500" in json.dumps(counts):
            break
        time.sleep(0.1)
    text = json.dumps(emulator.stats())
    assert "dropped" in text and '"500"' not in text, text
    assert "Traceback" not in "".join(emulator.output)


# ---------------------------------------------------------------------- latency


def test_latency_is_announced_and_reported(emulator_factory: Start) -> None:
    emulator = emulator_factory("--latency", "40")
    assert "latency: 40 ms added to every answer" in emulator.text
    assert httpx.get(emulator.base_url + "/_emulator/info").json()["latency_ms"] == 40


def test_latency_holds_every_api_answer_and_never_the_emulators_own(tmp_path: Path) -> None:
    import asyncio

    from chatroster.emulator.app import LatencyMiddleware, build_app
    from chatroster.emulator.config import EmulatorConfig

    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    store = Store(tmp_path / "store.db")
    app = LatencyMiddleware(build_app(store, EmulatorConfig()), 0.04, sleep=sleep)

    async def requests() -> list[int]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://emulator") as client:
            answers = [
                await client.post("/v4/user/ban/list", json={}, headers=signed()),
                await client.get("/v3/users", headers={"apikey": DEFAULT_API_KEY, "appId": DEFAULT_APP_ID}),
                await client.post("/v4/no/such/endpoint", json={}, headers=signed()),
                await client.get("/_emulator/stats"),
            ]
        return [answer.status_code for answer in answers]

    try:
        assert asyncio.run(requests()) == [200, 200, 404, 200]
    finally:
        store.close()
    assert slept == [0.04, 0.04, 0.04]  # both vendors, unknown routes too; not /_emulator


def test_no_latency_is_added_by_default(tmp_path: Path) -> None:
    from chatroster.emulator.app import build_app
    from chatroster.emulator.config import EmulatorConfig

    store = Store(tmp_path / "store.db")
    try:
        app = build_app(store, EmulatorConfig())
        layers = [
            middleware.kwargs
            for middleware in app.user_middleware
            if middleware.cls.__name__ == "LatencyMiddleware"
        ]
        assert layers == [{"seconds": 0.0}]
    finally:
        store.close()
