"""Guards for `apply --plan`, as a user meets it: the real `chatroster` CLI as a
subprocess on a real SQLite file, with the platform changed behind the plan's back the
way another person or job would change it.

Each test was checked against a hand-made mutation of the rule it names (relation
fingerprints that record nothing, user fingerprints without ownership, the owner check
of a saved plan switched off): it fails on the mutant and passes on the real code.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
import yaml
from local_app import chatroster, platform, rewrite, store

OWNER = "ops"


@pytest.fixture
def app(tmp_path: Path) -> Path:
    """alice, bob and carol, owned by ``ops`` and applied once."""
    path = tmp_path / "users.yaml"
    document = {
        "version": 1,
        "provider": {"type": "local", "path": "app.db"},
        "owner": OWNER,
        "policy": {"prune": "delete", "max_deactivate": "100%", "max_delete": "100%"},
        "users": {uid: {"name": uid.title()} for uid in ("alice", "bob", "carol")},
        "bans": {},
    }
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    first = chatroster("apply", str(path), "--yes", cwd=tmp_path)
    assert first.returncode == 0, first.stdout + first.stderr
    return path


def save_plan(app: Path, *extra: str) -> Path:
    out = app.parent / "plan.json"
    made = chatroster("plan", str(app), "--out", str(out), *extra, cwd=app.parent)
    assert made.returncode == 0, made.stdout + made.stderr
    return out


def planned_keys(plan: Path) -> list[str]:
    changes = json.loads(plan.read_text())["changes"]
    return [":".join(filter(None, (c["action"], c["uid"], c.get("target")))) for c in changes]


def apply_plan(app: Path, plan: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return chatroster("apply", "--plan", str(plan), str(app), "--yes", *extra, cwd=app.parent)


# ------------------------------------------------------------- relation changes


@pytest.mark.parametrize(
    ("field", "table", "action"),
    [
        ("blocklist", "blocks", "add_block"),
        ("whitelist", "whitelist", "add_whitelist"),
    ],
)
def test_a_saved_relation_change_is_refused_when_its_user_is_gone_since(
    app: Path, field: str, table: str, action: str
) -> None:
    rewrite(app, lambda d: d["users"]["alice"].update({field: ["bob"]}))
    plan = save_plan(app)
    assert f"{action}:alice:bob" in planned_keys(plan)
    with store(app) as db:
        db.delete_users(["alice"])  # deleted in the dashboard after the review
    before = platform(app)

    result = apply_plan(app, plan)

    assert result.returncode == 1, result.stdout + result.stderr
    assert f"{action}:alice:bob: the object changed since the plan was made" in result.stderr
    assert platform(app) == before, "nothing may be applied from a stale plan"
    with store(app) as db:
        assert db.relations(table) == {}


# ----------------------------------------------------------------- ownership


def test_a_saved_update_never_writes_to_a_user_another_owner_took_since(app: Path) -> None:
    # The reviewed plan renames bob, who was ours. Another team then takes bob over.
    # Even with --allow-takeover at apply, the plan the reviewer saw took nothing over.
    rewrite(app, lambda d: d["users"]["bob"].update(name="Robert"))
    plan = save_plan(app)
    assert planned_keys(plan) == ["update_user:bob"]
    with store(app) as db:
        db.update_user("bob", {"owner": "other-team"})
    before = platform(app)

    for extra in (("--allow-takeover",), ()):
        result = apply_plan(app, plan, *extra)
        assert result.returncode == 1, result.stdout + result.stderr
        assert "update_user:bob: the object changed since the plan was made" in result.stderr
        assert platform(app) == before
    with store(app) as db:
        bob = db.get_user("bob")
    assert bob is not None and (bob.name, bob.owner) == ("Bob", "other-team")


@pytest.mark.parametrize("prune", ["deactivate", "delete"])
def test_a_saved_prune_is_refused_as_stale_when_the_user_changed_owner(app: Path, prune: str) -> None:
    # alice blocks carol, so carol is read at apply time whoever owns her by then.
    rewrite(
        app,
        lambda d: (
            d["users"].pop("carol"),
            d["policy"].update(prune=prune),
            d["users"]["alice"].update(blocklist=["carol"]),
        ),
    )
    with store(app) as db:
        db.add_relations("blocks", [("alice", "carol")])
    plan = save_plan(app)
    assert planned_keys(plan) == [f"{prune}_user:carol"]
    with store(app) as db:
        db.update_user("carol", {"owner": "other-team"})
    before = platform(app)

    result = apply_plan(app, plan)

    assert result.returncode == 1, result.stdout + result.stderr
    assert f"{prune}_user:carol: the object changed since the plan was made" in result.stderr
    assert platform(app) == before


@pytest.mark.parametrize("prune", ["deactivate", "delete"])
def test_a_saved_prune_of_a_user_another_owner_took_since_is_refused_not_skipped(
    app: Path, prune: str
) -> None:
    # As above, but nothing else names carol: once she is another team's, the live
    # state read at apply time leaves her out. Her absence from that read is not her
    # absence from the platform, so the prune is stale, not "already done".
    rewrite(app, lambda d: (d["users"].pop("carol"), d["policy"].update(prune=prune)))
    plan = save_plan(app)
    assert planned_keys(plan) == [f"{prune}_user:carol"]
    with store(app) as db:
        db.update_user("carol", {"owner": "other-team"})
    before = platform(app)

    result = apply_plan(app, plan)

    assert platform(app) == before
    assert result.returncode == 1, result.stdout + result.stderr
    assert f"{prune}_user:carol: the object changed since the plan was made" in result.stderr


def test_a_plan_file_whose_owner_was_edited_is_refused(app: Path) -> None:
    # Ban and block changes do not depend on ownership, so only the owner check can
    # tell that this plan was not made for this manifest's owner.
    rewrite(
        app,
        lambda d: (
            d["bans"].update(bob={"until": "forever"}),
            d["users"]["alice"].update(blocklist=["carol"]),
        ),
    )
    plan = save_plan(app)
    assert sorted(planned_keys(plan)) == ["add_block:alice:carol", "ban_user:bob"]
    data = json.loads(plan.read_text())
    data["owner"] = "someone-else"
    plan.write_text(json.dumps(data))
    before = platform(app)

    result = apply_plan(app, plan)

    assert result.returncode == 1, result.stdout + result.stderr
    assert "made for owner 'someone-else'" in result.stderr and f"'{OWNER}'" in result.stderr
    assert platform(app) == before
