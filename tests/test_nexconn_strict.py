"""chatroster against an emulator as strict as Nexconn: what the vendor refuses is
reported so that the user knows what to do, and what the vendor does not say is never
guessed. The CLI runs as a subprocess against the emulator on loopback.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml
from cli_process import chatroster
from emulator_process import EmulatorProcess

from chatroster.model import User
from chatroster.store import Store


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


# ------------------------------------------------------- development apps: 100 users


def seed_registered(emulator: EmulatorProcess, count: int) -> None:
    """Users registered outside chatroster (test users made by hand in the app)."""
    store = Store(emulator.db_path)
    store.insert_users([User(f"tester{i}", name=f"Tester {i}", profile={"level": 1}) for i in range(count)])
    store.close()


def issued(emulator: EmulatorProcess) -> int:
    by_endpoint = emulator.stats()["by_endpoint"]
    return sum(by_endpoint.get("POST /v4/auth/access-token/issue", {}).values())


def test_a_development_app_refuses_a_plan_over_100_registered_users_before_any_call(
    tmp_path: Path, emulator_factory: Callable[..., EmulatorProcess]
) -> None:
    emulator = emulator_factory("--nexconn-max-users", "100")
    seed_registered(emulator, 97)
    users = {f"new{i}": {"name": f"New {i}"} for i in range(5)}
    path = manifest(tmp_path, emulator, users, environment="development")
    planned = chatroster("plan", str(path), cwd=tmp_path)
    assert planned.returncode == 3, planned.stderr
    message = planned.stderr
    assert "97 registered users" in message and "registers 5 more" in message
    assert "limit of 100" in message and "provider.environment" in message
    applied = chatroster("apply", str(path), "--yes", "--force", cwd=tmp_path)
    assert applied.returncode == 3 and "limit of 100" in applied.stderr
    assert issued(emulator) == 0  # refused before any registration
    # Three fit: 100 registered is the limit, not over it.
    path = manifest(tmp_path, emulator, dict(list(users.items())[:3]), environment="development")
    fits = chatroster("apply", str(path), "--yes", cwd=tmp_path)
    assert fits.returncode == 0, fits.stderr
    assert chatroster("plan", str(path), "--detailed-exitcode", cwd=tmp_path).returncode == 0


def test_a_production_app_has_no_such_limit(
    tmp_path: Path, emulator_factory: Callable[..., EmulatorProcess]
) -> None:
    emulator = emulator_factory()
    seed_registered(emulator, 99)
    users = {f"new{i}": {"name": f"New {i}"} for i in range(2)}
    path = manifest(tmp_path, emulator, users)  # production, the default
    assert chatroster("apply", str(path), "--yes", cwd=tmp_path).returncode == 0


def test_an_unknown_environment_is_a_located_validation_error(
    tmp_path: Path, emulator: EmulatorProcess
) -> None:
    path = manifest(tmp_path, emulator, {"alice": {"name": "Alice"}}, environment="staging")
    result = chatroster("validate", str(path), cwd=tmp_path)
    assert result.returncode == 1
    assert "team.yaml:" in result.stderr and "environment" in result.stderr
    assert "development" in result.stderr and "production" in result.stderr


def test_more_declared_users_than_a_development_app_holds_is_a_validation_error(
    tmp_path: Path, emulator: EmulatorProcess
) -> None:
    users = {f"user{i}": {"name": f"User {i}"} for i in range(101)}
    path = manifest(tmp_path, emulator, users, environment="development")
    result = chatroster("validate", str(path), cwd=tmp_path)
    assert result.returncode == 1
    assert "team.yaml:" in result.stderr and "(provider.environment)" in result.stderr
    assert "101 users declared, over the development environment's limit of 100" in result.stderr
    assert emulator.stats()["total"] == 0  # offline: nothing was asked
    path = manifest(tmp_path, emulator, dict(list(users.items())[:100]), environment="development")
    assert chatroster("validate", str(path), cwd=tmp_path).returncode == 0
