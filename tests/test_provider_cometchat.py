"""The CometChat provider: translation, settings, call counts, batching, idempotency,
faults and secrets.

Translation and settings are pure and tested directly. Everything else runs against
`chatroster emulator` as a real process on loopback, over real HTTP; the emulator's
counters (GET /_emulator/stats) say which calls were made. Where a test must lose an
answer on the way back (a request that succeeded but timed out), a transport wraps the
real HTTP transport and drops that one response after the emulator has acted on it.
"""

from __future__ import annotations

import logging
import math
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from emulator_process import SRC, EmulatorProcess

from chatroster.apply import apply
from chatroster.changes import Action, Change
from chatroster.errors import AuthError, PartialFailure, ProviderError
from chatroster.model import Manifest, Policy, ProviderConfig, State, User
from chatroster.providers import open_provider
from chatroster.providers.base import Scope
from chatroster.providers.cometchat import MARKER_KEY, CometChatProvider, HttpOptions, open_cometchat
from chatroster.providers.cometchat.api import _user_from_api, _user_to_api
from chatroster.runner import Options, make_plan
from chatroster.store import Store

API_KEY = "emulator-api-key"
OWNER = "team"
DEFAULT_POLICY = Policy()
Factory = Callable[..., EmulatorProcess]


def config_for(emulator: EmulatorProcess, **settings: Any) -> ProviderConfig:
    base = {"app_id": "emulator-app", "url": emulator.base_url, "api_key": API_KEY}
    return ProviderConfig("cometchat", {**base, **settings})


def manifest(config: ProviderConfig, *users: User, policy: Policy = DEFAULT_POLICY) -> Manifest:
    desired = State(users={user.uid: user for user in users})
    return Manifest(desired=desired, provider=config, owner=OWNER, policy=policy)


def owned(uid: str, **fields: Any) -> User:
    """A user as seeded into the store: owned by OWNER through the CometChat marker."""
    metadata = {**fields.pop("metadata", {}), MARKER_KEY: {"owner": OWNER}}
    return User(uid=uid, name=fields.pop("name", uid.title()), metadata=metadata, **fields)


def endpoint(emulator: EmulatorProcess, label: str, status: str = "200") -> int:
    return int(emulator.stats()["by_endpoint"].get(label, {}).get(status, 0))


def calls(emulator: EmulatorProcess) -> dict[str, int]:
    """Calls per endpoint, whatever their status."""
    return {label: sum(counts.values()) for label, counts in emulator.stats()["by_endpoint"].items()}


def converge(provider: CometChatProvider, wanted: Manifest) -> None:
    apply(make_plan(wanted, provider, Options()).changes, provider)
    again = make_plan(wanted, provider, Options())
    assert again.empty, [change.to_json() for change in again.changes]


@pytest.fixture
def seeded(tmp_path: Path) -> Iterator[Store]:
    store = Store(tmp_path / "seed.db")
    yield store
    store.close()


# ------------------------------------------------------------------ translation


def test_the_marker_becomes_owner_and_watermark_and_leaves_metadata() -> None:
    user = _user_from_api(
        {
            "uid": "alice",
            "name": "Alice",
            "role": "default",
            "statusMessage": "On call",
            "metadata": {"team": "core", MARKER_KEY: {"owner": OWNER, "tokens_valid_after": 1767225600}},
            "tags": ["b", "a"],
        },
        active=False,
    )
    assert user.owner == OWNER
    assert user.tokens_valid_after == datetime(2026, 1, 1, tzinfo=UTC)
    assert dict(user.metadata or {}) == {"team": "core"}
    assert user.tags == ("a", "b") and user.active is False
    assert user.status_message == "On call"


def test_a_user_without_metadata_or_marker_is_unowned() -> None:
    user = _user_from_api({"uid": "bob", "name": "Bob", "metadata": {MARKER_KEY: "junk"}}, active=True)
    assert user.owner is None and user.metadata is None and user.tokens_valid_after is None


