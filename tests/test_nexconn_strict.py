"""chatroster against an emulator as strict as Nexconn: what the vendor refuses is
reported so that the user knows what to do, and what the vendor does not say is never
guessed. The CLI runs as a subprocess against the emulator on loopback.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml
from emulator_process import EmulatorProcess


def chatroster(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [sys.executable, "-m", "chatroster", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=180,
        env={
            **{k: v for k, v in os.environ.items() if not k.startswith("NEXCONN_")},
            "NO_COLOR": "1",
        },
    )
    assert "Traceback" not in result.stdout + result.stderr
    return result


def manifest(tmp_path: Path, emulator: EmulatorProcess, users: dict[str, Any], **provider: Any) -> Path:
    path = tmp_path / "team.yaml"
    document = {
        "version": 1,
        "provider": {
            "type": "nexconn",
            "url": emulator.base_url,
            "app_key": "${NEXCONN_APP_KEY:-emulator-app-key}",
            "app_secret": "${NEXCONN_APP_SECRET:-emulator-app-secret}",
            **provider,
        },
        "owner": "ops",
        "users": users,
    }
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return path


def test_an_undeclared_ext_key_fails_naming_it_and_where_to_declare_it(
    tmp_path: Path, emulator: EmulatorProcess
) -> None:
    users = {
        "alice": {"name": "Alice", "profile": {"ext": {"ext_dept": "eng", "ext_vip": "yes"}}},
        "bob": {"name": "Bob", "profile": {"ext": {"ext_dept": "ops"}}},
    }
    path = manifest(tmp_path, emulator, users)
    result = chatroster("apply", str(path), "--yes", cwd=tmp_path)
    assert result.returncode == 1
    assert "create_user:alice" in result.stderr and "create_user:bob" not in result.stderr
    assert "ext_vip" in result.stderr
    assert "Chat > User profile hosting > Extended fields" in result.stderr


def test_only_the_vendors_not_found_answer_makes_a_user_absent(
    tmp_path: Path, emulator_factory: Callable[..., EmulatorProcess]
) -> None:
    # Every user/get fails (HTTP 500/503): the plan fails instead of planning to
    # register users it could not see.
    faulty = emulator_factory("--fault-rate", "1", "--fault-kinds", "error", "--fault-paths", "/v4/user/get")
    path = manifest(tmp_path, faulty, {"alice": {"name": "Alice"}})
    result = chatroster("plan", str(path), "--format", "json", cwd=tmp_path)
    assert result.returncode == 1
    assert "create_user" not in result.stdout and "/v4/user/get" in result.stderr
    # The same emulator's not-found answer (code 24366) is what plans a registration.
    clean = emulator_factory(db=faulty.db_path)
    path = manifest(tmp_path, clean, {"alice": {"name": "Alice"}})
    planned = chatroster("plan", str(path), "--format", "json", cwd=tmp_path)
    assert planned.returncode == 0, planned.stderr
    assert [c["action"] for c in json.loads(planned.stdout)["changes"]] == ["create_user"]
