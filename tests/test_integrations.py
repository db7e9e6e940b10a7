"""The integrations around the CLI: CI examples, the pre-commit hook, shell completion,
editor support and the workflow docs. Each is checked against the real CLI: the
commands and flags they use exist, and what they run behaves as documented."""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import subprocess
import sys
import threading
import zipfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import click
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src"
GITLAB_CI = ROOT / "examples" / "ci" / "gitlab-ci.yml"
GITHUB_WORKFLOW = ROOT / "examples" / "ci" / "github-workflow.yml"
HOOKS = ROOT / ".pre-commit-hooks.yaml"
INTEGRATIONS_DOC = ROOT / "docs" / "integrations.md"
WORKFLOWS_DOC = ROOT / "docs" / "workflows.md"
SCHEMA = ROOT / "schemas" / "manifest.schema.json"

GOOD = """\
version: 1
provider: {type: local, path: platform.db}
owner: ci
users:
  alice: {name: Alice Ng, tags: [staff]}
  bob: {name: Bob Li}
"""
BAD = """\
version: 1
provider: {type: local, path: platform.db}
users:
  alice: {tags: [staff]}
"""


def the_cli() -> click.Group:
    from chatroster.cli import cli

    return cli


# --------------------------------------------------- commands written in files and docs

#: `chatroster <command> <rest of the command line>`, where a command line would be.
COMMAND_LINE = re.compile(r"(?<![\w./-])chatroster[ \t]+([a-z][a-z-]*)([^\n|;&>`]*)")


def command_lines(text: str) -> list[tuple[str, list[str]]]:
    """Each `chatroster CMD ...` in `text` with the --options it gives."""
    return [(cmd, re.findall(r"(?<!\S)(--[a-z][a-z-]*)", rest)) for cmd, rest in COMMAND_LINE.findall(text)]


def strings_in(node: Any) -> Iterator[str]:
    """Every string value in a parsed YAML document: what CI actually runs (comments are
    prose and may say anything)."""
    if isinstance(node, str):
        yield node
    elif isinstance(node, Mapping):
        for value in node.values():
            yield from strings_in(value)
    elif isinstance(node, list):
        for value in node:
            yield from strings_in(value)


def unknown_commands(lines: list[tuple[str, list[str]]], cli: click.Group) -> list[str]:
    problems = []
    for cmd, flags in lines:
        command = cli.commands.get(cmd)
        if command is None:
            problems.append(f"`chatroster {cmd}`: no such command")
            continue
        known = {opt for param in command.params for opt in param.opts}
        problems += [f"`chatroster {cmd} {flag}`: no such option" for flag in flags if flag not in known]
    return problems


@pytest.mark.parametrize("path", [GITLAB_CI, GITHUB_WORKFLOW], ids=lambda p: p.name)
def test_ci_examples_parse_and_run_only_real_commands(path: Path) -> None:
    cli = the_cli()
    document = yaml.safe_load(path.read_text())
    lines = [line for text in strings_in(document) for line in command_lines(text)]

    assert unknown_commands(lines, cli) == []


def test_the_gitlab_example_installs_chatroster_from_its_repository() -> None:
    package = yaml.safe_load(GITLAB_CI.read_text())["variables"]["CHATROSTER_PACKAGE"]

    # chatroster is on no package index: a pinned requirement such as chatroster==0.1.0
    # cannot be installed; an archive of the repository at a tag needs no git either.
    assert re.fullmatch(
        r"https://github\.com/chatroster/chatroster/archive/refs/tags/"
        r"v\d+\.\d+\.\d+\.tar\.gz",
        package,
    ), package


def test_the_gitlab_example_validates_plans_applies_and_checks_drift() -> None:
    document = yaml.safe_load(GITLAB_CI.read_text())
    run = {cmd for text in strings_in(document) for cmd, _ in command_lines(text)}
    rules = {job: str(document[job]["rules"]) for job in ("validate", "plan", "apply", "drift")}

    assert {"validate", "plan", "apply", "drift"} <= run
    assert "merge_request_event" in rules["validate"] and "merge_request_event" in rules["plan"]
    assert "CI_DEFAULT_BRANCH" in rules["apply"] and "schedule" in rules["drift"]
    assert "plan.md" in document["plan"]["artifacts"]["paths"]


