"""The plans a pull request's job saved, found again from the merge job: the pull
request merged as the pushed commit, the pull-request workflow runs for its head
commit, their artifact of plans, downloaded and unpacked.

    GET /repos/{repo}/commits/{sha}/pulls            the merged pull request, its head sha
    GET /repos/{repo}/actions/runs?head_sha=...      the runs for that head, newest first
    GET /repos/{repo}/actions/runs/{id}/artifacts    the artifact of plans, by name
    GET /repos/{repo}/actions/artifacts/{id}/zip     a redirect to a pre-signed storage URL

The token goes to the GitHub API only: the storage URL is fetched by a client that has
no Authorization header at all (and the URL, which is itself a credential, is never
printed). The zip is input like any other: only flat ``*.json`` names are unpacked,
within size limits; anything else is refused before a file is written.
"""

from __future__ import annotations

import re
import shutil
import stat
import tempfile
import zipfile
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

from ..errors import ActionError

#: A zip larger than this is not the plans the pull-request job uploaded.
MAX_ZIP_BYTES = 256 * 1024 * 1024
#: Unpacked, all files together (a plan of 100k changes is about 60 MB).
MAX_UNPACKED_BYTES = 1024 * 1024 * 1024
MAX_FILES = 1000
#: A plan's name: an environment's file name (or ``plan``), and ``.json``. Flat: no
#: directory, so nothing can be written outside the plans directory.
PLAN_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*\.json")
CHUNK = 1024 * 1024


@dataclass(frozen=True)
class PullRequest:
    number: int
    head_sha: str


@dataclass(frozen=True)
class Artifact:
    id: int
    name: str
    run_id: int
    pull: PullRequest


class ReviewedPlans:
    """Finds and fetches the artifact of plans a merged pull request's job uploaded."""

    def __init__(self, client: httpx.Client, repository: str) -> None:
        self.client = client
        self.repository = repository

    def find(self, sha: str, named: Callable[[str], str]) -> Artifact:
        """The artifact ``named(head sha)`` of the pull request merged as ``sha``."""
        pull = self.merged_pull(sha)
        name = named(pull.head_sha)
        for run_id in self._runs(pull.head_sha):
            for artifact in self._artifacts(run_id, name):
                if not artifact.get("expired"):
                    return Artifact(int(artifact["id"]), name, run_id, pull)
        raise ActionError(
            f"no artifact {name} in the workflow runs of pull request #{pull.number} "
            f"(head {pull.head_sha[:7]}): it expired, or the pull request's plan job did not "
            "upload it; re-run the pull request's plan job and then this job, or set "
            "`apply-plan: fresh` to plan afresh and apply"
        )

    def merged_pull(self, sha: str) -> PullRequest:
        pulls = self._get(f"/repos/{self.repository}/commits/{sha}/pulls")
        merged = [p for p in pulls if isinstance(p, Mapping) and p.get("merged_at")]
        # Merged as this very commit first (a merge or squash commit), then any merged one
        # that contains it (a fast-forward or rebase merge).
        merged.sort(key=lambda p: p.get("merge_commit_sha") != sha)
        if not merged:
            raise ActionError(
                f"no merged pull request for {sha[:7]} (a direct push?): the merge job applies "
                "the plan reviewed on a pull request; merge through a pull request, or set "
                "`apply-plan: fresh` to plan afresh and apply"
            )
        head = merged[0].get("head", {}).get("sha")
        if not head:
            raise ActionError(f"pull request #{merged[0].get('number')} has no head sha in the API's answer")
        return PullRequest(int(merged[0]["number"]), str(head))

    def _runs(self, head_sha: str) -> Iterator[int]:
        found = self._get(f"/repos/{self.repository}/actions/runs", {"head_sha": head_sha, "per_page": 100})
        runs = [run for run in found.get("workflow_runs", []) if run.get("event", "pull_request") != "push"]
        runs.sort(key=lambda run: str(run.get("created_at", "")), reverse=True)  # the latest plan first
        for run in runs:
            yield int(run["id"])

    def _artifacts(self, run_id: int, name: str) -> list[Mapping[str, Any]]:
        url = f"/repos/{self.repository}/actions/runs/{run_id}/artifacts"
        found = self._get(url, {"name": name, "per_page": 100})
        return [a for a in found.get("artifacts", []) if a.get("name") == name]

    def _get(self, url: str, params: Mapping[str, str | int] | None = None) -> Any:
        response = self.client.get(url, params=params)
        if response.status_code in (401, 403, 404):
            raise ActionError(
                f"the GitHub API refused GET {url} ({response.status_code}): the merge job's "
                "token needs `actions: read` (and `contents: read`) to find the reviewed plans"
            )
        response.raise_for_status()
        return response.json()

    def download(self, artifact: Artifact, into: Path) -> None:
        """The artifact's zip into the file ``into``, following GitHub's redirect to
        its storage without the token."""
        url = f"/repos/{self.repository}/actions/artifacts/{artifact.id}/zip"
        with self.client.stream("GET", url, follow_redirects=False) as response:
            if response.is_redirect:
                location = response.headers.get("Location", "")
            else:
                if response.status_code != 200:
                    raise ActionError(
                        f"the GitHub API answered {response.status_code} to GET {url}: the merge "
                        "job's token needs `actions: read` to download the reviewed plans"
                    )
                _save(response, into, "GitHub")
                return
        storage = httpx.URL(str(response.url)).join(location)
        host = urlsplit(str(storage)).netloc or "?"
        with httpx.Client(timeout=self.client.timeout, follow_redirects=True) as plain:
            try:
                with plain.stream("GET", storage) as stored:
                    if stored.status_code != 200:
                        raise ActionError(
                            f"the artifact storage at {host} answered {stored.status_code} for "
                            f"{artifact.name}; re-run this job (the download link lasts a minute)"
                        )
                    _save(stored, into, host)
            except httpx.HTTPError as exc:  # its message would hold the signed URL
                raise ActionError(
                    f"cannot download {artifact.name} from {host}: {type(exc).__name__}"
                ) from None


