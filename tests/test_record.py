"""`apply --record FILE`: a JSON line per change as it settles, then a summary, every
line valid against schemas/record.schema.json, masked like plan output.

The CLI runs as a subprocess on the local platform (real SQLite file) and, for a
change the vendor refuses, on Nexconn through the emulator. What a record says is
compared with what the platform holds, not with what apply printed.
"""

from __future__ import annotations

import json
import os
import re
import signal
import stat
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from emulator_process import EmulatorProcess
from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from test_apply import big_manifest
from test_apply_interrupt import wait_for_progress, written

from chatroster.emulator.config import DEFAULT_API_KEY, DEFAULT_APP_ID, DEFAULT_APP_KEY, DEFAULT_APP_SECRET

ROOT = Path(__file__).resolve().parents[1]
UUID4 = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")


def validator() -> Draft202012Validator:
    resources = []
    for name in ("record", "plan"):
        schema = json.loads((ROOT / "schemas" / f"{name}.schema.json").read_text())
        resources.append((schema["$id"], Resource.from_contents(schema)))
    registry = Registry().with_resources(resources)
    record = json.loads((ROOT / "schemas" / "record.schema.json").read_text())
    return Draft202012Validator(record, registry=registry)


def lines(path: Path) -> list[dict[str, Any]]:
    """Every line of the record, each checked against the schema."""
    check = validator()
    found = [json.loads(line) for line in path.read_text().splitlines()]
    for line in found:
        errors = [error.message for error in check.iter_errors(line)]
        assert not errors, f"{line} does not match the schema: {errors}"
    return found


def run(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "chatroster", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env={**os.environ, "NO_COLOR": "1", **(env or {})},
    )


def local_manifest(path: Path, users: dict[str, Any], **extra: Any) -> None:
    path.write_text(
        yaml.safe_dump(
            {"version": 1, "provider": {"type": "local", "path": "app.db"}, "users": users, **extra}
        )
    )


def test_every_change_applied_is_a_line_and_the_summary_adds_up(tmp_path: Path) -> None:
    manifest = tmp_path / "team.yaml"
    local_manifest(
        manifest,
        {
            "alice": {"name": "Alice", "profile": {"email": "alice@example.com"}, "blocklist": ["bob"]},
            "bob": {"name": "Bob", "tags": ["staff"]},
        },
    )
    record = tmp_path / "audit" / "apply.jsonl"
    applied = run("apply", str(manifest), "--yes", "--record", str(record), cwd=tmp_path)
    assert applied.returncode == 0, applied.stderr
    *changes, summary = lines(record)
    assert sorted((c["action"], c["uid"], c["target"], c["outcome"]) for c in changes) == [
        ("add_block", "alice", "bob", "applied"),
        ("create_user", "alice", None, "applied"),
        ("create_user", "bob", None, "applied"),
    ]
    assert summary["outcome"] == "applied" and summary["provider"] == "local"
    assert (summary["planned"], summary["applied"], summary["failed"]) == (3, 3, 0)
    assert summary["by_action"]["create_user"] == {
        "planned": 2,
        "applied": 2,
        "failed": 0,
        "not_attempted": 0,
    }
    # Personal data masked as in plan output; the file is its owner's alone.
    assert "alice@example.com" not in record.read_text() and "masked:" in record.read_text()
    assert stat.S_IMODE(record.stat().st_mode) == 0o600