def test_the_gitlab_example_applies_the_reviewed_plans_one_environment_at_a_time() -> None:
    document = yaml.safe_load(GITLAB_CI.read_text())
    apply, fetch = document["apply"], document["fetch-plans"]

    assert "plans/" in document["plan"]["artifacts"]["paths"]
    assert apply["parallel"]["matrix"] == [{"ENV": ["staging", "production"]}]
    assert apply["resource_group"] == "chatroster-apply-$ENV"
    assert apply["environment"]["name"] == "$ENV"
    assert 'apply --plan "plans/$ENV.json" --yes' in apply["script"][0]
    assert "CI_DEFAULT_BRANCH" in str(fetch["rules"]) and fetch["artifacts"]["paths"] == ["plans/"]
    assert "/merge_requests" in fetch["script"][0] and "/artifacts" in fetch["script"][0]


def test_the_github_example_uses_the_action_on_each_event() -> None:
    document = yaml.safe_load(GITHUB_WORKFLOW.read_text())
    events = document.get("on", document.get(True))  # YAML 1.1 reads a bare `on` as true

    assert {"pull_request", "push", "schedule"} <= set(events)
    for name, job in document["jobs"].items():
        uses = [step["uses"] for step in job["steps"] if "chatroster" in step.get("uses", "")]
        assert uses, f"job {name} does not use the chatroster action"
    assert document["jobs"]["plan"]["permissions"]["pull-requests"] == "write"


def test_the_github_example_plans_all_and_applies_each_environment_in_turn() -> None:
    jobs = yaml.safe_load(GITHUB_WORKFLOW.read_text())["jobs"]

    def action_inputs(job: str) -> dict[str, str]:
        [step] = [s for s in jobs[job]["steps"] if "chatroster/" in s.get("uses", "")]
        return dict(step["with"])

    assert action_inputs("plan")["environments"] == "all"
    apply = jobs["apply"]
    assert apply["strategy"]["matrix"]["environment"] == ["staging", "production"]
    assert apply["environment"] == "${{ matrix.environment }}"
    assert apply["concurrency"] == {
        "group": "chatroster-apply-${{ matrix.environment }}",
        "cancel-in-progress": False,
    }
    assert apply["permissions"]["actions"] == "read"  # to download the reviewed plans
    assert action_inputs("apply")["environments"] == "${{ matrix.environment }}"
    assert action_inputs("apply").get("apply-plan", "reviewed") == "reviewed"
    assert "matrix.environment" in action_inputs("apply")["record"]
    assert any("upload-artifact" in s.get("uses", "") for s in apply["steps"])
    assert action_inputs("drift")["environments"] == "all"


# ------------------------------------------------------------------- the console script


@pytest.fixture
def console(tmp_path: Path) -> dict[str, str]:
    """An environment with `chatroster` on PATH as `pip install` makes it: a script of
    that name calling `chatroster.cli:main`, so click sees the real program name."""
    the_cli()
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    script = bin_dir / "chatroster"
    script.write_text(
        f"#!{sys.executable}\nimport sys\nfrom chatroster.cli import main\n"
        "if __name__ == '__main__':\n    sys.exit(main())\n"
    )
    script.chmod(0o755)
    env = {k: v for k, v in os.environ.items() if not k.startswith("_CHATROSTER")}
    env["PATH"] = os.pathsep.join([str(bin_dir), str(Path(sys.executable).parent), env.get("PATH", "")])
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(SRC), env.get("PYTHONPATH")]))
    env["NO_COLOR"] = "1"
    return env


def run(
    argv: list[str], env: Mapping[str, str], cwd: Path, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        argv, env=dict(env), cwd=cwd, capture_output=True, text=True, input=stdin, timeout=120, check=False
    )


def bash() -> str:
    found = shutil.which("bash")
    if found is None:
        pytest.skip("bash is not installed")
    return found


# -------------------------------------------------------------- the GitLab plan job


@dataclass
class FakeGitLab:
    """The merge-request notes endpoints of the GitLab REST API, in memory (gitlab.com
    cannot be real here)."""

    requests: list[tuple[str, str, dict[str, str], Any]] = field(default_factory=list)
    notes: list[dict[str, Any]] = field(default_factory=list)

    def handle(
        self, method: str, path: str, query: dict[str, list[str]], headers: dict[str, str], body: Any
    ) -> tuple[int, Any, dict[str, str]]:
        self.requests.append((method, path, {k.lower(): v for k, v in headers.items()}, body))
        base = "/api/v4/projects/42/merge_requests/9/notes"
        if path == base and method == "GET":
            page = int(query.get("page", ["1"])[0])
            listed = self.notes[(page - 1) * 2 : page * 2]  # two per page: paging is exercised
            return 200, listed, {"X-Next-Page": str(page + 1) if page * 2 < len(self.notes) else ""}
        if path == base and method == "POST":
            self.notes.append({"id": 500 + len(self.notes), "body": body["body"]})
            return 201, self.notes[-1], {}
        if path.startswith(base + "/") and method == "PUT":
            note = next(n for n in self.notes if n["id"] == int(path.rsplit("/", 1)[1]))
            note["body"] = body["body"]
            return 200, note, {}
        return 404, {"message": "404 Not Found"}, {}


