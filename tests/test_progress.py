"""Progress on stderr while live state is read and while changes are applied: a live
line on a terminal, a line each tenth or 10 s in a CI log, never a line on stdout."""

from __future__ import annotations

import io
import json
import os
import pty
import re
import select
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml
from emulator_process import EmulatorProcess
from test_cli import chatroster

from chatroster.emulator.config import (
    DEFAULT_API_KEY,
    DEFAULT_APP_ID,
    DEFAULT_APP_KEY,
    DEFAULT_APP_SECRET,
)
from chatroster.render.progress import ERASE, Console, Meter, duration

PROGRESS = re.compile(r"(read|applied) \d+(/\d+)? ")
CREDENTIALS = {
    "NEXCONN_APP_KEY": DEFAULT_APP_KEY,
    "NEXCONN_APP_SECRET": DEFAULT_APP_SECRET,
    "COMETCHAT_API_KEY": DEFAULT_API_KEY,
}


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def meter(live: bool = False) -> tuple[Meter, io.StringIO, Clock]:
    stream, clock = io.StringIO(), Clock()
    return Meter(Console(stream, live=live), "applied", clock=clock), stream, clock


def lines(stream: io.StringIO) -> list[str]:
    return stream.getvalue().splitlines()


# ------------------------------------------------------------------------ the meter


def test_a_log_gets_a_line_at_each_tenth_of_the_work_not_one_per_item() -> None:
    progress, stream, clock = meter()
    for done in range(1001):
        clock.now = done / 100
        progress.update("changes", done, 1000)
    progress.close()
    shown = lines(stream)
    assert len(shown) == 10
    assert shown[0].startswith("  applied 100/1000 changes (10%)")
    assert shown[-1] == "  applied 1000/1000 changes (100%), 100/s"
    assert "100/s, about 4s left" in shown[5]


def test_a_slow_step_gets_a_line_every_10_seconds_between_tenths() -> None:
    progress, stream, clock = meter()
    for second in range(0, 35):
        clock.now = float(second)
        progress.update("changes", second, 10_000)
    assert [line.split(",")[0] for line in lines(stream)] == [
        "  applied 10/10000 changes (0%)",
        "  applied 20/10000 changes (0%)",
        "  applied 30/10000 changes (0%)",
    ]
    assert lines(stream)[0].endswith("1.0/s, about 2h 46m left")


def test_a_small_quick_step_prints_nothing_and_a_small_slow_one_does() -> None:
    progress, stream, clock = meter()
    for done in range(6):
        progress.update("changes", done, 5)
    progress.close()
    assert stream.getvalue() == ""
    slow, stream, clock = meter()
    slow.update("changes", 0, 5)
    clock.now = 12.0
    slow.update("changes", 1, 5)
    clock.now = 13.0
    slow.update("changes", 5, 5)
    slow.close()
    assert lines(stream) == [
        "  applied 1/5 changes (20%), 0.1/s, about 48s left",
        "  applied 5/5 changes (100%), 0.4/s",
    ]


def test_a_count_without_a_total_says_so_far_and_ends_on_the_last_count() -> None:
    reading, stream, clock = meter()
    reading.verb = "read"
    reading.update("list entries", 0, None)  # as a read starts a step
    for page in range(1, 31):
        clock.now = page * 1.0
        reading.update("list entries", page * 100, None)
    reading.update("users", 0, 50)  # the next step ends this one
    assert lines(stream) == [
        "  read 1000 list entries so far, 100/s",
        "  read 2000 list entries so far, 100/s",
        "  read 3000 list entries so far, 100/s",
    ]
    reading.update("list entries", 10, None)
    clock.now = 50.0
    reading.update("list entries", 20, None)
    reading.close()
    assert lines(stream)[-1] == "  read 20 list entries so far, 1.0/s"


