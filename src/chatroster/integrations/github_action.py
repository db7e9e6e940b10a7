"""The logic of the GitHub Action (`action.yml`): run the chatroster CLI for the event
that started the workflow and report the result where people look.

    pull_request           validate, then plan as markdown (every environment asked, one
                           section each); ONE comment on the pull request, found again by
                           a hidden marker and updated on later pushes, so a long review
                           does not collect a comment per push. The plans are saved
                           (``plan --out-dir``) for `action.yml` to upload as an artifact.
    push, default branch   apply the plans reviewed on the merged pull request
                           (``apply --plan FILE --yes``, found through the GitHub API:
                           `artifacts`); with ``apply-plan: fresh``, plan afresh and apply
                           (``apply --yes``); nothing, if apply-on-default-branch is false
    schedule               drift
    anything else          plan, reported in the step summary only

Run as ``python -m chatroster.integrations.github_action``. It reads the standard
GitHub Actions environment and the action's inputs (``INPUT_MANIFEST``,
``INPUT_ENVIRONMENTS``, ``INPUT_APPLY_PLAN``, ``INPUT_RECORD``, ``INPUT_REFRESH``,
``INPUT_EXTRA_ARGS``, ``INPUT_APPLY_ON_DEFAULT_BRANCH``, ``INPUT_GITHUB_TOKEN``) and
drives the CLI as a subprocess, so that the Action relies on nothing but the CLI's
documented contract.

The exit code is the command's: 0 no changes, 2 changes (or drift), 1 error, 3 refused
by a safety limit. `action.yml` turns 2 into success; ``changes=true|false`` and
``exit-code`` go to GITHUB_OUTPUT (and, on a pull request, ``plans-dir`` and
``artifact-name`` for the upload step), the report to GITHUB_STEP_SUMMARY.

The token is only ever put in the Authorization header: it is removed from the CLI's
environment and replaced by ``***`` in anything this module prints or posts.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from ..errors import EXIT_CHANGES, EXIT_ERROR, EXIT_OK, EXIT_UNSAFE, ActionError, ChatrosterError
from ..manifest.environments import ALL, targets
from ..runs import combined_exit
from .artifacts import fetch

#: GitHub refuses comment bodies over 65,536 characters; leave room for the footer.
MAX_BODY = 64_000
#: Variables that may hold the token; none of them is passed on to the CLI.
TOKEN_VARIABLES = ("INPUT_GITHUB_TOKEN", "GITHUB_TOKEN")
#: The last line of a successful `chatroster apply` that changed something.
APPLIED = re.compile(r"^Applied (\d+) change", re.MULTILINE)
DEFAULT_API_URL = "https://api.github.com"
#: Where the pull-request job saves its plans and the merge job unpacks them: the same
#: place in the checkout for both, because a saved plan names its manifest files
#: relative to itself.
PLANS_DIRECTORY = ".chatroster-plans"
#: The plan of a manifest that is not an environment (no `environments` input).
PLAN_FILE = "plan.json"
APPLY_PLANS = ("reviewed", "fresh")
STALE_HINT = (
    "A reviewed plan that is stale (live state or the manifest changed since the review) is "
    "refused, and nothing of it is applied: re-run the pull request's plan job, review the new "
    "plan, then re-run this job; or set `apply-plan: fresh` to plan afresh and apply."
)
REFRESHES = ("", "full", "changed")


@dataclass(frozen=True)
class Inputs:
    """The action's inputs, as `action.yml` passes them in the environment."""

    manifest: tuple[str, ...]
    extra_args: tuple[str, ...]
    apply_on_default_branch: bool
    token: str
    environments: tuple[str, ...] = ()
    """Names, or ``("all",)``; empty: the manifest as it is (maybe an environment file)."""
    apply_plan: str = "reviewed"
    record: str = ""
    refresh: str = ""

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
            environments=_environments(environ.get("INPUT_ENVIRONMENTS", "")),
            apply_plan=_choice("apply-plan", environ.get("INPUT_APPLY_PLAN", "") or "reviewed", APPLY_PLANS),
            record=environ.get("INPUT_RECORD", "").strip(),
            refresh=_choice("refresh", environ.get("INPUT_REFRESH", "").strip(), REFRESHES),
        )

    @property
    def marker(self) -> str:
        """Hidden in the comment so the next run finds it; one comment per manifest
        (and environments, when given)."""
        return f"<!-- chatroster-plan: {' '.join(self.selection)} -->"

    @property
    def selection(self) -> tuple[str, ...]:
        """The manifest and ``--env`` arguments: what every command runs on."""
        return (*self.manifest, *(arg for name in self.environments for arg in ("--env", name)))

    @property
    def refresh_args(self) -> tuple[str, ...]:
        return ("--refresh", self.refresh) if self.refresh else ()

    def artifact_name(self, head_sha: str) -> str:
        """The artifact of plans: named for the pull request's head commit and the
        manifest (not the environments: a matrix job applies one of the plans a pull
        request saved for all), so that two manifests in one workflow do not collide."""
        digest = hashlib.sha256(" ".join(self.manifest).encode()).hexdigest()[:8]
        return f"chatroster-plans-{digest}-{head_sha[:12] or 'unknown'}"


