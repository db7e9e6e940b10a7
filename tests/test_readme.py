"""The README's Quick start, run as a new user runs it: the main job, then the tests,
in a fresh copy of the repository. Files the first command leaves behind (the example's
SQLite store) must not break the second.

This installs the package into a new virtual environment from the package index, as
the README does, so it takes a minute; the second command runs only the test that the
first command's leftovers once broke, since the whole suite is already this run."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
COPIED = ("README.md", "pyproject.toml", "src", "schemas", "examples", "tests")


def quick_start_commands() -> list[str]:
    """The shell blocks of the Quick start section, in order."""
    text = README.read_text(encoding="utf-8")
    section = text.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```sh\n(.+?)\n```", section, flags=re.S)


def fresh_copy(tmp_path: Path) -> Path:
    """The repository as a clone has it: no virtual environment, no stores, no caches."""
    clone = tmp_path / "chatroster"
    clone.mkdir()
    ignore = shutil.ignore_patterns(".chatroster", "__pycache__", "*.egg-info", ".venv")
    for name in COPIED:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, clone / name, ignore=ignore, symlinks=True)
        else:
            shutil.copy2(source, clone / name)
    return clone


def run(command: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    # As a user runs it: no CI settings (the copy has no ../shared beside it).
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in ("VIRTUAL_ENV", "CHATROSTER_REQUIRE_SPECS")
    }
    env["NO_COLOR"] = "1"
    return subprocess.run(
        ["bash", "-c", command], cwd=cwd, capture_output=True, text=True, env=env, timeout=900, check=False
    )


def test_the_quick_start_has_the_main_job_then_the_test_command() -> None:
    main_job, tests = quick_start_commands()
    assert "apply examples/quickstart.yaml --yes" in main_job
    assert "plan examples/quickstart.yaml --detailed-exitcode" in main_job
    assert tests.endswith(".venv/bin/python -m pytest")


def test_the_readme_commands_work_in_order_on_a_fresh_copy(tmp_path: Path) -> None:
    main_job, tests = quick_start_commands()
    clone = fresh_copy(tmp_path)
    first = run(main_job, clone)
    assert first.returncode == 0, first.stdout[-2000:] + first.stderr[-2000:]
    assert "No changes" in first.stdout
    assert (clone / "examples/.chatroster/quickstart.db").exists()  # what it leaves behind
    again = run(main_job, clone)  # and repeatedly
    assert again.returncode == 0, again.stderr[-2000:]
    # The test command as written, limited to the test the leftovers once broke.
    second = run(tests + " -q -p no:cacheprovider tests/test_cli.py -k quickstart", clone)
    assert second.returncode == 0, second.stdout[-3000:] + second.stderr[-2000:]
    assert re.search(r"\b1 passed\b", second.stdout), second.stdout[-2000:]
