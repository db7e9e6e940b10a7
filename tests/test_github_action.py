"""The GitHub Action, run as a real subprocess against the local platform (a real SQLite
file), with a fake event file and a stand-in for the GitHub API on loopback: github.com
cannot be real here, everything else is."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src"
TOKEN = "ghs_testTOKENthatMustNeverBePrinted0123"
REPO = "octo/roster"
PR = 7
MARKER = "<!-- chatroster-plan: users.yaml -->"

USERS = {
    "alice": {"name": "Alice Ng", "role": "agent", "tags": ["staff"]},
    "bob": {"name": "Bob Li"},
    "carol": {"name": "Carol Diaz", "blocklist": ["bob"]},
}


def cli_commands() -> set[str]:
    from chatroster.cli import cli  # a CLI that does not import fails here, loudly

    return set(cli.commands)


# --------------------------------------------------------------- the GitHub stand-in


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: Any


@dataclass
class FakeGitHub:
    """Just the comment endpoints of the GitHub REST API, in memory. Pages hold two
    comments so that finding the marker across pages (the Link header) is exercised."""

    page_size: int = 2
    fail_with: int | None = None
    requests: list[Request] = field(default_factory=list)
    comments: list[dict[str, Any]] = field(default_factory=list)
    url: str = ""

    def handle(self, request: Request) -> tuple[int, Any, dict[str, str]]:
        self.requests.append(request)
        if self.fail_with:
            return self.fail_with, {"message": "Resource not accessible by integration"}, {}
        listing = f"/repos/{REPO}/issues/{PR}/comments"
        if request.method == "GET" and request.path == listing:
            return self._page(int(request.query.get("page", ["1"])[0]))
        if request.method == "POST" and request.path == listing:
            comment = {"id": 1000 + len(self.comments), "body": request.body["body"]}
            self.comments.append(comment)
            return 201, comment, {}
        prefix = f"/repos/{REPO}/issues/comments/"
        if request.method == "PATCH" and request.path.startswith(prefix):
            comment = next(c for c in self.comments if c["id"] == int(request.path[len(prefix) :]))
            comment["body"] = request.body["body"]
            return 200, comment, {}
        return 404, {"message": "Not Found"}, {}

    def _page(self, page: int) -> tuple[int, Any, dict[str, str]]:
        start = (page - 1) * self.page_size
        headers = {}
        if start + self.page_size < len(self.comments):
            next_url = f"{self.url}/repos/{REPO}/issues/{PR}/comments?page={page + 1}"
            headers["Link"] = f'<{next_url}>; rel="next"'
        return 200, self.comments[start : start + self.page_size], headers

    def writes(self) -> list[Request]:
        return [r for r in self.requests if r.method in ("POST", "PATCH")]


def _handler(github: FakeGitHub) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def _serve(self) -> None:
            parts = urlsplit(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            request = Request(
                self.command,
                parts.path,
                parse_qs(parts.query),
                dict(self.headers.items()),
                json.loads(raw) if raw else None,
            )
            status, body, headers = github.handle(request)
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for name, value in headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_PATCH = _serve

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


@pytest.fixture
def github() -> Iterator[FakeGitHub]:
    fake = FakeGitHub()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(fake))
    fake.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield fake
    server.shutdown()
    server.server_close()
    thread.join()


# ------------------------------------------------------------------------ the workflow


@dataclass
class Workspace:
    """A repository checkout as the runner sees it: the manifest, the event file, and
    the files GitHub gives a step for its outputs and summary."""

    root: Path
    github: FakeGitHub

    @property
    def manifest(self) -> Path:
        return self.root / "users.yaml"

    def write_manifest(self, users: Mapping[str, Any], **extra: Any) -> None:
        document = {
            "version": 1,
            "provider": {"type": "local", "path": "platform.db"},
            "owner": "ci",
            **extra,
            "users": dict(users),
            "roles": quickstart_roles(),  # the roles the users hold
        }
        self.manifest.write_text(yaml.safe_dump(document, sort_keys=False))

    def env(self, event_name: str, payload: Mapping[str, Any], ref: str, **inputs: str) -> dict[str, str]:
        event_path = self.root / f"event-{event_name}.json"
        event_path.write_text(json.dumps(payload))
        # Start from this process's environment without anything GitHub-ish, so the
        # tests behave the same when they themselves run inside GitHub Actions.
        env = {k: v for k, v in os.environ.items() if not k.startswith(("GITHUB_", "INPUT_", "RUNNER_"))}
        env.update(
            {
                "PYTHONPATH": os.pathsep.join(filter(None, [str(SRC), env.get("PYTHONPATH")])),
                "NO_COLOR": "1",
                "GITHUB_ACTIONS": "true",
                "GITHUB_EVENT_NAME": event_name,
                "GITHUB_EVENT_PATH": str(event_path),
                "GITHUB_REPOSITORY": REPO,
                "GITHUB_REF": ref,
                "GITHUB_SHA": "0123456789abcdef0123456789abcdef01234567",
                "GITHUB_API_URL": self.github.url,
                "GITHUB_OUTPUT": str(self.root / "output.txt"),
                "GITHUB_STEP_SUMMARY": str(self.root / "summary.md"),
                "INPUT_MANIFEST": "users.yaml",
                "INPUT_GITHUB_TOKEN": TOKEN,
                "INPUT_APPLY_ON_DEFAULT_BRANCH": "true",
                "INPUT_EXTRA_ARGS": "",
            }
        )
        env.update({f"INPUT_{k.upper()}": v for k, v in inputs.items()})
        return env

    def run(self, argv: list[str], env: Mapping[str, str]) -> subprocess.CompletedProcess[str]:
        for name in ("output.txt", "summary.md"):
            (self.root / name).unlink(missing_ok=True)
        done = subprocess.run(
            argv, env=dict(env), cwd=self.root, capture_output=True, text=True, timeout=120, check=False
        )
        assert TOKEN not in done.stdout and TOKEN not in done.stderr, "the token was printed"
        return done

    def action(
        self, event_name: str, payload: Mapping[str, Any], ref: str, **inputs: str
    ) -> subprocess.CompletedProcess[str]:
        module = [sys.executable, "-m", "chatroster.integrations.github_action"]
        return self.run(module, self.env(event_name, payload, ref, **inputs))

    def pull_request(self, **inputs: str) -> subprocess.CompletedProcess[str]:
        payload = {
            "action": "synchronize",
            "number": PR,
            "pull_request": {"number": PR, "head": {"sha": "feedface" * 5}},
            "repository": {"full_name": REPO, "default_branch": "main"},
        }
        return self.action("pull_request", payload, f"refs/pull/{PR}/merge", **inputs)

    def push(self, branch: str = "main", **inputs: str) -> subprocess.CompletedProcess[str]:
        payload = {
            "ref": f"refs/heads/{branch}",
            "after": "c0ffee00" * 5,
            "repository": {"full_name": REPO, "default_branch": "main"},
        }
        return self.action("push", payload, f"refs/heads/{branch}", **inputs)

    def schedule(self) -> subprocess.CompletedProcess[str]:
        return self.action("schedule", {"schedule": "17 6 * * *"}, "refs/heads/main")

    def chatroster(self, *args: str) -> subprocess.CompletedProcess[str]:
        env = self.env("workflow_dispatch", {}, "refs/heads/main")
        return self.run([sys.executable, "-m", "chatroster", *args], env)

    def outputs(self) -> dict[str, str]:
        lines = (self.root / "output.txt").read_text().splitlines()
        return dict(line.split("=", 1) for line in lines)

    def summary(self) -> str:
        return (self.root / "summary.md").read_text()


def quickstart_roles() -> dict[str, Any]:
    """The quickstart's roles when the example exists; else the one `USERS` holds."""
    quickstart = ROOT / "examples" / "quickstart.yaml"
    if quickstart.exists():
        roles = yaml.safe_load(quickstart.read_text()).get("roles")
        if roles:
            return dict(roles)
    return {"agent": {"description": "Support agent"}}