@pytest.fixture
def gitlab() -> Iterator[tuple[FakeGitLab, str]]:
    fake = FakeGitLab()

    class Handler(BaseHTTPRequestHandler):
        def _serve(self) -> None:
            parts = urlsplit(self.path)
            raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            status, body, headers = fake.handle(
                self.command,
                parts.path,
                parse_qs(parts.query),
                dict(self.headers.items()),
                json.loads(raw) if raw else None,
            )
            data = json.dumps(body).encode()
            self.send_response(status)
            for name, value in {
                "Content-Type": "application/json",
                "Content-Length": str(len(data)),
                **headers,
            }.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_PUT = _serve

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield fake, f"http://127.0.0.1:{server.server_address[1]}/api/v4"
    server.shutdown()
    server.server_close()
    thread.join()


def test_the_gitlab_plan_job_keeps_one_note_up_to_date(
    tmp_path: Path, console: dict[str, str], gitlab: tuple[FakeGitLab, str]
) -> None:
    fake, api = gitlab
    fake.notes += [{"id": 1, "body": "looks good"}, {"id": 2, "body": "one question"}]
    token = "glpat-neverPrintThis0123"
    [script] = yaml.safe_load(GITLAB_CI.read_text())["plan"]["script"]
    env = {
        **console,
        "MANIFEST": "users.yaml",
        "CI_API_V4_URL": api,
        "CI_PROJECT_ID": "42",
        "CI_MERGE_REQUEST_IID": "9",
        "CI_COMMIT_SHORT_SHA": "c0ffee1",
        "CHATROSTER_NOTE_TOKEN": token,
    }
    (tmp_path / "users.yaml").write_text(GOOD)

    first = run([bash(), "-eo", "pipefail", "-c", script], env, tmp_path)
    (tmp_path / "users.yaml").write_text(GOOD + "  carol: {name: Carol Diaz}\n")
    second = run([bash(), "-eo", "pipefail", "-c", script], env, tmp_path)

    for done in (first, second):
        assert done.returncode == 0, done.stdout + done.stderr  # changes (2) pass
        assert token not in done.stdout + done.stderr
    ours = [n for n in fake.notes if n["body"].startswith("<!-- chatroster-plan: users.yaml -->")]
    assert len(ours) == 1 and "carol" in ours[0]["body"]
    assert [m for m, *_ in fake.requests if m != "GET"] == ["POST", "PUT"]
    assert all(headers["private-token"] == token for _, _, headers, _ in fake.requests)
    assert "carol" in (tmp_path / "plan.md").read_text()


def test_the_gitlab_plan_job_fails_on_an_invalid_manifest(tmp_path: Path, console: dict[str, str]) -> None:
    [script] = yaml.safe_load(GITLAB_CI.read_text())["plan"]["script"]
    (tmp_path / "users.yaml").write_text(BAD)

    done = run([bash(), "-eo", "pipefail", "-c", script], {**console, "MANIFEST": "users.yaml"}, tmp_path)

    assert done.returncode == 1


# -------------------------------------------------------------------------- pre-commit


def test_the_pre_commit_hook_runs_a_real_command_on_manifest_files() -> None:
    [hook] = yaml.safe_load(HOOKS.read_text())
    program, command = hook["entry"].split()

    assert hook["id"] == "chatroster-validate" and hook["language"] == "python"
    assert program == "chatroster" and command in the_cli().commands
    assert hook["require_serial"] is True and hook["pass_filenames"] is False
    assert hook["args"] == ["users/"]  # the manifest directory the docs and CI examples use

    def selects(name: str) -> bool:
        return bool(re.search(hook["files"], name))

    assert selects("users/team.yaml") and selects("users/bots.yml")
    assert not selects("users.yaml") and not selects("team/users/x.yaml")
    assert not selects(".pre-commit-config.yaml") and not selects(".github/workflows/ci.yml")
    assert not selects("docker-compose.yml") and not selects("users/README.md")