def _save(response: httpx.Response, into: Path, where: str) -> None:
    declared = response.headers.get("Content-Length", "")
    if declared.isdigit() and int(declared) > MAX_ZIP_BYTES:
        raise ActionError(f"the artifact from {where} is {declared} bytes, over {MAX_ZIP_BYTES}: not plans")
    size = 0
    with into.open("wb") as file:
        for chunk in response.iter_bytes(CHUNK):
            size += len(chunk)
            if size > MAX_ZIP_BYTES:
                raise ActionError(f"the artifact from {where} is over {MAX_ZIP_BYTES} bytes: not plans")
            file.write(chunk)


def unpack(archive: Path, directory: Path) -> list[Path]:
    """The plans in the zip ``archive``, written flat into ``directory`` (emptied first).

    Everything is checked before anything is written: a name that is not a flat
    ``NAME.json``, a link, a directory, or sizes over the limits refuse the whole zip."""
    try:
        with zipfile.ZipFile(archive) as zipped:
            entries = zipped.infolist()
            _check(entries)
            if directory.exists():
                shutil.rmtree(directory)
            directory.mkdir(parents=True)
            return [_extract(zipped, entry, directory) for entry in entries]
    except (zipfile.BadZipFile, zipfile.LargeZipFile, NotImplementedError, EOFError) as exc:
        raise ActionError(f"the artifact is not a readable zip ({exc}); nothing was applied") from None


def _check(entries: list[zipfile.ZipInfo]) -> None:
    problems = []
    if len(entries) > MAX_FILES:
        problems.append(f"{len(entries)} files, over {MAX_FILES}")
    names = [entry.filename for entry in entries]
    for entry in entries:
        kind = stat.S_IFMT(entry.external_attr >> 16)
        if not PLAN_NAME.fullmatch(entry.filename) or entry.is_dir():
            problems.append(f"{entry.filename!r} is not a plan's name (NAME.json, no directory)")
        elif kind not in (0, stat.S_IFREG):
            problems.append(f"{entry.filename!r} is not a regular file")
    if len(set(names)) != len(names):
        problems.append("a name is given twice")
    if sum(entry.file_size for entry in entries) > MAX_UNPACKED_BYTES:
        problems.append(f"over {MAX_UNPACKED_BYTES} bytes unpacked")
    if problems:
        listed = "; ".join(problems[:10])
        raise ActionError(
            f"the artifact is not the plans the pull-request job uploads: {listed}; nothing was applied"
        )


def _extract(zipped: zipfile.ZipFile, entry: zipfile.ZipInfo, directory: Path) -> Path:
    target = directory / entry.filename
    written = 0
    with zipped.open(entry) as source, target.open("wb") as file:
        # The sizes a zip declares may lie: count what is actually unpacked.
        while chunk := source.read(CHUNK):
            written += len(chunk)
            if written > entry.file_size or written > MAX_UNPACKED_BYTES:
                raise ActionError(f"{entry.filename} in the artifact unpacks past its declared size")
            file.write(chunk)
    return target


def fetch(
    client: httpx.Client, repository: str, sha: str, named: Callable[[str], str], directory: Path
) -> Artifact:
    """The reviewed plans for the pushed ``sha``, unpacked into ``directory``; the
    artifact's name is ``named(the pull request's head sha)``."""
    plans = ReviewedPlans(client, repository)
    artifact = plans.find(sha, named)
    with tempfile.TemporaryDirectory(prefix="chatroster-artifact-") as scratch:
        archive = Path(scratch) / "plans.zip"
        plans.download(artifact, archive)
        unpack(archive, directory)
    return artifact