def quickstart_users() -> dict[str, Any]:
    """The quickstart's users when the example exists, so the Action is tried on what
    new users try first; a small set of our own otherwise."""
    quickstart = ROOT / "examples" / "quickstart.yaml"
    if quickstart.exists():
        users = yaml.safe_load(quickstart.read_text()).get("users")
        if users and "${" not in json.dumps(users, default=str):
            return dict(users)
    return USERS


@pytest.fixture
def workspace(tmp_path: Path, github: FakeGitHub) -> Workspace:
    space = Workspace(tmp_path, github)
    space.write_manifest(quickstart_users())
    return space


def body_of(request: Request) -> str:
    return str(request.body["body"])


# ---------------------------------------------------------------------- pull requests


def test_comments_the_plan_on_a_pull_request(workspace: Workspace, github: FakeGitHub) -> None:
    done = workspace.pull_request()

    assert done.returncode == 2, done.stderr
    [posted] = github.writes()
    assert (posted.method, posted.path) == ("POST", f"/repos/{REPO}/issues/{PR}/comments")
    body = body_of(posted)
    assert body.startswith(MARKER)
    assert "### chatroster plan" in body and "create_user" in body
    assert all(f"`{uid}`" in body for uid in quickstart_users())
    assert posted.headers["Authorization"] == f"Bearer {TOKEN}"
    outputs = workspace.outputs()
    assert (outputs["changes"], outputs["exit-code"]) == ("true", "2")
    assert outputs["artifact-name"].endswith("-" + ("feedface" * 5)[:12])
    assert [p.name for p in Path(outputs["plans-dir"]).iterdir()] == ["plan.json"]  # for the merge job
    assert "### chatroster plan" in workspace.summary()