def test_runs_append_and_a_run_with_nothing_to_do_says_so(tmp_path: Path) -> None:
    manifest = tmp_path / "team.yaml"
    local_manifest(manifest, {"alice": {"name": "Alice", "profile": {"email": "alice@example.com"}}})
    record = tmp_path / "apply.jsonl"
    run("apply", str(manifest), "--yes", "--record", str(record), cwd=tmp_path)
    again = run("apply", str(manifest), "--yes", "--record", str(record), "--show-personal", cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    found = lines(record)
    assert [line["record"] for line in found] == ["change", "summary", "summary"]
    assert found[-1]["outcome"] == "nothing_to_apply" and found[-1]["planned"] == 0
    local_manifest(manifest, {"alice": {"name": "Alice", "profile": {"email": "alice@example.org"}}})
    shown = run("apply", str(manifest), "--yes", "--record", str(record), "--show-personal", cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr
    change = lines(record)[-2]
    assert change["after"]["profile"]["email"] == "alice@example.org"  # --show-personal


def test_a_refused_apply_records_the_refusal_and_no_change(tmp_path: Path) -> None:
    manifest = tmp_path / "team.yaml"
    users = {f"u{i}": {"name": f"U{i}"} for i in range(10)}
    local_manifest(manifest, users)
    assert run("apply", str(manifest), "--yes", cwd=tmp_path).returncode == 0
    local_manifest(manifest, {"u0": {"name": "U0"}}, policy={"prune": "deactivate"})
    record = tmp_path / "apply.jsonl"
    refused = run("apply", str(manifest), "--yes", "--record", str(record), cwd=tmp_path)
    assert refused.returncode == 3, refused.stderr
    (summary,) = lines(record)
    assert summary["outcome"] == "refused" and summary["planned"] == 9 and summary["applied"] == 0
    assert "max_deactivate" in summary["message"]


def test_a_record_that_cannot_be_written_stops_apply_before_any_change(tmp_path: Path) -> None:
    manifest = tmp_path / "team.yaml"
    local_manifest(manifest, {"alice": {"name": "Alice"}})
    (tmp_path / "blocked").write_text("a file, not a directory")
    failed = run(
        "apply", str(manifest), "--yes", "--record", str(tmp_path / "blocked" / "r.jsonl"), cwd=tmp_path
    )
    assert failed.returncode == 1
    assert "cannot write the apply record" in failed.stderr and "Traceback" not in failed.stderr
    assert (
        not (tmp_path / "app.db").exists() or "alice" not in run("export", str(manifest), cwd=tmp_path).stdout
    )


def test_an_interrupted_apply_records_exactly_what_the_store_holds(tmp_path: Path) -> None:
    manifest = tmp_path / "many.yaml"
    big_manifest(manifest, 20_000)
    record = tmp_path / "apply.jsonl"
    with open(tmp_path / "stdout.txt", "w") as stdout:
        process = subprocess.Popen(
            [sys.executable, "-m", "chatroster", "apply", str(manifest), "--yes", "--record", str(record)],
            cwd=tmp_path,
            stdout=stdout,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "NO_COLOR": "1"},
        )
    wait_for_progress(process)
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=120)
    assert process.returncode == 130, err
    *changes, summary = lines(record)
    users, blocks = written(tmp_path)
    assert Counter(c["action"] for c in changes if c["outcome"] == "applied") == Counter(
        {"create_user": users, "add_block": blocks} if blocks else {"create_user": users}
    )
    assert summary["outcome"] == "interrupted" and summary["applied"] == users + blocks


CREDENTIALS = {"NEXCONN_APP_KEY": DEFAULT_APP_KEY, "NEXCONN_APP_SECRET": DEFAULT_APP_SECRET}
COMETCHAT_CREDENTIALS = {"COMETCHAT_API_KEY": DEFAULT_API_KEY}


def nexconn_manifest(path: Path, emulator: EmulatorProcess, users: dict[str, Any]) -> None:
    provider = {
        "type": "nexconn",
        "url": emulator.base_url,
        "app_key": "${NEXCONN_APP_KEY}",
        "app_secret": "${NEXCONN_APP_SECRET}",
    }
    path.write_text(yaml.safe_dump({"version": 1, "provider": provider, "users": users}))