def test_every_metadata_write_carries_the_marker() -> None:
    marker = {"owner": OWNER, "tokens_valid_after": 5}
    body = _user_to_api({"metadata": {"team": "core"}, "name": "A"}, marker, None)
    assert body == {"name": "A", "metadata": {"team": "core", MARKER_KEY: marker}}
    cleared = _user_to_api({"metadata": {}}, marker, None)
    assert cleared == {"metadata": {MARKER_KEY: marker}}  # never unset: the marker stays


def test_cleared_avatar_and_link_are_unset_and_other_fields_emptied() -> None:
    body = _user_to_api({"avatar": "", "link": None, "tags": (), "status_message": ""}, {}, None)
    assert body == {"unset": ["avatar", "link"], "tags": [], "statusMessage": ""}


def test_translation_is_mirrored() -> None:
    fields = {
        "name": "Alice",
        "avatar": "https://a.example/a.png",
        "link": "https://a.example",
        "role": "agent",
        "status_message": "Hi",
        "metadata": {"team": "core"},
        "tags": ("x", "y"),
    }
    body = _user_to_api(fields, {"owner": OWNER}, None)
    user = _user_from_api({"uid": "alice", **body}, active=True)
    assert {name: getattr(user, name) for name in fields} == fields
    assert user.owner == OWNER


def test_profile_and_unknown_fields_are_not_sent() -> None:
    assert _user_to_api({"profile": {"email": "a@b.c"}, "owner": "x"}, {}, None) == {}


# --------------------------------------------------------------------- settings


def cometchat(**settings: Any) -> ProviderConfig:
    return ProviderConfig("cometchat", {"app_id": "app1", "api_key": "k" * 40, **settings})


def test_a_missing_api_key_is_a_clear_error_before_any_request() -> None:
    with pytest.raises(ProviderError, match=r"provider.api_key is not set.*environment variable"):
        open_cometchat(ProviderConfig("cometchat", {"app_id": "app1", "api_key": ""}))


def test_the_region_gives_the_base_url_and_url_overrides_it() -> None:
    with open_cometchat(cometchat(region="eu")) as provider:
        assert provider.identity() == {
            "type": "cometchat",
            "app_id": "app1",
            "url": "https://app1.api-eu.cometchat.io/v3",
        }
    with open_cometchat(cometchat(url="http://127.0.0.1:9/v3/")) as provider:
        assert provider.identity()["url"] == "http://127.0.0.1:9/v3"
    with open_cometchat(cometchat(url="http://127.0.0.1:9")) as provider:  # the emulator
        assert provider.identity()["url"] == "http://127.0.0.1:9/v3"


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"app_id": None}, "provider.app_id is not set"),
        ({"region": "mars"}, "provider.region 'mars' is not one of us, eu, in"),
        ({"rate_core": "fast"}, "provider.rate_core 'fast' is not a positive number"),
        ({"rate_standard": 0}, "provider.rate_standard 0 is not a positive number"),
    ],
)
def test_bad_settings_are_named(settings: dict[str, Any], message: str) -> None:
    with pytest.raises(ProviderError, match=message):
        open_cometchat(cometchat(**settings))


def test_the_identity_never_holds_the_key() -> None:
    with open_cometchat(cometchat()) as provider:
        assert "k" * 40 not in repr(provider.identity()) + repr(provider.settings)


def test_rate_limits_are_90_percent_of_the_documented_or_given_ones() -> None:
    with open_cometchat(cometchat()) as provider:
        limiters = provider.http.limiters
        assert limiters["core"].per_second == pytest.approx(10_000 * 0.9 / 60)
        assert limiters["standard"].per_second == pytest.approx(20_000 * 0.9 / 60)
    with open_cometchat(cometchat(rate_core=500, rate_standard=500)) as provider:  # free plan
        assert provider.http.limiters["core"].per_second == pytest.approx(500 * 0.9 / 60)
        assert provider.http.limiters["standard"].per_second == pytest.approx(500 * 0.9 / 60)


