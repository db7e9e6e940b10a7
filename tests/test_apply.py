"""Apply as a user runs it: progress, interruption, failures (real processes)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import yaml
from emulator_process import EmulatorProcess
from test_cli import chatroster

from chatroster.emulator.config import DEFAULT_APP_KEY, DEFAULT_APP_SECRET
from chatroster.store import Store


def big_manifest(path: Path, n: int) -> None:
    users = {
        f"u{i}": {"name": f"User {i}", "tags": ["t"], "blocklist": [f"u{(i + 1) % n}"]} for i in range(n)
    }
    path.write_text(yaml.safe_dump({"version": 1, "provider": {"type": "local"}, "users": users}))


def test_progress_goes_to_stderr_and_the_summary_to_stdout(tmp_path: Path) -> None:
    manifest = tmp_path / "many.yaml"
    big_manifest(manifest, 600)
    result = chatroster("apply", str(manifest), "--yes", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "applied 1200/1200 changes (100%)" in result.stderr
    assert "applied" not in result.stdout.replace("Applied 1200", "")
    assert result.stdout.rstrip().endswith("Applied 1200 change(s).")


def test_an_apply_killed_half_way_is_finished_by_running_it_again(tmp_path: Path) -> None:
    manifest = tmp_path / "many.yaml"
    big_manifest(manifest, 20_000)
    process = subprocess.Popen(
        [sys.executable, "-m", "chatroster", "apply", str(manifest), "--yes"],
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "NO_COLOR": "1"},
    )
    assert process.stderr is not None
    for line in process.stderr:  # wait until some batches are committed, then kill
        if "applied" in line:
            break
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    process.stderr.close()
    db = Store(tmp_path / ".chatroster" / "local.db")
    try:
        created = len(db.all_users())
        blocks = sum(len(t) for t in db.relations("blocks").values())
        assert created + blocks < 40_000, "killed too late to show anything"
        again = chatroster("apply", str(manifest), "--yes", cwd=tmp_path)
        assert again.returncode == 0, again.stderr
        assert len(db.all_users()) == 20_000
        assert sum(len(t) for t in db.relations("blocks").values()) == 20_000
    finally:
        db.close()
    final = chatroster("plan", str(manifest), "--detailed-exitcode", cwd=tmp_path)
    assert final.returncode == 0, final.stdout[-2000:]


def nexconn_manifest(path: Path, emulator: EmulatorProcess, users: dict) -> None:  # type: ignore[type-arg]
    path.write_text(
        yaml.safe_dump(
            {
                "version": 1,
                "provider": {
                    "type": "nexconn",
                    "url": emulator.base_url,
                    "app_key": "${NEXCONN_APP_KEY}",
                    "app_secret": "${NEXCONN_APP_SECRET}",
                },
                "users": users,
            }
        )
    )


CREDENTIALS = {"NEXCONN_APP_KEY": DEFAULT_APP_KEY, "NEXCONN_APP_SECRET": DEFAULT_APP_SECRET}


def test_continue_on_error_goes_past_a_failed_change_and_reports_it(
    tmp_path: Path, emulator: EmulatorProcess
) -> None:
    manifest = tmp_path / "team.yaml"
    nexconn_manifest(
        manifest,
        emulator,
        {
            "alice": {"name": "Alice", "active": False},
            "bob": {"name": "Bob"},
            "carol": {"name": "Carol"},
        },
    )
    first = chatroster("apply", str(manifest), "--yes", cwd=tmp_path, env=CREDENTIALS)
    assert first.returncode == 0, first.stderr
    # Nexconn refuses to restore a user within an hour of the soft-delete.
    nexconn_manifest(
        manifest,
        emulator,
        {
            "alice": {"name": "Alice", "active": True},
            "bob": {"name": "Bob", "blocklist": ["carol"]},
            "carol": {"name": "Carol"},
        },
    )
    # The reactivation and bob's block are independent, so they start together on their
    # own lanes; the failure stops the run from taking more work, not the block in flight.
    stopped = chatroster("apply", str(manifest), "--yes", "-v", cwd=tmp_path, env=CREDENTIALS)
    assert stopped.returncode == 1
    # Alice's adoption and fields (Nexconn's restore brings back the uid alone) wait for
    # her reactivation, so they are not attempted.
    assert "reactivate_user:alice" in stopped.stderr and "3 change(s) failed, 1 applied" in stopped.stderr
    assert "not attempted: reactivate_user:alice failed" in stopped.stderr
    # -v: each batch with its action, size and outcome.
    assert "reactivate_user: batch of 1: 0 done, 1 failed" in stopped.stderr
    assert "add_block: batch of 1: 1 done" in stopped.stderr
    went_on = chatroster(
        "apply", str(manifest), "--yes", "--continue-on-error", cwd=tmp_path, env=CREDENTIALS
    )
    assert went_on.returncode == 1
    assert "reactivate_user:alice" in went_on.stderr and "3 change(s) failed, 0 applied" in went_on.stderr
    left = chatroster("plan", str(manifest), "--format", "json", cwd=tmp_path, env=CREDENTIALS)
    assert '"reactivate_user"' in left.stdout and '"add_block"' not in left.stdout
