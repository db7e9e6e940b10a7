"""The logic of the GitHub Action (`action.yml`): run the chatroster CLI for the event
that started the workflow and report the result where people look.

    pull_request           validate, then plan as markdown; ONE comment on the pull
                           request, found again by a hidden marker and updated on later
                           pushes, so a long review does not collect a comment per push
    push, default branch   apply --yes (unless apply-on-default-branch is false)
    schedule               drift
    anything else          plan, reported in the step summary only

Run as ``python -m chatroster.integrations.github_action``. It reads the standard
GitHub Actions environment and the action's inputs (``INPUT_MANIFEST``,
``INPUT_EXTRA_ARGS``, ``INPUT_APPLY_ON_DEFAULT_BRANCH``, ``INPUT_GITHUB_TOKEN``) and
drives the CLI as a subprocess, so that the Action relies on nothing but the CLI's
documented contract.

The exit code is the command's: 0 no changes, 2 changes (or drift), 1 error, 3 refused
by a safety limit. `action.yml` turns 2 into success; ``changes=true|false`` and
``exit-code`` go to GITHUB_OUTPUT, the report to GITHUB_STEP_SUMMARY.

The token is only ever put in the Authorization header: it is removed from the CLI's
environment and replaced by ``***`` in anything this module prints or posts.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from ..errors import EXIT_CHANGES, EXIT_ERROR, EXIT_OK, EXIT_UNSAFE, ActionError

#: GitHub refuses comment bodies over 65,536 characters; leave room for the footer.
MAX_BODY = 64_000
#: Variables that may hold the token; none of them is passed on to the CLI.
TOKEN_VARIABLES = ("INPUT_GITHUB_TOKEN", "GITHUB_TOKEN")
#: The last line of a successful `chatroster apply` that changed something.
APPLIED = re.compile(r"^Applied (\d+) change", re.MULTILINE)
DEFAULT_API_URL = "https://api.github.com"


@dataclass(frozen=True)
class Inputs:
    """The action's inputs, as `action.yml` passes them in the environment."""

    manifest: tuple[str, ...]
    extra_args: tuple[str, ...]
    apply_on_default_branch: bool
    token: str

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> Inputs:
        manifest = tuple(shlex.split(environ.get("INPUT_MANIFEST", "")))
        if not manifest:
            raise ActionError(
                "the `manifest` input is empty: give the manifest file or "
                "directory, for example `manifest: users/`"
            )
        return cls(
            manifest=manifest,
            extra_args=tuple(shlex.split(environ.get("INPUT_EXTRA_ARGS", ""))),
            apply_on_default_branch=_flag(environ.get("INPUT_APPLY_ON_DEFAULT_BRANCH", "true")),
            token=next((environ[v] for v in TOKEN_VARIABLES if environ.get(v)), ""),
        )

    @property
    def marker(self) -> str:
        """Hidden in the comment so the next run finds it; one comment per manifest."""
        return f"<!-- chatroster-plan: {' '.join(self.manifest)} -->"


def _flag(value: str) -> bool:
    """An action input's boolean; empty means the default, true."""
    if value.strip().lower() in ("true", "yes", "1", "on", ""):
        return True
    if value.strip().lower() in ("false", "no", "0", "off"):
        return False
    raise ActionError(f"apply-on-default-branch must be true or false, not {value!r}")


@dataclass(frozen=True)
class Event:
    """What started the workflow: GITHUB_EVENT_NAME, GITHUB_REF and the event payload."""

    name: str
    ref: str
    repository: str
    payload: Mapping[str, Any]
    sha: str = ""

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> Event:
        path = environ.get("GITHUB_EVENT_PATH")
        try:
            payload = json.loads(Path(path).read_text()) if path else {}
        except (OSError, ValueError) as exc:
            raise ActionError(f"cannot read the event payload {path}: {exc}") from exc
        head = payload.get("pull_request", {}).get("head", {}).get("sha")
        return cls(
            name=environ.get("GITHUB_EVENT_NAME", ""),
            ref=environ.get("GITHUB_REF", ""),
            repository=environ.get("GITHUB_REPOSITORY", ""),
            payload=payload,
            sha=str(head or environ.get("GITHUB_SHA", "")),
        )

    @property
    def pull_number(self) -> int | None:
        number = self.payload.get("pull_request", {}).get("number", self.payload.get("number"))
        return int(number) if number is not None else None

    @property
    def on_default_branch(self) -> bool:
        branch = self.payload.get("repository", {}).get("default_branch")
        return bool(branch) and self.ref == f"refs/heads/{branch}"