def test_concurrency_comes_from_the_cli_else_the_default() -> None:
    with open_cometchat(cometchat(), concurrency=5) as provider:
        assert provider.concurrency == 5
    with open_cometchat(cometchat()) as provider:
        assert provider.concurrency == 8


def test_an_answer_that_is_not_the_api_says_to_check_the_url() -> None:
    portal = httpx.MockTransport(lambda request: httpx.Response(200, text="<html>login</html>"))
    with (
        open_cometchat(cometchat(), http=HttpOptions(transport=portal)) as provider,
        pytest.raises(ProviderError, match="without a JSON object; check provider.url"),
    ):
        provider.read(Scope(uids=frozenset(), owner=OWNER))


# ------------------------------------------------------------------ call counts


def test_a_no_change_plan_costs_the_documented_number_of_calls(
    seeded: Store, emulator_factory: Factory
) -> None:
    active, deactivated = 2345, 1100
    users = [owned(f"u{i:05d}", tags=("t",)) for i in range(active + deactivated)]
    seeded.insert_users(users)
    seeded.set_active([u.uid for u in users[active:]], False)
    seeded.add_relations("blocks", [("u00001", "u00002"), ("u00003", "u00004")])
    emulator = emulator_factory(db=seeded.path)
    config = config_for(emulator)
    blockers = {"u00001", "u00003", "u00005", users[-1].uid}  # the last is deactivated
    desired = [
        User(
            uid=u.uid,
            name=u.name,
            tags=u.tags,
            active=i < active,
            blocklist=(
                frozenset({"u00002"})
                if u.uid == "u00001"
                else frozenset({"u00004"})
                if u.uid == "u00003"
                else frozenset()
                if u.uid in blockers
                else None
            ),
        )
        for i, u in enumerate(users)
    ]
    with open_provider(config) as provider:
        made = make_plan(manifest(config, *desired), provider, Options())
    assert made.empty
    # ceil(A/1000) + ceil(D/1000) listings, one blocklist read per managed active blocker,
    # and the roles in one call.
    assert calls(emulator) == {
        "GET /v3/users": math.ceil(active / 1000) + math.ceil(deactivated / 1000),
        "GET /v3/users/{uid}/blockedusers": 3,
        "GET /v3/roles": 1,
    }


def test_lists_use_the_largest_page_with_tags_and_blocks_by_me(
    seeded: Store, emulator_factory: Factory
) -> None:
    seeded.insert_users([owned("alice"), owned("bob")])
    emulator = emulator_factory(db=seeded.path)
    sent: list[httpx.Request] = []
    transport = Recording(sent)
    with open_cometchat(config_for(emulator), http=HttpOptions(transport=transport)) as provider:
        provider.read(Scope(uids=frozenset({"alice"}), owner=OWNER, blocklists=frozenset({"alice"})))
    queries = sorted(str(request.url).split("/v3", 1)[1] for request in sent)
    assert queries == [
        "/roles?perPage=100&page=1",  # every role in one page: an app has at most 25
        "/users/alice/blockedusers?direction=blockedByMe&perPage=1000&page=1",
        "/users?withTags=true&onlyDeactivated=true&perPage=1000&page=1",
        "/users?withTags=true&perPage=1000&page=1",
    ]


def test_export_reads_every_user_with_their_blocklists(seeded: Store, emulator_factory: Factory) -> None:
    seeded.insert_users([owned("alice"), owned("bob"), User(uid="stranger", name="S")])
    seeded.set_active(["bob"], False)
    seeded.add_relations("blocks", [("alice", "stranger")])
    emulator = emulator_factory(db=seeded.path)
    with open_provider(config_for(emulator)) as provider:
        live = provider.read(Scope(uids=frozenset(), owner=OWNER, everything=True))
    assert set(live.users) == {"alice", "bob", "stranger"}
    assert live.users["alice"].blocklist == {"stranger"}
    assert live.users["stranger"].blocklist == frozenset() and live.users["stranger"].owner is None
    assert live.users["bob"].blocklist is None  # deactivated: CometChat will not show it
    assert live.bans == {}
    assert calls(emulator)["GET /v3/users/{uid}/blockedusers"] == 2


