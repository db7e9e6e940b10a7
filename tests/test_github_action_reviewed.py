"""The GitHub Action's merge job applies the plans reviewed on the pull request.

A repository with two environments on two emulator apps (real processes) goes through a
pull request (one comment, a section per environment; the plans saved) and a merge (the
plans found through the GitHub API, downloaded from storage, applied with
`apply --plan`). The Action's module runs as a subprocess; github.com and its artifact
storage are stand-ins on loopback that record every request, and the "uploaded"
artifact is the zip actions/upload-artifact would make of the plans directory."""

from __future__ import annotations

import io
import json
import shutil
import stat
import sys
import threading
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from textwrap import dedent
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from emulator_process import EmulatorProcess
from test_github_action import PR, REPO, TOKEN, FakeGitHub, Request, Workspace

from chatroster.emulator.config import DEFAULT_APP_KEY, DEFAULT_APP_SECRET
from chatroster.integrations.github_action import Inputs

HEAD = "feedface" * 5
MERGED = "c0ffee00" * 5
SIGNATURE = "sig=storageSignatureNeverPrinted42"
#: The artifact the merge job looks for (the PR job names it so: see its outputs).
ARTIFACT = Inputs(("users/",), (), True, "").artifact_name(HEAD)
CREDENTIALS = {"NEXCONN_APP_KEY": DEFAULT_APP_KEY, "NEXCONN_APP_SECRET": DEFAULT_APP_SECRET}

BASE = """\
version: 1
provider: {type: local}
owner: platform
policy: {prune: deactivate, max_deactivate: 50%}
users:
  alice: {name: Alice Ng}
  bob: {name: Bob Li}
"""
STAGING_EXTRA = """\
users:
  qa1: {name: QA One}
"""


# ------------------------------------------------------ GitHub, its runs and its storage


@dataclass
class Storage:
    """Where GitHub keeps artifacts: another origin, reached by a pre-signed URL."""

    blobs: dict[int, bytes] = field(default_factory=dict)
    requests: list[Request] = field(default_factory=list)
    url: str = ""


@dataclass
class GitHubWithRuns(FakeGitHub):
    """The comment endpoints, plus the pull requests of commits, workflow runs, their
    artifacts, and the artifact download (a redirect to `Storage`)."""

    storage: Storage = field(default_factory=Storage)
    pulls: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    runs: list[dict[str, Any]] = field(default_factory=list)
    artifacts: dict[int, list[dict[str, Any]]] = field(default_factory=dict)
    uploaded: dict[str, bytes] = field(default_factory=dict)

    def handle(self, request: Request) -> tuple[int, Any, dict[str, str]]:
        parts = request.path.removeprefix(f"/repos/{REPO}/").split("/")
        if request.method != "GET" or parts[0] not in ("commits", "actions"):
            return super().handle(request)
        self.requests.append(request)
        if parts[0] == "commits" and parts[2:] == ["pulls"]:
            return 200, self.pulls.get(parts[1], []), {}
        if parts[1:] == ["runs"]:
            head = request.query.get("head_sha", [""])[0]
            return 200, {"workflow_runs": [run for run in self.runs if run["head_sha"] == head]}, {}
        if parts[1] == "runs" and parts[3:] == ["artifacts"]:
            return 200, {"artifacts": self.artifacts.get(int(parts[2]), [])}, {}
        if parts[1] == "artifacts" and parts[3:] == ["zip"]:
            return 302, {}, {"Location": f"{self.storage.url}/blob/{parts[2]}?{SIGNATURE}"}
        return 404, {"message": "Not Found"}, {}

    def merged(self, sha: str = MERGED, head: str = HEAD) -> None:
        """A pull request merged as `sha`."""
        self.pulls[sha] = [{"number": PR, "merged_at": "2026-12-03T12:00:00Z", "head": {"sha": head}}]

    def upload(self, name: str, files: dict[str, bytes], head: str = HEAD) -> None:
        """What actions/upload-artifact does with a directory: its files, flat, zipped,
        kept as an artifact of the pull request's workflow run."""
        run_id = 9000 + len(self.runs)
        self.runs.append({"id": run_id, "head_sha": head, "event": "pull_request", "created_at": f"{run_id}"})
        self.uploaded = dict(files)
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zipped:
            for file_name, data in files.items():
                zipped.writestr(file_name, data)
        artifact_id = 500 + len(self.storage.blobs)
        self.storage.blobs[artifact_id] = buffer.getvalue()
        self.artifacts[run_id] = [{"id": artifact_id, "name": name, "expired": False}]

    def api_requests(self) -> list[Request]:
        return [r for r in self.requests if r.path.startswith(f"/repos/{REPO}/")]


