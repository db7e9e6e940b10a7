"""Ctrl-C and refusals tell the truth: what was applied, and a non-zero exit when the
manifest is not converged (real processes, a real SQLite file)."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from test_apply import big_manifest
from test_cli import chatroster

from chatroster.changes import Action, Change
from chatroster.safety import overwrites
from chatroster.store import Store

APPLIED = re.compile(r"interrupted: applied (\d+) of (\d+) change\(s\)")


def start_apply(manifest: Path) -> subprocess.Popen[str]:
    """stdout (the plan: 40k lines) goes to a file, so that the pipe never fills while
    the test reads stderr; read it back with `stdout_of`."""
    with open(manifest.parent / "stdout.txt", "w") as stdout:
        return subprocess.Popen(
            [sys.executable, "-m", "chatroster", "apply", str(manifest), "--yes"],
            cwd=manifest.parent,
            stdout=stdout,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "NO_COLOR": "1"},
        )


def wait_for_progress(process: subprocess.Popen[str]) -> list[str]:
    """Read stderr until the first progress line: some batches are committed."""
    assert process.stderr is not None
    seen = []
    for line in process.stderr:
        seen.append(line)
        if "applied" in line:
            return seen
    raise AssertionError("apply ended before any progress: " + "".join(seen))


def written(tmp_path: Path) -> tuple[int, int]:
    db = Store(tmp_path / ".chatroster" / "local.db")
    try:
        return len(db.all_users()), sum(len(t) for t in db.relations("blocks").values())
    finally:
        db.close()


def test_ctrl_c_stops_between_batches_and_reports_exactly_what_was_applied(tmp_path: Path) -> None:
    manifest = tmp_path / "many.yaml"
    big_manifest(manifest, 20_000)
    process = start_apply(manifest)
    wait_for_progress(process)
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=120)
    out = (tmp_path / "stdout.txt").read_text()
    assert process.returncode == 130, err
    assert "nothing was changed" not in err
    found = APPLIED.search(err)
    assert found, err
    users, blocks = written(tmp_path)
    assert int(found.group(1)) == users + blocks  # the report matches the store exactly
    assert 0 < users + blocks < 40_000
    assert f"create_user {users} of 20000" in err
    assert "run the same command again to finish" in err.lower()
    assert "Applied" not in out
    again = chatroster("apply", str(manifest), "--yes", cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert written(tmp_path) == (20_000, 20_000)


def test_a_second_ctrl_c_stops_at_once_and_says_what_is_known(tmp_path: Path) -> None:
    manifest = tmp_path / "many.yaml"
    big_manifest(manifest, 20_000)
    process = start_apply(manifest)
    wait_for_progress(process)
    process.send_signal(signal.SIGINT)
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=120)
    assert process.returncode == 130, err
    found = APPLIED.search(err)
    assert found, err
    users, blocks = written(tmp_path)
    reported = int(found.group(1))
    in_flight = re.search(r"(\d+) more change\(s\) were in flight", err)
    # A batch is one transaction on the local platform: the one in flight is either in
    # or out, and the report never claims less than the store holds.
    assert reported <= users + blocks <= reported + (int(in_flight.group(1)) if in_flight else 0)
    assert "nothing was changed" not in err.lower()


def test_ctrl_c_before_apply_starts_changes_nothing_and_exits_130(tmp_path: Path) -> None:
    manifest = tmp_path / "many.yaml"
    big_manifest(manifest, 20_000)
    process = subprocess.Popen(
        [sys.executable, "-m", "chatroster", "plan", str(manifest)],
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        process.wait(timeout=0.5)
    except subprocess.TimeoutExpired:
        process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=60)
    if process.returncode == 0:
        pytest.skip("the plan finished before the interrupt arrived")  # a very fast machine
    assert process.returncode == 130, err
    assert "nothing was changed" in err and "Traceback" not in err


# ------------------------------------------------------------------- takeovers


@pytest.fixture
def taken(tmp_path: Path) -> Path:
    """alice belongs to team-a; the returned manifest of team-b declares her."""
    mine = {
        "version": 1,
        "provider": {"type": "local", "path": "s.db"},
        "owner": "team-a",
        "users": {"alice": {"name": "Alice"}},
    }
    (tmp_path / "a.yaml").write_text(yaml.safe_dump(mine))
    assert chatroster("apply", "a.yaml", "--yes", cwd=tmp_path).returncode == 0
    theirs = {**mine, "owner": "team-b", "users": {"alice": {"name": "Alicia"}, "bob": {"name": "Bob"}}}
    (tmp_path / "b.yaml").write_text(yaml.safe_dump(theirs))
    return tmp_path / "b.yaml"


@pytest.mark.parametrize(
    "args",
    [
        ("plan",),
        ("plan", "--detailed-exitcode"),
        ("apply", "--yes"),
        ("apply", "--yes", "--force"),
    ],
)
def test_a_refused_takeover_leaves_the_manifest_unconverged_and_exits_3(
    taken: Path, args: tuple[str, ...]
) -> None:
    result = chatroster(args[0], str(taken), *args[1:], cwd=taken.parent)
    assert result.returncode == 3, result.stdout + result.stderr
    assert "alice" in result.stderr and "--allow-takeover" in result.stderr


def test_a_refused_takeover_with_nothing_else_to_do_still_exits_3(taken: Path) -> None:
    chatroster("apply", str(taken), "--yes", "--target", "bob", cwd=taken.parent)
    result = chatroster("apply", str(taken), "--yes", cwd=taken.parent)
    assert result.returncode == 3, result.stdout + result.stderr
    assert "No changes planned, but 1 user(s) refused" in result.stdout


def test_drift_reports_a_refused_takeover_and_exits_2(taken: Path) -> None:
    chatroster("apply", str(taken), "--yes", "--target", "bob", cwd=taken.parent)
    result = chatroster("drift", str(taken), cwd=taken.parent)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "alice" in result.stdout and "team-a" in result.stdout


def test_allow_takeover_converges_and_exits_0(taken: Path) -> None:
    result = chatroster("apply", str(taken), "--yes", "--allow-takeover", cwd=taken.parent)
    assert result.returncode == 0, result.stderr
    final = chatroster("plan", str(taken), "--detailed-exitcode", cwd=taken.parent)
    assert final.returncode == 0, final.stdout


# --------------------------------------------------------- what counts as an update


@pytest.mark.parametrize(
    "before,after,loses",
    [
        ({"name": None}, {"name": "Alice"}, False),
        ({"name": ""}, {"name": "Alice"}, False),
        ({"name": "Al"}, {"name": "Alice"}, True),
        ({"tags": []}, {"tags": ["a"]}, False),
        ({"tags": ["a"]}, {"tags": ["a", "b"]}, False),
        ({"tags": ["a", "b"]}, {"tags": ["a"]}, True),
        ({"profile": {}}, {"profile": {"email": "a@example.com"}}, False),
        ({"profile": {"level": 1}}, {"profile": {"level": 1, "email": "a@example.com"}}, False),
        ({"profile": {"level": 1}}, {"profile": {"level": 2}}, True),
        ({"profile": {"level": 1}}, {"profile": {"email": "a@example.com"}}, True),
        ({"metadata": {"team": "core"}}, {"metadata": {}}, True),
        ({"avatar": "https://a"}, {"avatar": None}, True),
    ],
)
def test_an_update_counts_against_max_update_only_when_it_can_lose_data(
    before: dict, after: dict, loses: bool
) -> None:  # type: ignore[type-arg]
    assert overwrites(Change(Action.UPDATE_USER, "u1", before=before, after=after)) is loses


def test_a_rerun_that_only_fills_empty_fields_needs_no_force(tmp_path: Path) -> None:
    manifest = tmp_path / "m.yaml"
    users = {f"u{i}": {"name": f"User {i}", "tags": ["t"], "avatar": f"https://a/{i}"} for i in range(20)}
    manifest.write_text(yaml.safe_dump({"version": 1, "provider": {"type": "local"}, "users": users}))
    assert chatroster("apply", str(manifest), "--yes", cwd=tmp_path).returncode == 0
    db = Store(tmp_path / ".chatroster" / "local.db")
    for i in range(20):  # as a crashed run leaves them: registered, nothing else written
        db.update_user(f"u{i}", {"tags": [], "avatar": None})
    db.close()
    result = chatroster("apply", str(manifest), "--yes", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    # The same share of updates that overwrite values is refused: the limit still holds.
    for user in users.values():
        user["avatar"] += "/new"
    manifest.write_text(yaml.safe_dump({"version": 1, "provider": {"type": "local"}, "users": users}))
    refused = chatroster("apply", str(manifest), "--yes", cwd=tmp_path)
    assert refused.returncode == 3 and "max_update" in refused.stderr