# -------------------------------------------------------------------- batching


def test_deactivates_and_reactivates_25_users_a_call(emulator: EmulatorProcess) -> None:
    config = config_for(emulator)
    users = [User(uid=f"user{i:02d}", name=f"User {i}") for i in range(60)]
    with open_provider(config) as provider:
        converge(provider, manifest(config, *users))
        emulator.reset()
        converge(provider, manifest(config, *(u.evolve(active=False) for u in users)))
        assert endpoint(emulator, "DELETE /v3/users") == 3
        converge(provider, manifest(config, *(u.evolve(active=True) for u in users)))
        assert endpoint(emulator, "PUT /v3/users") == 3


def test_blocks_and_unblocks_with_one_call_per_blocker(emulator: EmulatorProcess) -> None:
    config = config_for(emulator)
    others = [User(uid=uid, name=uid) for uid in ("carol", "dave", "erin")]
    alice = User(uid="alice", name="Alice", blocklist=frozenset({"carol", "dave", "erin"}))
    bob = User(uid="bob", name="Bob", blocklist=frozenset({"carol", "dave"}))
    with open_provider(config) as provider:
        converge(provider, manifest(config, alice, bob, *others))
        assert endpoint(emulator, "POST /v3/users/{uid}/blockedusers") == 2
        cleared = [alice.evolve(blocklist=frozenset()), bob.evolve(blocklist=frozenset())]
        converge(provider, manifest(config, *cleared, *others))
        assert endpoint(emulator, "DELETE /v3/users/{uid}/blockedusers") == 2


def test_creates_deactivated_users_then_deactivates_them_in_one_batch(
    emulator: EmulatorProcess,
) -> None:
    config = config_for(emulator)
    users = [User(uid=f"gone{i}", name="Gone", active=False) for i in range(5)]
    with open_provider(config) as provider:
        converge(provider, manifest(config, *users))
    assert endpoint(emulator, "POST /v3/users") == 5
    assert endpoint(emulator, "DELETE /v3/users") == 1


# -------------------------------------------------------------------- the marker


def raw_user(emulator: EmulatorProcess, uid: str) -> dict[str, Any]:
    response = httpx.get(f"{emulator.base_url}/v3/users/{uid}", headers={"apikey": API_KEY})
    return response.json()["data"]  # type: ignore[no-any-return]


def test_the_marker_lives_in_metadata_and_survives_every_metadata_write(
    emulator: EmulatorProcess,
) -> None:
    config = config_for(emulator)
    alice = User(uid="alice", name="Alice", metadata={"team": "core"})
    stamp = datetime(2026, 1, 1, tzinfo=UTC)
    with open_provider(config) as provider:
        converge(provider, manifest(config, alice.evolve(tokens_valid_after=stamp)))
        assert raw_user(emulator, "alice")["metadata"] == {
            "team": "core",
            MARKER_KEY: {"owner": OWNER, "tokens_valid_after": 1767225600},
        }
        converge(provider, manifest(config, alice.evolve(metadata={})))
    assert raw_user(emulator, "alice")["metadata"] == {
        MARKER_KEY: {"owner": OWNER, "tokens_valid_after": 1767225600},
    }


def test_adoption_adds_the_marker_and_keeps_the_metadata_it_found(
    seeded: Store, emulator_factory: Factory
) -> None:
    seeded.insert_users([User(uid="alice", name="Alice", metadata={"@private": {"email": "a@x.io"}})])
    emulator = emulator_factory(db=seeded.path)
    config = config_for(emulator)
    with open_provider(config) as provider:
        converge(provider, manifest(config, User(uid="alice", name="Alice")))
    assert raw_user(emulator, "alice")["metadata"] == {
        "@private": {"email": "a@x.io"},
        MARKER_KEY: {"owner": OWNER},
    }


