"""`chatroster validate` on bad manifests, as a user runs it: every problem at once, at
its place, never a traceback, never a hang, nothing written."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest


def validate(*paths: Path | str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "chatroster", "validate", *map(str, paths)],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
        env={**os.environ, "NO_COLOR": "1"},
    )


def refused(result: subprocess.CompletedProcess[str]) -> list[str]:
    """The problem lines of a refused manifest (hints left out)."""
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert lines[-1].endswith("found; nothing was changed.")
    return [line for line in lines[:-1] if not line.startswith("    → ")]


def test_schema_and_capability_problems_of_one_user_are_reported_together(
    tmp_path: Path,
) -> None:
    manifest = tmp_path / "team.yaml"
    manifest.write_text(
        "version: 1\n"
        "provider:\n  type: cometchat\n  app_id: app\n  api_key: ${COMETCHAT_API_KEY}\n"
        "users:\n"
        "  alice:\n"
        "    name: Alice\n"
        "    whitelist: [bob]\n"  # capability: no whitelists on CometChat
        "    active: maybe\n"  # schema: true or false
        "  Bob:\n"  # capability: CometChat uids are lower case
        "    nmae: Bob\n"  # schema: unknown field, name missing
        "bans:\n  carol: {until: forever}\n"  # capability: no bans on CometChat
    )
    lines = refused(validate(manifest, cwd=tmp_path))
    assert [line.split(": ", 1)[0].removeprefix(str(manifest)) for line in lines] == [
        ":9:5",
        ":10:13",
        ":11:3",
        ":12:5",
        ":13:1",
    ]
    text = "\n".join(lines)
    assert "'whitelist' is not supported by the cometchat provider" in text
    assert "must be true or false" in text
    assert "'Bob' is not a valid uid for cometchat" in text
    assert "unknown field 'nmae'" in text
    assert "'bans' (app-level bans) are not supported" in text


def test_a_credential_written_out_is_refused_by_validate(tmp_path: Path) -> None:
    manifest = tmp_path / "leak.yaml"
    manifest.write_text(
        "version: 1\nprovider:\n  type: nexconn\n  region: sg\n"
        "  app_key: ${NEXCONN_APP_KEY}\n  app_secret: supersecretvalue123\n"
    )
    result = validate(manifest, cwd=tmp_path)
    [line] = refused(result)
    assert line.startswith(f"{manifest}:6:15: provider.app_secret is written out")
    assert "supersecretvalue123" not in result.stderr
    assert "write app_secret: ${NEXCONN_APP_SECRET}" in result.stderr


def test_a_huge_number_is_a_problem_not_a_traceback(tmp_path: Path) -> None:
    manifest = tmp_path / "big.yaml"
    manifest.write_text(f"version: 1\npolicy:\n  max_deactivate: {'9' * 5000}\n")
    [line] = refused(validate(manifest, cwd=tmp_path))
    assert line.startswith(f"{manifest}:3:19: number too large")


def test_a_nul_in_the_local_path_is_refused_before_plan(tmp_path: Path) -> None:
    manifest = tmp_path / "nul.yaml"
    manifest.write_text('version: 1\nprovider:\n  type: local\n  path: "a\\0b.db"\n')
    [line] = refused(validate(manifest, cwd=tmp_path))
    assert line.startswith(f"{manifest}:4:9: ")
    assert list(tmp_path.iterdir()) == [manifest]


@pytest.mark.parametrize("kind", ["fifo", "device"])
def test_a_fifo_or_a_device_fails_at_once(tmp_path: Path, kind: str) -> None:
    path = Path("/dev/zero")
    if kind == "fifo":
        path = tmp_path / "m.yaml"
        os.mkfifo(path)
    [line] = refused(validate(path, cwd=tmp_path))
    assert line == (f"{path}:1:1: not a regular file; give a manifest file or a directory of *.yaml files")
