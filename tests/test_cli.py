"""The CLI as a user runs it: a real subprocess, a real SQLite file, every exit code."""

from __future__ import annotations

import json
import os
import queue
import re
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import httpx
import pytest
import yaml
from emulator_process import EmulatorProcess

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def chatroster(
    *args: str, cwd: Path, stdin: str | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "chatroster", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        input=stdin,
        timeout=120,
        env={**os.environ, "NO_COLOR": "1", **(env or {})},
    )


def no_traceback(result: subprocess.CompletedProcess[str]) -> None:
    assert "Traceback" not in result.stderr + result.stdout


@pytest.fixture
def team(tmp_path: Path) -> Path:
    manifest = {
        "version": 1,
        "provider": {"type": "local"},
        "owner": "ops",
        "policy": {"prune": "deactivate", "max_deactivate": 1},
        "users": {
            "alice": {
                "name": "Alice",
                "tags": ["staff"],
                "blocklist": ["bob"],
                "profile": {"email": "alice@example.com"},
            },
            "bob": {"name": "Bob", "metadata": {"team": "core"}},
            "carol": {"name": "Carol", "whitelist": ["alice"]},
            "dave": {"name": "Dave"},
        },
        "bans": {"bob": {"until": "forever"}},
    }
    path = tmp_path / "team.yaml"
    path.write_text(yaml.safe_dump(manifest))
    return path


def edit(path: Path, change: object) -> None:
    data = yaml.safe_load(path.read_text())
    change(data)  # type: ignore[operator]
    path.write_text(yaml.safe_dump(data))


def plan_json(path: Path) -> dict:  # type: ignore[type-arg]
    result = chatroster("plan", str(path), "--format", "json", cwd=path.parent)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_the_quickstart_applies_and_then_plans_no_changes(tmp_path: Path) -> None:
    # Only the examples as committed: a user's own run leaves its store and logs beside
    # them (examples/.chatroster/), which must not change what this test sees.
    generated = shutil.ignore_patterns(".chatroster", "*.db", "*.db-*", "*.log", "plan.json")
    shutil.copytree(EXAMPLES, tmp_path / "examples", ignore=generated)
    manifest = "examples/quickstart.yaml"
    assert chatroster("validate", manifest, cwd=tmp_path).returncode == 0
    first = chatroster("plan", manifest, "--detailed-exitcode", cwd=tmp_path)
    assert first.returncode == 2, first.stderr
    applied = chatroster("apply", manifest, "--yes", cwd=tmp_path)
    assert applied.returncode == 0, applied.stderr
    assert "Applied" in applied.stdout
    again = chatroster("plan", manifest, "--detailed-exitcode", cwd=tmp_path)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "No changes" in again.stdout


def test_a_changed_manifest_plans_exactly_the_expected_changes(team: Path) -> None:
    assert chatroster("apply", str(team), "--yes", cwd=team.parent).returncode == 0

    def change(data: dict) -> None:  # type: ignore[type-arg]
        data["users"]["alice"]["name"] = "Alice Ng"
        data["users"]["alice"]["blocklist"] = []
        data["users"]["carol"]["whitelist"] = False
        del data["users"]["dave"]
        del data["bans"]["bob"]

    edit(team, change)
    result = chatroster("plan", str(team), "--detailed-exitcode", "--format", "json", cwd=team.parent)
    assert result.returncode == 2, result.stderr
    plan = json.loads(result.stdout)
    assert [(c["action"], c["uid"], c.get("target")) for c in plan["changes"]] == [
        ("update_user", "alice", None),
        ("unban_user", "bob", None),
        ("remove_block", "alice", "bob"),
        ("set_whitelist_mode", "carol", None),
        ("deactivate_user", "dave", None),
    ]
    assert plan["changes"][0]["before"] == {"name": "Alice"}
    assert plan["changes"][0]["after"] == {"name": "Alice Ng"}
    assert plan["summary"] == {
        "update_user": 1,
        "unban_user": 1,
        "remove_block": 1,
        "set_whitelist_mode": 1,
        "deactivate_user": 1,
    }
    assert plan["format_version"] == 1 and plan["owner"] == "ops"


def test_the_json_plan_matches_its_published_schema(team: Path) -> None:
    from jsonschema import Draft202012Validator

    schema = json.loads((Path(__file__).resolve().parents[1] / "schemas/plan.schema.json").read_text())
    Draft202012Validator.check_schema(schema)
    Draft202012Validator(schema).validate(plan_json(team))


