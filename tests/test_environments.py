"""Environments: a manifest declared once, layered per app. An environment file extends
a base and overrides it field by field; every problem points at the layer that wrote
the value."""

from __future__ import annotations

from pathlib import Path
from textwrap import dedent

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chatroster.errors import ChatrosterError, ManifestError, Problem
from chatroster.manifest import check, load
from chatroster.manifest.environments import targets
from chatroster.model import Manifest

BASE = """\
version: 1
provider: {type: local, path: .chatroster/base.db}
owner: support-team
policy: {prune: deactivate, protected: [admin]}
users:
  admin: {name: Admin}
  alice:
    name: Alice Ng
    avatar: https://cdn.example.com/alice.png
    metadata: {team: core, floor: 2}
    tags: [staff, beta]
  carol: {name: Carol}
"""


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(dedent(text))
    return path


def layered(tmp_path: Path, environment: str, base: str = BASE) -> Path:
    write(tmp_path / "users" / "team.yaml", base)
    return write(tmp_path / "users" / "environments" / "staging.yaml", environment)


def loaded(path: Path) -> Manifest:
    return load([path], env={})


def problems(path: Path) -> list[Problem]:
    with pytest.raises(ManifestError) as caught:
        load([path], env={})
    return list(caught.value.problems)


def at(problem: Problem) -> tuple[str, int, int]:
    return (Path(problem.file).name, problem.line, problem.column)


STAGING = """\
extends: ..
environment: staging
provider: {path: ../../.chatroster/staging.db}
users:
  alice:
    avatar: https://staging-cdn.example.com/alice.png
    metadata: {floor: null, env: staging}
    tags: [qa]
  qa-bot: {name: QA Bot}
  carol: null
"""


def test_an_environment_overrides_one_field_and_keeps_the_others(tmp_path: Path) -> None:
    alice = loaded(layered(tmp_path, STAGING)).desired.users["alice"]
    assert alice.name == "Alice Ng"
    assert alice.avatar == "https://staging-cdn.example.com/alice.png"


def test_mappings_merge_key_by_key_and_lists_replace(tmp_path: Path) -> None:
    alice = loaded(layered(tmp_path, STAGING)).desired.users["alice"]
    assert dict(alice.metadata or {}) == {"team": "core", "env": "staging"}
    assert alice.tags == ("qa",)


def test_an_environment_adds_users_and_removes_them_with_null(tmp_path: Path) -> None:
    manifest = loaded(layered(tmp_path, STAGING))
    assert sorted(manifest.desired.users) == ["admin", "alice", "qa-bot"]


def test_what_an_environment_leaves_out_comes_from_the_base(tmp_path: Path) -> None:
    manifest = loaded(layered(tmp_path, STAGING))
    assert manifest.owner == "support-team"
    assert manifest.policy.prune == "deactivate"
    assert manifest.policy.protected == frozenset({"admin"})


def test_the_local_store_is_relative_to_the_layer_that_names_it(tmp_path: Path) -> None:
    manifest = loaded(layered(tmp_path, STAGING))
    store = Path(manifest.provider.base_dir) / manifest.provider.settings["path"]
    assert store.resolve() == (tmp_path / ".chatroster" / "staging.db").resolve()


def test_the_manifest_knows_its_environment_and_every_layer_file(tmp_path: Path) -> None:
    path = layered(tmp_path, STAGING)
    manifest = loaded(path)
    assert manifest.environment == "staging"
    assert [Path(f).name for f in manifest.sources] == ["team.yaml", "staging.yaml"]
    assert manifest.entry == (str(path),)
    assert check([path], env={}).environment == "staging"


def test_the_digest_changes_when_the_base_changes(tmp_path: Path) -> None:
    path = layered(tmp_path, STAGING)
    before = loaded(path).digest
    write(tmp_path / "users" / "team.yaml", BASE.replace("Alice Ng", "Alice N."))
    assert loaded(path).digest != before


def test_a_base_directory_is_one_layer_of_several_files(tmp_path: Path) -> None:
    write(tmp_path / "users" / "a.yaml", "version: 1\nusers:\n  alice: {name: A}\n")
    write(tmp_path / "users" / "b.yaml", "users:\n  bob: {name: B}\n")
    path = write(
        tmp_path / "users" / "environments" / "qa.yaml", "extends: ..\nusers:\n  bob: {name: Bobby}\n"
    )
    users = loaded(path).desired.users
    assert (users["alice"].name, users["bob"].name) == ("A", "Bobby")