def serve(handle: Callable[[BaseHTTPRequestHandler], None]) -> tuple[ThreadingHTTPServer, threading.Thread]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
            handle(self)

        do_POST = do_PATCH = do_GET

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    return server, thread


def _api(github: GitHubWithRuns) -> Callable[[BaseHTTPRequestHandler], None]:
    def handle(http: BaseHTTPRequestHandler) -> None:
        parts = urlsplit(http.path)
        raw = http.rfile.read(int(http.headers.get("Content-Length") or 0))
        request = Request(
            http.command,
            parts.path,
            parse_qs(parts.query),
            dict(http.headers.items()),
            json.loads(raw or "null"),
        )
        status, body, headers = github.handle(request)
        data = json.dumps(body).encode()
        http.send_response(status)
        for name, value in {
            "Content-Type": "application/json",
            "Content-Length": str(len(data)),
            **headers,
        }.items():
            http.send_header(name, value)
        http.end_headers()
        http.wfile.write(data)

    return handle


def _storage(storage: Storage) -> Callable[[BaseHTTPRequestHandler], None]:
    def handle(http: BaseHTTPRequestHandler) -> None:
        parts = urlsplit(http.path)
        storage.requests.append(
            Request(http.command, parts.path, parse_qs(parts.query), dict(http.headers), None)
        )
        blob = storage.blobs.get(int(parts.path.rsplit("/", 1)[1]))
        http.send_response(200 if blob is not None else 404)
        http.send_header("Content-Type", "application/zip")
        http.send_header("Content-Length", str(len(blob or b"")))
        http.end_headers()
        http.wfile.write(blob or b"")

    return handle


@pytest.fixture
def github() -> Iterator[GitHubWithRuns]:
    fake = GitHubWithRuns()
    servers = [serve(_api(fake)), serve(_storage(fake.storage))]
    fake.url, fake.storage.url = (f"http://127.0.0.1:{server.server_address[1]}" for server, _ in servers)
    yield fake
    for server, thread in servers:
        server.shutdown()
        server.server_close()
        thread.join()


# ------------------------------------------------------------------- the repository


@dataclass
class Repository:
    """The checkout a job sees: users/ (a base and two environments, each a Nexconn app
    on its own emulator), and the Action run over it with an event."""

    root: Path
    github: GitHubWithRuns
    apps: dict[str, EmulatorProcess]

    def write(self, base: str = BASE, staging_extra: str = STAGING_EXTRA) -> None:
        users = self.root / "users"
        (users / "environments").mkdir(parents=True, exist_ok=True)
        (users / "team.yaml").write_text(base)
        for name, app in self.apps.items():
            layer = f"""\
            extends: ..
            provider:
              type: nexconn
              url: {app.base_url}
              app_key: ${{NEXCONN_APP_KEY}}
              app_secret: ${{NEXCONN_APP_SECRET}}
            """
            extra = staging_extra if name == "staging" else ""
            (users / "environments" / f"{name}.yaml").write_text(dedent(layer) + extra)

    def workspace(self) -> Workspace:
        return Workspace(self.root, self.github)

    def action(self, event: str, **inputs: str) -> Any:
        space = self.workspace()
        inputs = {"manifest": "users/", "environments": "all", **inputs}
        if event == "pull_request":
            payload = {
                "number": PR,
                "pull_request": {"number": PR, "head": {"sha": HEAD}},
                "repository": {"full_name": REPO, "default_branch": "main"},
            }
            env = space.env(event, payload, f"refs/pull/{PR}/merge", **inputs)
        else:
            payload = {"after": MERGED, "repository": {"full_name": REPO, "default_branch": "main"}}
            env = space.env(event, payload, "refs/heads/main", **inputs)
            env["GITHUB_SHA"] = MERGED
        return space.run(space_module(), {**env, **CREDENTIALS})

    def chatroster(self, *args: str) -> Any:
        space = self.workspace()
        env = {**space.env("workflow_dispatch", {}, "refs/heads/main"), **CREDENTIALS}
        return space.run([*space_module()[:1], "-m", "chatroster", *args], env)

    def outputs(self) -> dict[str, str]:
        return self.workspace().outputs()

    def summary(self) -> str:
        return self.workspace().summary()

    def upload_plans(self) -> dict[str, bytes]:
        """The upload step: the plans directory the PR job named, as an artifact."""
        outputs = self.outputs()
        directory = Path(outputs["plans-dir"])
        files = {path.name: path.read_bytes() for path in sorted(directory.iterdir())}
        self.github.upload(outputs["artifact-name"], files)
        return files

    def fresh_checkout(self) -> Repository:
        """The merge job's checkout: the merged files, in another directory, no plans."""
        other = self.root.parent / f"{self.root.name}-merge"
        shutil.copytree(self.root / "users", other / "users")
        return Repository(other, self.github, self.apps)