def test_on_a_terminal_one_line_is_redrawn_in_place_and_cleared_at_the_end() -> None:
    progress, stream, clock = meter(live=True)
    for done in range(0, 1001, 10):
        clock.now = done / 100
        progress.update("changes", done, 1000)
    progress.console.line("[nexconn] POST /v4/user/get -> 200 (attempt 1, 3 ms)")
    progress.close()
    text = stream.getvalue()
    frames = text.split(ERASE)
    assert 10 <= len(frames) <= 102  # at most ten redraws a second, and the last one
    assert "\n" not in "".join(frames[:-3])  # in place: no line is added while it counts
    assert frames[-3] == "  applied 1000/1000 changes (100%), 100/s"
    # A log line goes above the live line, which is drawn again under it.
    assert frames[-2] == "[nexconn] POST /v4/user/get -> 200 (attempt 1, 3 ms)\n" + frames[-3]
    assert text.endswith(ERASE) and frames[-1] == ""


def test_time_left_reads_as_a_person_would_say_it() -> None:
    assert [duration(s) for s in (0.2, 7, 125, 3780)] == ["1s", "7s", "2m 05s", "1h 03m"]


# ---------------------------------------------------------------- through the CLI


def local_manifest(path: Path, n: int) -> Path:
    users = {
        f"u{i}": {
            "name": f"User {i}",
            "profile": {"email": f"u{i}@example.com"},
            **({"blocklist": [f"u{i + 1}"]} if i % 10 == 0 else {}),
        }
        for i in range(n)
    }
    path.write_text(yaml.safe_dump({"version": 1, "provider": {"type": "local"}, "users": users}))
    return path


def said(stderr: str, start: str) -> bool:
    """Whether a line of ``stderr`` starts with ``start`` (a rate may follow)."""
    return any(line.startswith(start) for line in stderr.splitlines())


def no_progress_on(stdout: str) -> None:
    assert "\r" not in stdout
    assert not [line for line in stdout.splitlines() if PROGRESS.match(line.strip())]


def test_stdout_stays_the_plan_while_a_local_read_and_apply_report_on_stderr(
    tmp_path: Path,
) -> None:
    manifest = local_manifest(tmp_path / "many.yaml", 3000)
    planned = chatroster("plan", str(manifest), "--format", "json", cwd=tmp_path)
    assert planned.returncode == 0, planned.stderr
    assert json.loads(planned.stdout)["summary"] == {"create_user": 3000, "add_block": 300}
    assert said(planned.stderr, "  read 3000/3000 users (100%)"), planned.stderr
    no_progress_on(planned.stdout)
    applied = chatroster("apply", str(manifest), "--yes", cwd=tmp_path)
    assert applied.returncode == 0, applied.stderr
    counts = re.findall(r"^  applied (\d+)/3300 changes", applied.stderr, re.MULTILINE)
    # The local platform writes a batch (500) in one transaction: a line per batch, as
    # each passes a tenth of the work.
    assert counts == ["500", "1000", "1500", "2000", "2500", "3000", "3300"]
    no_progress_on(applied.stdout)
    assert applied.stdout.rstrip().endswith("Applied 3300 change(s).")
    for fmt in ("markdown", "json"):
        drift = chatroster("drift", str(manifest), "--format", fmt, cwd=tmp_path)
        assert drift.returncode == 0, drift.stderr
        assert said(drift.stderr, "  read 3000/3000 users (100%)"), drift.stderr
        assert said(drift.stderr, "  read 300/300 blocklists (100%)"), drift.stderr
        no_progress_on(drift.stdout)