def test_a_later_push_updates_the_same_comment(workspace: Workspace, github: FakeGitHub) -> None:
    # Other people's comments come first, so the marker is on a later page.
    github.comments += [
        {"id": 1, "body": "LGTM"},
        {"id": 2, "body": f"> {MARKER}\nquoted"},
        {"id": 3, "body": "one question"},
    ]
    workspace.pull_request()
    [created] = [c for c in github.comments if c["body"].startswith(MARKER)]
    workspace.write_manifest({**quickstart_users(), "dave": {"name": "Dave Okafor"}})

    done = workspace.pull_request()

    assert done.returncode == 2, done.stderr
    assert [r.method for r in github.writes()] == ["POST", "PATCH"]
    updated = github.writes()[-1]
    assert updated.path == f"/repos/{REPO}/issues/comments/{created['id']}"
    assert "`dave`" in body_of(updated) and body_of(updated).startswith(MARKER)
    ours = [c for c in github.comments if c["body"].startswith(MARKER)]
    assert len(ours) == 1 and "`dave`" in ours[0]["body"]


def test_a_plan_without_changes_says_so_and_succeeds(workspace: Workspace, github: FakeGitHub) -> None:
    assert workspace.push(apply_plan="fresh").returncode == 0

    done = workspace.pull_request()

    assert done.returncode == 0, done.stderr
    assert "No changes" in body_of(github.writes()[-1])
    assert {k: workspace.outputs()[k] for k in ("changes", "exit-code")} == {
        "changes": "false",
        "exit-code": "0",
    }


def test_an_invalid_manifest_fails_and_the_comment_shows_why(
    workspace: Workspace, github: FakeGitHub
) -> None:
    workspace.manifest.write_text("version: 1\nusers:\n  alice: {nmae: Alice}\n")

    done = workspace.pull_request()

    assert done.returncode == 1
    body = body_of(github.writes()[-1])
    assert body.startswith(MARKER)
    assert "not valid" in body and "users.yaml:3" in body
    assert workspace.outputs()["changes"] == "false"


def test_a_safety_refusal_fails_with_the_message_in_the_comment(
    workspace: Workspace, github: FakeGitHub
) -> None:
    assert workspace.push(apply_plan="fresh").returncode == 0
    kept = dict(list(quickstart_users().items())[:1])
    workspace.write_manifest(kept, policy={"prune": "deactivate", "max_deactivate": 0})

    done = workspace.pull_request()

    assert done.returncode == 3, done.stderr
    body = body_of(github.writes()[-1])
    assert "Refused by a safety limit" in body
    assert "max_deactivate" in body and "--force" in body


def test_the_token_is_not_passed_to_chatroster(workspace: Workspace, github: FakeGitHub) -> None:
    workspace.write_manifest({"probe": {"name": "${INPUT_GITHUB_TOKEN:-unset}"}})

    done = workspace.pull_request()

    assert done.returncode == 2, done.stderr
    body = body_of(github.writes()[-1])
    assert '"unset"' in body and TOKEN not in body


def test_a_refused_comment_is_a_warning_and_leaks_no_token(workspace: Workspace, github: FakeGitHub) -> None:
    github.fail_with = 403  # a fork's pull request gets a read-only token

    done = workspace.pull_request()

    assert done.returncode == 2
    assert "::warning::could not comment" in done.stdout
    assert github.requests, "the Action did not try the API"


# ------------------------------------------------------------------ merge and schedule