@dataclass
class PreCommit:
    """Runs a hook as pre-commit does (pre-commit itself installs hooks from the network,
    which is not possible here): the hook runs when a staged file matches `files`, with
    `args`, and with the matching files only when `pass_filenames` is true."""

    hook: dict[str, Any]
    root: Path
    env: Mapping[str, str]

    def run(self, staged: list[str]) -> subprocess.CompletedProcess[str] | None:
        hook = self.hook
        matching = [
            name
            for name in staged
            if re.search(hook["files"], name) and not re.search(hook.get("exclude", "^$"), name)
        ]
        if not matching:
            return None  # pre-commit reports "(no files to check)Skipped"
        files = matching if hook.get("pass_filenames", True) else []
        argv = [sys.executable, "-m", *hook["entry"].split(), *hook.get("args", []), *files]
        return run(argv, self.env, self.root)


@pytest.fixture
def repository(tmp_path: Path, console: dict[str, str]) -> PreCommit:
    """A repository holding a manifest split over users/ and YAML that is not one."""
    (tmp_path / "users").mkdir()
    (tmp_path / "users" / "settings.yaml").write_text(
        "version: 1\nprovider: {type: local, path: platform.db}\nowner: ci\n"
    )
    (tmp_path / "users" / "team.yaml").write_text("users:\n  alice: {name: Alice Ng}\n")
    (tmp_path / "users" / "bots.yml").write_text("users:\n  bot: {name: Bot}\n")
    (tmp_path / "docker-compose.yml").write_text("version: '3'\nservices: {}\n")
    (tmp_path / ".gitlab-ci.yml").write_text("stages: [test]\n")
    [hook] = yaml.safe_load(HOOKS.read_text())
    return PreCommit(hook, tmp_path, console)


def test_the_hook_validates_the_whole_manifest_when_one_of_its_files_changes(repository: PreCommit) -> None:
    done = repository.run(["users/team.yaml", "docker-compose.yml"])

    assert done is not None and done.returncode == 0, done and done.stderr
    assert "valid (2 users" in done.stdout  # alice and bot: every file of users/, merged


def test_the_hook_fails_on_a_bad_manifest_file_with_its_location(repository: PreCommit) -> None:
    (repository.root / "users" / "team.yaml").write_text("users:\n  alice: {tags: [x]}\n")

    done = repository.run(["users/team.yaml"])

    assert done is not None and done.returncode == 1
    assert "team.yaml:2" in done.stderr


def test_the_hook_leaves_other_yaml_alone(repository: PreCommit) -> None:
    assert repository.run(["docker-compose.yml", ".gitlab-ci.yml", "README.md"]) is None


def test_the_pre_commit_entry_passes_a_good_manifest_and_fails_a_bad_one(
    tmp_path: Path, console: dict[str, str]
) -> None:
    [hook] = yaml.safe_load(HOOKS.read_text())
    (tmp_path / "good.yaml").write_text(GOOD)
    (tmp_path / "bad.yaml").write_text(BAD)
    entry = [sys.executable, "-m", *hook["entry"].split()]  # `chatroster validate`

    good = run([*entry, "good.yaml"], console, tmp_path)
    bad = run([*entry, "bad.yaml"], console, tmp_path)

    assert good.returncode == 0, good.stderr
    assert bad.returncode == 1
    assert "bad.yaml:4" in bad.stderr  # located, as the hook output is read in a terminal