def test_a_refused_change_is_a_failed_line_with_the_vendors_reason(
    tmp_path: Path, emulator: EmulatorProcess
) -> None:
    manifest = tmp_path / "team.yaml"
    nexconn_manifest(
        manifest, emulator, {"alice": {"name": "Alice", "active": False}, "bob": {"name": "Bob"}}
    )
    assert run("apply", str(manifest), "--yes", cwd=tmp_path, env=CREDENTIALS).returncode == 0
    # Nexconn refuses to restore a user within an hour of the soft-delete.
    nexconn_manifest(
        manifest, emulator, {"alice": {"name": "Alice", "active": True}, "bob": {"name": "Bobby"}}
    )
    record = tmp_path / "apply.jsonl"
    went_on = run(
        "apply",
        str(manifest),
        "--yes",
        "--continue-on-error",
        "--record",
        str(record),
        cwd=tmp_path,
        env=CREDENTIALS,
    )
    assert went_on.returncode == 1, went_on.stderr
    *changes, summary = lines(record)
    outcomes = {(c["action"], c["uid"]): c["outcome"] for c in changes}
    # Nexconn's restore brings back the uid alone, so alice is adopted and written again
    # in the same plan: those wait for her reactivation and are not attempted.
    assert outcomes == {
        ("reactivate_user", "alice"): "failed",
        ("adopt_user", "alice"): "not_attempted",
        ("update_user", "alice"): "not_attempted",
        ("update_user", "bob"): "applied",
    }
    failed = next(c for c in changes if c["outcome"] == "failed")
    assert "hour" in failed["reason"] or "restore" in failed["reason"].lower(), failed["reason"]
    skipped = next(c for c in changes if c["outcome"] == "not_attempted")
    assert skipped["reason"] == "not attempted: reactivate_user:alice failed"
    assert summary["outcome"] == "failed" and summary["provider"] == "nexconn"
    assert (summary["applied"], summary["failed"], summary["not_attempted"]) == (1, 1, 2)


@pytest.mark.parametrize("name", ["record.schema.json"])
def test_the_record_schema_is_a_valid_schema(name: str) -> None:
    Draft202012Validator.check_schema(json.loads((ROOT / "schemas" / name).read_text()))


def emulator_requests(emulator: EmulatorProcess) -> dict[str, list[dict[str, str]]]:
    """The emulator's log of the requests that carried an X-Request-ID, by id."""
    found: dict[str, list[dict[str, str]]] = {}
    for request in httpx.get(f"{emulator.base_url}/_emulator/requests").json()["requests"]:
        found.setdefault(request["request_id"], []).append(request)
    return found


#: The Nexconn write endpoints each action may call (chatroster's own choice of calls).
WRITES = {
    "create_user": {
        "POST /v4/auth/access-token/issue",
        "POST /v4/user/profile/set",
        "POST /v4/user/tag/batch/set",
        "POST /user/whitesetting/set.json",
    },
    "add_block": {"POST /v4/user/blocklist/add"},
    "add_whitelist": {"POST /user/whitelist/add.json"},
    "ban_user": {"POST /v4/user/ban"},
    "update_user": {"POST /v4/user/update", "POST /v4/user/profile/set", "POST /v4/user/tag/batch/set"},
    "deactivate_user": {"POST /v4/user/soft-delete"},
}


