"""Declared roles (``roles:``): what a user of chatroster relies on.

Each behaviour runs against the local platform (a real SQLite file) and CometChat
(`chatroster emulator` as a real process on loopback), through the real pipeline: a
manifest file on disk → `load` → `open_provider` → `make_plan` → `apply`. What only the
command line shows (exit codes, messages with file:line) runs the CLI as a subprocess.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from emulator_process import SRC, EmulatorProcess
from test_store_migrations import recorded_version, version_1_store
from vendor_specs import CONFORMANCE

from chatroster.apply import apply
from chatroster.changes import ORDER, Action
from chatroster.errors import ApplyError, ManifestError, PlanFileError
from chatroster.export import dump_yaml, export_manifest
from chatroster.manifest import load
from chatroster.model import Manifest, Mode, Role, State
from chatroster.plan import Plan
from chatroster.providers import Provider, open_provider
from chatroster.runner import Options, make_plan, read_live
from chatroster.saved import load_plan, plan_document, recheck
from chatroster.store import SCHEMA_VERSION, Store

OWNER = "team"
API_KEY = "emulator-api-key"
ENV = {"COMETCHAT_API_KEY": API_KEY}
EXAMPLE = SRC.parent / "examples" / "cometchat.yaml"
SPEC_PATH = CONFORMANCE / "cometchat" / "chat-apis.json"


# ------------------------------------------------------------------- the platforms


@dataclass
class Platform:
    """A platform under test; manifests for it are written to files in ``directory``."""

    kind: str
    directory: Path
    provider_yaml: str
    db_path: Path
    emulator: EmulatorProcess | None = None

    def write(self, body: str, name: str = "team.yaml", owner: str = OWNER) -> Path:
        path = self.directory / name
        path.write_text(f"version: 1\nprovider: {self.provider_yaml}\nowner: {owner}\n{body}")
        return path

    def manifest(self, body: str, owner: str = OWNER) -> Manifest:
        return load([self.write(body, owner=owner)], env=ENV)

    def open(self, manifest: Manifest, writable: bool = False) -> Provider:
        return open_provider(manifest.provider, writable=writable)

    def plan(self, body: str, owner: str = OWNER, **options: Any) -> Plan:
        manifest = self.manifest(body, owner)
        with self.open(manifest) as provider:
            return make_plan(manifest, provider, Options(**options))

    def converge(self, body: str, owner: str = OWNER, **options: Any) -> Plan:
        """Plan and apply, then require that a new plan has nothing left to do."""
        manifest = self.manifest(body, owner)
        with self.open(manifest, writable=True) as provider:
            made = make_plan(manifest, provider, Options(**options))
            apply(made.changes, provider)
        again = self.plan(body, owner, **options)
        assert again.empty, [change.to_json() for change in again.changes]
        return made

    def live(self, body: str = "users: {}\n") -> State:
        manifest = self.manifest(body)
        with self.open(manifest) as provider:
            return read_live(manifest, provider, owned=True)

    def roles(self) -> dict[str, Role]:
        return dict(self.live().roles or {})

    def seed_role(self, role: str, owner: str | None = None, description: str | None = None) -> None:
        """A role made outside chatroster (the vendor's dashboard, another manifest)."""
        if self.emulator is None:
            store = Store(self.db_path)
            try:
                store.put_role(role, {"description": description, "owner": owner})
            finally:
                store.close()
            return
        body: dict[str, Any] = {"role": role, "name": role}
        if description is not None:
            body["description"] = description
        if owner is not None:
            body["metadata"] = {"@chatroster": {"owner": owner}}
        answer = httpx.post(f"{self.emulator.base_url}/v3/roles", json=body, headers={"apikey": API_KEY})
        assert answer.status_code == 200, answer.text


def _local(tmp_path: Path, start: Callable[..., EmulatorProcess]) -> Platform:
    return Platform("local", tmp_path, "{type: local, path: local.db}", tmp_path / "local.db")


def _cometchat(tmp_path: Path, start: Callable[..., EmulatorProcess]) -> Platform:
    emulator = start()
    provider = (
        f"{{type: cometchat, app_id: emulator-app, url: '{emulator.base_url}/v3',"
        " api_key: '${COMETCHAT_API_KEY}'}"
    )
    return Platform("cometchat", tmp_path, provider, emulator.db_path, emulator)


@pytest.fixture(params=["local", "cometchat"])
def platform(request: pytest.FixtureRequest, tmp_path: Path, emulator_factory: Any) -> Iterator[Platform]:
    yield {"local": _local, "cometchat": _cometchat}[request.param](tmp_path, emulator_factory)


def run_cli(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    environ = {**os.environ, **ENV, **(env or {}), "NO_COLOR": "1"}
    environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(SRC), environ.get("PYTHONPATH")]))
    return subprocess.run(
        [sys.executable, "-m", "chatroster", *args],
        cwd=cwd,
        env=environ,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def actions(plan: Plan) -> list[tuple[str, str]]:
    return [(change.action.value, change.uid) for change in plan.changes]


AGENT = "roles:\n  agent: {description: Support agent, metadata: {tier: 1}}\n"
PRUNE = "policy: {prune: delete, max_delete: 10}\n"
ALICE_AGENT = "users:\n  alice: {name: Alice, role: agent}\n"


# ---------------------------------------------------------------- create, change


def test_a_declared_role_is_created_before_the_user_that_holds_it(platform: Platform) -> None:
    made = platform.converge(ALICE_AGENT + AGENT)

    assert actions(made) == [("create_role", "agent"), ("create_user", "alice")]
    assert platform.roles() == {
        "agent": Role("agent", description="Support agent", metadata={"tier": 1}, owner=OWNER)
    }
    assert platform.live(ALICE_AGENT).users["alice"].role == "agent"


def test_a_changed_description_or_metadata_updates_the_role(platform: Platform) -> None:
    platform.converge(AGENT)

    made = platform.converge("roles:\n  agent: {description: Agents, metadata: {tier: 2, desk: eu}}\n")

    assert actions(made) == [("update_role", "agent")]
    assert made.changes[0].before == {"description": "Support agent", "metadata": {"tier": 1}}
    assert platform.roles()["agent"] == Role(
        "agent", description="Agents", metadata={"tier": 2, "desk": "eu"}, owner=OWNER
    )


def test_role_changes_applied_twice_are_done_not_failed(platform: Platform) -> None:
    """A rerun after a crash between a write and its answer repeats the same changes."""
    platform.seed_role("spare", owner=OWNER)
    manifest = platform.manifest(PRUNE + AGENT)
    with platform.open(manifest, writable=True) as provider:
        made = make_plan(manifest, provider, Options())
        assert actions(made) == [("create_role", "agent"), ("delete_role", "spare")]
        apply(made.changes, provider)
        apply(made.changes, provider)  # raises ApplyError if any change failed

    assert set(platform.roles()) == {"agent"}


def test_creating_a_role_someone_else_made_meanwhile_fails_saying_to_plan_again(platform: Platform) -> None:
    manifest = platform.manifest(AGENT)
    with platform.open(manifest, writable=True) as provider:
        made = make_plan(manifest, provider, Options())
        platform.seed_role("agent", owner="other-team")
        with pytest.raises(ApplyError) as failed:
            apply(made.changes, provider)

    assert "agent" in str(failed.value.render()) and "run plan again" in failed.value.render()


def test_absent_role_fields_are_left_as_they_are(platform: Platform) -> None:
    platform.converge(AGENT)

    assert platform.plan("roles:\n  agent: {}\n").empty
    assert platform.roles()["agent"].description == "Support agent"


def test_without_a_roles_section_roles_are_unmanaged(platform: Platform) -> None:
    platform.converge(AGENT)
    prune = "policy: {prune: delete, max_delete: 10}\n"

    assert platform.plan(prune + "users: {}\n").empty
    assert "agent" in platform.roles()


def test_a_role_that_exists_only_on_the_platform_can_be_held(platform: Platform) -> None:
    platform.seed_role("support", owner=None)

    made = platform.converge("users:\n  alice: {name: Alice, role: support}\n")

    assert actions(made) == [("create_user", "alice")]
    assert platform.roles()["support"].owner is None  # not declared: not adopted


def test_an_unowned_declared_role_is_adopted_and_one_of_another_owner_is_left_alone(
    platform: Platform,
) -> None:
    platform.seed_role("agent", owner=None, description="Support agent")
    platform.seed_role("lead", owner="other-team")
    body = "roles:\n  agent: {description: Support agent}\n  lead: {description: Leads}\n"

    made = platform.plan(body)

    assert actions(made) == [("update_role", "agent")]
    assert made.changes[0].note == "adopt: no owner yet"
    assert any("role lead belongs to owner 'other-team'" in warning for warning in made.warnings)
    platform.converge(body)
    roles = platform.roles()
    assert (roles["agent"].owner, roles["lead"].owner) == (OWNER, "other-team")


# ------------------------------------------------------------------------- prune


def test_prune_deletes_owned_roles_only_and_after_the_users(platform: Platform) -> None:
    platform.converge(ALICE_AGENT + "roles:\n  agent: {}\n  spare: {}\n")
    platform.seed_role("theirs", owner="other-team")
    platform.seed_role("unowned", owner=None)

    made = platform.converge(PRUNE + "users: {}\nroles: {}\n")

    assert actions(made) == [("delete_user", "alice"), ("delete_role", "agent"), ("delete_role", "spare")]
    assert set(platform.roles()) == {"theirs", "unowned"}


def test_a_role_still_held_by_a_user_is_not_pruned(platform: Platform) -> None:
    platform.converge(ALICE_AGENT + AGENT)

    made = platform.plan(PRUNE + "users:\n  alice: {name: Alice}\nroles: {}\n")

    assert made.empty
    assert any("role agent is not in the manifest but is not deleted" in w for w in made.warnings)
    assert any("alice" in w for w in made.warnings)


def test_moving_users_off_a_role_and_pruning_it_happen_in_one_apply(platform: Platform) -> None:
    platform.converge(ALICE_AGENT + AGENT)

    made = platform.converge(PRUNE + "users:\n  alice: {name: Alice, role: default}\nroles: {}\n")

    assert actions(made) == [("update_user", "alice"), ("delete_role", "agent")]
    assert platform.roles() == {}


def test_the_default_role_is_never_read_planned_or_deleted(platform: Platform) -> None:
    platform.converge("users:\n  alice: {name: Alice, role: default}\nroles: {}\n")

    assert "default" not in platform.roles()
    assert platform.plan(PRUNE + "users: {}\nroles: {}\n").summary() == {"delete_user": 1}
    if platform.emulator is not None:  # the vendor's default role is still there
        answer = httpx.get(f"{platform.emulator.base_url}/v3/roles", headers={"apikey": API_KEY})
        assert [role["role"] for role in answer.json()["data"]] == ["default"]


# --------------------------------------------------------------- unknown roles


def test_a_user_with_a_role_nothing_declares_fails_plan_with_where_it_is_written(
    platform: Platform,
) -> None:
    path = platform.write(
        "users:\n  alice: {name: Alice, role: agent}\n  bob:\n    name: Bob\n    role: lead\n"
    )

    done = run_cli("plan", str(path), cwd=platform.directory)

    assert done.returncode == 1, done.stdout + done.stderr
    assert f"{path}:5:" in done.stderr and "alice: the role 'agent' is not declared" in done.stderr
    assert f"{path}:8:" in done.stderr and "bob: the role 'lead' is not declared" in done.stderr
    assert "declare it under roles:" in done.stderr and "Traceback" not in done.stderr
    assert platform.roles() == {}


def test_validate_accepts_a_role_it_cannot_see_offline(tmp_path: Path) -> None:
    """Offline, a role may exist on the platform: only plan, which reads it, can tell."""
    path = tmp_path / "team.yaml"
    path.write_text("version: 1\nusers:\n  alice: {name: Alice, role: support}\n")

    done = run_cli("validate", str(path), cwd=tmp_path)

    assert done.returncode == 0, done.stderr


def test_declaring_the_default_role_is_a_validation_error(tmp_path: Path) -> None:
    path = tmp_path / "team.yaml"
    path.write_text("version: 1\nroles:\n  default: {description: Everyone}\n")

    done = run_cli("validate", str(path), cwd=tmp_path)

    assert done.returncode == 1
    assert f"{path}:3:3: the built-in role 'default' cannot be declared" in done.stderr
    assert "remove roles.default" in done.stderr


def test_roles_are_merged_across_files_and_one_declared_twice_names_both_places(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text("version: 1\nroles:\n  agent: {}\n")
    (tmp_path / "b.yaml").write_text("roles:\n  lead: {}\n")
    assert set(load([tmp_path], env={}).desired.roles or {}) == {"agent", "lead"}

    (tmp_path / "c.yaml").write_text("roles:\n  agent: {description: Again}\n")
    with pytest.raises(ManifestError) as refused:
        load([tmp_path], env={})

    [problem] = refused.value.problems
    assert problem.file.endswith("c.yaml") and problem.line == 2
    assert (
        "the role 'agent' is declared twice; first at" in problem.message and "a.yaml:3:3" in problem.message
    )


def test_a_role_description_over_the_limit_is_located_and_says_what_to_do(tmp_path: Path) -> None:
    path = tmp_path / "team.yaml"
    path.write_text("version: 1\nroles:\n  agent:\n    description: " + "x" * 300 + "\n")

    done = run_cli("validate", str(path), cwd=tmp_path)

    assert done.returncode == 1
    assert f"{path}:4:18: 300 characters, over the limit of 255" in done.stderr
    assert "shorten it to at most 255" in done.stderr and "Traceback" not in done.stderr


def test_roles_on_nexconn_are_a_capability_error_naming_the_alternative(tmp_path: Path) -> None:
    path = tmp_path / "team.yaml"
    path.write_text(
        "version: 1\n"
        "provider: {type: nexconn, url: 'http://127.0.0.1:1', app_key: '${K}', app_secret: '${S}'}\n"
        "roles:\n  agent: {description: Support agent}\n"
    )

    done = run_cli("validate", str(path), cwd=tmp_path, env={"K": "k", "S": "s"})

    assert done.returncode == 1
    assert f"{path}:3:1: 'roles' (declared roles) are not supported by the nexconn provider" in done.stderr
    assert "profile.role" in done.stderr


def test_a_role_id_cometchat_would_not_take_is_a_validation_error(tmp_path: Path) -> None:
    path = tmp_path / "team.yaml"
    path.write_text(
        "version: 1\nprovider: {type: cometchat, app_id: a, url: 'http://127.0.0.1:1',"
        " api_key: '${COMETCHAT_API_KEY}'}\nroles:\n  Agent: {}\n"
    )

    done = run_cli("validate", str(path), cwd=tmp_path)

    assert done.returncode == 1
    assert "'Agent' is not a valid role id for cometchat" in done.stderr and "use 'agent'" in done.stderr


# ------------------------------------------------- drift, export, saved plans


def test_drift_reports_missing_managed_and_extra_roles(platform: Platform) -> None:
    platform.converge("roles:\n  agent: {description: Support agent}\n  spare: {}\n")
    path = platform.write("roles:\n  agent: {description: Agents}\n  lead: {}\n")

    done = run_cli("drift", str(path), "--format", "json", cwd=platform.directory)

    assert done.returncode == 2, done.stderr
    found = {(d["uid"], d["kind"]) for d in json.loads(done.stdout)["differences"]}
    assert found == {("lead", "missing"), ("agent", "managed"), ("spare", "extra")}


def test_export_writes_roles_so_that_planning_the_export_changes_nothing(platform: Platform) -> None:
    platform.converge(ALICE_AGENT + AGENT)
    platform.seed_role("theirs", owner="other-team")
    manifest = platform.manifest("users: {}\n")
    with platform.open(manifest) as provider:
        live = read_live(manifest, provider, everything=True)
    data = export_manifest(live, provider=manifest.provider, owner=OWNER)

    assert data["roles"] == {"agent": {"description": "Support agent", "metadata": {"tier": 1}}}
    exported = platform.directory / "exported.yaml"
    exported.write_text(dump_yaml(data))
    again = load([exported], env=ENV)
    with platform.open(again) as provider:
        assert make_plan(again, provider, Options()).empty


def test_an_edited_saved_plan_touching_roles_is_refused(platform: Platform) -> None:
    manifest = platform.manifest(AGENT)
    saved = platform.directory / "plan.json"
    with platform.open(manifest) as provider:
        made = make_plan(manifest, provider, Options())
    document = plan_document(made, saved)
    document["changes"][0]["after"]["description"] = "Root access"
    saved.write_text(json.dumps(document))

    with platform.open(manifest) as provider, pytest.raises(PlanFileError) as refused:
        recheck(load_plan(saved), manifest, provider, Options())

    assert "create_role:agent: after.description in the plan is not what the manifest" in str(refused.value)


def test_a_saved_plan_of_roles_applies_and_a_stale_one_is_refused(platform: Platform) -> None:
    manifest = platform.manifest("roles:\n  agent: {description: Agents}\n")
    platform.seed_role("agent", owner=OWNER, description="Support agent")
    saved = platform.directory / "plan.json"
    with platform.open(manifest) as provider:
        made = make_plan(manifest, provider, Options())
    saved.write_text(json.dumps(plan_document(made, saved)))
    assert actions(made) == [("update_role", "agent")]

    # Someone changes the role after the plan was reviewed: the plan is stale.
    platform.converge("roles:\n  agent: {description: Changed by hand}\n")
    with platform.open(manifest) as provider, pytest.raises(PlanFileError) as refused:
        recheck(load_plan(saved), manifest, provider, Options())
    assert "update_role:agent: the object changed since the plan was made" in str(refused.value)


def test_role_metadata_is_masked_by_policy_and_role_names_are_shown(platform: Platform) -> None:
    path = platform.write(
        "policy: {personal_metadata: [contact]}\n"
        "roles:\n  agent: {description: Reach us at desk@example.com, metadata: {contact: Ada, tier: 1}}\n"
    )

    done = run_cli("plan", str(path), "--format", "json", cwd=platform.directory)

    assert done.returncode == 0, done.stderr
    [change] = json.loads(done.stdout)["changes"]
    assert (change["action"], change["uid"]) == ("create_role", "agent")
    assert change["after"]["metadata"]["tier"] == 1
    assert change["after"]["metadata"]["contact"].startswith("masked:")
    assert "desk@example.com" not in done.stdout and "Ada" not in done.stdout


def test_a_role_id_is_never_masked_even_when_it_looks_like_a_phone_number() -> None:
    from chatroster.masking import Masker

    assert Masker(key=b"k").field("role", "12345678901") == "12345678901"
    assert Masker(key=b"k").field("name", "12345678901").startswith("masked:")


def test_only_roles_limits_the_plan_to_role_changes(platform: Platform) -> None:
    path = platform.write(ALICE_AGENT + AGENT)

    done = run_cli("plan", str(path), "--only", "roles", "--format", "json", cwd=platform.directory)

    assert done.returncode == 0, done.stderr
    assert [c["action"] for c in json.loads(done.stdout)["changes"]] == ["create_role"]


# ------------------------------------------------------------ the pure planner


def pure_plan(desired: State, live: State, mode: Mode = "sync", takeover: bool = False) -> Plan:
    from datetime import UTC, datetime

    from chatroster.model import Policy
    from chatroster.planner import Context
    from chatroster.planner import plan as make
    from chatroster.providers import CAPABILITIES

    policy = Policy(mode=mode, prune="delete")
    ctx = Context(OWNER, policy, CAPABILITIES["cometchat"], datetime(2026, 1, 1, tzinfo=UTC), takeover)
    return make(desired, live, ctx)


def test_seed_mode_creates_missing_roles_and_changes_or_deletes_none() -> None:
    desired = State(roles={"agent": Role("agent", description="New"), "lead": Role("lead")})
    live = State(
        roles={"agent": Role("agent", description="Old", owner=OWNER), "spare": Role("spare", owner=OWNER)}
    )

    assert actions(pure_plan(desired, live, mode="seed")) == [("create_role", "lead")]


def test_a_default_role_in_the_desired_state_is_never_planned() -> None:
    desired = State(roles={"default": Role("default", description="Everyone")})

    assert pure_plan(desired, State(roles={})).empty


def test_allow_takeover_takes_another_owners_role() -> None:
    desired = State(roles={"lead": Role("lead", description="Leads")})
    live = State(roles={"lead": Role("lead", description="Leads", owner="other-team")})

    [change] = pure_plan(desired, live, takeover=True).changes

    assert (change.action, change.after, change.note) == (
        Action.UPDATE_ROLE,
        {"owner": OWNER},
        "take over from 'other-team'",
    )


# ---------------------------------------------------------------- the order


def test_roles_are_made_before_users_and_deleted_after_them() -> None:
    rank = {action: index for index, action in enumerate(ORDER)}
    users = [action for action in Action if action.value.endswith("_user")]

    assert max(rank[Action.CREATE_ROLE], rank[Action.UPDATE_ROLE]) < min(rank[a] for a in users)
    assert rank[Action.DELETE_ROLE] > max(rank[a] for a in users)


def test_an_unknown_role_error_from_load_is_a_manifest_error(platform: Platform) -> None:
    manifest = platform.manifest(ALICE_AGENT)
    with platform.open(manifest) as provider, pytest.raises(ManifestError) as refused:
        make_plan(manifest, provider, Options())
    [problem] = refused.value.problems
    assert (problem.line, problem.path) == (5, "users.alice.role")


# ------------------------------------------------------- stores from before role owners


def older_store_with_roles(path: Path) -> Path:
    """A store as an earlier chatroster left it, with roles its emulator made."""
    version_1_store(path)
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("INSERT INTO roles VALUES ('default', 'Default Role', NULL, NULL, 1, 1)")
    db.execute("INSERT INTO roles VALUES ('agent', 'Agent', 'Support', '{\"tier\":1}', 2, 2)")
    db.close()
    return path


def test_a_store_from_before_role_owners_reads_its_roles_unowned_without_changing_it(
    tmp_path: Path,
) -> None:
    path = older_store_with_roles(tmp_path / "local.db")
    before = path.read_bytes()

    store = Store(path, writable=False)
    try:
        roles = store.roles()
    finally:
        store.close()

    assert roles == {"agent": Role("agent", description="Support", metadata={"tier": 1}, owner=None)}
    assert path.read_bytes() == before


def test_an_older_store_is_migrated_to_keep_role_owners_and_its_roles(tmp_path: Path) -> None:
    path = older_store_with_roles(tmp_path / "local.db")

    store = Store(path)
    try:
        store.put_role("agent", {"owner": OWNER})
        roles = store.roles()
    finally:
        store.close()

    assert recorded_version(path) == str(SCHEMA_VERSION)
    assert roles == {"agent": Role("agent", description="Support", metadata={"tier": 1}, owner=OWNER)}


# ----------------------------------------------------------- the example, as shipped


def test_the_cometchat_example_applies_to_a_fresh_emulator_then_plans_no_changes(
    tmp_path: Path, emulator: EmulatorProcess
) -> None:
    env = {"COMETCHAT_URL": emulator.base_url}

    applied = run_cli("apply", str(EXAMPLE), "--yes", cwd=tmp_path, env=env)
    assert applied.returncode == 0, applied.stdout + applied.stderr
    again = run_cli("plan", str(EXAMPLE), "--detailed-exitcode", cwd=tmp_path, env=env)

    assert again.returncode == 0, again.stdout + again.stderr
    assert "No changes" in again.stdout
    roles = httpx.get(f"{emulator.base_url}/v3/roles", headers={"apikey": API_KEY}).json()["data"]
    assert sorted(role["role"] for role in roles) == ["agent", "default", "lead"]


# ------------------------------------------------ the vendor's OpenAPI description


def _spec() -> dict[str, Any]:
    if not SPEC_PATH.is_file():
        pytest.skip(f"the vendor's OpenAPI file is not at {SPEC_PATH} (it lives in ../shared)")
    spec: dict[str, Any] = json.loads(SPEC_PATH.read_text(encoding="utf-8"))
    return spec


@pytest.mark.parametrize(
    ("method", "path"),
    [("POST", "/roles"), ("GET", "/roles"), ("PUT", "/roles/{role}"), ("DELETE", "/roles/{role}")],
)
def test_the_calls_chatroster_makes_for_roles_are_operations_of_the_vendor_spec(
    method: str, path: str
) -> None:
    operation = _spec()["paths"][path][method.lower()]

    assert operation["tags"] == ["Roles"]


def test_the_role_bodies_chatroster_sends_match_the_vendor_spec() -> None:
    from openapi_schema_validator import OAS30WriteValidator

    from chatroster.providers.cometchat.api import _role_to_api

    paths = _spec()["paths"]
    create = paths["/roles"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    update = paths["/roles/{role}"]["put"]["requestBody"]["content"]["application/json"]["schema"]
    marker = {"owner": OWNER}
    made = {
        "role": "agent",
        "name": "agent",
        **_role_to_api({"description": "A", "metadata": {}}, marker, {}),
    }
    OAS30WriteValidator(create).validate(made)
    for fields in ({"description": "B"}, {"description": ""}, {"metadata": {"tier": 2}}, {"owner": OWNER}):
        OAS30WriteValidator(update).validate(_role_to_api(fields, marker, {"tier": 1}))
    assert set(update["properties"]["unset"]["items"]["enum"]) >= {"description"}


def test_the_emulator_lets_a_held_role_be_deleted_and_users_keep_its_name(emulator: EmulatorProcess) -> None:
    """The vendor documents no refusal for a role users hold (see docs/emulator.md)."""
    headers = {"apikey": API_KEY}
    base = f"{emulator.base_url}/v3"
    assert (
        httpx.post(f"{base}/roles", json={"role": "agent", "name": "Agent"}, headers=headers).status_code
        == 200
    )
    made = httpx.post(
        f"{base}/users", json={"uid": "alice", "name": "Alice", "role": "agent"}, headers=headers
    )
    assert made.status_code == 200, made.text

    deleted = httpx.delete(f"{base}/roles/agent", headers=headers)

    assert deleted.status_code == 200 and deleted.json()["data"]["success"] is True
    assert httpx.get(f"{base}/users/alice", headers=headers).json()["data"]["role"] == "agent"
