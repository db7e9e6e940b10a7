"""What a new user meets first: the README's commands for the vendor examples, run as
written against a real emulator process, and the messages when something is off (no
emulator running, a role nothing declares and the app lacks, refused credentials).

The README's commands use the emulator's fixed default port; here the emulator listens
on a free port instead (tests run side by side), and the examples' URL variables point
at it, as a user pointing them at another host would. That the examples' defaults are
the emulator's own port and credentials is checked separately.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml
from emulator_process import SRC, EmulatorProcess

from chatroster.emulator.config import (
    DEFAULT_API_KEY,
    DEFAULT_APP_ID,
    DEFAULT_APP_KEY,
    DEFAULT_APP_SECRET,
    DEFAULT_PORT,
)

ROOT = SRC.parent
README = ROOT / "README.md"
EXAMPLES = ROOT / "examples"
SECTION = "## Try it against the vendor APIs"
#: Every variable the vendor examples read: unset here, so that their defaults are used.
VARIABLES = (
    "NEXCONN_URL",
    "NEXCONN_APP_KEY",
    "NEXCONN_APP_SECRET",
    "COMETCHAT_URL",
    "COMETCHAT_APP_ID",
    "COMETCHAT_API_KEY",
)
Factory = Callable[..., EmulatorProcess]


def readme_commands() -> list[str]:
    """The command lines of the section's first ``sh`` block."""
    text = README.read_text(encoding="utf-8")
    section = text[text.index(SECTION) :]
    block = re.search(r"```sh\n(.*?)```", section, flags=re.DOTALL)
    assert block is not None, f"no sh block under {SECTION!r}"
    return [line for line in block.group(1).splitlines() if line.strip()]


def bash() -> str:
    found = shutil.which("bash")
    if found is None:
        pytest.skip("bash is not installed, so the README's lines cannot run as written")
    return found


def environment(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in VARIABLES}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(SRC), env.get("PYTHONPATH")]))
    return {**env, "NO_COLOR": "1", **extra}


@pytest.fixture
def clone(tmp_path: Path) -> Path:
    """What a fresh clone has after the Quick start's install: the examples as committed
    and `.venv/bin/chatroster` (here a script running the code under test)."""
    work = tmp_path / "clone"
    generated = shutil.ignore_patterns(".chatroster", "*.db", "*.db-*", "*.log", "plan.json")
    shutil.copytree(EXAMPLES, work / "examples", ignore=generated)
    script = work / ".venv" / "bin" / "chatroster"
    script.parent.mkdir(parents=True)
    script.write_text(f"#!{sys.executable}\nimport sys\nfrom chatroster.cli import main\nsys.exit(main())\n")
    script.chmod(0o755)
    return work


def run_line(line: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [bash(), "-c", line], cwd=cwd, env=env, capture_output=True, text=True, timeout=120, check=False
    )


