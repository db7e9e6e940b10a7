"""Environments on the command line: one base, an app per environment. plan and drift
run several environments at once and combine their exit codes; apply takes one.
Real parts: the CLI as a subprocess, SQLite stores, emulator processes."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from textwrap import dedent

import pytest
from emulator_process import EmulatorProcess

from chatroster.emulator.config import DEFAULT_APP_KEY, DEFAULT_APP_SECRET
from chatroster.store import Store

BASE = """\
version: 1
provider: {type: local}
owner: platform
policy: {prune: deactivate, max_deactivate: 1}
users:
  alice: {name: Alice Ng, avatar: https://cdn.example.com/alice.png}
  bob: {name: Bob Li}
  carol: {name: Carol}
"""

STAGING = """\
extends: ..
environment: staging
provider: {path: ../../staging.db}
users:
  alice: {avatar: https://staging-cdn.example.com/alice.png}
  qa1: {name: QA One}
  qa2: {name: QA Two}
"""

PRODUCTION = """\
extends: ..
provider: {path: ../../production.db}
"""


def chatroster(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [sys.executable, "-m", "chatroster", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ, "NO_COLOR": "1", **(env or {})},
    )
    assert "Traceback" not in result.stdout + result.stderr, result.stderr
    return result


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(dedent(text))
    return path


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A base in users/, two environments in users/environments/, a store each."""
    write(tmp_path / "users" / "team.yaml", BASE)
    write(tmp_path / "users" / "environments" / "staging.yaml", STAGING)
    write(tmp_path / "users" / "environments" / "production.yaml", PRODUCTION)
    return tmp_path


def uids(db: Path) -> set[str]:
    store = Store(db)
    try:
        return {uid for uid, user in store.all_users().items() if user.active}
    finally:
        store.close()


def summary(stdout: str) -> dict[str, str]:
    """The text report's last lines: environment -> result."""
    lines = stdout.split("Summary of the ", 1)[1].splitlines()[1:]
    return dict(re.match(r"\s+(\S+)\s+(.*)$", line).groups() for line in lines)  # type: ignore[union-attr]


def test_plan_over_every_environment_reports_each_and_writes_nothing(repo: Path) -> None:
    result = chatroster("plan", "users", "--env", "all", "--detailed-exitcode", cwd=repo)
    assert result.returncode == 2, result.stderr
    assert "== Environment production (users/environments/production.yaml) ==" in result.stdout
    assert "== Environment staging (users/environments/staging.yaml) ==" in result.stdout
    assert summary(result.stdout) == {"production": "3 change(s)", "staging": "5 change(s)"}
    staging = result.stdout.split("== Environment staging")[1]
    assert "https://staging-cdn.example.com/alice.png" in staging and "create_user qa1" in staging
    assert not (repo / "staging.db").exists() and not (repo / "production.db").exists()


def test_apply_takes_one_environment_and_plan_then_sees_only_the_other(repo: Path) -> None:
    applied = chatroster("apply", "users", "--env", "staging", "--yes", cwd=repo)
    assert applied.returncode == 0, applied.stderr
    assert uids(repo / "staging.db") == {"alice", "bob", "carol", "qa1", "qa2"}
    assert not (repo / "production.db").exists()
    result = chatroster("plan", "users", "--env", "all", "--detailed-exitcode", cwd=repo)
    assert result.returncode == 2
    assert summary(result.stdout) == {"production": "3 change(s)", "staging": "no changes"}
    assert chatroster("apply", "users/environments/production.yaml", "--yes", cwd=repo).returncode == 0
    assert uids(repo / "production.db") == {"alice", "bob", "carol"}
    both = ("--env", "staging", "--env", "production")
    final = chatroster("plan", "users", *both, "--detailed-exitcode", cwd=repo)
    assert final.returncode == 0, final.stdout
    drift = chatroster("drift", "users", "--env", "all", cwd=repo)
    assert (drift.returncode, summary(drift.stdout)) == (0, {"production": "in sync", "staging": "in sync"})


def test_apply_refuses_several_environments_and_changes_nothing(repo: Path) -> None:
    by_path = ["users/environments/staging.yaml", "users/environments/production.yaml"]
    for args in (["users", "--env", "all"], by_path):
        result = chatroster("apply", *args, "--yes", cwd=repo)
        assert result.returncode == 1
        assert "apply changes one environment at a time, and 2 were given (" in result.stderr
        assert "nothing was applied" in result.stderr
    assert not (repo / "staging.db").exists() and not (repo / "production.db").exists()


def test_an_environment_in_error_is_reported_and_the_others_still_planned(repo: Path) -> None:
    write(repo / "users" / "environments" / "broken.yaml", "extends: ..\nusers: []\n")
    result = chatroster("plan", "users", "--env", "all", "--detailed-exitcode", cwd=repo)
    assert result.returncode == 1
    expected = {"broken": "error", "production": "3 change(s)", "staging": "5 change(s)"}
    assert summary(result.stdout) == expected
    assert "users/environments/broken.yaml:2:8: must be a mapping, not a list (users)" in result.stdout
    assert "[broken] users/environments/broken.yaml:2:8: must be a mapping" in result.stderr


def test_exit_codes_combine_the_worst_wins(repo: Path) -> None:
    assert chatroster("apply", "users", "--env", "production", "--yes", cwd=repo).returncode == 0
    # Two deactivations in production, over its limit of one: refused (3).
    removed = PRODUCTION + "users: {bob: null, carol: null}\n"
    write(repo / "users" / "environments" / "production.yaml", removed)
    refused = chatroster("plan", "users", "--env", "all", "--detailed-exitcode", cwd=repo)
    assert refused.returncode == 3, refused.stderr
    assert summary(refused.stdout)["production"] == "2 change(s), refused by a safety limit"
    assert "[production] refused: [local] 2 of 3 users (66%) would be deactivated" in refused.stderr
    # Without --detailed-exitcode, staging's changes are exit 0: the refusal alone decides.
    assert chatroster("plan", "users", "--env", "all", cwd=repo).returncode == 3
    write(repo / "users" / "environments" / "broken.yaml", "extends: ../nowhere\n")
    worst = chatroster("plan", "users", "--env", "all", "--detailed-exitcode", cwd=repo)
    assert worst.returncode == 1
    assert "broken.yaml:1:10: extends names users/nowhere, which does not exist" in worst.stderr


def test_markdown_is_one_comment_with_a_section_per_environment(repo: Path) -> None:
    result = chatroster("plan", "users", "--env", "all", "--format", "markdown", cwd=repo)
    assert result.returncode == 0
    text = result.stdout
    assert text.startswith("## chatroster plan: 2 environments\n")
    assert "| `production` | 3 change(s) |" in text and "| `staging` | 5 change(s) |" in text
    assert text.count("## Environment `staging`") == 1 and text.count("## Environment `production`") == 1
    assert text.count("### chatroster plan: local, owner `platform`") == 2
    assert text.index("## Environment `production`") < text.index("## Environment `staging`")


def test_markdown_drift_shows_an_environment_in_error_as_a_code_block(repo: Path) -> None:
    write(repo / "users" / "environments" / "broken.yaml", "extends: ..\nusers: {qa: {name: 5}}\n")
    result = chatroster("drift", "users", "--env", "all", "--format", "markdown", cwd=repo)
    assert result.returncode == 1
    broken = result.stdout.split("## Environment `broken`")[1].split("## Environment")[0]
    assert "```text\nusers/environments/broken.yaml:2:20: must be text, not a number" in broken


def test_json_is_a_list_of_environments_with_their_exit_codes(repo: Path) -> None:
    write(repo / "users" / "environments" / "broken.yaml", "extends: ..\nowner: [x]\n")
    result = chatroster("plan", "users", "--env", "all", "--format", "json", "--detailed-exitcode", cwd=repo)
    assert result.returncode == 1
    data = json.loads(result.stdout)
    assert data["command"] == "plan" and data["exit_code"] == 1
    found = {entry["environment"]: entry for entry in data["environments"]}
    assert [entry["environment"] for entry in data["environments"]] == ["broken", "production", "staging"]
    assert found["staging"]["exit_code"] == 2
    assert found["staging"]["plan"]["summary"] == {"create_user": 5}
    assert found["staging"]["files"] == ["users/environments/staging.yaml"]
    assert found["broken"]["exit_code"] == 1 and "broken.yaml:2:8" in found["broken"]["error"]


def test_one_environment_by_path_prints_the_usual_plan(repo: Path) -> None:
    result = chatroster("plan", "users/environments/staging.yaml", "--format", "json", cwd=repo)
    assert result.returncode == 0
    assert json.loads(result.stdout)["summary"] == {"create_user": 5}


def test_a_saved_plan_of_an_environment_applies_without_naming_it_again(repo: Path) -> None:
    planned = chatroster("plan", "users", "--env", "staging", "--out", "plan.json", cwd=repo)
    assert planned.returncode == 0, planned.stderr
    saved = json.loads((repo / "plan.json").read_text())
    assert saved["manifest_files"] == ["users/environments/staging.yaml"]
    applied = chatroster("apply", "--plan", "plan.json", "--yes", cwd=repo)
    assert applied.returncode == 0, applied.stderr
    assert uids(repo / "staging.db") == {"alice", "bob", "carol", "qa1", "qa2"}


def test_a_saved_plan_is_refused_once_the_base_changed(repo: Path) -> None:
    assert chatroster("plan", "users", "--env", "staging", "--out", "plan.json", cwd=repo).returncode == 0
    write(repo / "users" / "team.yaml", BASE.replace("Bob Li", "Bob L."))
    applied = chatroster("apply", "--plan", "plan.json", "--yes", cwd=repo)
    assert applied.returncode == 1
    assert "the manifest changed since the plan was made" in applied.stderr


def test_plan_out_refuses_several_environments(repo: Path) -> None:
    result = chatroster("plan", "users", "--env", "all", "--out", "plan.json", cwd=repo)
    assert result.returncode == 1
    assert "--out saves the plan of one environment, and 2 were given" in result.stderr
    assert not (repo / "plan.json").exists()


def test_the_apply_record_names_the_environment(repo: Path) -> None:
    args = ("apply", "users", "--env", "staging", "--yes", "--record", "record.jsonl")
    assert chatroster(*args, cwd=repo).returncode == 0
    records = [json.loads(line) for line in (repo / "record.jsonl").read_text().splitlines()]
    assert records and {record["environment"] for record in records} == {"staging"}


def test_validate_checks_every_environment_and_names_the_invalid_ones(repo: Path) -> None:
    good = chatroster("validate", "users", "--env", "all", cwd=repo)
    assert good.returncode == 0
    files = "users/team.yaml, users/environments/staging.yaml"
    assert f"environment staging: {files}: valid (5 users" in good.stdout
    write(repo / "users" / "environments" / "broken.yaml", "extends: ..\nenvironment: prod\n")
    bad = chatroster("validate", "users", "--env", "all", cwd=repo)
    assert bad.returncode == 1
    assert "environment production: " in bad.stdout
    assert "[broken] users/environments/broken.yaml:2:14: environment is prod" in bad.stderr
    assert "1 of 3 environments are not valid: broken" in bad.stderr


def test_an_unknown_environment_name_is_an_error_listing_the_known(repo: Path) -> None:
    result = chatroster("plan", "users", "--env", "prod", cwd=repo)
    assert result.returncode == 1
    assert "no environment 'prod' in users/environments (there: production, staging)" in result.stderr


# ------------------------------------------------------- several vendor apps


def vendor_environment(path: Path, url: str, secret: str = "${NEXCONN_APP_SECRET}") -> Path:
    return write(
        path,
        f"""\
        extends: ..
        provider:
          type: nexconn
          url: {url}
          app_key: ${{NEXCONN_APP_KEY}}
          app_secret: {secret}
        """,
    )


CREDENTIALS = {"NEXCONN_APP_KEY": DEFAULT_APP_KEY, "NEXCONN_APP_SECRET": DEFAULT_APP_SECRET}


def test_several_vendor_apps_are_planned_and_drifted_in_one_run(
    tmp_path: Path, emulator_factory: Callable[..., EmulatorProcess]
) -> None:
    write(tmp_path / "users" / "team.yaml", BASE)
    apps = {name: emulator_factory() for name in ("eu", "us")}
    for name, app in apps.items():
        vendor_environment(tmp_path / "users" / "environments" / f"{name}.yaml", app.base_url)
    args = ("plan", "users", "--env", "all", "--detailed-exitcode")
    planned = chatroster(*args, cwd=tmp_path, env=CREDENTIALS)
    assert planned.returncode == 2, planned.stderr
    assert summary(planned.stdout) == {"eu": "3 change(s)", "us": "3 change(s)"}
    assert all(app.stats()["by_endpoint"] for app in apps.values())  # each app was read
    for name in apps:
        applied = chatroster("apply", "users", "--env", name, "--yes", cwd=tmp_path, env=CREDENTIALS)
        assert applied.returncode == 0, applied.stderr
    drift = chatroster("drift", "users", "--env", "all", "--format", "json", cwd=tmp_path, env=CREDENTIALS)
    assert drift.returncode == 0, drift.stderr
    assert [entry["exit_code"] for entry in json.loads(drift.stdout)["environments"]] == [0, 0]


def test_a_vendor_app_that_refuses_the_credentials_fails_alone(
    tmp_path: Path, emulator_factory: Callable[..., EmulatorProcess]
) -> None:
    write(tmp_path / "users" / "team.yaml", BASE)
    good, other = emulator_factory(), emulator_factory()
    vendor_environment(tmp_path / "users" / "environments" / "good.yaml", good.base_url)
    vendor_environment(tmp_path / "users" / "environments" / "wrong.yaml", other.base_url, "${WRONG_SECRET}")
    env = {**CREDENTIALS, "WRONG_SECRET": "not-the-secret"}
    result = chatroster("drift", "users", "--env", "all", cwd=tmp_path, env=env)
    assert result.returncode == 1
    assert summary(result.stdout) == {"good": "3 difference(s)", "wrong": "error"}
    assert "[wrong] error:" in result.stderr
    assert "not-the-secret" not in result.stdout + result.stderr


# ------------------------------------------------------------------ examples

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def examples(tmp_path: Path) -> Path:
    """A clone's examples/ (no stores), and `.venv/bin/chatroster` running the code under test."""
    generated = shutil.ignore_patterns(".chatroster", "*.db", "*.db-*")
    shutil.copytree(ROOT / "examples", tmp_path / "examples", ignore=generated)
    script = tmp_path / ".venv" / "bin" / "chatroster"
    script.parent.mkdir(parents=True)
    script.write_text(f"#!{sys.executable}\nimport sys\nfrom chatroster.cli import main\nsys.exit(main())\n")
    script.chmod(0o755)
    return tmp_path


def test_the_environments_example_plans_both_apps_and_applies_one(examples: Path) -> None:
    base = "examples/environments/base.yaml"
    planned = chatroster("plan", base, "--env", "all", "--detailed-exitcode", cwd=examples)
    assert planned.returncode == 2, planned.stderr
    assert summary(planned.stdout) == {"production": "3 change(s)", "staging": "6 change(s)"}
    assert chatroster("apply", base, "--env", "staging", "--yes", cwd=examples).returncode == 0
    drift = chatroster("drift", base, "--env", "all", cwd=examples)
    assert drift.returncode == 2  # as docs/workflows.md says
    assert summary(drift.stdout) == {"production": "3 difference(s)", "staging": "in sync"}
    assert uids(examples / "examples/environments/.chatroster/staging.db") == {
        "admin",
        "alice",
        "bob",
        "qa1",
        "qa2",
    }


def test_the_readme_plans_both_vendor_apps_in_one_run_and_applies_each(
    examples: Path, emulator_factory: Callable[..., EmulatorProcess]
) -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Try it against the vendor APIs", 1)[1].split("\n## ", 1)[0]
    [block] = [b for b in re.findall(r"```sh\n(.*?)\n```", section, flags=re.S) if "environments" in b]
    start, *commands = block.splitlines()
    # The README starts an emulator per app on the port its example file defaults to;
    # here each is a fresh emulator on a free port, named by the same variables.
    apps = {"staging": emulator_factory(), "production": emulator_factory()}
    env = {key: value for key, value in os.environ.items() if not key.startswith("NEXCONN_")}
    env["NO_COLOR"] = "1"
    for name, emulator in apps.items():
        example = (examples / f"examples/environments/vendor/nexconn-{name}.yaml").read_text()
        [port] = re.findall(rf"NEXCONN_{name.upper()}_URL:-http://127\.0\.0\.1:(\d+)", example)
        assert f"emulator --port {port} --db examples/.chatroster/{name}-app.db &" in start
        env[f"NEXCONN_{name.upper()}_URL"] = emulator.base_url
    ran = [
        subprocess.run(
            ["bash", "-c", command], cwd=examples, env=env, capture_output=True, text=True, timeout=180
        )
        for command in commands
    ]
    for done in ran:
        assert done.returncode == 0, done.stdout + done.stderr
    planned, applied = ran
    assert summary(planned.stdout) == {"nexconn-staging": "6 change(s)", "nexconn-production": "3 change(s)"}
    assert applied.stdout.count("Applied ") == 2
    for name, app in apps.items():
        again = chatroster(
            "plan",
            f"examples/environments/vendor/nexconn-{name}.yaml",
            "--detailed-exitcode",
            cwd=examples,
            env={f"NEXCONN_{name.upper()}_URL": app.base_url},
        )
        assert again.returncode == 0, again.stdout + again.stderr
    assert uids(apps["staging"].db_path) == {"admin", "alice", "bob", "qa1", "qa2"}
    assert uids(apps["production"].db_path) == {"admin", "alice", "bob"}


def test_a_report_of_one_environment_says_which(repo: Path) -> None:
    markdown = chatroster("plan", "users", "--env", "staging", "--format", "markdown", cwd=repo)
    assert markdown.stdout.startswith("## Environment `staging`\n\n### chatroster plan: local")
    text = chatroster("drift", "users/environments/production.yaml", cwd=repo)
    assert text.returncode == 2
    assert text.stdout.startswith("Environment production\nDrift on local, owner 'platform':")