def test_a_push_told_apply_plan_fresh_plans_afresh_and_applies(
    workspace: Workspace, github: FakeGitHub
) -> None:
    done = workspace.push(apply_plan="fresh")

    assert done.returncode == 0, done.stderr
    assert workspace.outputs() == {"changes": "true", "exit-code": "0"}
    assert "chatroster apply" in workspace.summary()
    assert github.requests == []
    after = workspace.chatroster("plan", "users.yaml", "--detailed-exitcode")
    assert after.returncode == 0, after.stdout + after.stderr

    again = workspace.push(apply_plan="fresh")
    assert again.returncode == 0 and workspace.outputs()["changes"] == "false"


def test_a_push_elsewhere_only_plans(workspace: Workspace) -> None:
    assert workspace.push(branch="feature").returncode == 2
    assert workspace.push(apply_on_default_branch="false").returncode == 2
    still = workspace.chatroster("plan", "users.yaml", "--detailed-exitcode")
    assert still.returncode == 2


def test_a_scheduled_run_checks_drift(workspace: Workspace) -> None:
    assert "drift" in cli_commands(), "`chatroster drift` is part of the CLI (PRODUCT.md)"
    assert workspace.schedule().returncode == 2
    assert workspace.outputs()["changes"] == "true"
    workspace.push(apply_plan="fresh")

    assert workspace.schedule().returncode == 0
    assert workspace.outputs()["changes"] == "false"


# ------------------------------------------------------------------------- action.yml


def action_yml() -> dict[str, Any]:
    return yaml.safe_load((ROOT / "action.yml").read_text())


def test_action_yml_is_a_composite_action_with_the_documented_inputs() -> None:
    action = action_yml()
    assert action["runs"]["using"] == "composite"
    assert set(action["inputs"]) == {
        "manifest",
        "apply-on-default-branch",
        "github-token",
        "python-version",
        "extra-args",
        "environments",
        "apply-plan",
        "record",
        "refresh",
    }
    assert action["inputs"]["github-token"]["default"] == "${{ github.token }}"
    assert action["inputs"]["apply-on-default-branch"]["default"] == "true"
    assert action["inputs"]["apply-plan"]["default"] == "reviewed"
    assert {"plans-dir", "artifact-name", "changes", "exit-code"} <= set(action["outputs"])
    steps = action["runs"]["steps"]
    assert any(
        "${{ github.action_path }}" in str(s.get("env", {})) and "pip install" in s["run"]
        for s in steps
        if "run" in s
    )
    # Inputs reach scripts only through env: `${{ }}` spliced into a script is injectable.
    assert all("${{" not in s["run"] for s in steps if "run" in s)
    # Every input the module reads is passed to it.
    [run] = [s for s in steps if s.get("id") == "run"]
    assert {f"INPUT_{name.upper().replace('-', '_')}" for name in action["inputs"]} - {
        "INPUT_PYTHON_VERSION"
    } <= set(run["env"])


def test_action_yml_uploads_the_pull_requests_plans_for_the_merge_job() -> None:
    [upload] = [s for s in action_yml()["runs"]["steps"] if "upload-artifact" in s.get("uses", "")]
    assert upload["uses"] == "actions/upload-artifact@v4"
    assert upload["with"]["name"] == "${{ steps.run.outputs.artifact-name }}"
    assert upload["with"]["path"] == "${{ steps.run.outputs.plans-dir }}"
    assert int(upload["with"]["retention-days"]) > 0
    assert "steps.run.outputs.plans-dir != ''" in upload["if"]


def run_step_script(workspace: Workspace, env: Mapping[str, str]) -> int:
    """The action's own "Run chatroster" script, under bash as the runner runs it."""
    [step] = [s for s in action_yml()["runs"]["steps"] if s.get("id") == "run"]
    path = {**env, "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])}
    bash = shutil.which("bash")
    if bash is None:
        pytest.skip("bash is not installed")
    return workspace.run([bash, "-eo", "pipefail", "-c", step["run"]], path).returncode


def test_the_action_step_succeeds_on_changes_and_fails_on_errors(workspace: Workspace) -> None:
    payload = {"number": PR, "pull_request": {"number": PR}, "repository": {"default_branch": "main"}}
    env = workspace.env("pull_request", payload, f"refs/pull/{PR}/merge")

    assert run_step_script(workspace, env) == 0
    assert workspace.outputs()["exit-code"] == "2"

    workspace.manifest.write_text("version: 1\nusers: {alice: {}}\n")
    assert run_step_script(workspace, env) == 1
