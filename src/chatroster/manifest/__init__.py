"""Reading a manifest: files → plain data → checks → the model.

    manifest = load(["team.yaml"])            # or a directory of *.yaml files

`load` returns a `chatroster.model.Manifest`, or raises `ManifestError` holding every
problem found, each at its file, line and column. `check` makes the same checks and
only summarises (``validate``: building the model for 100k users would take a
second for nothing). Neither ever writes anything.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from ..bulk import paused_collection
from ..errors import ManifestError
from ..model import Manifest, ProviderConfig
from . import checks, schema
from .build import build, provider
from .env import substitute
from .finding import Finding
from .sources import Sources, read_sources

__all__ = ["Checked", "check", "load"]


def load(
    paths: Sequence[str | Path],
    env: Mapping[str, str] | None = None,
    *,
    now: datetime | None = None,
    offline: bool = False,
) -> Manifest:
    """Read, check and build the manifest made of ``paths`` (files or directories).

    ``${NAME}`` references are resolved from ``env`` (default: ``os.environ``). A ban
    that ends before ``now`` (default: the current time) is a problem. ``offline``
    (``validate``) tolerates unset variables in the ``provider`` section: credentials
    are needed to reach the platform, not to check the manifest, and a pull request
    from a fork has none.
    """
    with paused_collection():
        sources = _checked(paths, os.environ if env is None else env, now, offline)
        manifest = build(sources)
        sources.drop_data()
        return manifest


@dataclass(frozen=True)
class Checked:
    """A manifest that passed every check, in brief."""

    files: tuple[str, ...]
    users: int
    provider: str
    """The provider's type."""
    environment: str | None = None
    """The environment's name, when the manifest is an environment file."""


def check(
    paths: Sequence[str | Path],
    env: Mapping[str, str] | None = None,
    *,
    now: datetime | None = None,
    offline: bool = False,
) -> Checked:
    """Every check `load` makes, with the same arguments, without building the model."""
    with paused_collection():
        sources = _checked(paths, os.environ if env is None else env, now, offline)
        data = sources.data
        return Checked(
            files=sources.files,
            users=len(data.get("users", {})),
            provider=provider(data.get("provider", {}), sources).type,
            environment=sources.environment,
        )


def _checked(
    paths: Sequence[str | Path], env: Mapping[str, str], now: datetime | None, offline: bool
) -> Sources:
    sources = read_sources(paths)
    if not sources.documents or sources.broken:
        raise ManifestError(sources.problems)
    data = sources.data
    written_out = _literal_secrets(data)  # before substitution fills the values in
    # Most manifests name no variable: then the walk over every value finds nothing.
    substitution = substitute(data, env) if sources.may_hold_references() else []
    if offline:
        substitution = [f for f in substitution if not f.within(("provider",))]
    substitution += written_out  # offline or not: the secret is in Git either way
    # A value already reported (an unset variable, a refused alias, tag or number) gets
    # no second problem for what it turned into.
    told = sources.refused | {finding.path for finding in substitution}
    every_schema_finding = schema.check(data)
    schema_findings = [f for f in every_schema_finding if f.path not in told]
    # The semantic checks skip every value the schema refused, told or not.
    semantic = checks.check(checks.View.of(data, every_schema_finding), now)
    findings = substitution + schema_findings + semantic
    problems = sources.problems + [sources.locate(finding) for finding in findings]
    if problems:
        raise ManifestError(problems)
    return sources


def _literal_secrets(data: Any) -> list[Finding]:
    """Credentials written into the manifest instead of taken from the environment.

    A manifest lives in Git; a key written in it is leaked to everyone who can read the
    repository. The value itself is never repeated in the message.
    """
    section = data.get("provider") if isinstance(data, dict) else None
    if not isinstance(section, dict):
        return []
    kind = section.get("type")
    kind = kind.upper() if isinstance(kind, str) and kind.isidentifier() else "PROVIDER"
    return [
        Finding(
            ("provider", key),
            f"provider.{key} is written out in the manifest; credentials must come from the environment",
            f"write {key}: ${{{kind}_{key.upper()}}} and set that environment variable",
        )
        for key in sorted(ProviderConfig.SECRET_KEYS)
        if isinstance(section.get(key), str) and "${" not in section[key]
    ]