def test_environments_chain_and_the_nearest_layer_wins(tmp_path: Path) -> None:
    layered(tmp_path, STAGING)
    eu = write(
        tmp_path / "users" / "environments" / "staging-eu.yaml",
        "extends: staging.yaml\nusers:\n  qa-bot: {name: QA Bot EU}\n",
    )
    manifest = loaded(eu)
    assert manifest.environment == "staging-eu"
    assert manifest.desired.users["qa-bot"].name == "QA Bot EU"
    assert manifest.desired.users["alice"].tags == ("qa",)
    assert [Path(f).name for f in manifest.sources] == ["team.yaml", "staging.yaml", "staging-eu.yaml"]


# ------------------------------------------------------------------- locations


def test_a_bad_value_an_environment_wrote_is_reported_at_that_layers_line(tmp_path: Path) -> None:
    path = layered(tmp_path, "extends: ..\nusers:\n  alice:\n    avatar: 42\n")
    [problem] = problems(path)
    assert at(problem) == ("staging.yaml", 4, 13)
    assert problem.path == "users.alice.avatar"


def test_a_bad_value_of_the_base_is_reported_in_the_base(tmp_path: Path) -> None:
    base = BASE.replace("  carol: {name: Carol}", "  carol: {name: Carol, tags: nope}")
    path = layered(tmp_path, "extends: ..\nusers:\n  alice: {name: Alice}\n", base=base)
    [problem] = problems(path)
    assert at(problem) == ("team.yaml", 12, 30)
    assert problem.path == "users.carol.tags"


def test_a_required_field_removed_by_an_environment_points_at_the_removal(tmp_path: Path) -> None:
    path = layered(tmp_path, "extends: ..\nusers:\n  alice:\n    name: null\n")
    [problem] = problems(path)
    assert (at(problem), problem.message) == (("staging.yaml", 4, 5), "missing required field 'name'")


def test_a_user_an_environment_adds_without_a_name_points_at_that_user(tmp_path: Path) -> None:
    path = layered(tmp_path, "extends: ..\nusers:\n  qa-bot: {avatar: https://x.example.com/q.png}\n")
    [problem] = problems(path)
    assert at(problem) == ("staging.yaml", 3, 3)


def test_a_problem_in_a_middle_layer_points_at_the_middle_layer(tmp_path: Path) -> None:
    layered(tmp_path, "extends: ..\nusers:\n\n  qa-bot: {name: QA, tags: 7}\n")
    eu = write(tmp_path / "users" / "environments" / "eu.yaml", "extends: staging.yaml\n")
    [problem] = problems(eu)
    assert at(problem) == ("staging.yaml", 4, 28)


def test_a_uid_declared_twice_in_one_layer_is_an_error_naming_both(tmp_path: Path) -> None:
    write(tmp_path / "users" / "a.yaml", "version: 1\nusers:\n  alice: {name: A}\n")
    write(tmp_path / "users" / "b.yaml", "users:\n  alice: {name: B}\n")
    path = write(tmp_path / "users" / "environments" / "qa.yaml", "extends: ..\n")
    [problem] = problems(path)
    assert at(problem) == ("b.yaml", 2, 3)
    assert "declared twice; first at" in problem.message and "a.yaml:3:3" in problem.message


def test_a_key_given_twice_in_an_environment_file_is_an_error(tmp_path: Path) -> None:
    path = layered(tmp_path, "extends: ..\nusers:\n  qa: {name: Q}\n  qa: {name: R}\n")
    [problem] = problems(path)
    assert at(problem) == ("staging.yaml", 4, 3)
    assert problem.message.startswith("duplicate key 'qa'")


def test_overriding_a_base_user_in_an_environment_is_not_a_duplicate(tmp_path: Path) -> None:
    path = layered(tmp_path, "extends: ..\nusers:\n  alice: {name: Alice S.}\n")
    assert loaded(path).desired.users["alice"].name == "Alice S."


# ------------------------------------------------------------ refused layering


def test_an_environment_that_extends_itself_is_a_cycle(tmp_path: Path) -> None:
    path = write(tmp_path / "staging.yaml", "extends: staging.yaml\n")
    [problem] = problems(path)
    assert at(problem) == ("staging.yaml", 1, 10)
    assert problem.message.startswith("extends makes a cycle")