def test_a_bad_manifest_exits_1_with_locations_and_writes_nothing(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("version: 1\nusers:\n  alice:\n    nmae: Alice\n  bob:\n    name: 3\n")
    for command in (["validate"], ["plan"], ["apply", "--yes"]):
        result = chatroster(*command, str(bad), cwd=tmp_path)
        assert result.returncode == 1, (command, result.stderr)
        no_traceback(result)
        assert f"{bad}:4:5" in result.stderr, result.stderr
        assert "nothing was changed" in result.stderr
    assert not (tmp_path / ".chatroster").exists()


def test_a_missing_manifest_is_a_clear_error(tmp_path: Path) -> None:
    result = chatroster("plan", "nowhere.yaml", cwd=tmp_path)
    assert result.returncode == 1
    no_traceback(result)
    assert "nowhere.yaml" in result.stderr


def test_a_usage_error_exits_1_not_2(team: Path) -> None:
    result = chatroster("plan", str(team), "--no-such-flag", cwd=team.parent)
    assert result.returncode == 1
    assert "no such option" in result.stderr.lower()


def test_over_a_safety_limit_apply_exits_3_until_forced(team: Path) -> None:
    assert chatroster("apply", str(team), "--yes", cwd=team.parent).returncode == 0
    edit(team, lambda data: [data["users"].pop(uid) for uid in ("carol", "dave")])
    refused = chatroster("apply", str(team), "--yes", cwd=team.parent)
    assert refused.returncode == 3, refused.stderr
    assert "max_deactivate" in refused.stderr and "--force" in refused.stderr
    assert chatroster("plan", str(team), cwd=team.parent).returncode == 3
    forced = chatroster("apply", str(team), "--yes", "--force", cwd=team.parent)
    assert forced.returncode == 0, forced.stderr
    assert chatroster("plan", str(team), "--detailed-exitcode", cwd=team.parent).returncode == 0


def test_apply_without_a_terminal_needs_yes_and_changes_nothing(team: Path) -> None:
    result = chatroster("apply", str(team), cwd=team.parent, stdin="")
    assert result.returncode == 1
    assert "--yes" in result.stderr
    assert chatroster("plan", str(team), "--detailed-exitcode", cwd=team.parent).returncode == 2


def test_personal_data_is_masked_unless_asked_for(team: Path) -> None:
    for fmt in ("text", "json", "markdown"):
        masked = chatroster("plan", str(team), "--format", fmt, cwd=team.parent)
        assert "alice@example.com" not in masked.stdout + masked.stderr
        assert "masked:" in masked.stdout
    shown = chatroster("plan", str(team), "--show-personal", cwd=team.parent)
    assert "alice@example.com" in shown.stdout


def test_markdown_plan_has_a_summary_table_and_changes_by_user(team: Path) -> None:
    result = chatroster("plan", str(team), "--format", "markdown", cwd=team.parent)
    assert result.returncode == 0
    assert "| action | count |" in result.stdout
    assert "| create_user | 4 |" in result.stdout
    assert "**`alice`**" in result.stdout


def test_targeting_limits_the_plan_and_says_so(team: Path) -> None:
    result = chatroster(
        "plan", str(team), "--format", "json", "--target", "a*", "--only", "users", cwd=team.parent
    )
    plan = json.loads(result.stdout)
    assert {(c["action"], c["uid"]) for c in plan["changes"]} == {("create_user", "alice")}
    assert plan["targeting"] == {"target": ["a*"], "only": ["users"]}
    text = chatroster("plan", str(team), "--exclude", "a*", cwd=team.parent).stdout
    assert "Targeted plan: excluding a*" in text
    assert "+ create_user alice" not in text and "+ create_user bob" in text
    # Changes that need alice to exist are left out too, and the plan says so.
    assert "they need create_user alice, which this targeting leaves out" in text


def test_targeting_is_echoed_in_plain_words_in_text_and_markdown(team: Path) -> None:
    narrowed = ["--target", "a*", "--target", "c*", "--exclude", "bot-*", "--only", "blocklists"]
    text = chatroster("plan", str(team), *narrowed, cwd=team.parent).stdout
    assert "Targeted plan: only uids matching a* or c*, excluding bot-*, only blocklists" in text
    assert "target=" not in text and "['" not in text
    markdown = chatroster("plan", str(team), *narrowed, "--format", "markdown", cwd=team.parent).stdout
    assert (
        "> **Targeted plan:** only uids matching `a*` or `c*`, excluding `bot-*`, only blocklists"
    ) in markdown


def test_a_target_matching_nothing_is_a_warning_on_plan_and_drift(team: Path) -> None:
    warning = "--target 'u00*' matches no declared or live uid"
    for fmt in ("text", "json", "markdown"):
        result = chatroster(
            "plan", str(team), "--target", "u00*", "--target", "a*", "--format", fmt, cwd=team.parent
        )
        assert result.returncode == 0, result.stderr
        assert warning in result.stdout.replace("\\*", "*"), fmt
        assert "'a*'" not in result.stdout  # a target that matches is no warning
        assert "Live state matches the manifest" not in result.stdout
    drift = chatroster("drift", str(team), "--target", "u00*", cwd=team.parent)
    assert drift.returncode == 0 and f"warning: {warning}" in drift.stderr
    excluded = chatroster("plan", str(team), "--exclude", "u00*", cwd=team.parent)
    assert "warning" not in excluded.stdout + excluded.stderr  # --exclude: nothing to say


def test_a_target_matching_nothing_refuses_to_apply(team: Path) -> None:
    result = chatroster("apply", str(team), "--yes", "--target", "u00*", "--target", "a*", cwd=team.parent)
    assert result.returncode == 1, result.stdout + result.stderr
    no_traceback(result)
    assert "error: --target 'u00*' matches no declared or live uid" in result.stderr
    assert "nothing was applied" in result.stderr and "Applied" not in result.stdout
    assert plan_json(team)["summary"] == {
        "create_user": 4,
        "ban_user": 1,
        "add_block": 1,
        "add_whitelist": 1,
    }  # nothing was applied
    matched = chatroster("apply", str(team), "--yes", "--target", "a*", "--only", "users", cwd=team.parent)
    assert matched.returncode == 0 and "Applied 1 change(s)." in matched.stdout


def test_drift_exits_0_when_in_sync_and_2_with_the_kind_of_each_difference(team: Path) -> None:
    assert chatroster("drift", str(team), cwd=team.parent).returncode == 2
    assert chatroster("apply", str(team), "--yes", cwd=team.parent).returncode == 0
    assert chatroster("drift", str(team), cwd=team.parent).returncode == 0
    edit(team, lambda data: data["users"]["bob"].update(name="Robert"))
    result = chatroster("drift", str(team), "--format", "json", cwd=team.parent)
    assert result.returncode == 2
    report = json.loads(result.stdout)
    assert [(d["uid"], d["kind"]) for d in report["differences"]] == [("bob", "managed")]


def test_export_writes_a_manifest_that_plans_to_no_changes(team: Path) -> None:
    assert chatroster("apply", str(team), "--yes", cwd=team.parent).returncode == 0
    out = team.parent / "exported" / "all.yaml"
    out.parent.mkdir()
    result = chatroster("export", str(team), "--out", str(out), cwd=team.parent)
    assert result.returncode == 0, result.stderr
    assert chatroster("validate", str(out), cwd=team.parent).returncode == 0
    again = chatroster("plan", str(out), "--detailed-exitcode", cwd=team.parent)
    assert again.returncode == 0, again.stdout + again.stderr


def test_version_and_help(tmp_path: Path) -> None:
    assert chatroster("--version", cwd=tmp_path).stdout.startswith("chatroster")
    assert "plan" in chatroster("--help", cwd=tmp_path).stdout


def test_seed_mode_creates_what_is_missing_and_never_changes_or_removes(team: Path) -> None:
    edit(team, lambda data: data.update(policy={"mode": "seed", "prune": "delete"}))
    assert chatroster("apply", str(team), "--yes", cwd=team.parent).returncode == 0

    def testers_were_here(data: dict) -> None:  # type: ignore[type-arg]
        data["users"]["alice"]["name"] = "Renamed in the manifest"
        data["users"]["bob"]["active"] = False
        del data["users"]["dave"]
        data["users"]["erin"] = {"name": "Erin"}

    edit(team, testers_were_here)
    result = chatroster("plan", str(team), "--format", "json", cwd=team.parent)
    assert [(c["action"], c["uid"]) for c in json.loads(result.stdout)["changes"]] == [
        ("create_user", "erin")
    ]


def test_validate_needs_no_credentials_but_plan_does(tmp_path: Path) -> None:
    manifest = tmp_path / "vendor.yaml"
    manifest.write_text(
        yaml.safe_dump(
            {
                "version": 1,
                "provider": {
                    "type": "cometchat",
                    "url": "http://127.0.0.1:9",
                    "app_id": "app",
                    "api_key": "${CHATROSTER_TEST_UNSET_KEY}",
                },
                "users": {"alice": {"name": "Alice"}},
            }
        )
    )
    assert chatroster("validate", str(manifest), cwd=tmp_path).returncode == 0
    planned = chatroster("plan", str(manifest), cwd=tmp_path)
    assert planned.returncode == 1 and "CHATROSTER_TEST_UNSET_KEY" in planned.stderr


def test_drift_targeting_also_limits_unowned_and_extra_users(team: Path) -> None:
    assert chatroster("apply", str(team), "--yes", cwd=team.parent).returncode == 0
    edit(team, lambda data: data["users"].pop("dave"))  # dave: owned, no longer declared
    edit(team, lambda data: data["policy"].update(prune="none"))
    assert chatroster("drift", str(team), cwd=team.parent).returncode == 2
    for narrowed in (["--exclude", "dave"], ["--target", "a*"], ["--only", "bans"]):
        result = chatroster("drift", str(team), *narrowed, cwd=team.parent)
        assert result.returncode == 0, (narrowed, result.stdout)


# ------------------------------------------------------------------------- -v


def nexconn_team(path: Path, url: str) -> Path:
    users = {
        f"u{i}": {
            "name": f"User {i}",
            "blocklist": [f"u{(i + 1) % 5}"],
            "profile": {"email": f"person{i}@example.com", "level": i},
        }
        for i in range(5)
    }
    path.write_text(
        yaml.safe_dump(
            {
                "version": 1,
                "provider": {
                    "type": "nexconn",
                    "url": url,
                    "app_key": "${NEXCONN_APP_KEY}",
                    "app_secret": "${NEXCONN_APP_SECRET}",
                },
                "users": users,
            }
        )
    )
    return path


def test_verbose_logs_each_http_call_on_stderr_without_secrets_or_personal_data(
    tmp_path: Path, emulator: EmulatorProcess
) -> None:
    from chatroster.emulator.config import DEFAULT_APP_KEY, DEFAULT_APP_SECRET

    credentials = {"NEXCONN_APP_KEY": DEFAULT_APP_KEY, "NEXCONN_APP_SECRET": DEFAULT_APP_SECRET}
    manifest = nexconn_team(tmp_path / "team.yaml", emulator.base_url)
    applied = chatroster("apply", str(manifest), "--yes", "-v", cwd=tmp_path, env=credentials)
    assert applied.returncode == 0, applied.stderr
    assert "create_user: batch of 5: 5 done" in applied.stderr  # each apply batch
    assert "add_block: batch of 5: 5 done" in applied.stderr
    for verbosity in ("-v", "-vv"):
        result = chatroster(
            "plan",
            str(manifest),
            "--format",
            "json",
            verbosity,
            "--show-personal",
            cwd=tmp_path,
            env=credentials,
        )
        assert result.returncode == 0, result.stderr
        json.loads(result.stdout)  # stdout stays the plan
        calls = re.findall(
            r"^\[nexconn\] POST (\S*?)(/v4/\S+) -> (\d{3}) \(attempt (\d+), \d+ ms, "
            r"request id [0-9a-f-]{36}\)$",
            result.stderr,
            re.MULTILINE,
        )
        assert {path for _, path, _, _ in calls} >= {
            "/v4/user/get",
            "/v4/user/soft-deleted/list",
            "/v4/user/profile/batch/get",
            "/v4/user/blocklist/get",
        }, result.stderr
        hosts = {host for host, _, _, _ in calls}
        assert hosts == ({emulator.base_url} if verbosity == "-vv" else {""})
        assert DEFAULT_APP_SECRET not in result.stderr and DEFAULT_APP_KEY not in result.stderr
        assert not re.search(r"[0-9a-f]{40}", result.stderr), "a SHA-1 signature was logged"
        assert "Signature" not in result.stderr and "Nonce" not in result.stderr
        assert "@example.com" not in result.stderr  # even with --show-personal


def test_every_command_takes_verbose(team: Path, tmp_path: Path) -> None:
    for command in (
        ["validate"],
        ["plan"],
        ["apply", "--yes"],
        ["drift"],
        ["export", "--out", str(tmp_path / "out.yaml")],
    ):
        result = chatroster(*command, str(team), "--verbose", cwd=team.parent)
        assert result.returncode in (0, 2), (command, result.stderr)
        no_traceback(result)
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "chatroster",
            "emulator",
            "-v",
            "--port",
            "0",
            "--db",
            str(tmp_path / "emulator.db"),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    printed: queue.Queue[str] = queue.Queue()
    reader = threading.Thread(
        target=lambda: [printed.put(line) for line in process.stdout or ()], daemon=True
    )
    reader.start()
    try:
        line = ""
        while "listening on" not in line:
            line = printed.get(timeout=30)
        httpx.get(f"{line.split()[-1]}/_emulator/stats").raise_for_status()
    finally:
        process.terminate()
        process.wait(timeout=30)
        reader.join(timeout=30)
        if process.stdout is not None:
            process.stdout.close()
    rest = "".join(printed.queue)
    assert "/_emulator/stats" in rest  # the emulator's -v: every request logged
