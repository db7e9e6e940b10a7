"""The steps every command shares: load the manifest, open its platform, render a plan,
and the masker that keeps personal data out of what is printed."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Sequence
from contextlib import nullcontext
from pathlib import Path
from typing import Any

from ..drift import DriftReport, report
from ..files import write_private
from ..manifest import load
from ..manifest.environments import Target
from ..masking import Masker, mask_key
from ..model import Manifest
from ..plan import Plan
from ..providers import Provider, open_provider
from ..render import plan_json, plan_markdown, plan_text
from ..render.describe import code
from ..runner import Options, make_plan, read_live, unmatched_targets
from ..saved import plan_document
from .console import colour, note, reading


def load_manifest(paths: Sequence[str]) -> Manifest:
    return load(list(paths))


def render_plan(plan: Plan, fmt: str, masker: Masker, *, max_chars: int | None = None) -> str:
    if fmt == "json":
        return json.dumps(plan_json(plan, masker), indent=2, ensure_ascii=False)
    if fmt == "markdown":
        if max_chars is None:
            return plan_markdown(plan, masker)
        return plan_markdown(plan, masker, max_chars=max_chars)
    return plan_text(plan, masker, colour=colour(sys.stdout))


def masker_for(manifest: Manifest, provider: Provider, show_personal: bool) -> Masker:
    secrets = {k: v for k, v in manifest.provider.settings.items() if k in manifest.provider.SECRET_KEYS}
    return Masker(
        personal_metadata=manifest.policy.personal_metadata,
        show=show_personal,
        key=mask_key(secrets, os.environ, provider.mask_key()),
    )


def open_platform(
    manifest: Manifest, refresh: str | None = None, prefix: str = "", **options: Any
) -> Provider:
    """The manifest's platform, with what the user should know about it on stderr."""
    provider = open_provider(manifest.provider, **options)
    for told in provider.notes:
        note(f"{prefix}note: {told}")
    if refresh == "changed" and not provider.capabilities.refresh_changed:
        note(
            f"{prefix}note: [{provider.type}] reads every user cheaply, so --refresh changed "
            "reads fully, the same as --refresh full"
        )
    return provider


def titled(text: str, environment: str | None, fmt: str) -> str:
    """A report of one environment says which (JSON says it in its own way, or not)."""
    if environment is None or fmt == "json":
        return text
    if fmt == "markdown":
        return f"## Environment {code(environment)}\n\n{text}"
    return f"Environment {environment}\n{text}"


def save_plan(result: Plan, path: Path) -> None:
    document = plan_document(result, path)
    write_private(path, json.dumps(document, indent=2, ensure_ascii=False) + "\n")
    note(f"Saved the plan to {path} (it holds personal data unmasked: keep it private).")


def drift_report(
    target: Target, options: Options, show_personal: bool, *, progress: bool
) -> tuple[DriftReport, str | None]:
    """The drift of one manifest, and its environment's name."""
    manifest = load_manifest(target.paths)
    prefix = "" if progress else f"[{target.name}] "
    with open_platform(manifest, prefix=prefix) as provider:
        with reading(provider) if progress else nullcontext():
            live = read_live(manifest, provider, owned=True)
        result = make_plan(manifest, provider, options, live=live)
        masker = masker_for(manifest, provider, show_personal)
    for warning in unmatched_targets(manifest, live, options.targeting):
        note(f"{prefix}warning: {warning}")
    return report(manifest, live, result, masker, options.targeting), manifest.environment