def test_expiring_tokens_flushes_them_and_records_the_watermark(
    seeded: Store, emulator_factory: Factory
) -> None:
    seeded.insert_users([owned("alice", metadata={"team": "core"})])
    seeded.issue_token("alice")
    emulator = emulator_factory(db=seeded.path)
    config = config_for(emulator)
    stamp = datetime(2026, 6, 1, tzinfo=UTC)
    with open_provider(config) as provider:
        converge(provider, manifest(config, User(uid="alice", name="Alice", tokens_valid_after=stamp)))
    assert seeded.tokens("alice") == []
    assert endpoint(emulator, "DELETE /v3/users/{uid}/auth_tokens") == 1
    assert raw_user(emulator, "alice")["metadata"] == {
        "team": "core",
        MARKER_KEY: {"owner": OWNER, "tokens_valid_after": int(stamp.timestamp())},
    }


# ---------------------------------------------------------------- idempotency


class Recording(httpx.HTTPTransport):
    """The real HTTP transport, keeping a copy of every request sent."""

    def __init__(self, sent: list[httpx.Request]) -> None:
        super().__init__()
        self.sent = sent

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.sent.append(request)
        return super().handle_request(request)


class LosesFirstAnswer(httpx.HTTPTransport):
    """Sends each request for real; the first answer to each matching request is lost on
    the way back (a read timeout), as when a request succeeds but the client gives up."""

    def __init__(self, *matches: tuple[str, str]) -> None:
        super().__init__()
        self.pending = set(matches)

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = super().handle_request(request)
        key = (request.method, request.url.path.split("/v3", 1)[1])
        if key in self.pending:
            self.pending.discard(key)
            response.read()
            response.close()
            raise httpx.ReadTimeout("the answer was lost", request=request)
        return response


def test_a_create_whose_answer_was_lost_is_done_once(emulator: EmulatorProcess) -> None:
    config = config_for(emulator)
    transport = LosesFirstAnswer(("POST", "/users"))
    wanted = manifest(config, User(uid="alice", name="Alice"))
    with open_cometchat(config, http=HttpOptions(transport=transport, backoff=0.01)) as provider:
        converge(provider, wanted)
    assert emulator.stats()["by_endpoint"]["POST /v3/users"] == {"200": 1, "400": 1}


def test_deletes_and_blocks_whose_answers_were_lost_are_done_once(
    seeded: Store, emulator_factory: Factory
) -> None:
    seeded.insert_users([owned("alice"), owned("bob"), owned("carol")])
    emulator = emulator_factory(db=seeded.path)
    config = config_for(emulator)
    transport = LosesFirstAnswer(
        ("DELETE", "/users/carol"),
        ("POST", "/users/alice/blockedusers"),
        ("DELETE", "/users"),
    )
    policy = Policy(prune="delete", max_delete=Policy().max_delete.parse(5))
    wanted = manifest(
        config,
        User(uid="alice", name="Alice", blocklist=frozenset({"bob"})),
        User(uid="bob", name="Bob", active=False),
        policy=policy,
    )
    with open_cometchat(config, http=HttpOptions(transport=transport, backoff=0.01)) as provider:
        converge(provider, wanted)
    assert not transport.pending
    assert seeded.get_user("carol") is None
    assert seeded.relations("blocks", ["alice"]) == {"alice": {"bob"}}


def test_an_existing_user_of_someone_else_is_not_taken_by_create(
    seeded: Store, emulator_factory: Factory
) -> None:
    emulator = emulator_factory(db=seeded.path)
    config = config_for(emulator)
    create = Change(Action.CREATE_USER, "alice", after={"name": "Alice", "owner": OWNER})
    seeded.insert_users([User(uid="alice", name="Someone else's")])
    with open_provider(config) as provider, pytest.raises(PartialFailure) as caught:
        provider.create_users([create])
    assert caught.value.failed == {
        "create_user:alice": "'alice' already exists on CometChat and is not owned by 'team'; run plan again",
    }


