"""Guards for the safety limits and the pruning rules, as a user meets them: the real
`chatroster` CLI as a subprocess on a real SQLite file.

Each test was checked against a hand-made mutation of the rule it names (a limit left
out of the safety check, prune ignoring `protected`, prune deactivating users that are
already inactive): it fails on the mutant and passes on the real code.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from local_app import Edit, chatroster, platform, rewrite, store

OWNER = "ops"
UIDS = ("u1", "u2", "u3", "u4")


def write(path: Path, document: dict[str, Any]) -> None:
    path.write_text(yaml.safe_dump(document, sort_keys=False))


def manifest(tmp_path: Path, **extra: Any) -> Path:
    """Four users owned by ``ops``, applied once: every later run starts from that."""
    path = tmp_path / "users.yaml"
    users = {uid: {"name": f"User {uid}"} for uid in UIDS}
    write(
        path,
        {
            "version": 1,
            "provider": {"type": "local", "path": "app.db"},
            "owner": OWNER,
            **extra,
            "users": users,
        },
    )
    first = chatroster("apply", str(path), "--yes", "--force", cwd=tmp_path)
    assert first.returncode == 0, first.stdout + first.stderr
    return path


def planned(path: Path) -> list[tuple[str, str]]:
    result = chatroster("plan", str(path), "--format", "json", "--force", cwd=path.parent)
    assert result.returncode == 0, result.stderr
    return [(c["action"], c["uid"]) for c in json.loads(result.stdout)["changes"]]


def set_policy(**policy: Any) -> Edit:
    return lambda d: d.setdefault("policy", {}).update(policy)


def drop_users(*uids: str) -> Edit:
    return lambda d: [d["users"].pop(uid) for uid in uids]


def drop_bans(*uids: str) -> Edit:
    return lambda d: [d["bans"].pop(uid) for uid in uids]


def rename(*uids: str) -> Edit:
    return lambda d: [d["users"][uid].update(name=f"Renamed {uid}") for uid in uids]


# ------------------------------------------------------------------ each limit

# limit -> (what the manifest starts with, the edit that makes two such changes,
#           the action the plan then holds twice)
LIMITS: dict[str, tuple[dict[str, Any], Edit, str]] = {
    "max_deactivate": ({"policy": {"prune": "deactivate"}}, drop_users("u1", "u2"), "deactivate_user"),
    "max_delete": ({"policy": {"prune": "delete"}}, drop_users("u1", "u2"), "delete_user"),
    "max_unban": ({"bans": {uid: {"until": "forever"} for uid in UIDS}}, drop_bans("u1", "u2"), "unban_user"),
    "max_update": ({}, rename("u1", "u2"), "update_user"),
}


@pytest.mark.parametrize("limit", sorted(LIMITS))
def test_each_safety_limit_refuses_changes_over_it_unless_forced(tmp_path: Path, limit: str) -> None:
    start, edit, action = LIMITS[limit]
    path = manifest(tmp_path, **start)
    rewrite(path, edit)
    assert [a for a, _ in planned(path)] == [action, action]

    rewrite(path, set_policy(**{limit: 1}))  # two changes, one allowed: over the limit
    before = platform(path)
    shown = chatroster("plan", str(path), "--detailed-exitcode", cwd=tmp_path)
    assert shown.returncode == 3, shown.stdout + shown.stderr
    refused = chatroster("apply", str(path), "--yes", cwd=tmp_path)
    assert refused.returncode == 3, refused.stdout + refused.stderr
    assert f"policy.{limit} limit of 1" in refused.stderr and "--force" in refused.stderr
    assert "2 of 4 users (50%)" in refused.stderr
    assert platform(path) == before, "a refused apply changed the platform"

    rewrite(path, set_policy(**{limit: 2}))  # exactly at the limit: not refused
    at_limit = chatroster("plan", str(path), "--detailed-exitcode", cwd=tmp_path)
    assert at_limit.returncode == 2, at_limit.stdout + at_limit.stderr

    rewrite(path, set_policy(**{limit: 0}))
    forced = chatroster("apply", str(path), "--yes", "--force", cwd=tmp_path)
    assert forced.returncode == 0, forced.stdout + forced.stderr
    assert chatroster("plan", str(path), "--detailed-exitcode", cwd=tmp_path).returncode == 0


def test_a_percentage_limit_is_a_share_of_the_managed_users(tmp_path: Path) -> None:
    path = manifest(tmp_path, bans={uid: {"until": "forever"} for uid in UIDS})
    rewrite(path, lambda d: (drop_bans("u1", "u2")(d), set_policy(max_unban="25%")(d)))
    refused = chatroster("apply", str(path), "--yes", cwd=tmp_path)
    assert refused.returncode == 3, refused.stdout + refused.stderr
    assert "policy.max_unban limit of 25%" in refused.stderr
    rewrite(path, set_policy(max_unban="50%"))
    assert chatroster("apply", str(path), "--yes", cwd=tmp_path).returncode == 0


def test_updates_that_only_fill_empty_fields_do_not_count_against_max_update(
    tmp_path: Path,
) -> None:
    path = manifest(tmp_path, policy={"max_update": 0})
    rewrite(path, lambda d: [user.update(avatar="https://example.com/a.png") for user in d["users"].values()])
    assert [a for a, _ in planned(path)] == ["update_user"] * 4
    filled = chatroster("apply", str(path), "--yes", cwd=tmp_path)
    assert filled.returncode == 0, filled.stdout + filled.stderr
    rewrite(path, lambda d: d["users"]["u1"].update(avatar="https://example.com/b.png"))
    overwritten = chatroster("apply", str(path), "--yes", cwd=tmp_path)
    assert overwritten.returncode == 3 and "policy.max_update" in overwritten.stderr


# ---------------------------------------------------------------------- pruning


@pytest.mark.parametrize("prune", ["deactivate", "delete"])
def test_protected_users_are_never_pruned(tmp_path: Path, prune: str) -> None:
    path = manifest(
        tmp_path,
        policy={"prune": prune, "max_deactivate": "100%", "max_delete": "100%", "protected": ["u1", "u2"]},
    )
    rewrite(path, drop_users("u1", "u2", "u3"))
    assert planned(path) == [(f"{prune}_user", "u3")]
    applied = chatroster("apply", str(path), "--yes", cwd=tmp_path)
    assert applied.returncode == 0, applied.stdout + applied.stderr
    with store(path) as db:
        users = db.all_users()
    assert users["u1"].active and users["u2"].active
    assert ("u3" not in users) if prune == "delete" else (users["u3"].active is False)


def test_a_ban_of_a_protected_user_is_refused_before_anything_is_written(
    tmp_path: Path,
) -> None:
    path = manifest(tmp_path, policy={"protected": ["u1"]})
    rewrite(path, lambda d: d.update(bans={"u1": {"until": "forever"}, "u2": {"until": "forever"}}))
    before = platform(path)
    refused = chatroster("apply", str(path), "--yes", "--force", cwd=tmp_path)
    assert refused.returncode == 1, refused.stdout + refused.stderr
    assert "'u1' is protected" in refused.stderr and "bans.u1" in refused.stderr
    assert platform(path) == before


def test_prune_leaves_users_that_are_already_deactivated_alone(tmp_path: Path) -> None:
    path = manifest(tmp_path, policy={"prune": "deactivate", "max_deactivate": 1})
    with store(path) as db:
        db.set_active(["u3"], False)  # deactivated by hand, still owned by ops
    rewrite(path, drop_users("u2", "u3"))
    # One deactivation only (u2): u3 needs none, and must not count against the limit.
    assert planned(path) == [("deactivate_user", "u2")]
    applied = chatroster("apply", str(path), "--yes", cwd=tmp_path)
    assert applied.returncode == 0, applied.stdout + applied.stderr
    with store(path) as db:
        users = db.all_users()
    assert [users[uid].active for uid in UIDS] == [True, False, False, True]
    again = chatroster("plan", str(path), "--detailed-exitcode", cwd=tmp_path)
    assert again.returncode == 0, again.stdout