def test_environments_that_extend_each_other_are_a_cycle_naming_each_file(tmp_path: Path) -> None:
    write(tmp_path / "b.yaml", "extends: a.yaml\n")
    path = write(tmp_path / "a.yaml", "extends: b.yaml\n")
    [problem] = problems(path)
    assert at(problem) == ("b.yaml", 1, 10)
    assert "a.yaml → " in problem.message and "b.yaml → " in problem.message


def test_extends_naming_a_missing_file_is_reported_at_extends(tmp_path: Path) -> None:
    text = "version: 1\nextends: ../nowhere\nusers: {carol: null}\n"  # the one problem: no base
    path = write(tmp_path / "envs" / "staging.yaml", text)
    [problem] = problems(path)
    assert at(problem) == ("staging.yaml", 2, 10)
    assert "does not exist" in problem.message
    assert "relative to this file" in problem.hint


@pytest.mark.parametrize("value", ["42", "[a, b]", "{a: b}", "''", "true"])
def test_extends_that_is_not_a_path_is_reported_at_extends(tmp_path: Path, value: str) -> None:
    path = write(tmp_path / "staging.yaml", f"extends: {value}\n")
    found = problems(path)
    assert [at(p) for p in found] == [("staging.yaml", 1, 10)]
    assert "extends must be the path" in found[0].message


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ('"a\\0b"', "which does not exist"),
        ("x" * 5000, "which cannot be read: File name too long"),
        ("/dev/null", "which is not a manifest (a *.yaml or *.yml file, or a directory)"),
        ("secrets.txt", "which is not a manifest"),
    ],
    ids=["nul", "too-long", "device", "not-yaml"],
)
def test_extends_that_names_no_usable_manifest_is_reported_at_extends(
    tmp_path: Path, value: str, reason: str
) -> None:
    (tmp_path / "secrets.txt").write_text("password: hunter2\n")
    path = write(tmp_path / "staging.yaml", f"extends: {value}\n")
    [problem] = problems(path)
    assert at(problem) == ("staging.yaml", 1, 10)
    assert reason in problem.message
    assert "hunter2" not in problem.message  # a file that is not a manifest is never read


def test_extends_naming_a_directory_without_manifests_is_reported_at_extends(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    path = write(tmp_path / "staging.yaml", "extends: empty\n")
    [problem] = problems(path)
    assert at(problem) == ("staging.yaml", 1, 10)
    assert problem.message.endswith("a directory without *.yaml or *.yml files")


def test_a_list_where_an_environment_needs_a_mapping_is_located(tmp_path: Path) -> None:
    path = layered(tmp_path, "extends: ..\nusers: []\n")
    [problem] = problems(path)
    assert at(problem) == ("staging.yaml", 2, 8)
    assert problem.message == "must be a mapping, not a list"


def test_null_that_removes_nothing_is_an_error_not_a_silent_typo(tmp_path: Path) -> None:
    path = layered(tmp_path, "extends: ..\nusers:\n  alcie: null\n  qa: {name: Q, friends: {bob: null}}\n")
    found = problems(path)
    assert [(at(p), p.path) for p in found] == [
        (("staging.yaml", 3, 10), "users.alcie"),
        (("staging.yaml", 4, 32), "users.qa.friends.bob"),
    ]
    assert all("no layer below declares this" in p.message for p in found)


def test_an_environment_name_other_than_its_files_is_refused(tmp_path: Path) -> None:
    path = layered(tmp_path, "extends: ..\nenvironment: production\n")
    [problem] = problems(path)
    assert at(problem) == ("staging.yaml", 2, 14)
    assert "named by its file" in problem.message


def test_an_environment_file_is_never_merged_with_other_files(tmp_path: Path) -> None:
    base = write(tmp_path / "users" / "team.yaml", BASE)
    path = write(tmp_path / "users" / "staging.yaml", "extends: team.yaml\n")
    found = problems(tmp_path / "users")
    assert [at(p) for p in found] == [("staging.yaml", 1, 1)]
    assert "cannot be merged with other files" in found[0].message
    assert base.exists()
    assert path.exists()


def test_an_environment_that_extends_a_directory_holding_environments_is_refused(tmp_path: Path) -> None:
    write(tmp_path / "users" / "team.yaml", BASE)
    write(tmp_path / "users" / "other.yaml", "extends: team.yaml\n")
    path = write(tmp_path / "staging.yaml", "extends: users\n")
    found = problems(path)
    assert [at(p) for p in found] == [("other.yaml", 1, 1)]
    assert "environments/ directory" in found[0].hint


def test_an_environment_that_is_not_a_mapping_is_reported(tmp_path: Path) -> None:
    path = write(tmp_path / "staging.yaml", "- extends\n- ..\n")
    [problem] = problems(path)
    assert at(problem) == ("staging.yaml", 1, 1)


def test_a_syntax_error_in_the_base_is_reported_in_the_base(tmp_path: Path) -> None:
    write(tmp_path / "team.yaml", "version: 1\nusers: {alice: {name: A}\n")
    path = write(tmp_path / "envs" / "staging.yaml", "extends: ../team.yaml\n")
    found = problems(path)
    assert {Path(p.file).name for p in found} == {"team.yaml"}


# ---------------------------------------------------------------- hostile input

LAYER_KEYS = ["extends", "environment", "version", "provider", "owner", "policy", "users", "bans", "roles"]
VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-3, 3)
    | st.sampled_from(["", "..", "x", "team.yaml", "staging.yaml"]),
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(st.sampled_from(["alice", "name", "path", "x"]), inner, max_size=3)
    ),
    max_leaves=8,
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(overlay=st.dictionaries(st.sampled_from(LAYER_KEYS), VALUES, max_size=4))
def test_any_environment_file_loads_or_gives_located_problems(
    tmp_path: Path, overlay: dict[str, object]
) -> None:
    write(tmp_path / "team.yaml", BASE)
    path = tmp_path / "staging.yaml"
    path.write_text(yaml.safe_dump({"extends": "team.yaml", **overlay}))
    try:
        load([path], env={})
    except ManifestError as error:
        files = {str(tmp_path / "team.yaml"), str(path)}
        assert error.problems
        assert all(p.file in files and p.line >= 1 and p.column >= 1 and p.message for p in error.problems)