def _environments(value: str) -> tuple[str, ...]:
    names = tuple(dict.fromkeys(shlex.split(value)))
    if ALL in names and len(names) > 1:
        raise ActionError(f"environments: `all` names every environment; give it alone, not with {value!r}")
    return names


def _choice(name: str, value: str, allowed: Sequence[str]) -> str:
    if value.strip() not in allowed:
        listed = " or ".join(f"`{choice}`" for choice in allowed if choice)
        raise ActionError(f"the `{name}` input must be {listed}, not {value!r}")
    return value.strip()


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
    """A pull request: is the manifest valid, and what would merging it change? The
    plans are saved for the merge job."""
    checked = cli("validate", inputs.selection)
    if checked.exit_code != EXIT_OK:
        problems = _fenced(checked.stderr or checked.stdout)
        body = f"### chatroster: the manifest is not valid\n\n{problems}\nNothing was planned.\n"
        return Report(checked.exit_code, body, changes=False)
    plans = Path.cwd() / PLANS_DIRECTORY
    if plans.exists():  # plans of an earlier run in this checkout are not this review's
        shutil.rmtree(plans)
    saving = ("--out-dir", PLANS_DIRECTORY) if inputs.environments else ("--out", _plan_file(None))
    return plan(inputs, cli, saving)


def _plan_file(environment: str | None) -> str:
    return str(Path(PLANS_DIRECTORY) / (f"{environment}.json" if environment else PLAN_FILE))