def space_module() -> list[str]:
    return [sys.executable, "-m", "chatroster.integrations.github_action"]


@pytest.fixture
def repository(
    tmp_path: Path, github: GitHubWithRuns, emulator_factory: Callable[..., EmulatorProcess]
) -> Repository:
    root = tmp_path / "checkout"
    root.mkdir()
    repo = Repository(root, github, {name: emulator_factory() for name in ("production", "staging")})
    repo.write()
    return repo


def reviewed(repository: Repository) -> Repository:
    """A pull request planned and its plans uploaded; the merge job's checkout."""
    planned = repository.action("pull_request")
    assert planned.returncode == 2, planned.stdout + planned.stderr
    repository.upload_plans()
    repository.github.merged()
    return repository.fresh_checkout()


def no_token_in(*texts: str) -> bool:
    return all(TOKEN not in text and SIGNATURE not in text for text in texts)


# ------------------------------------------------------------------------ the tests


def test_a_pull_request_comments_every_environment_and_saves_a_plan_each(
    repository: Repository, github: GitHubWithRuns
) -> None:
    done = repository.action("pull_request")

    assert done.returncode == 2, done.stdout + done.stderr
    [comment] = github.comments
    body = comment["body"]
    assert body.startswith("<!-- chatroster-plan: users/ --env all -->")
    assert body.count("## Environment `production`") == 1 and body.count("## Environment `staging`") == 1
    assert "`qa1`" in body.split("## Environment `staging`")[1]
    outputs = repository.outputs()
    assert outputs["artifact-name"] == ARTIFACT and ARTIFACT.endswith(HEAD[:12])
    assert sorted(p.name for p in Path(outputs["plans-dir"]).iterdir()) == ["production.json", "staging.json"]
    assert no_token_in(body, repository.summary())


def test_the_merge_applies_exactly_the_reviewed_plans(repository: Repository, github: GitHubWithRuns) -> None:
    merge = reviewed(repository)
    uploaded = {name: json.loads(data)["summary"] for name, data in github.uploaded.items()}

    for environment in ("staging", "production"):  # the matrix: one job per environment
        done = merge.action("push", environments=environment, record=f"{environment}.jsonl")
        assert done.returncode == 0, done.stdout + done.stderr
        assert f"--plan .chatroster-plans/{environment}.json --yes" in done.stdout
        applied = sum(uploaded[f"{environment}.json"].values())
        assert f"Applied {applied} change(s)." in done.stdout
        assert merge.outputs()["changes"] == "true"
        record = (merge.root / f"{environment}.jsonl").read_text()
        assert record and no_token_in(record, done.stdout, done.stderr, merge.summary())

    after = merge.chatroster("plan", "users", "--env", "all", "--detailed-exitcode")
    assert after.returncode == 0, after.stdout + after.stderr
    lookups = [r.path for r in github.api_requests() if "/comments" not in r.path]
    assert f"/repos/{REPO}/commits/{MERGED}/pulls" in lookups
    assert f"/repos/{REPO}/actions/runs" in lookups
    assert all(r.headers["Authorization"] == f"Bearer {TOKEN}" for r in github.api_requests())
    # The storage URL is another origin: the token never goes there.
    assert len(github.storage.requests) == 2
    assert all("authorization" not in {k.lower() for k in r.headers} for r in github.storage.requests)


def test_a_stale_reviewed_plan_is_refused_and_says_what_to_do(repository: Repository) -> None:
    assert repository.chatroster("apply", "users", "--env", "staging", "--yes").returncode == 0
    repository.write(base=BASE.replace("Bob Li", "Robert Li"))
    merge = reviewed(repository)
    # Someone renames bob on the staging app between the review and the merge.
    hand = merge.root / "by-hand.yaml"
    hand.write_text(
        "version: 1\nowner: platform\nprovider:\n  type: nexconn\n"
        f"  url: {merge.apps['staging'].base_url}\n"
        "  app_key: ${NEXCONN_APP_KEY}\n  app_secret: ${NEXCONN_APP_SECRET}\n"
        "users:\n  bob: {name: Bobby}\n"
    )
    by_hand = merge.chatroster("apply", str(hand), "--yes")
    assert by_hand.returncode == 0, by_hand.stdout + by_hand.stderr

    done = merge.action("push", environments="staging")

    assert done.returncode == 1
    assert "changed since the plan was made" in done.stdout + done.stderr
    assert "re-run the pull request's plan job" in done.stdout
    assert "apply-plan: fresh" in merge.summary()
    shown = merge.chatroster("show", "users/environments/staging.yaml", "bob", "--format", "json")
    assert "Bobby" in shown.stdout  # nothing was applied over it