def test_a_change_to_a_deactivated_user_is_left_with_a_warning(
    seeded: Store, emulator_factory: Factory
) -> None:
    # CometChat refuses every change to a deactivated user: planning one would fail
    # every run, so the plan leaves it and says why.
    seeded.insert_users([owned("alice")])
    seeded.set_active(["alice"], False)
    emulator = emulator_factory(db=seeded.path)
    config = config_for(emulator)
    with open_provider(config) as provider:
        made = make_plan(manifest(config, User(uid="alice", name="New", active=False)), provider, Options())
        assert made.empty
        assert any("alice is deactivated" in warning for warning in made.warnings)
        revived = make_plan(manifest(config, User(uid="alice", name="New", active=True)), provider, Options())
        assert [c.action.value for c in revived.changes] == ["reactivate_user", "update_user"]
        apply(revived.changes, provider)
        assert make_plan(
            manifest(config, User(uid="alice", name="New", active=True)), provider, Options()
        ).empty


def test_a_user_created_deactivated_gets_its_blocks_and_converges(
    emulator: EmulatorProcess,
) -> None:
    config = config_for(emulator)
    ghost = User(uid="ghost", name="Ghost", active=False, blocklist=frozenset({"bob"}))
    wanted = manifest(config, ghost, User(uid="bob", name="Bob"))
    with open_provider(config) as provider:
        converge(provider, wanted)
    store = Store(emulator.db_path)
    assert store.relations("blocks", ["ghost"]) == {"ghost": {"bob"}}
    store.close()
    assert raw_user_status(emulator, "ghost") == 404  # deactivated again


def raw_user_status(emulator: EmulatorProcess, uid: str) -> int:
    response = httpx.get(f"{emulator.base_url}/v3/users/{uid}", headers={"apikey": API_KEY})
    return response.status_code


def test_a_deactivated_users_blocklist_is_reported_unknown(seeded: Store, emulator_factory: Factory) -> None:
    seeded.insert_users([owned("ghost"), owned("bob")])
    seeded.add_relations("blocks", [("ghost", "bob")])
    seeded.set_active(["ghost"], False)
    emulator = emulator_factory(db=seeded.path)
    with open_provider(config_for(emulator)) as provider:
        live = provider.read(
            Scope(uids=frozenset({"ghost", "bob"}), owner=OWNER, blocklists=frozenset({"ghost", "bob"}))
        )
    assert live.users["ghost"].blocklist is None  # hidden by CometChat, so not guessed
    assert live.users["bob"].blocklist == frozenset()
    assert "GET /v3/users/{uid}/blockedusers" in calls(emulator)
    assert calls(emulator)["GET /v3/users/{uid}/blockedusers"] == 1


# --------------------------------------------------------------------- secrets