# -------------------------------------------------------------------- lookup


def test_env_names_are_looked_up_in_the_environments_directory(tmp_path: Path) -> None:
    layered(tmp_path, STAGING)
    write(tmp_path / "users" / "environments" / "production.yml", "extends: ..\n")
    found = targets([str(tmp_path / "users")], ["all"])
    assert [(t.environment, Path(t.paths[0]).name) for t in found] == [
        ("production", "production.yml"),
        ("staging", "staging.yaml"),
    ]
    assert [t.environment for t in targets([str(tmp_path / "users")], ["staging"])] == ["staging"]


def test_environments_beside_a_base_file_are_found(tmp_path: Path) -> None:
    base = write(tmp_path / "team.yaml", BASE)
    write(tmp_path / "environments" / "staging.yaml", "extends: ../team.yaml\n")
    [found] = targets([str(base)], ["staging"])
    assert loaded(Path(found.paths[0])).environment == "staging"


def test_an_unknown_env_name_lists_the_ones_there(tmp_path: Path) -> None:
    layered(tmp_path, STAGING)
    with pytest.raises(ChatrosterError, match=r"no environment 'prod' in .*\(there: staging\)"):
        targets([str(tmp_path / "users")], ["prod"])


def test_several_environment_files_are_several_manifests(tmp_path: Path) -> None:
    staging = layered(tmp_path, STAGING)
    production = write(tmp_path / "users" / "environments" / "production.yaml", "extends: ..\n")
    found = targets([str(staging), str(production)])
    assert [t.environment for t in found] == ["staging", "production"]
    with pytest.raises(ChatrosterError, match="given with other files"):
        targets([str(staging), str(tmp_path / "users" / "team.yaml")])


def test_a_semantic_check_on_merged_layers_points_at_the_layer_that_broke_it(tmp_path: Path) -> None:
    # admin is protected in the base; staging bans it: the ban is staging's doing.
    path = layered(tmp_path, "extends: ..\nbans:\n  admin: {until: forever}\n")
    [problem] = problems(path)
    assert (at(problem), problem.message) == (
        ("staging.yaml", 3, 3),
        "'admin' is protected and cannot be banned",
    )


def test_a_capability_problem_points_at_the_layer_that_chose_the_provider(tmp_path: Path) -> None:
    # Nexconn has no metadata: the base wrote it, staging chose Nexconn.
    nexconn = "type: nexconn, url: 'http://127.0.0.1:1', app_key: '${K}', app_secret: '${S}'"
    path = layered(tmp_path, f"extends: ..\nprovider: {{{nexconn}, path: null}}\nusers:\n  carol: null\n")
    found = problems(path)
    metadata = [p for p in found if p.path == "users.alice.metadata"]
    assert [at(p) for p in metadata] == [("team.yaml", 10, 5)]