def test_no_reviewed_plan_is_a_clear_error(repository: Repository, github: GitHubWithRuns) -> None:
    direct = repository.action("push")  # no pull request was merged as this commit
    assert direct.returncode == 1
    assert "no merged pull request for c0ffee0 (a direct push?)" in direct.stdout
    assert "apply-plan: fresh" in direct.stdout

    github.merged()  # merged, but its plans were never uploaded (or expired)
    missing = repository.action("push")
    assert missing.returncode == 1
    assert f"in the workflow runs of pull request #{PR}" in missing.stdout
    assert "re-run the pull request's plan job" in missing.stdout
    assert not any(r.method != "GET" for r in github.requests)
    after = repository.chatroster("plan", "users", "--env", "all", "--detailed-exitcode")
    assert after.returncode == 2  # nothing was applied


def test_apply_plan_fresh_plans_afresh_and_asks_github_nothing(
    repository: Repository, github: GitHubWithRuns
) -> None:
    done = repository.action("push", apply_plan="fresh")

    assert done.returncode == 0, done.stdout + done.stderr
    assert "apply users/ --env production --yes" in done.stdout
    assert "apply users/ --env staging --yes" in done.stdout
    assert github.requests == []
    after = repository.chatroster("plan", "users", "--env", "all", "--detailed-exitcode")
    assert after.returncode == 0, after.stdout


@pytest.mark.parametrize(
    "name", ["../x.json", "/tmp/x.json", "sub/staging.json", "staging.yaml", ".hidden.json"]
)
def test_a_hostile_artifact_is_refused_before_anything_is_written(
    repository: Repository, github: GitHubWithRuns, name: str
) -> None:
    github.upload(ARTIFACT, {name: b"{}", "staging.json": b"{}"})
    github.merged()

    done = repository.action("push")

    assert done.returncode == 1
    assert "is not the plans the pull-request job uploads" in done.stdout
    assert repr(name) in done.stdout
    assert not (repository.root.parent / "x.json").exists()
    assert not (repository.root / ".chatroster-plans").exists()


def test_links_and_oversized_archives_are_refused_as_plans(tmp_path: Path) -> None:
    from chatroster.errors import ActionError
    from chatroster.integrations import artifacts

    link = zipfile.ZipInfo("staging.json")
    link.external_attr = (stat.S_IFLNK | 0o777) << 16
    archive = tmp_path / "plans.zip"
    with zipfile.ZipFile(archive, "w") as zipped:
        zipped.writestr(link, "/etc/passwd")
    with pytest.raises(ActionError, match="'staging.json' is not a regular file"):
        artifacts.unpack(archive, tmp_path / "plans")
    with zipfile.ZipFile(archive, "w") as zipped:
        for number in range(artifacts.MAX_FILES + 1):
            zipped.writestr(f"e{number}.json", "{}")
    with pytest.raises(ActionError, match="over 1000"):
        artifacts.unpack(archive, tmp_path / "plans")
    archive.write_bytes(b"not a zip")
    with pytest.raises(ActionError, match="not a readable zip"):
        artifacts.unpack(archive, tmp_path / "plans")
    assert not (tmp_path / "plans").exists()


def test_one_merge_job_applies_every_reviewed_environment_in_turn(repository: Repository) -> None:
    merge = reviewed(repository)

    done = merge.action("push", environments="all")

    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.index("production.json --yes") < done.stdout.index("staging.json --yes")
    after = merge.chatroster("plan", "users", "--env", "all", "--detailed-exitcode")
    assert after.returncode == 0, after.stdout + after.stderr


def test_an_environment_the_pull_request_did_not_plan_is_a_clear_error(repository: Repository) -> None:
    merge = reviewed(repository)

    done = merge.action("push", environments="qa")

    assert done.returncode == 1
    assert f"the reviewed plans of pull request #{PR} have no plan for qa" in done.stdout
    assert "(there: production.json, staging.json)" in done.stdout


def test_a_reviewed_plan_is_refused_when_another_merge_changed_the_manifest(repository: Repository) -> None:
    merge = reviewed(repository)
    # Another pull request, merged first, renamed bob in the base every layer shares.
    (merge.root / "users" / "team.yaml").write_text(BASE.replace("Bob Li", "Bob L."))

    done = merge.action("push", environments="production")

    assert done.returncode == 1
    assert "the manifest changed since the plan was made" in done.stdout + done.stderr
    assert "re-run the pull request's plan job" in done.stdout
    after = merge.chatroster("plan", "users", "--env", "production", "--detailed-exitcode")
    assert after.returncode == 2  # nothing was applied