def test_each_nexconn_change_lists_the_request_ids_of_the_write_calls_that_made_it(
    tmp_path: Path, emulator: EmulatorProcess
) -> None:
    manifest = tmp_path / "team.yaml"

    def staff() -> dict[str, Any]:
        return {"tags": ["staff"], "profile": {"email": "x@example.com"}}

    users = {
        "alice": {"name": "Alice", "blocklist": ["bob", "carol"], "whitelist": ["bob"], **staff()},
        "bob": {"name": "Bob", **staff()},
        "carol": {"name": "Carol"},
    }
    nexconn_manifest(manifest, emulator, users)
    document = yaml.safe_load(manifest.read_text())
    document["bans"] = {"bob": {"until": "forever"}, "carol": {"until": "forever"}}
    manifest.write_text(yaml.safe_dump(document))
    record = tmp_path / "apply.jsonl"
    applied = run(
        "apply", str(manifest), "--yes", "--record", str(record), "-v", cwd=tmp_path, env=CREDENTIALS
    )
    assert applied.returncode == 0, applied.stderr
    *changes, _ = lines(record)
    log = emulator_requests(emulator)
    for change in changes:
        assert change["outcome"] == "applied" and change["request_ids"], change
        for request_id in change["request_ids"]:
            assert UUID4.match(request_id), request_id  # the id sent, as the SDK makes them
            (answered,) = log[request_id]  # one attempt: no retries here
            assert answered["endpoint"] in WRITES[change["action"]], (change, answered)
            assert answered["status"] == "200"
    ids = {(c["action"], c["uid"], c["target"]): c["request_ids"] for c in changes}
    # A batch call serves several changes: each of them lists it.
    assert ids[("add_block", "alice", "bob")] == ids[("add_block", "alice", "carol")]
    assert ids[("ban_user", "bob", None)] == ids[("ban_user", "carol", None)]
    tag_calls = {
        request_id
        for uid in ("alice", "bob")
        for request_id in ids[("create_user", uid, None)]
        if log[request_id][0]["endpoint"] == "POST /v4/user/tag/batch/set"
    }
    assert len(tag_calls) == 1  # the same tags: one call for both
    # Reads are no change's: every recorded id is a write, and -v logs each call's id.
    recorded = {request_id for c in changes for request_id in c["request_ids"]}
    assert all(request_id in applied.stderr for request_id in recorded)
    reads = {i for i, found in log.items() if found[0]["endpoint"].endswith(("/get", "/list", "query.json"))}
    assert reads and not reads & recorded

    # A second apply: an update, a deactivation (soft-delete, a batch call of its own).
    document["users"]["alice"]["name"] = "Alice Ng"
    document["users"]["carol"]["active"] = False
    manifest.write_text(yaml.safe_dump(document))
    again = run("apply", str(manifest), "--yes", "--record", str(record), cwd=tmp_path, env=CREDENTIALS)
    assert again.returncode == 0, again.stderr
    log = emulator_requests(emulator)
    found = lines(record)
    second = found[found.index(next(line for line in found if line["record"] == "summary")) + 1 : -1]
    assert {(c["action"], c["uid"]) for c in second} >= {
        ("update_user", "alice"),
        ("deactivate_user", "carol"),
    }
    for change in second:
        assert change["request_ids"], change
        assert all(log[i][0]["endpoint"] in WRITES[change["action"]] for i in change["request_ids"]), change


def test_local_and_cometchat_changes_have_no_request_ids(tmp_path: Path, emulator: EmulatorProcess) -> None:
    manifest = tmp_path / "team.yaml"
    local_manifest(manifest, {"alice": {"name": "Alice", "blocklist": ["bob"]}, "bob": {"name": "Bob"}})
    record = tmp_path / "local.jsonl"
    assert run("apply", str(manifest), "--yes", "--record", str(record), cwd=tmp_path).returncode == 0
    *changes, _ = lines(record)
    assert changes and all(c["request_ids"] == [] for c in changes)
    # CometChat documents no request id in its answers: nothing to record.
    provider = {
        "type": "cometchat",
        "app_id": DEFAULT_APP_ID,
        "url": emulator.base_url,
        "api_key": "${COMETCHAT_API_KEY}",
    }
    manifest.write_text(
        yaml.safe_dump({"version": 1, "provider": provider, "users": {"carol": {"name": "Carol"}}})
    )
    record = tmp_path / "cometchat.jsonl"
    applied = run(
        "apply", str(manifest), "--yes", "--record", str(record), cwd=tmp_path, env=COMETCHAT_CREDENTIALS
    )
    assert applied.returncode == 0, applied.stderr
    *changes, _ = lines(record)
    assert [(c["action"], c["request_ids"]) for c in changes] == [("create_user", [])]