@dataclass(frozen=True)
class Run:
    """One run of the CLI, its output already redacted."""

    command: str
    exit_code: int
    stdout: str
    stderr: str


@dataclass(frozen=True)
class Report:
    """What the Action tells the workflow: exit code, markdown, and whether anything changes."""

    exit_code: int
    markdown: str
    changes: bool


Cli = Callable[[str, Sequence[str]], Run]


class Redactor:
    def __init__(self, secret: str) -> None:
        self.secret = secret

    def __call__(self, text: str) -> str:
        return text.replace(self.secret, "***") if self.secret else text


def make_cli(environ: Mapping[str, str], redact: Redactor) -> Cli:
    """The chatroster CLI as a subprocess of this interpreter, without the token."""
    env = {k: v for k, v in environ.items() if k not in TOKEN_VARIABLES}

    def run(command: str, args: Sequence[str]) -> Run:
        print(f"::group::chatroster {command} {shlex.join(args)}", flush=True)
        done = subprocess.run(
            [sys.executable, "-m", "chatroster", command, *args],
            capture_output=True,
            text=True,
            env=env,
            check=False,
        )
        result = Run(command, done.returncode, redact(done.stdout), redact(done.stderr))
        sys.stdout.write(result.stdout)
        sys.stderr.write(result.stderr)
        print(f"::endgroup::\nchatroster {command} exited {done.returncode}", flush=True)
        return result

    return run


# ------------------------------------------------------------------------- the workflows


def review(inputs: Inputs, cli: Cli) -> Report:
    """A pull request: is the manifest valid, and what would merging it change?"""
    checked = cli("validate", inputs.manifest)
    if checked.exit_code != EXIT_OK:
        problems = _fenced(checked.stderr or checked.stdout)
        body = f"### chatroster: the manifest is not valid\n\n{problems}\nNothing was planned.\n"
        return Report(checked.exit_code, body, changes=False)
    return plan(inputs, cli)


def plan(inputs: Inputs, cli: Cli) -> Report:
    """What applying the manifest would change; a refusal keeps the plan and says why."""
    planned = cli(
        "plan", [*inputs.manifest, "--format", "markdown", "--detailed-exitcode", *inputs.extra_args]
    )
    changes = planned.exit_code in (EXIT_CHANGES, EXIT_UNSAFE)
    if planned.exit_code in (EXIT_OK, EXIT_CHANGES):
        return Report(planned.exit_code, planned.stdout, changes)
    if planned.exit_code == EXIT_UNSAFE:
        refusal = "\n".join(f"> {line}" for line in planned.stderr.strip().splitlines())
        body = (
            f"{planned.stdout}\n> [!CAUTION]\n> **Refused by a safety limit.** "
            f"Nothing will be applied until it is resolved.\n>\n{refusal}\n"
        )
        return Report(EXIT_UNSAFE, body, changes)
    body = "### chatroster plan failed\n\n" + _fenced(planned.stderr or planned.stdout)
    return Report(planned.exit_code, body, changes=False)


def apply(inputs: Inputs, cli: Cli) -> Report:
    """A push to the default branch: make the platform match what was merged."""
    applied = cli("apply", [*inputs.manifest, "--yes", *inputs.extra_args])
    title = "chatroster apply" + ("" if applied.exit_code == EXIT_OK else " failed")
    body = f"### {title}\n\n" + _fenced(applied.stdout + applied.stderr)
    # `apply` has no --detailed-exitcode; it ends with "Applied N change(s)." when it
    # changed something and says nothing of the kind when the plan was empty.
    found = APPLIED.search(applied.stdout)
    return Report(applied.exit_code, body, changes=bool(found and int(found.group(1))))


def drift(inputs: Inputs, cli: Cli) -> Report:
    """A scheduled check: has anyone changed the platform behind the manifest's back?"""
    checked = cli("drift", [*inputs.manifest, "--format", "markdown", *inputs.extra_args])
    if checked.exit_code in (EXIT_OK, EXIT_CHANGES):
        return Report(checked.exit_code, checked.stdout, checked.exit_code == EXIT_CHANGES)
    body = "### chatroster drift failed\n\n" + _fenced(checked.stderr or checked.stdout)
    return Report(checked.exit_code, body, changes=False)


def choose(inputs: Inputs, event: Event) -> Callable[[Inputs, Cli], Report]:
    if event.name in ("pull_request", "pull_request_target"):
        return review
    if event.name == "push" and event.on_default_branch and inputs.apply_on_default_branch:
        return apply
    if event.name == "schedule":
        return drift
    return plan