def test_on_a_terminal_the_live_line_is_on_stderr_and_cleared_before_the_plan(
    tmp_path: Path,
) -> None:
    manifest = local_manifest(tmp_path / "many.yaml", 3000)
    primary, secondary = pty.openpty()
    with open(tmp_path / "stdout.json", "w") as stdout:
        process = subprocess.Popen(
            [sys.executable, "-m", "chatroster", "plan", str(manifest), "--format", "json"],
            cwd=tmp_path,
            stdout=stdout,
            stderr=secondary,
            env={**os.environ, "NO_COLOR": "1", "TERM": "xterm"},
        )
    os.close(secondary)
    terminal = b""
    while select.select([primary], [], [], 120)[0]:  # bounded: never waits forever
        try:
            chunk = os.read(primary, 65536)
        except OSError:  # the process closed the terminal
            break
        if not chunk:
            break
        terminal += chunk
    os.close(primary)
    assert process.wait(timeout=120) == 0, terminal
    shown = terminal.decode()
    assert f"{ERASE}  read 3000/3000 users (100%)" in shown
    assert shown.endswith(ERASE)  # cleared: the terminal is left as it was
    plan = (tmp_path / "stdout.json").read_text()
    assert json.loads(plan)["summary"]["create_user"] == 3000
    no_progress_on(plan)


def vendor_manifest(path: Path, provider: dict[str, Any], n: int, blocking: int) -> Path:
    """``n`` users, every ``blocking``-th of them blocking the next one."""
    users = {
        f"u{i}": {
            "name": f"User {i}",
            "tags": ["staff"],
            **({"blocklist": [f"u{(i + 1) % n}"]} if i % blocking == 0 else {}),
        }
        for i in range(n)
    }
    path.write_text(yaml.safe_dump({"version": 1, "provider": provider, "users": users}))
    return path


def test_nexconn_reads_and_applies_through_the_emulator_with_progress_on_stderr(
    tmp_path: Path, emulator: EmulatorProcess
) -> None:
    provider = {
        "type": "nexconn",
        "url": emulator.base_url,
        "rate": 1000,
        "app_key": "${NEXCONN_APP_KEY}",
        "app_secret": "${NEXCONN_APP_SECRET}",
    }
    manifest = vendor_manifest(tmp_path / "nexconn.yaml", provider, 300, blocking=1)
    applied = chatroster("apply", str(manifest), "--yes", cwd=tmp_path, env=CREDENTIALS)
    assert applied.returncode == 0, applied.stderr
    assert said(applied.stderr, "  read 300/300 users (100%)"), applied.stderr
    # One batch of 300 creates: progress moves as each user is written, not at the end.
    inside = re.findall(r"^  applied (\d+)/600 changes", applied.stderr, re.MULTILINE)
    assert len([count for count in inside if int(count) < 300]) >= 4, applied.stderr
    no_progress_on(applied.stdout)
    planned = chatroster("plan", str(manifest), "--format", "json", cwd=tmp_path, env=CREDENTIALS)
    assert planned.returncode == 0, planned.stderr
    assert json.loads(planned.stdout)["changes"] == []
    assert said(planned.stderr, "  read 300/300 users (100%)"), planned.stderr
    # Then 300 blocklists and the tag and profile batch calls, counted call by call.
    details = re.findall(
        r"^  read (\d+)/(\d+) calls for tags, profiles and lists", planned.stderr, re.MULTILINE
    )
    assert len(details) == 10 and details[-1][0] == details[-1][1], planned.stderr
    assert int(details[-1][1]) > 300
    no_progress_on(planned.stdout)


def test_cometchat_reads_page_by_page_through_the_emulator_with_progress_on_stderr(
    tmp_path: Path, emulator: EmulatorProcess
) -> None:
    provider = {
        "type": "cometchat",
        "url": emulator.base_url,
        "app_id": DEFAULT_APP_ID,
        "api_key": "${COMETCHAT_API_KEY}",
    }
    manifest = vendor_manifest(tmp_path / "cometchat.yaml", provider, 250, blocking=10)
    applied = chatroster("apply", str(manifest), "--yes", cwd=tmp_path, env=CREDENTIALS)
    assert applied.returncode == 0, applied.stderr
    assert said(applied.stderr, "  applied 275/275 changes (100%)"), applied.stderr
    planned = chatroster("plan", str(manifest), "--format", "markdown", cwd=tmp_path, env=CREDENTIALS)
    assert planned.returncode == 0, planned.stderr
    assert said(planned.stderr, "  read 250/250 active users (100%)"), planned.stderr
    assert "No changes" in planned.stdout
    no_progress_on(planned.stdout)