def test_a_refused_key_names_the_variable_to_check(
    emulator: EmulatorProcess, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COMETCHAT_API_KEY", "not-the-key-123")
    config = config_for(emulator, api_key="not-the-key-123")
    with open_provider(config) as provider, pytest.raises(AuthError) as caught:
        provider.read(Scope(uids=frozenset(), owner=OWNER))
    message = str(caught.value)
    assert "COMETCHAT_API_KEY" in message and "not-the-key-123" not in message


def test_a_refused_key_from_nowhere_names_the_setting(emulator: EmulatorProcess) -> None:
    config = config_for(emulator, api_key="literal-key-in-manifest")
    with open_provider(config) as provider, pytest.raises(AuthError) as caught:
        provider.read(Scope(uids=frozenset(), owner=OWNER))
    assert "provider.api_key (the environment variable it names)" in str(caught.value)


def run_cli(*args: str, key: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COMETCHAT_API_KEY": key, "PYTHONPATH": str(SRC)}
    return subprocess.run(
        [sys.executable, "-m", "chatroster", *args],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )


def write_manifest(path: Path, emulator: EmulatorProcess) -> Path:
    path.write_text(
        "version: 1\n"
        "provider:\n"
        "  type: cometchat\n"
        "  app_id: emulator-app\n"
        f"  url: {emulator.base_url}\n"
        "  api_key: ${COMETCHAT_API_KEY}\n"
        "owner: team\n"
        "users:\n"
        "  alice: {name: Alice, role: default, tags: [staff], metadata: {team: core}}\n"
        "  bob: {name: Bob, active: false}\n"
        "  carol: {name: Carol, blocklist: [alice]}\n"
    )
    return path


def test_the_cli_applies_a_yaml_manifest_and_then_plans_nothing(
    emulator: EmulatorProcess, tmp_path: Path
) -> None:
    path = write_manifest(tmp_path / "chatroster.yaml", emulator)
    applied = run_cli("apply", str(path), "--yes", "--concurrency", "4", key=API_KEY)
    assert applied.returncode == 0, applied.stderr
    planned = run_cli("plan", str(path), "--detailed-exitcode", key=API_KEY)
    assert planned.returncode == 0, planned.stdout + planned.stderr


def test_the_cli_names_the_variable_of_a_refused_key_and_never_shows_it(
    emulator: EmulatorProcess, tmp_path: Path
) -> None:
    path = write_manifest(tmp_path / "chatroster.yaml", emulator)
    wrong = "wrong-key-0123456789"
    planned = run_cli("plan", str(path), key=wrong)
    assert planned.returncode == 1
    assert "COMETCHAT_API_KEY" in planned.stderr
    assert wrong not in planned.stdout + planned.stderr


# ----------------------------------------------------------------------- faults


def test_apply_converges_through_faults_making_each_change_once(
    emulator_factory: Factory, caplog: pytest.LogCaptureFixture
) -> None:
    emulator = emulator_factory(
        "--fault-rate",
        "0.15",
        "--fault-seed",
        "7",
        "--hang-seconds",
        "1",
    )
    config = config_for(emulator)
    patient = HttpOptions(timeout=0.4, backoff=0.01, retries=10)
    names = [f"user{i:02d}" for i in range(30)]
    users = [
        User(
            uid=uid,
            name=uid.title(),
            tags=("staff",),
            metadata={"n": i},
            active=i % 5 != 3 and i != 0,
            blocklist=frozenset(names[i + 1 : i + 3]) if i % 5 == 0 else None,
        )
        for i, uid in enumerate(names)
    ]
    caplog.set_level(logging.DEBUG, logger="chatroster.http")
    with open_cometchat(config, concurrency=6, http=patient) as provider:
        converge(provider, manifest(config, *users))
        retries = provider.http.counters["retries"]
    stats = emulator.stats()
    assert sum(stats["faults"].values()) > 0 and retries > 0
    # A fault is answered before the emulator acts, so each change was made once:
    # 30 users created (no duplicate refused), 6 blockers, 7 users created deactivated
    # in one batch, one of them (user00, a blocker) woken for its blocks and put back.
    by_endpoint = stats["by_endpoint"]
    assert by_endpoint["POST /v3/users"].get("200") == 30
    assert by_endpoint["POST /v3/users"].get("400") is None
    assert by_endpoint["POST /v3/users/{uid}/blockedusers"].get("200") == 6
    assert by_endpoint["DELETE /v3/users"].get("200") == 2
    assert by_endpoint["PUT /v3/users"].get("200") == 1
    assert caplog.records and all(API_KEY not in r.getMessage() for r in caplog.records)


def test_rejected_credentials_during_apply_stop_the_run_even_with_continue_on_error(
    emulator: EmulatorProcess,
) -> None:
    # They used to become one failure message per change, so --continue-on-error kept
    # calling the API with a key it had already refused.
    config = config_for(emulator, api_key="not-the-key-123")
    changes = [Change(Action.CREATE_USER, f"u{i}", after={"name": f"U{i}", "owner": OWNER}) for i in range(5)]
    with open_provider(config) as provider, pytest.raises(AuthError):
        apply(changes, provider, continue_on_error=True)
    assert Store(emulator.db_path).all_users() == {}