def _fenced(text: str) -> str:
    """A code block that survives backticks in the text it holds."""
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}\n{text.rstrip()}\n{fence}\n"


# ---------------------------------------------------------------------- where it goes


class PullRequestComments:
    """The comments of one pull request through the GitHub REST API: just enough to keep
    one comment per manifest up to date."""

    def __init__(self, client: httpx.Client, repository: str, number: int) -> None:
        self.client = client
        self.repository = repository
        self.number = number

    def upsert(self, marker: str, body: str) -> str:
        """Update the comment that starts with `marker`, or create it; says which."""
        found = self._find(marker)
        if found is None:
            url = f"/repos/{self.repository}/issues/{self.number}/comments"
            self.client.post(url, json={"body": body}).raise_for_status()
            return "created"
        url = f"/repos/{self.repository}/issues/comments/{found}"
        self.client.patch(url, json={"body": body}).raise_for_status()
        return "updated"

    def _find(self, marker: str) -> int | None:
        url: str | None = f"/repos/{self.repository}/issues/{self.number}/comments"
        params: dict[str, int] | None = {"per_page": 100}
        while url:
            response = self.client.get(url, params=params)
            response.raise_for_status()
            for comment in response.json():
                if str(comment.get("body", "")).startswith(marker):
                    return int(comment["id"])
            url, params = response.links.get("next", {}).get("url"), None
        return None


def github_client(environ: Mapping[str, str], token: str) -> httpx.Client:
    return httpx.Client(
        base_url=environ.get("GITHUB_API_URL") or DEFAULT_API_URL,
        headers={
            "Authorization": f"Bearer {token}",
            "Accept": "application/vnd.github+json",
            "X-GitHub-Api-Version": "2022-11-28",
            "User-Agent": "chatroster-action",
        },
        timeout=30.0,
    )


def comment_body(inputs: Inputs, event: Event, report: Report) -> str:
    markdown = report.markdown
    if len(markdown) > MAX_BODY:
        markdown = markdown[:MAX_BODY] + "\n\n_… cut to fit a comment; see the job's summary._\n"
    at = f" at {event.sha[:7]}" if event.sha else ""
    footer = (
        f"<sub>chatroster, manifest `{' '.join(inputs.manifest)}`{at}, exit code {report.exit_code}</sub>"
    )
    return f"{inputs.marker}\n{markdown.rstrip()}\n\n{footer}\n"


def post_comment(
    environ: Mapping[str, str], inputs: Inputs, event: Event, body: str, redact: Redactor
) -> None:
    """Failing to comment is a warning: the plan is still in the summary and the log, and
    a fork's pull request gets a read-only token by design."""
    if event.pull_number is None or not event.repository:
        print("::warning::no pull request number in the event; the plan is not commented")
        return
    if not inputs.token:
        print("::warning::no github-token; the plan is not commented")
        return
    try:
        with github_client(environ, inputs.token) as client:
            comments = PullRequestComments(client, event.repository, event.pull_number)
            done = comments.upsert(inputs.marker, body)
    except httpx.HTTPError as exc:
        print(f"::warning::could not comment on pull request #{event.pull_number}: {redact(str(exc))}")
        return
    print(f"Comment {done} on pull request #{event.pull_number}.")


def write_outputs(environ: Mapping[str, str], report: Report, body: str) -> None:
    if summary := environ.get("GITHUB_STEP_SUMMARY"):
        with open(summary, "a", encoding="utf-8") as file:
            file.write(body + "\n")
    if output := environ.get("GITHUB_OUTPUT"):
        with open(output, "a", encoding="utf-8") as file:
            file.write(f"changes={'true' if report.changes else 'false'}\nexit-code={report.exit_code}\n")


def main(environ: Mapping[str, str] | None = None) -> int:
    environ = os.environ if environ is None else environ
    try:
        inputs = Inputs.from_environ(environ)
        event = Event.from_environ(environ)
    except ActionError as exc:
        print(f"::error::{exc}")
        return EXIT_ERROR
    redact = Redactor(inputs.token)
    workflow = choose(inputs, event)
    report = workflow(inputs, make_cli(environ, redact))
    body = redact(comment_body(inputs, event, report))
    write_outputs(environ, report, body)
    if workflow is review:
        post_comment(environ, inputs, event, body, redact)
    return report.exit_code


if __name__ == "__main__":
    sys.exit(main())
