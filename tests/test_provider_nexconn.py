"""The Nexconn provider, against `chatroster emulator` run as a real process on loopback.

Every test goes through the real pipeline (`read_live` → `make_plan` → `apply`) over
real HTTP, and checks the platform through the emulator's store file or its request
counters (``GET /_emulator/stats``). The first section tests the wire format alone.
The vendor's OpenAPI file is an independent judge of every request body sent.
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
import sqlite3
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from emulator_process import EmulatorProcess

from chatroster.apply import apply
from chatroster.changes import Action, Change
from chatroster.emulator.signing import SignatureVerifier
from chatroster.errors import ApplyError, AuthError, ProviderError
from chatroster.model import Ban, Limit, Manifest, Policy, ProviderConfig, State, User
from chatroster.plan import Plan
from chatroster.providers import open_provider
from chatroster.providers.nexconn import NexconnProvider, Settings, api
from chatroster.providers.nexconn.api import HostedProfile
from chatroster.providers.nexconn.client import NexconnClient
from chatroster.providers.requests import serving
from chatroster.runner import Options, make_plan, read_live
from chatroster.store import Store

KEY, SECRET = "emulator-app-key", "emulator-app-secret"
OWNER = "team"
SPEC = Path(__file__).resolve().parents[2] / "shared/conformance/nexconn/openapi.yaml"
FOREVER = Limit(count=10_000)


# ============================================================= the wire format alone


def test_signs_every_attempt_afresh_as_the_vendor_checks_it() -> None:
    verifier = SignatureVerifier(KEY, SECRET, tolerance_ms=60_000)
    first, second = api.signed_headers(KEY, SECRET), api.signed_headers(KEY, SECRET)
    assert verifier.verify(first, "ms") is None and verifier.verify(second, "ms") is None
    assert first["Nonce"] != second["Nonce"] and len(first["Nonce"]) <= 18
    expected = hashlib.sha1((SECRET + first["Nonce"] + first["Timestamp"]).encode()).hexdigest()
    assert first["Signature"] == expected
    legacy = api.signed_headers(KEY, SECRET, "s")
    assert len(legacy["Timestamp"]) == 10 and verifier.verify(legacy, "s") is None


def _answer(status: int, body: Any) -> httpx.Response:
    return httpx.Response(status, json=body)


def test_treats_a_200_answer_with_an_error_code_as_a_failure() -> None:
    with pytest.raises(api.Refusal, match="profile key 'ext_x'"):
        api.result_of(
            _answer(200, {"code": 1002, "errorMessage": "undeclared", "profileKey": "ext_x"}),
            api.PROFILE_SET,
        )
    assert api.result_of(_answer(200, {"code": 0, "result": {"a": 1}}), api.USER_GET) == {"a": 1}
    assert api.result_of(_answer(200, {"code": 200, "users": []}), api.WHITELIST_GET) == {
        "code": 200,
        "users": [],
    }
    with pytest.raises(api.Refusal):  # v4 success code on a legacy endpoint is not success
        api.result_of(_answer(200, {"code": 0}), api.WHITELIST_GET)


def test_write_calls_note_their_request_id_for_the_changes_they_serve_and_reads_do_not() -> None:
    sent: list[tuple[str, str]] = []

    def vendor(request: httpx.Request) -> httpx.Response:
        sent.append((request.url.path, request.headers["X-Request-ID"]))
        if request.url.path == api.PROFILE_SET.path:  # an answer that names its request
            return _answer(200, {"code": 0, "requestId": "vendor-says-1"})
        if request.url.path == api.USER_UPDATE.path:
            return _answer(400, {"code": 1002, "errorMessage": "bad name"})
        return _answer(200, {"code": 0, "result": {"users": []}})

    settings = Settings(base_urls=("https://nexconn.test",), app_key=KEY, app_secret=SECRET, retries=0)
    client = NexconnClient(settings, transport=httpx.MockTransport(vendor))
    alice, bob = Change(Action.UPDATE_USER, "alice"), Change(Action.UPDATE_USER, "bob")
    with serving([alice, bob]):
        client.call(api.TAG_SET, {"userIds": ["alice", "bob"], "tags": ["x"]})
        client.call(api.TAG_GET, {"userIds": ["alice", "bob"]})  # a read: no change's
    with serving([alice]):
        client.call(api.PROFILE_SET, {"userId": "alice"})
        with pytest.raises(api.Refusal):
            client.call(api.USER_UPDATE, {"userId": "alice", "name": ""})
    client.call(api.PROFILE_SET, {"userId": "carol"})  # outside any change (a digest write)
    ids = [request_id for _, request_id in sent]
    assert len(set(ids)) == len(ids) == 5 and all(len(i) == 36 for i in ids)
    # Each change lists its write calls in order; the vendor's echo wins; taken once.
    assert client.request_ids.take(alice) == (ids[0], "vendor-says-1", ids[3])
    assert client.request_ids.take(bob) == (ids[0],)
    assert client.request_ids.take(alice) == ()


def test_every_read_endpoint_and_only_those_are_marked_as_reads() -> None:
    endpoints = {e for e in vars(api).values() if isinstance(e, api.Endpoint)}
    assert len(endpoints) >= len(api.ENDPOINTS)
    for endpoint in endpoints:
        reads = endpoint.path.endswith(("/get", "/list", "/query.json"))
        assert endpoint.reads == reads, endpoint


def test_a_refused_signature_says_which_settings_to_check() -> None:
    with pytest.raises(AuthError, match=r"check provider\.app_key and provider\.app_secret"):
        api.result_of(_answer(401, {"code": 1004, "errorMessage": "bad signature"}), api.BAN)


def test_reads_vendor_times_in_utc_and_a_ban_without_end() -> None:
    assert api.parse_time("2026-12-31 08:00:00") == datetime(2026, 12, 31, 8, tzinfo=UTC)
    assert api.parse_time("1767168000000") == datetime(2025, 12, 31, 8, tzinfo=UTC)
    assert api.parse_time("9999-12-31 23:59:59") is None


def test_ban_durations_stay_within_the_vendors_range() -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    assert api.ban_minutes(now + timedelta(hours=2), now) == 120
    assert api.ban_minutes(now + timedelta(days=90), now) == api.MAX_BAN_MINUTES == 43200
    assert api.ban_minutes(None, now) == 43200
    assert api.ban_minutes(now - timedelta(minutes=5), now) == 1


def test_the_hosted_profile_hides_chatrosters_markers_and_keeps_them_on_every_write() -> None:
    stored = HostedProfile.from_api(
        {
            "userProfile": {"email": "a@x.io", "uniqueId": "A1", "name": "Alice", "portraitUri": "p"},
            "userExtProfile": {"ext_dept": "eng", api.OWNER_KEY: "team", api.TOKENS_KEY: "1000"},
        }
    )
    assert stored.profile == {"email": "a@x.io", "unique_id": "A1", "ext": {"ext_dept": "eng"}}
    assert stored.owner == "team" and stored.push == ("Alice", "p")
    assert stored.tokens_valid_after == datetime.fromtimestamp(1, UTC)
    written = stored.with_profile({"level": 3})
    assert written.basic == {"name": "Alice", "portraitUri": "p", "level": 3}
    assert written.ext == {api.OWNER_KEY: "team", api.TOKENS_KEY: "1000"}
    assert written.drops_keys_of(stored) and not stored.with_owner("team").drops_keys_of(stored)


def test_profile_values_of_the_wrong_type_are_refused_before_any_call() -> None:
    for bad in (
        {"gender": "2"},
        {"email": 5},
        {"ext": {"ext_n": 1}},
        {"nickname": "x"},
        {"ext": {api.OWNER_KEY: "me"}},
    ):
        with pytest.raises(ValueError):
            HostedProfile().with_profile(bad)


def test_settings_come_from_the_manifest_and_a_missing_secret_says_what_to_set() -> None:
    settings = Settings.from_config(
        ProviderConfig(
            "nexconn",
            {
                "region": "us",
                "app_key": "k",
                "app_secret": "s",
            },
        )
    )
    assert settings.base_urls == ("https://api.us-light-api.com", "https://api-b.us-light-api.com")
    assert settings.rate == 100 and settings.concurrency == 8
    with pytest.raises(ProviderError, match=r"provider\.app_secret.*NEXCONN_APP_SECRET"):
        Settings.from_config(ProviderConfig("nexconn", {"region": "sg", "app_key": "k"}))
    with pytest.raises(ProviderError, match="region"):
        Settings.from_config(ProviderConfig("nexconn", {"app_key": "k", "app_secret": "s"}))


def test_identity_names_the_app_without_its_key_or_secret() -> None:
    config = ProviderConfig("nexconn", {"url": "http://127.0.0.1:9", "app_key": KEY, "app_secret": SECRET})
    with open_provider(config) as provider:
        identity = provider.identity()
    assert identity == {
        "type": "nexconn",
        "url": "http://127.0.0.1:9",
        "app_key_hash": hashlib.sha256(KEY.encode()).hexdigest()[:8],
    }
    assert KEY not in json.dumps(identity) and SECRET not in json.dumps(identity)


# ============================================================ against the emulator


class Recorder(httpx.HTTPTransport):
    """The real HTTP transport, keeping a copy of every request body sent."""

    def __init__(self) -> None:
        super().__init__()
        self.sent: list[tuple[str, bytes]] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.sent.append((request.url.path, request.read()))
        return super().handle_request(request)


@dataclass
class Nexconn:
    """One emulator and the ways a test drives it."""

    emulator: EmulatorProcess
    tuning: dict[str, Any] = field(default_factory=dict)
    recorder: Recorder = field(default_factory=Recorder)

    def settings(self, **changes: Any) -> Settings:
        config = ProviderConfig(
            "nexconn", {"url": self.emulator.base_url, "app_key": KEY, "app_secret": SECRET}
        )
        fast = {"rate": 1000.0, "backoff": 0.01, "timeout": 5.0, "concurrency": 8}
        return replace(Settings.from_config(config), **{**fast, **self.tuning, **changes})

    def open(self, **changes: Any) -> NexconnProvider:
        return NexconnProvider(self.settings(**changes), transport=self.recorder)

    def manifest(
        self,
        *users: User,
        owner: str = OWNER,
        policy: Policy | None = None,
        bans: dict[str, Ban] | None = None,
    ) -> Manifest:
        config = ProviderConfig("nexconn", {"url": self.emulator.base_url})
        state = State(users={user.uid: user for user in users}, bans=bans)
        return Manifest(desired=state, provider=config, owner=owner, policy=policy or Policy())

    def plan(self, manifest: Manifest, **options: Any) -> Plan:
        with self.open() as provider:
            return make_plan(manifest, provider, Options(**options))

    def apply(self, manifest: Manifest, **options: Any) -> Plan:
        with self.open() as provider:
            made = make_plan(manifest, provider, Options(**options))
            apply(made.changes, provider)
        return made

    def converge(self, manifest: Manifest, **options: Any) -> Plan:
        made = self.apply(manifest, **options)
        again = self.plan(manifest, **options)
        assert again.empty, f"not converged: {[c.to_json() for c in again.changes]}"
        return made

    def live(self, manifest: Manifest) -> dict[str, User]:
        with self.open() as provider:
            return dict(read_live(manifest, provider, everything=True).users)

    def calls(self, status: str | None = None) -> Counter[str]:
        """Requests the emulator answered, by path (only those with ``status``)."""
        counts: Counter[str] = Counter()
        for endpoint, by_status in self.emulator.stats()["by_endpoint"].items():
            path = endpoint.split(" ", 1)[1]
            counts[path] += sum(n for s, n in by_status.items() if status in (None, s))
        return counts

    def store(self) -> Store:
        return Store(self.emulator.db_path)

    def seed(self, *users: User) -> None:
        """Users made outside chatroster (no ownership marker)."""
        store = self.store()
        store.insert_users(users)
        store.close()

    def age_deactivations(self, hours: float = 2) -> None:
        """Nexconn restores a user only 1 hour after its soft-delete; the store's clock
        cannot be moved, so the deactivations are made older instead."""
        with sqlite3.connect(self.emulator.db_path) as db:
            db.execute(
                "UPDATE users SET deactivated_at = deactivated_at - ? WHERE deactivated_at IS NOT NULL",
                (int(hours * 3600),),
            )


@pytest.fixture
def nexconn(emulator: EmulatorProcess) -> Nexconn:
    return Nexconn(emulator)


def person(uid: str, **fields: Any) -> User:
    values: dict[str, Any] = {
        "name": f"{uid.title()} Example",
        "avatar": f"https://example.com/{uid}.png",
        "tags": ("staff",),
        "profile": {"email": f"{uid}@example.com", "level": 3, "ext": {"ext_dept": "eng"}},
    }
    return User(uid=uid, **{**values, **fields})


def actions(made: Plan) -> Counter[str]:
    return Counter(change.action.value for change in made.changes)


# ------------------------------------------------------------------ convergence


def quickstart(nexconn: Nexconn) -> Manifest:
    """The shape of examples/nexconn.yaml: every field and relation Nexconn keeps."""
    now = datetime.now(UTC).replace(microsecond=0)
    users = [
        person("admin", tags=("staff",), profile={"email": "ada@example.com", "role": 100}),
        person(
            "alice",
            tags=("beta", "staff"),
            blocklist=frozenset({"mallory"}),
            whitelist=frozenset({"bob", "admin"}),
            whitelist_mode=True,
            profile={
                "email": "alice@example.com",
                "gender": 2,
                "location": "SG",
                "birthday": "1990-05-01",
                "unique_id": "A1",
                "ext": {"ext_dept": "eng", "ext_status": "On call"},
            },
            tokens_valid_after=now - timedelta(days=20),
        ),
        person("bob", blocklist=frozenset(), whitelist_mode=False),
        person("erin", active=False),
        person("mallory", tags=()),
    ]
    policy = Policy(prune="deactivate", protected=frozenset({"admin"}))
    return nexconn.manifest(*users, policy=policy, bans={"mallory": Ban("mallory", None)})


def test_quickstart_applies_and_then_plans_no_changes(nexconn: Nexconn) -> None:
    manifest = quickstart(nexconn)
    made = nexconn.converge(manifest)
    assert actions(made) == {
        "create_user": 5,
        "ban_user": 1,
        "add_block": 1,
        "add_whitelist": 2,
    }
    live = nexconn.live(manifest)
    assert live["alice"].profile == manifest.desired.users["alice"].profile
    assert live["alice"].whitelist == frozenset({"bob", "admin"})
    assert live["alice"].whitelist_mode
    # The vendor's soft-delete deletes the user's data: the id alone is left.
    assert live["erin"].active is False and live["erin"].name is None and live["erin"].owner is None
    assert all(user.owner == OWNER for user in live.values() if user.active)


def test_every_request_body_matches_the_vendors_openapi_schema(nexconn: Nexconn) -> None:
    if not SPEC.is_file():
        pytest.skip(f"the vendor's OpenAPI file is missing: {SPEC}")
    spec = yaml.safe_load(SPEC.read_text(encoding="utf-8"))
    manifest = quickstart(nexconn)
    nexconn.converge(manifest)
    nexconn.converge(
        replace(
            manifest,
            desired=State(
                users={**manifest.desired.users, "bob": person("bob", name="Bob Renamed", tags=("x",))},
                bans={},
            ),
        )
    )
    checked = set()
    for path, body in nexconn.recorder.sent:
        if path.startswith("/v4/"):
            _check_request(spec, path, json.loads(body))
            checked.add(path)
    assert len(checked) >= 12, sorted(checked)


def _check_request(spec: dict[str, Any], path: str, body: Any) -> None:
    from jsonschema import Draft4Validator  # type: ignore[import-untyped]

    operation = spec["paths"][path]["post"]
    schema = _inline(spec, operation["requestBody"]["content"]["application/json"]["schema"])
    errors = [e.message for e in Draft4Validator(schema).iter_errors(body)]
    assert not errors, f"{path} {body}: {errors}"


def _inline(spec: dict[str, Any], node: Any) -> Any:
    """A request schema with its refs resolved and undeclared properties refused."""
    if isinstance(node, dict):
        if "$ref" in node:
            return _inline(spec, spec["components"]["schemas"][node["$ref"].split("/")[-1]])
        found = {
            k: _inline(spec, v)
            for k, v in node.items()
            if k not in ("example", "nullable") and not (k == "anyOf" and not v)
        }
        if "properties" in found:
            found.setdefault("additionalProperties", False)
        return found
    return copy.deepcopy(node)


# ------------------------------------------------------------- every change kind


def test_updates_push_data_tags_and_profile_and_removes_dropped_profile_keys(
    nexconn: Nexconn,
) -> None:
    nexconn.converge(nexconn.manifest(person("alice")))
    renamed = person(
        "alice", name="Alice Renamed", avatar="", tags=("gold", "vip"), profile={"email": "new@example.com"}
    )
    made = nexconn.converge(nexconn.manifest(renamed))
    assert actions(made) == {"update_user": 1}
    store = nexconn.store()
    row = store.get_user("alice")
    store.close()
    assert row is not None and row.name == "Alice Renamed" and not row.avatar
    assert row.tags == ("gold", "vip")
    # Level and ext_dept are gone; the marker is not, nor the copy of the name.
    assert row.profile == {"email": "new@example.com", "name": "Alice Renamed", "ext": {api.OWNER_KEY: OWNER}}


def test_deactivates_and_reactivates_a_user_an_hour_later_writing_its_data_again(nexconn: Nexconn) -> None:
    bob = person("bob")
    alice = person("alice", blocklist=frozenset({"bob"}), whitelist=frozenset({"bob"}), whitelist_mode=True)
    nexconn.converge(nexconn.manifest(alice, bob))
    made = nexconn.converge(nexconn.manifest(alice.evolve(active=False), bob))
    assert actions(made) == {"deactivate_user": 1}
    gone = nexconn.live(nexconn.manifest(alice, bob))["alice"]
    assert gone.name is None and gone.owner is None and gone.profile == {}  # the vendor deleted it
    nexconn.age_deactivations()
    made = nexconn.converge(nexconn.manifest(alice, bob))  # active is not said: active
    assert actions(made) == {
        "reactivate_user": 1,
        "adopt_user": 1,
        "update_user": 1,
        "add_block": 1,
        "set_whitelist_mode": 1,
        "add_whitelist": 1,
    }
    back = nexconn.live(nexconn.manifest(alice, bob))["alice"]
    assert back.active is True and back.owner == OWNER
    assert (back.name, back.avatar, back.tags) == (alice.name, alice.avatar, alice.tags)
    assert back.profile == alice.profile
    assert back.blocklist == back.whitelist == frozenset({"bob"}) and back.whitelist_mode


def test_a_deactivated_user_that_stays_so_has_nothing_to_plan(nexconn: Nexconn) -> None:
    # The vendor deleted its data and lists: there is nothing to compare, nor to warn about.
    bob = person("bob")
    alice = person("alice", blocklist=frozenset({"bob"}), whitelist=frozenset({"bob"}))
    nexconn.converge(nexconn.manifest(alice, bob))
    made = nexconn.converge(nexconn.manifest(alice.evolve(active=False), bob))
    assert actions(made) == {"deactivate_user": 1}
    again = nexconn.plan(nexconn.manifest(alice.evolve(active=False, name="Renamed"), bob))
    assert again.empty and not again.warnings


def test_a_deactivated_users_whitelist_mode_is_left_alone(nexconn: Nexconn) -> None:
    alice = person("alice", whitelist_mode=True, active=False)
    made = nexconn.apply(nexconn.manifest(alice))
    assert actions(made) == {"create_user": 1}
    assert nexconn.plan(nexconn.manifest(alice)).empty


def test_a_reactivation_within_the_hour_fails_saying_when_to_run_again(nexconn: Nexconn) -> None:
    alice = person("alice")
    nexconn.converge(nexconn.manifest(alice, person("bob")))
    nexconn.converge(nexconn.manifest(alice.evolve(active=False), person("bob")))
    with pytest.raises(ApplyError) as caught:
        nexconn.apply(nexconn.manifest(alice.evolve(active=True), person("bob")))
    failures = dict(caught.value.failures)
    message = failures.pop("reactivate_user:alice")
    # Her adoption and fields (the restore brings back the uid alone) wait for it.
    assert failures and all(why == "not attempted: reactivate_user:alice failed" for why in failures.values())
    assert "1 hour" in message and "run apply again after" in message and "UTC" in message


def test_bans_renews_a_capped_ban_and_unbans(nexconn: Nexconn) -> None:
    users = [person("alice"), person("mallory")]
    now = datetime.now(UTC).replace(microsecond=0)
    nexconn.converge(nexconn.manifest(*users))
    banned = nexconn.manifest(*users, bans={"mallory": Ban("mallory", now + timedelta(days=90))})
    [ban] = nexconn.converge(banned).changes
    assert ban.action is Action.BAN_USER and "set for 30 days" in (ban.note or "")
    until = nexconn.store().bans()["mallory"].until
    assert until is not None and abs(until - (now + timedelta(days=30))) < timedelta(minutes=2)
    # Three weeks later less than half of the 30 days remain: the plan renews the ban.
    later = nexconn.plan(banned, now=lambda: now + timedelta(days=21))
    assert [c.note for c in later.changes] == [
        "renew: longer than 30 days: set for 30 days, renewed by a later run"
    ]
    made = nexconn.converge(nexconn.manifest(*users, bans={}))
    assert actions(made) == {"unban_user": 1}


def test_adds_and_removes_blocks_and_whitelist_entries(nexconn: Nexconn) -> None:
    others = [person(uid) for uid in ("bob", "carol", "dave")]
    alice = person(
        "alice", blocklist=frozenset({"bob", "carol"}), whitelist=frozenset({"bob"}), whitelist_mode=True
    )
    made = nexconn.converge(nexconn.manifest(alice, *others))
    assert made.count(Action.ADD_BLOCK) == 2 and made.count(Action.ADD_WHITELIST) == 1
    alice = alice.evolve(blocklist=frozenset({"dave"}), whitelist=frozenset({"carol"}))
    made = nexconn.converge(nexconn.manifest(alice, *others))
    assert actions(made) == {"remove_block": 2, "add_block": 1, "remove_whitelist": 1, "add_whitelist": 1}
    made = nexconn.converge(nexconn.manifest(alice.evolve(whitelist_mode=False), *others))
    assert actions(made) == {"set_whitelist_mode": 1}
    store = nexconn.store()
    assert store.relations("blocks", ["alice"])["alice"] == {"dave"}
    assert store.get_user("alice").whitelist_mode is False  # type: ignore[union-attr]
    store.close()


def test_a_call_refused_for_one_user_fails_that_change_alone(nexconn: Nexconn) -> None:
    users = [person(uid) for uid in ("alice", "bob", "carol")]
    nexconn.converge(nexconn.manifest(*users))
    until = {"until": "2030-01-01T00:00:00Z"}
    # As a saved plan might: "ghost" does not exist, so the vendor refuses the whole call.
    bans = [Change(Action.BAN_USER, uid, after=until) for uid in ("alice", "ghost", "carol")]
    with nexconn.open() as provider, pytest.raises(ApplyError) as caught:
        apply(bans, provider)
    [(key, message)] = caught.value.failures
    assert key == "ban_user:ghost" and "does not exist" in message
    assert set(nexconn.store().bans()) == {"alice", "carol"}


def test_expires_tokens_and_remembers_the_time_in_the_profile(nexconn: Nexconn) -> None:
    nexconn.converge(nexconn.manifest(person("alice")))
    later = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=5)
    manifest = nexconn.manifest(person("alice", tokens_valid_after=later))
    made = nexconn.converge(manifest)
    assert actions(made) == {"expire_tokens": 1}
    store = nexconn.store()
    alice = store.get_user("alice")
    store.close()
    assert alice is not None and alice.tokens_valid_after == later  # what the vendor holds
    assert alice.profile is not None
    assert alice.profile["ext"][api.TOKENS_KEY] == str(int(later.timestamp() * 1000))


def test_refuses_to_delete_users_and_says_so(nexconn: Nexconn) -> None:
    with nexconn.open() as provider, pytest.raises(ProviderError, match="not supported"):
        provider.delete_users([Change(Action.DELETE_USER, "alice")])


# ------------------------------------------------------------ ownership and prune


def test_adopts_a_user_and_keeps_the_profile_it_had(nexconn: Nexconn) -> None:
    nexconn.seed(User("carol", name="Carol", profile={"email": "c@example.com", "ext": {"ext_dept": "ops"}}))
    manifest = nexconn.manifest(User("carol", name="Carol"))
    made = nexconn.converge(manifest)
    assert actions(made) == {"adopt_user": 1}
    store = nexconn.store()
    carol = store.get_user("carol")
    store.close()
    assert carol is not None and carol.profile == {
        "email": "c@example.com",
        "name": "Carol",
        "ext": {"ext_dept": "ops", api.OWNER_KEY: OWNER},
    }


def test_refuses_users_of_another_owner_unless_taken_over(nexconn: Nexconn) -> None:
    nexconn.converge(nexconn.manifest(person("alice"), owner="other"))
    manifest = nexconn.manifest(person("alice", name="Mine Now"))
    refused = nexconn.plan(manifest)
    assert refused.conflicts == ("alice",) and refused.empty
    made = nexconn.converge(manifest, allow_takeover=True)
    assert actions(made) == {"adopt_user": 1, "update_user": 1}
    assert nexconn.live(manifest)["alice"].owner == OWNER


def test_prunes_owned_users_found_through_profile_list_and_nothing_else(nexconn: Nexconn) -> None:
    nexconn.seed(User("stranger", name="Not Ours"))
    nexconn.converge(nexconn.manifest(person("theirs"), owner="other"))
    nexconn.converge(nexconn.manifest(person("alice"), person("bob"), person("carol")))
    nexconn.emulator.reset()
    policy = Policy(prune="deactivate", max_deactivate=FOREVER)
    made = nexconn.converge(nexconn.manifest(person("alice"), policy=policy))
    assert [(c.action.value, c.uid) for c in made.changes] == [
        ("deactivate_user", "bob"),
        ("deactivate_user", "carol"),
    ]
    calls = nexconn.calls()
    assert calls["/v4/user/profile/list"] >= 1 and calls["/v4/user/profile/batch/get"] == 0
    assert calls["/v4/user/get"] == 2  # alice only: once in the plan, once in the check
    store = nexconn.store()
    assert {uid: u.active for uid, u in store.all_users().items()} == {
        "stranger": True,
        "theirs": True,
        "alice": True,
        "bob": False,
        "carol": False,
    }
    store.close()


# ------------------------------------------------- batching, call counts, limits


def test_batches_bans_by_20_soft_deletes_by_100_and_tags_by_tag_set(nexconn: Nexconn) -> None:
    users = [person(f"u{i}", tags=("red",) if i % 2 else ("blue",)) for i in range(250)]
    nexconn.converge(nexconn.manifest(*users))
    calls = nexconn.calls("200")
    assert calls["/v4/user/tag/batch/set"] == 2  # two tag sets, 125 users each
    assert calls["/v4/auth/access-token/issue"] == calls["/v4/user/profile/set"] == 250

    until = datetime.now(UTC) + timedelta(days=3)
    nexconn.emulator.reset()
    bans = {f"u{i}": Ban(f"u{i}", until) for i in range(45)}
    made = nexconn.converge(nexconn.manifest(*users, bans=bans))
    assert actions(made) == {"ban_user": 45}
    assert nexconn.calls()["/v4/user/ban"] == 3

    nexconn.emulator.reset()
    gone = [user.evolve(active=False) for user in users]
    made = nexconn.converge(nexconn.manifest(*gone))
    assert actions(made) == {"deactivate_user": 250}
    assert nexconn.calls()["/v4/user/soft-delete"] == 3


def test_blocks_go_20_targets_to_a_call(nexconn: Nexconn) -> None:
    targets = [person(f"t{i}") for i in range(45)]
    alice = person("alice", blocklist=frozenset(t.uid for t in targets))
    nexconn.converge(nexconn.manifest(alice, *targets))
    assert nexconn.calls("200")["/v4/user/blocklist/add"] == 3


def read_calls(
    *,
    declared: int,
    others: int,
    soft_deleted: int,
    profiles: int,
    bans: int,
    blocklists: int,
    whitelists: int,
    lists: bool,
) -> dict[str, int]:
    """The read cost of a plan, as docs/providers.md gives it (all lists < 1000 long)."""
    calls = {
        "/v4/user/soft-deleted/list": soft_deleted // 50 + 1,
        "/v4/user/get": declared + others - soft_deleted,
        "/v4/user/tag/batch/get": math.ceil(declared / 50),
        "/v4/user/blocklist/get": blocklists,
        "/user/whitesetting/query.json": whitelists,
        "/user/whitelist/query.json": whitelists,
    }
    if lists:
        calls["/v4/user/profile/list"] = profiles // 100 + 1
        calls["/v4/user/ban/list"] = bans // 1000 + 1
    else:
        calls["/v4/user/profile/batch/get"] = math.ceil(declared / 20)
    return calls


def test_a_no_change_plan_costs_what_the_documented_formula_says(nexconn: Nexconn) -> None:
    others = [person(f"x{i}") for i in range(130)]  # another owner's, with profiles
    nexconn.converge(nexconn.manifest(*others, owner="other"))
    users = [
        person(
            f"u{i}",
            active=False if i < 5 else None,
            blocklist=frozenset({"u10"}) if 10 < i <= 13 else None,
            whitelist=frozenset({"u10"}) if 20 < i <= 22 else None,
            whitelist_mode=True if 20 < i <= 22 else None,
        )
        for i in range(60)
    ]
    for bans, lists in (({}, False), ({"u30": Ban("u30", None), "u31": Ban("u31", None)}, True)):
        manifest = nexconn.manifest(*users, bans=bans if lists else None)
        nexconn.converge(manifest)
        nexconn.emulator.reset()
        assert nexconn.plan(manifest).empty
        expected = read_calls(
            declared=60,
            others=0,
            soft_deleted=5,
            profiles=190,
            bans=len(bans),
            blocklists=3,
            whitelists=2,
            lists=lists,
        )
        assert {path: n for path, n in nexconn.calls().items() if n} == expected


def test_stays_under_the_rate_it_is_given_and_rides_out_429s_when_over(
    emulator_factory: Callable[..., EmulatorProcess],
) -> None:
    nexconn = Nexconn(emulator_factory("--nexconn-rate", "10"))
    users = [person(f"u{i}", tags=()) for i in range(12)]
    nexconn.tuning = {"rate": 10.0}
    nexconn.converge(nexconn.manifest(*users))
    assert nexconn.emulator.stats()["rate_limited"] == {}
    nexconn.tuning = {"rate": 1000.0, "backoff": 0.1}
    nexconn.emulator.reset()
    provider = nexconn.open()
    with provider:
        manifest = nexconn.manifest(*[user.evolve(name="Renamed") for user in users])
        made = make_plan(manifest, provider, Options())
        apply(made.changes, provider)
    assert provider.counters["throttled"] > 0
    assert nexconn.emulator.stats()["rate_limited"]["nexconn"] > 0
    assert nexconn.plan(manifest).empty


# ------------------------------------------------------------- credentials, faults


def test_bad_credentials_give_a_clear_error_and_change_nothing(nexconn: Nexconn) -> None:
    with nexconn.open(app_secret="wrong-secret") as provider, pytest.raises(AuthError) as caught:
        make_plan(nexconn.manifest(person("alice")), provider, Options())
    message = caught.value.render()
    assert "provider.app_key and provider.app_secret" in message
    assert "wrong-secret" not in message and SECRET not in message
    assert nexconn.store().all_users() == {}


def test_a_missing_credential_is_refused_before_any_request(nexconn: Nexconn) -> None:
    config = ProviderConfig("nexconn", {"url": nexconn.emulator.base_url, "app_key": KEY, "app_secret": ""})
    with pytest.raises(ProviderError, match=r"provider\.app_secret.*environment variable"):
        open_provider(config)
    assert nexconn.emulator.stats()["total"] == 0


def fault_manifest(nexconn: Nexconn) -> Manifest:
    until = datetime.now(UTC) + timedelta(days=2)
    users = [
        person(
            f"u{i}",
            tags=("even",) if i % 2 == 0 else ("odd",),
            blocklist=frozenset({"u1", "u2"}) if i == 0 else None,
            active=False if i == 5 else None,
        )
        for i in range(30)
    ]
    return nexconn.manifest(*users, bans={"u7": Ban("u7", until)})


WRITES = (
    "/v4/auth/access-token/issue",
    "/v4/user/profile/set",
    "/v4/user/tag/batch/set",
    "/v4/user/blocklist/add",
    "/v4/user/ban",
    "/v4/user/soft-delete",
)


def test_under_faults_apply_converges_and_does_nothing_twice(
    emulator_factory: Callable[..., EmulatorProcess],
) -> None:
    calm = Nexconn(emulator_factory())
    calm.converge(fault_manifest(calm))
    faulty = Nexconn(
        emulator_factory("--fault-rate", "0.1", "--fault-seed", "1", "--hang-seconds", "2"),
        tuning={"timeout": 1.5, "retries": 8},
    )
    faulty.converge(fault_manifest(faulty))
    assert sum(faulty.emulator.stats()["faults"].values()) > 10
    # Faults strike before a request takes effect, so each write that succeeded once
    # was done once: the same number of successful writes as without faults.
    assert {p: faulty.calls("200")[p] for p in WRITES} == {p: calm.calls("200")[p] for p in WRITES}
    store = faulty.store()
    assert all(len(store.tokens(uid)) == 1 for uid in store.all_users())  # registered once
    store.close()
