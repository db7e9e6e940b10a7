"""The vendor specs beside the repository: present where the shared folder is, and a
test that needs a missing one skips (one line saying why) or fails, never silently."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from vendor_specs import (
    CONFORMANCE,
    REQUIRE,
    SPECS,
    header,
    missing_specs,
    required_but_missing,
    skip_is_a_failure,
)

TESTS = Path(__file__).resolve().parent

NEEDS_A_SPEC = """\
from pathlib import Path

import pytest

SPEC = Path(__file__).resolve().parents[2] / "shared" / "conformance" / "x" / "spec.json"


@pytest.mark.skipif(not SPEC.exists(), reason=f"the vendor's spec is not at {SPEC}")
def test_checks_against_the_spec() -> None:
    pass
"""


def test_every_spec_is_there_when_the_shared_folder_is() -> None:
    if not CONFORMANCE.is_dir():
        pytest.skip("../shared/conformance is not beside the repository (a clone on its own)")
    assert missing_specs() == [], header()


def test_the_header_says_in_one_line_where_the_specs_come_from(tmp_path: Path) -> None:
    absent = header(tmp_path / "conformance")
    (tmp_path / "conformance").mkdir()
    missing = header(tmp_path / "conformance")

    assert "\n" not in absent + missing
    assert "skipped" in absent
    assert "MISSING" in missing and all(name in missing for name in SPECS)


def test_a_skip_blaming_a_file_of_an_existing_shared_folder_is_a_failure(tmp_path: Path) -> None:
    folder = tmp_path / "conformance"
    reason = f"the vendor's OpenAPI file is not at {folder / 'nexconn' / 'openapi.yaml'}"

    assert not skip_is_a_failure(reason, folder)  # no shared folder: a plain skip
    folder.mkdir()
    assert skip_is_a_failure(reason, folder)
    assert not skip_is_a_failure("bash is not installed", folder)


def run_pytest(root: Path) -> subprocess.CompletedProcess[str]:
    # Without the installed plugins (hypothesis and the like): a second's start, not four.
    env = {key: value for key, value in os.environ.items() if key != REQUIRE}
    env = {**env, "PYTHONPATH": str(TESTS.parent / "src"), "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"}
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider", "tests"],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture
def scratch(tmp_path: Path) -> Path:
    """A repository of one test that needs a spec, with this suite's conftest."""
    tests = tmp_path / "repo" / "tests"
    tests.mkdir(parents=True)
    for name in ("conftest.py", "vendor_specs.py", "emulator_process.py"):
        shutil.copy(TESTS / name, tests / name)
    (tests / "test_needs_a_spec.py").write_text(NEEDS_A_SPEC)
    return tmp_path


def test_without_the_shared_folder_the_test_skips_saying_why(scratch: Path) -> None:
    done = run_pytest(scratch / "repo")

    assert done.returncode == 0, done.stdout + done.stderr
    assert "1 skipped" in done.stdout
    assert "the vendor's spec is not at" in done.stdout


def test_with_the_shared_folder_a_missing_spec_fails(scratch: Path) -> None:
    (scratch / "shared" / "conformance").mkdir(parents=True)

    done = run_pytest(scratch / "repo")

    assert done.returncode == 1, done.stdout + done.stderr
    assert "skipped" not in done.stdout.splitlines()[-1]
    assert "should too" in done.stdout


def test_in_ci_missing_specs_stop_the_run_before_any_test(tmp_path: Path) -> None:
    assert required_but_missing({}, tmp_path / "absent") == ""
    assert "not beside the repository" in required_but_missing({REQUIRE: "1"}, tmp_path / "absent")
    (tmp_path / "nexconn").mkdir()
    (tmp_path / "nexconn" / "openapi.yaml").write_text("openapi: 3.0.0\n")
    assert "cometchat/chat-apis.json" in required_but_missing({REQUIRE: "1"}, tmp_path)