def chatroster(*args: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "chatroster", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


# ------------------------------------------------------------ the README's commands


def test_the_section_comes_right_after_the_quick_start() -> None:
    headings = re.findall(r"^## .+$", README.read_text(encoding="utf-8"), flags=re.MULTILINE)
    assert headings[headings.index("## Quick start") + 1] == SECTION


def test_the_readme_starts_the_emulator_in_the_background_then_runs_each_example() -> None:
    start, *examples = readme_commands()

    assert len(examples) == 2
    assert start.startswith(".venv/bin/chatroster emulator") and "& " in start
    assert "--port" not in start  # the default port, which the examples name
    for line, name in zip(examples, ("nexconn", "cometchat"), strict=True):
        assert f"plan examples/{name}.yaml" in line and f"apply examples/{name}.yaml --yes" in line


def test_the_vendor_examples_apply_as_documented_then_plan_no_changes(
    clone: Path, emulator: EmulatorProcess
) -> None:
    _, *examples = readme_commands()
    env = environment(NEXCONN_URL=emulator.base_url, COMETCHAT_URL=emulator.base_url)

    for line, name in zip(examples, ("nexconn", "cometchat"), strict=True):
        done = run_line(line, clone, env)
        assert done.returncode == 0, done.stdout + done.stderr
        again = chatroster("plan", f"examples/{name}.yaml", "--detailed-exitcode", cwd=clone, env=env)
        assert again.returncode == 0, again.stdout + again.stderr
        assert "No changes" in again.stdout
    for line in examples:  # the README says either line may be run again
        rerun = run_line(line, clone, env)
        assert rerun.returncode == 0, rerun.stdout + rerun.stderr
        assert "No changes" in rerun.stdout


@pytest.mark.parametrize("name", ["nexconn", "cometchat"])
def test_the_vendor_examples_default_to_the_emulator_and_its_credentials(name: str) -> None:
    provider = yaml.safe_load((EXAMPLES / f"{name}.yaml").read_text())["provider"]
    url = f"http://127.0.0.1:{DEFAULT_PORT}"
    expected = {
        "nexconn": {
            "url": f"${{NEXCONN_URL:-{url}}}",
            "app_key": f"${{NEXCONN_APP_KEY:-{DEFAULT_APP_KEY}}}",
            "app_secret": f"${{NEXCONN_APP_SECRET:-{DEFAULT_APP_SECRET}}}",
        },
        "cometchat": {
            "url": f"${{COMETCHAT_URL:-{url}}}",
            "app_id": f"${{COMETCHAT_APP_ID:-{DEFAULT_APP_ID}}}",
            "api_key": f"${{COMETCHAT_API_KEY:-{DEFAULT_API_KEY}}}",
        },
    }[name]

    assert {key: provider[key] for key in expected} == expected


def test_the_emulator_listens_on_the_documented_port_by_default() -> None:
    from chatroster.emulator.server import emulator_command

    [port] = [p for p in emulator_command.params if p.name == "port"]
    assert port.default == DEFAULT_PORT == 8765
    assert "8765" in README.read_text() and "8765" in (ROOT / "docs" / "emulator.md").read_text()


def test_the_emulator_command_takes_dash_h_like_every_other_command(tmp_path: Path) -> None:
    done = chatroster("emulator", "-h", cwd=tmp_path, env=environment())

    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("Usage: chatroster emulator")
    assert "--port" in done.stdout and "8765" in done.stdout


# ------------------------------------------------------------ when something is off


def closed_loopback_port() -> int:
    """A port on 127.0.0.1 that nothing listens on (it was free a moment ago)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.mark.parametrize("name", ["nexconn", "cometchat"])
def test_without_an_emulator_a_plan_fails_at_once_saying_how_to_start_it(clone: Path, name: str) -> None:
    port = closed_loopback_port()
    env = environment(**{f"{name.upper()}_URL": f"http://127.0.0.1:{port}"})

    done = chatroster("plan", f"examples/{name}.yaml", cwd=clone, env=env)

    assert done.returncode == 1
    assert f"nothing is listening on http://127.0.0.1:{port}" in done.stderr
    assert "is the emulator running?" in done.stderr
    assert f"chatroster emulator --port {port}" in done.stderr
    assert "Traceback" not in done.stderr and "retry" not in done.stderr


def test_a_role_the_app_lacks_is_refused_at_plan_saying_where_it_is_written(
    tmp_path: Path, emulator: EmulatorProcess
) -> None:
    manifest = tmp_path / "team.yaml"
    manifest.write_text(
        "version: 1\n"
        "provider: {type: cometchat, app_id: emulator-app, url: '${COMETCHAT_URL}',"
        " api_key: '${COMETCHAT_API_KEY}'}\n"
        "users:\n  alice: {name: Alice Ng, role: agent}\n"
    )
    env = environment(COMETCHAT_URL=emulator.base_url, COMETCHAT_API_KEY=DEFAULT_API_KEY)

    done = chatroster("apply", str(manifest), "--yes", cwd=tmp_path, env=env)

    assert done.returncode == 1
    assert f"{manifest}:4:" in done.stderr
    assert "alice: the role 'agent' is not declared in roles" in done.stderr
    assert "declare it under roles:" in done.stderr
    assert "nothing was changed" in done.stderr
    assert DEFAULT_API_KEY not in done.stdout + done.stderr


def test_refused_nexconn_credentials_name_the_host_and_the_vendors_code(
    clone: Path, emulator: EmulatorProcess
) -> None:
    wrong = "not-the-emulator-secret"
    env = environment(NEXCONN_URL=emulator.base_url, NEXCONN_APP_SECRET=wrong)

    done = chatroster("plan", "examples/nexconn.yaml", cwd=clone, env=env)

    assert done.returncode == 1
    assert f"{emulator.base_url}/v4/" in done.stderr and "code 1004" in done.stderr
    assert "provider.app_secret" in done.stderr
    assert wrong not in done.stdout + done.stderr