def test_the_pre_commit_docs_show_how_to_point_the_hook_elsewhere() -> None:
    section = INTEGRATIONS_DOC.read_text().split("## pre-commit", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```yaml\n(.*?)```", section, flags=re.DOTALL)

    assert any("args:" in block and "files:" in block for block in blocks)
    assert "pass_filenames: false" in section and "users/" in section


# -------------------------------------------------------------------- shell completion


def test_bash_completion_script_comes_from_the_console_script(
    tmp_path: Path, console: dict[str, str]
) -> None:
    done = run(["chatroster"], {**console, "_CHATROSTER_COMPLETE": "bash_source"}, tmp_path)

    assert done.returncode == 0, done.stderr
    assert "_chatroster_completion" in done.stdout
    assert "complete -o nosort -F _chatroster_completion chatroster" in done.stdout


def test_completion_offers_the_commands(tmp_path: Path, console: dict[str, str]) -> None:
    env = {
        **console,
        "_CHATROSTER_COMPLETE": "bash_complete",
        "COMP_WORDS": "chatroster pl",
        "COMP_CWORD": "1",
    }

    done = run(["chatroster"], env, tmp_path)

    assert done.returncode == 0, done.stderr
    assert "plain,plan" in done.stdout.splitlines()


def test_the_completion_docs_use_the_variable_click_reads() -> None:
    text = INTEGRATIONS_DOC.read_text()
    assert "_CHATROSTER_COMPLETE=bash_source chatroster" in text
    assert "_CHATROSTER_COMPLETE=zsh_source chatroster" in text
    assert "_CHATROSTER_COMPLETE=fish_source chatroster" in text


# ---------------------------------------------------------------------- editor support


def test_the_editor_docs_point_at_the_schema() -> None:
    text = INTEGRATIONS_DOC.read_text()
    assert "# yaml-language-server: $schema=" in text
    assert '"yaml.schemas"' in text and "schemas/manifest.schema.json" in text


def test_the_schema_the_editor_docs_name_is_a_json_schema() -> None:
    from jsonschema.validators import validator_for

    schema = json.loads(SCHEMA.read_text())
    validator_for(schema).check_schema(schema)
    validator_for(schema)(schema).validate(yaml.safe_load(GOOD))


def test_the_schema_comment_does_not_change_the_manifest(tmp_path: Path, console: dict[str, str]) -> None:
    modeline = "# yaml-language-server: $schema=../schemas/manifest.schema.json\n"
    (tmp_path / "users.yaml").write_text(modeline + GOOD)

    done = run([sys.executable, "-m", "chatroster", "validate", "users.yaml"], console, tmp_path)

    assert done.returncode == 0, done.stderr


# ------------------------------------------------------------------------------- docs


@pytest.mark.parametrize("path", [INTEGRATIONS_DOC, WORKFLOWS_DOC], ids=lambda p: p.name)
def test_the_docs_show_only_real_commands_and_options(path: Path) -> None:
    cli = the_cli()
    blocks = re.findall(r"```[a-z]*\n(.*?)```", path.read_text(), flags=re.DOTALL)
    lines = [line for block in blocks for line in command_lines(block)]

    assert lines, f"{path.name} shows no chatroster command"
    assert unknown_commands(lines, cli) == []


def test_the_workflow_docs_give_every_workflow_and_exit_code() -> None:
    text = WORKFLOWS_DOC.read_text()
    headings = [h.lower() for h in re.findall(r"^## (.+)$", text, flags=re.MULTILINE)]

    for workflow in ("pull request", "merge", "drift", "seed"):
        assert any(workflow in h for h in headings), f"no section for {workflow}"
    for fact in ("--detailed-exitcode", "apply --plan plan.json", "mode: seed", "| 3 |", "| 2 |"):
        assert fact in text


# ------------------------------------------------- the GitLab merge: the reviewed plans

GITLAB_BASE = """\
version: 1
provider: {type: local}
owner: ci
users:
  alice: {name: Alice Ng}
  bob: {name: Bob Li}
"""


def gitlab_environment(name: str) -> str:
    return f"extends: ..\nprovider: {{path: ../../{name}.db}}\n"


@dataclass
class FakeGitLabPipelines:
    """The API calls fetch-plans makes: merge requests of a commit, their pipelines, the
    pipelines' jobs, a job's artifacts archive."""

    archive: bytes = b""
    requests: list[tuple[str, dict[str, str]]] = field(default_factory=list)

    def handle(self, path: str, headers: dict[str, str]) -> tuple[int, bytes]:
        self.requests.append((path, {k.lower(): v for k, v in headers.items()}))
        base = "/api/v4/projects/42"
        answers: dict[str, Any] = {
            f"{base}/repository/commits/c0ffee00/merge_requests": [{"iid": 9, "state": "merged"}],
            f"{base}/merge_requests/9/pipelines": [{"id": 77}, {"id": 70}],
            f"{base}/pipelines/77/jobs": [{"id": 5, "name": "plan", "artifacts_file": {"filename": "a.zip"}}],
        }
        if path == f"{base}/jobs/5/artifacts":
            return 200, self.archive
        if path in answers:
            return 200, json.dumps(answers[path]).encode()
        return 404, b'{"message": "404 Not Found"}'


@pytest.fixture
def gitlab_pipelines() -> Iterator[tuple[FakeGitLabPipelines, str]]:
    fake = FakeGitLabPipelines()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
            status, data = fake.handle(urlsplit(self.path).path, dict(self.headers.items()))
            self.send_response(status)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield fake, f"http://127.0.0.1:{server.server_address[1]}/api/v4"
    server.shutdown()
    server.server_close()
    thread.join()


def gitlab_script(job: str) -> str:
    [script] = yaml.safe_load(GITLAB_CI.read_text())[job]["script"]
    return str(script)


def artifacts_zip(root: Path, paths: list[str]) -> bytes:
    """A job's artifacts as GitLab zips them: paths relative to the project directory."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zipped:
        for path in paths:
            for file in sorted((root / path).rglob("*")) if (root / path).is_dir() else [root / path]:
                zipped.write(file, file.relative_to(root).as_posix())
    return buffer.getvalue()


def test_the_gitlab_merge_applies_the_plans_of_the_merge_request_pipeline(
    tmp_path: Path, console: dict[str, str], gitlab_pipelines: tuple[FakeGitLabPipelines, str]
) -> None:
    fake, api = gitlab_pipelines
    review, merge = tmp_path / "review", tmp_path / "merge"
    for checkout in (review, merge):
        (checkout / "users" / "environments").mkdir(parents=True)
        (checkout / "users" / "team.yaml").write_text(GITLAB_BASE)
        for name in ("staging", "production"):
            (checkout / "users" / "environments" / f"{name}.yaml").write_text(gitlab_environment(name))
    env = {**console, "MANIFEST": "users/", "ENVIRONMENTS": "all", "CI_COMMIT_SHORT_SHA": "c0ffee0"}
    planned = run([bash(), "-eo", "pipefail", "-c", gitlab_script("plan")], env, review)
    assert planned.returncode == 0, planned.stdout + planned.stderr
    fake.archive = artifacts_zip(review, ["plan.md", "plans"])
    token = "glpat-readApiNeverPrinted"
    merge_env = {
        **env,
        "CI_API_V4_URL": api,
        "CI_PROJECT_ID": "42",
        "CI_COMMIT_SHA": "c0ffee00",
        "CHATROSTER_API_TOKEN": token,
        "APPLY_PLAN": "reviewed",
    }

    fetched = run([bash(), "-eo", "pipefail", "-c", gitlab_script("fetch-plans")], merge_env, merge)
    assert fetched.returncode == 0, fetched.stdout + fetched.stderr
    assert sorted(p.name for p in (merge / "plans").iterdir()) == ["production.json", "staging.json"]
    for name in ("staging", "production"):
        applied = run(
            [bash(), "-eo", "pipefail", "-c", gitlab_script("apply")], {**merge_env, "ENV": name}, merge
        )
        assert applied.returncode == 0, applied.stdout + applied.stderr
        assert (merge / f"apply-record-{name}.jsonl").read_text()
    after = run(["chatroster", "plan", "users/", "--env", "all", "--detailed-exitcode"], env, merge)
    assert after.returncode == 0, after.stdout + after.stderr
    assert all(headers["private-token"] == token for _, headers in fake.requests)
    assert token not in fetched.stdout + fetched.stderr


def test_the_gitlab_merge_refuses_artifacts_that_are_not_plans(
    tmp_path: Path, console: dict[str, str], gitlab_pipelines: tuple[FakeGitLabPipelines, str]
) -> None:
    fake, api = gitlab_pipelines
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zipped:
        zipped.writestr("plans/../x.json", "{}")
    fake.archive = buffer.getvalue()
    env = {**console, "CI_API_V4_URL": api, "CI_PROJECT_ID": "42", "CI_COMMIT_SHA": "c0ffee00"}

    done = run([bash(), "-eo", "pipefail", "-c", gitlab_script("fetch-plans")], env, tmp_path)

    assert done.returncode == 1
    assert "the plan job's artifacts are not plans (plans/../x.json)" in done.stderr
    assert "re-run the merge request's plan job, or set APPLY_PLAN=fresh" in done.stderr
    assert not (tmp_path / "x.json").exists() and not (tmp_path / "plans").exists()
    unknown = run(
        [bash(), "-eo", "pipefail", "-c", gitlab_script("fetch-plans")],
        {**env, "CI_COMMIT_SHA": "d1rec7"},
        tmp_path,
    )
    assert unknown.returncode == 1 and "answered 404" in unknown.stderr and "Traceback" not in unknown.stderr