def plan(inputs: Inputs, cli: Cli, saving: Sequence[str] = ()) -> Report:
    """What applying the manifest would change; a refusal keeps the plan and says why."""
    planned = cli(
        "plan",
        [
            *inputs.selection,
            "--format",
            "markdown",
            "--detailed-exitcode",
            *saving,
            *inputs.refresh_args,
            *inputs.extra_args,
        ],
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
    if planned.stdout.strip() and inputs.environments:  # the environments that did plan
        body = planned.stdout.rstrip() + "\n\n" + body
    return Report(planned.exit_code, body, changes=False)


def apply_fresh(inputs: Inputs, cli: Cli) -> Report:
    """A push to the default branch, told `apply-plan: fresh`: plan afresh and apply,
    one environment after the other."""
    names = _environment_names(inputs)
    runs = []
    for environment in names:
        where = ("--env", environment) if environment else ()
        runs.append(cli("apply", [*inputs.manifest, *where, "--yes", *_apply_args(inputs)]))
        if runs[-1].exit_code != EXIT_OK:
            break
    return _applied(runs, "planned afresh", [name or "" for name in names[len(runs) :]])


def _environment_names(inputs: Inputs) -> list[str | None]:
    """Each environment to apply, by name (``None``: the manifest as it is)."""
    if not inputs.environments:
        return [None]
    if inputs.environments == (ALL,):
        return [target.name for target in targets(inputs.manifest, [ALL])]
    return list(inputs.environments)


def _apply_args(inputs: Inputs) -> list[str]:
    record = ["--record", inputs.record] if inputs.record else []
    return [*record, *inputs.refresh_args, *inputs.extra_args]


@dataclass(frozen=True)
class Reviewed:
    """The plans of the merged pull request, unpacked into the plans directory."""

    number: int
    head_sha: str
    found: tuple[str, ...]
    """The plan files' names."""


def apply_reviewed(inputs: Inputs, cli: Cli, reviewed: Reviewed) -> Report:
    """A push to the default branch: apply exactly the plans reviewed on the merged
    pull request, one environment after the other, each refused if stale."""
    plans = _reviewed_files(inputs, reviewed)
    runs = []
    for plan_file in plans:
        runs.append(cli("apply", ["--plan", plan_file, "--yes", *_apply_args(inputs)]))
        if runs[-1].exit_code != EXIT_OK:
            break
    how = f"the plan reviewed on pull request #{reviewed.number}"
    report = _applied(runs, how, [Path(name).stem for name in plans[len(runs) :]])
    if report.exit_code != EXIT_ERROR:
        return report
    print(f"::error::{STALE_HINT}")
    return Report(report.exit_code, f"{report.markdown}\n> [!IMPORTANT]\n> {STALE_HINT}\n", report.changes)


def _reviewed_files(inputs: Inputs, reviewed: Reviewed) -> list[str]:
    """The plan file of each environment asked, from the artifact."""
    wanted: list[str | None]
    if inputs.environments == (ALL,):
        wanted = [name.removesuffix(".json") for name in sorted(reviewed.found)]
    elif inputs.environments:
        wanted = [*inputs.environments]
    else:
        wanted = [None]
    missing = [name or PLAN_FILE for name in wanted if Path(_plan_file(name)).name not in reviewed.found]
    if missing or not wanted:
        there = ", ".join(sorted(reviewed.found)) or "nothing"
        raise ActionError(
            f"the reviewed plans of pull request #{reviewed.number} have no plan for "
            f"{', '.join(missing) or 'any environment'} (there: {there}); plan those environments "
            "on the pull request (its `environments` input), or set `apply-plan: fresh`"
        )
    return [_plan_file(name) for name in wanted]


def _applied(runs: Sequence[Run], how: str, left: Sequence[str]) -> Report:
    """The report of applies run one after the other; ``left``: the environments not
    tried because one before them failed."""
    exit_code = combined_exit(run.exit_code for run in runs)
    title = "chatroster apply" + ("" if exit_code == EXIT_OK else " failed")
    sections = [f"### {title} ({how})\n"]
    for run in runs:
        sections.append(_fenced(run.stdout + run.stderr))
    if left:
        sections.append(f"Not applied, after the failure above: {', '.join(left)}.\n")
    # `apply` has no --detailed-exitcode; it ends with "Applied N change(s)." when it
    # changed something and says nothing of the kind when the plan was empty.
    changed = any((found := APPLIED.search(run.stdout)) and int(found.group(1)) for run in runs)
    return Report(exit_code, "\n".join(sections), changes=changed)


def drift(inputs: Inputs, cli: Cli) -> Report:
    """A scheduled check: has anyone changed the platform behind the manifest's back?"""
    checked = cli("drift", [*inputs.selection, "--format", "markdown", *inputs.extra_args])
    if checked.exit_code in (EXIT_OK, EXIT_CHANGES):
        return Report(checked.exit_code, checked.stdout, checked.exit_code == EXIT_CHANGES)
    body = "### chatroster drift failed\n\n" + _fenced(checked.stderr or checked.stdout)
    if checked.stdout.strip() and inputs.environments:
        body = checked.stdout.rstrip() + "\n\n" + body
    return Report(checked.exit_code, body, changes=False)


def choose(inputs: Inputs, event: Event) -> str:
    """Which workflow the event asks for: review, apply, drift or plan."""
    if event.name in ("pull_request", "pull_request_target"):
        return "review"
    if event.name == "push" and event.on_default_branch and inputs.apply_on_default_branch:
        return "apply"
    if event.name == "schedule":
        return "drift"
    return "plan"


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


def write_outputs(
    environ: Mapping[str, str], report: Report, body: str, more: Mapping[str, str] | None = None
) -> None:
    if summary := environ.get("GITHUB_STEP_SUMMARY"):
        with open(summary, "a", encoding="utf-8") as file:
            file.write(body + "\n")
    if output := environ.get("GITHUB_OUTPUT"):
        outputs = {"changes": "true" if report.changes else "false", "exit-code": str(report.exit_code)}
        with open(output, "a", encoding="utf-8") as file:
            file.writelines(f"{name}={value}\n" for name, value in {**outputs, **(more or {})}.items())


def reviewed_plans(environ: Mapping[str, str], inputs: Inputs, event: Event) -> Reviewed:
    """Download the merged pull request's plans into the checkout's plans directory."""
    if not inputs.token:
        raise ActionError(
            "apply-plan: reviewed needs the `github-token` input (with `actions: read`) to "
            "download the pull request's plans; or set `apply-plan: fresh`"
        )
    if not event.repository or not event.sha:
        raise ActionError("GITHUB_REPOSITORY or GITHUB_SHA is not set: is this a GitHub Actions run?")
    directory = Path.cwd() / PLANS_DIRECTORY
    with github_client(environ, inputs.token) as client:
        artifact = fetch(client, event.repository, event.sha, inputs.artifact_name, directory)
    found = tuple(sorted(path.name for path in directory.iterdir()))
    pull = artifact.pull
    print(f"Reviewed plans of pull request #{pull.number} (head {pull.head_sha[:7]}): {', '.join(found)}")
    return Reviewed(pull.number, pull.head_sha, found)


def run_workflow(environ: Mapping[str, str], inputs: Inputs, event: Event, cli: Cli) -> Report:
    chosen = choose(inputs, event)
    if chosen == "review":
        return review(inputs, cli)
    if chosen == "drift":
        return drift(inputs, cli)
    if chosen == "plan":
        return plan(inputs, cli)
    if inputs.apply_plan == "fresh":
        return apply_fresh(inputs, cli)
    return apply_reviewed(inputs, cli, reviewed_plans(environ, inputs, event))


def main(environ: Mapping[str, str] | None = None) -> int:
    environ = os.environ if environ is None else environ
    try:
        inputs = Inputs.from_environ(environ)
        event = Event.from_environ(environ)
    except ActionError as exc:
        print(f"::error::{exc}")
        return EXIT_ERROR
    redact = Redactor(inputs.token)
    try:
        report = run_workflow(environ, inputs, event, make_cli(environ, redact))
    except ChatrosterError as exc:
        message = redact(exc.render())
        print(f"::error::{message}")
        report = Report(EXIT_ERROR, f"### chatroster failed\n\n{message}\n", changes=False)
    except httpx.HTTPError as exc:
        message = redact(f"the GitHub API failed: {exc}")
        print(f"::error::{message}")
        report = Report(EXIT_ERROR, f"### chatroster failed\n\n{message}\n", changes=False)
    body = redact(comment_body(inputs, event, report))
    reviewing = choose(inputs, event) == "review"
    write_outputs(environ, report, body, _plans_outputs(inputs, event) if reviewing else {})
    if reviewing:
        post_comment(environ, inputs, event, body, redact)
    return report.exit_code


def _plans_outputs(inputs: Inputs, event: Event) -> dict[str, str]:
    """For action.yml's upload step: the saved plans, if any, and the artifact's name."""
    directory = Path.cwd() / PLANS_DIRECTORY
    if not directory.is_dir() or not any(directory.glob("*.json")):
        return {}
    return {"plans-dir": str(directory), "artifact-name": inputs.artifact_name(event.sha)}


if __name__ == "__main__":
    sys.exit(main())
