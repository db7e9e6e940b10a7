"""Several environments in one command (`plan` and `drift` over environment files or
`--env all`): each read on its own thread (`runs`), then a report each and a summary of
them all, in text, markdown (one pull-request comment) or JSON; the exit code is the
worst of theirs."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import click

from ..drift import DriftReport
from ..errors import EXIT_CHANGES, EXIT_OK, EXIT_UNSAFE, ChatrosterError, UnsafePlanError
from ..manifest.environments import Target
from ..masking import Masker
from ..plan import Plan
from ..render import plan_json
from ..render.drift import drift_markdown, drift_text
from ..render.environments import Section, several_markdown, several_text, share
from ..runner import Options, label, make_plan
from ..runs import Result, combined_exit, run_each
from ..safety import check as check_safety
from .console import note
from .steps import drift_report, load_manifest, masker_for, open_platform, render_plan


@dataclass(frozen=True)
class PlanFlags:
    fmt: str
    detailed_exitcode: bool
    force: bool
    show_personal: bool


@dataclass(frozen=True)
class _Planned:
    """One environment's plan, and the safety limit it hit, if any."""

    plan: Plan
    masker: Masker
    refused: UnsafePlanError | None


def plan_several(found: Sequence[Target], options: Options, flags: PlanFlags) -> int:
    """Every environment planned at once; a report each, then their summary."""

    def work(target: Target) -> tuple[_Planned, int]:
        manifest = load_manifest(target.paths)
        with open_platform(manifest, options.refresh, prefix=f"[{target.name}] ") as provider:
            result = make_plan(manifest, provider, options)
            masker = masker_for(manifest, provider, flags.show_personal)
            capacity = provider.capacity()
        try:
            check_safety(result, manifest.policy, label(manifest), force=flags.force, capacity=capacity)
        except UnsafePlanError as exc:
            return _Planned(result, masker, exc), EXIT_UNSAFE
        changed = flags.detailed_exitcode and not result.empty
        return _Planned(result, masker, None), EXIT_CHANGES if changed else EXIT_OK

    results = run_each(found, work)
    for result in results:
        _tell(result, result.value.refused if result.value is not None else None)
    if flags.fmt == "json":
        click.echo(json.dumps(_several_json("plan", results, _plan_json), indent=2, ensure_ascii=False))
    else:
        sections = [_plan_section(result, flags.fmt, share(len(results))) for result in results]
        several = several_markdown if flags.fmt == "markdown" else several_text
        click.echo(several("plan", sections))
    return combined_exit(result.exit_code for result in results)


def _tell(result: Result[Any], refused: ChatrosterError | None = None) -> None:
    """An environment's error or refusal on stderr too, named: stdout may be a file."""
    problem = result.error or refused
    if problem is not None:
        note("\n".join(f"[{result.name}] {line}" for line in problem.render().splitlines()))


def _plan_json(planned: _Planned) -> dict[str, Any]:
    data: dict[str, Any] = {"plan": plan_json(planned.plan, planned.masker)}
    if planned.refused is not None:
        data["refused"] = list(planned.refused.reasons)
    return data


def _several_json(
    command: str, results: Sequence[Result[Any]], body: Callable[[Any], dict[str, Any]]
) -> dict[str, Any]:
    """``{"command", "environments": [{"environment", "files", "exit_code", and the
    report or "error"}], "exit_code"}``."""
    environments = []
    for result in results:
        entry: dict[str, Any] = {
            "environment": result.name,
            "files": list(result.target.paths),
            "exit_code": result.exit_code,
        }
        if result.error is not None:
            entry["error"] = result.error.render()
        else:
            entry.update(body(result.value))
        environments.append(entry)
    exit_code = combined_exit(result.exit_code for result in results)
    return {"command": command, "environments": environments, "exit_code": exit_code}


def _failed_section(result: Result[Any]) -> Section:
    assert result.error is not None
    return Section(result.name, " ".join(result.target.paths), "error", result.error.render(), failed=True)


def _plan_section(result: Result[_Planned], fmt: str, max_chars: int) -> Section:
    if result.value is None:
        return _failed_section(result)
    planned = result.value
    body = render_plan(planned.plan, fmt, planned.masker, max_chars=max_chars)
    status = "no changes" if planned.plan.empty else f"{len(planned.plan.changes)} change(s)"
    if planned.refused is not None:
        status += ", refused by a safety limit"
        lines = planned.refused.render().splitlines()
        quoted = [f"> ⛔ {line}" for line in lines] if fmt == "markdown" else lines
        body += "\n\n" + "\n".join(quoted)
    return Section(result.name, " ".join(result.target.paths), status, body)


def drift_several(found: Sequence[Target], options: Options, fmt: str, show_personal: bool) -> int:
    """Every environment read at once; a report each, then their summary."""

    def work(target: Target) -> tuple[DriftReport, int]:
        drifted, _ = drift_report(target, options, show_personal, progress=False)
        return drifted, EXIT_OK if drifted.clean else EXIT_CHANGES

    results = run_each(found, work)
    for result in results:
        _tell(result)
    if fmt == "json":
        document = _several_json("drift", results, lambda drifted: {"drift": drifted.to_json()})
        click.echo(json.dumps(document, indent=2, ensure_ascii=False))
        return combined_exit(result.exit_code for result in results)
    render = drift_markdown if fmt == "markdown" else drift_text
    sections = []
    for result in results:
        if result.value is None:
            sections.append(_failed_section(result))
            continue
        differences = len(result.value.differences)
        status = "in sync" if result.value.clean else f"{differences} difference(s)"
        sections.append(Section(result.name, " ".join(result.target.paths), status, render(result.value)))
    several = several_markdown if fmt == "markdown" else several_text
    click.echo(several("drift", sections))
    return combined_exit(result.exit_code for result in results)
