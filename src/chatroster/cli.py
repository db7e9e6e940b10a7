"""The command line. It parses, prints, and maps errors to exit codes in one place
(`main`); the work itself is in `runner`, `planner`, `apply` and the providers."""

from __future__ import annotations

import json
import logging
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, replace
from datetime import timedelta
from pathlib import Path
from typing import Any, NoReturn

import click

from . import __version__
from .apply import apply as apply_changes
from .apply import interruptible
from .cli_options import DURATION, env_option, refresh_option, targeting_options
from .drift import DriftReport
from .errors import (
    EXIT_CHANGES,
    EXIT_ERROR,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_UNSAFE,
    ChatrosterError,
    Interrupted,
    ManifestError,
    PlanFileError,
    UnsafePlanError,
)
from .files import write_private
from .manifest import check, load
from .manifest.environments import Target, targets
from .masking import Masker, mask_key
from .model import Manifest
from .plan import Plan
from .providers import Provider, open_provider
from .record import Recorder, recorded
from .refresh import Refresh, recording
from .render import plan_json, plan_markdown, plan_text
from .render.describe import code
from .render.environments import Section, several_markdown, several_text, share
from .render.progress import Console, ConsoleHandler, Meter
from .runner import Options, Targeting, label, make_plan, read_live, unmatched_targets
from .runs import Result, combined_exit, run_each
from .safety import check as check_safety
from .saved import load_plan, plan_document, recheck

FORMATS = click.Choice(["text", "json", "markdown"])


def _colour(stream: Any) -> bool:
    return "NO_COLOR" not in os.environ and hasattr(stream, "isatty") and stream.isatty()


_console_in_use: Console | None = None


def _console() -> Console:
    """stderr as a `Console`: progress, log lines, notes and errors all go there, so
    that stdout stays the plan. Made anew when stderr is another stream (CliRunner)."""
    global _console_in_use
    if _console_in_use is None or _console_in_use.stream is not sys.stderr:
        live = sys.stderr.isatty() and os.environ.get("TERM") != "dumb"
        _console_in_use = Console(sys.stderr, live=live)
    return _console_in_use


def _note(message: str) -> None:
    """Notes go to stderr so that stdout stays the plan."""
    _console().line(message)


VERBOSITY = (logging.WARNING, logging.INFO, logging.DEBUG)


def _verbosity(ctx: click.Context, param: click.Parameter, count: int) -> int:
    """Log to stderr while the command runs: warnings (retries) always, with -v each
    HTTP call and apply batch, with -vv the host of each call too."""
    logger = logging.getLogger("chatroster")
    handler, level = ConsoleHandler(_console()), logger.level
    logger.setLevel(VERBOSITY[min(count, len(VERBOSITY) - 1)])
    logger.addHandler(handler)

    def restore() -> None:
        logger.removeHandler(handler)
        logger.setLevel(level)

    ctx.call_on_close(restore)
    return count


def verbose_option(func: Callable[..., Any]) -> Callable[..., Any]:
    return click.option(
        "-v",
        "--verbose",
        count=True,
        expose_value=False,
        callback=_verbosity,
        help="Log each HTTP call and apply batch on stderr, secrets and personal data "
        "left out (-vv: with the host).",
    )(func)


@contextmanager
def _reading(provider: Provider) -> Iterator[None]:
    """While live state is read, how far the read is, on stderr."""
    meter = Meter(_console(), "read")
    provider.read_progress = meter.update
    try:
        yield
    finally:
        provider.read_progress = None
        meter.close()


def _load(paths: Sequence[str]) -> Manifest:
    return load(list(paths))


def _render(plan: Plan, fmt: str, masker: Masker, *, max_chars: int | None = None) -> str:
    if fmt == "json":
        return json.dumps(plan_json(plan, masker), indent=2, ensure_ascii=False)
    if fmt == "markdown":
        if max_chars is None:
            return plan_markdown(plan, masker)
        return plan_markdown(plan, masker, max_chars=max_chars)
    return plan_text(plan, masker, colour=_colour(sys.stdout))


def _masker(manifest: Manifest, provider: Provider, show_personal: bool) -> Masker:
    secrets = {k: v for k, v in manifest.provider.settings.items() if k in manifest.provider.SECRET_KEYS}
    return Masker(
        personal_metadata=manifest.policy.personal_metadata,
        show=show_personal,
        key=mask_key(secrets, os.environ, provider.mask_key()),
    )


def _open(manifest: Manifest, refresh: str | None = None, prefix: str = "", **options: Any) -> Provider:
    """The manifest's platform, with what the user should know about it on stderr."""
    provider = open_provider(manifest.provider, **options)
    for note in provider.notes:
        _note(f"{prefix}note: {note}")
    if refresh == "changed" and not provider.capabilities.refresh_changed:
        _note(
            f"{prefix}note: [{provider.type}] reads every user cheaply, so --refresh changed "
            "reads fully, the same as --refresh full"
        )
    return provider


def _options(
    target: tuple[str, ...],
    exclude: tuple[str, ...],
    only: tuple[str, ...],
    allow_takeover: bool = False,
    refresh: Refresh = "full",
) -> Options:
    return Options(
        allow_takeover=allow_takeover,
        targeting=Targeting(include=target, exclude=exclude, only=only),
        refresh=refresh,
    )


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="chatroster")
def cli() -> None:
    """Keep the users of a chat platform in the state a YAML manifest declares."""


@cli.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path())
@env_option
@verbose_option
def validate(paths: tuple[str, ...], envs: tuple[str, ...]) -> None:
    """Check a manifest offline: YAML, schema, semantics and provider capabilities.

    Needs no credentials: unset variables in the provider section are not errors here.
    """
    found = targets(paths, envs)
    if len(found) == 1:
        click.echo(_validated(found[0]))
        return
    failed = []
    for target in found:  # offline and quick: one after the other, every one told
        try:
            click.echo(_validated(target))
        except ManifestError as exc:
            _note("\n".join(f"[{target.name}] {line}" for line in exc.render().splitlines()))
            failed.append(target.name)
    if failed:
        names = ", ".join(failed)
        raise ChatrosterError(f"{len(failed)} of {len(found)} environments are not valid: {names}")


def _validated(target: Target) -> str:
    checked = check(list(target.paths), offline=True)
    where = f"environment {checked.environment}: " if checked.environment else ""
    return f"{where}{', '.join(checked.files)}: valid ({checked.users} users, provider {checked.provider})."


@cli.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path())
@click.option("--format", "fmt", type=FORMATS, default="text", show_default=True)
@click.option("--out", type=click.Path(dir_okay=False), help="Save the plan for `apply --plan`.")
@click.option("--detailed-exitcode", is_flag=True, help="Exit 0 when there are no changes, 2 when there are.")
@click.option("--allow-takeover", is_flag=True, help="Plan to take over other owners' users.")
@click.option("--force", is_flag=True, help="Do not stop at safety limits.")
@click.option("--show-personal", is_flag=True, help="Show personal data unmasked.")
@env_option
@refresh_option
@targeting_options
@verbose_option
def plan(
    paths: tuple[str, ...],
    fmt: str,
    out: str | None,
    detailed_exitcode: bool,
    allow_takeover: bool,
    force: bool,
    show_personal: bool,
    envs: tuple[str, ...],
    refresh: Refresh | None,
    target: tuple[str, ...],
    exclude: tuple[str, ...],
    only: tuple[str, ...],
) -> None:
    """Read live state and show what apply would change.

    Several environments (environment files, or --env) are planned at once, a report
    each; the exit code is the worst of theirs (1, then 3, then 2, then 0).
    """
    found = targets(paths, envs)
    options = _options(target, exclude, only, allow_takeover, refresh or "full")
    if len(found) > 1:
        if out:
            raise ChatrosterError(
                f"--out saves the plan of one environment, and {len(found)} were given; "
                "run plan --out once for each environment"
            )
        flags = _PlanFlags(fmt, detailed_exitcode, force, show_personal)
        sys.exit(_plan_several(found, options, flags))
    manifest = _load(found[0].paths)
    with _open(manifest, refresh) as provider:
        with _reading(provider):
            result = make_plan(manifest, provider, options)
        masker = _masker(manifest, provider, show_personal)
        capacity = provider.capacity()
    click.echo(_titled(_render(result, fmt, masker), manifest.environment, fmt))
    if out:
        _save_plan(result, Path(out))
    check_safety(result, manifest.policy, label(manifest), force=force, capacity=capacity)
    if detailed_exitcode and not result.empty:
        sys.exit(EXIT_CHANGES)


@dataclass(frozen=True)
class _PlanFlags:
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


def _plan_several(found: Sequence[Target], options: Options, flags: _PlanFlags) -> int:
    """Every environment planned at once; a report each, then their summary."""

    def work(target: Target) -> tuple[_Planned, int]:
        manifest = _load(target.paths)
        with _open(manifest, options.refresh, prefix=f"[{target.name}] ") as provider:
            result = make_plan(manifest, provider, options)
            masker = _masker(manifest, provider, flags.show_personal)
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
        _note("\n".join(f"[{result.name}] {line}" for line in problem.render().splitlines()))


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
    body = _render(planned.plan, fmt, planned.masker, max_chars=max_chars)
    status = "no changes" if planned.plan.empty else f"{len(planned.plan.changes)} change(s)"
    if planned.refused is not None:
        status += ", refused by a safety limit"
        lines = planned.refused.render().splitlines()
        quoted = [f"> ⛔ {line}" for line in lines] if fmt == "markdown" else lines
        body += "\n\n" + "\n".join(quoted)
    return Section(result.name, " ".join(result.target.paths), status, body)


def _titled(report: str, environment: str | None, fmt: str) -> str:
    """A report of one environment says which (JSON says it in its own way, or not)."""
    if environment is None or fmt == "json":
        return report
    if fmt == "markdown":
        return f"## Environment {code(environment)}\n\n{report}"
    return f"Environment {environment}\n{report}"


def _save_plan(result: Plan, path: Path) -> None:
    document = plan_document(result, path)
    write_private(path, json.dumps(document, indent=2, ensure_ascii=False) + "\n")
    _note(f"Saved the plan to {path} (it holds personal data unmasked: keep it private).")


@cli.command()
@click.argument("paths", nargs=-1, type=click.Path())
@click.option(
    "--plan",
    "plan_file",
    type=click.Path(dir_okay=False),
    help="Apply a plan saved by `plan --out` instead of planning afresh.",
)
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
@click.option("--force", is_flag=True, help="Go over safety limits.")
@click.option("--allow-takeover", is_flag=True, help="Take over users of another owner.")
@click.option(
    "--continue-on-error", is_flag=True, help="Go on past failed changes and report every failure at the end."
)
@click.option(
    "--concurrency", type=click.IntRange(1, 64), default=None, help="Parallel API calls (HTTP providers)."
)
@click.option(
    "--max-age",
    type=DURATION,
    default=None,
    metavar="DURATION",
    help="With --plan: refuse a plan older than this (30m, 2h, 1d).",
)
@click.option(
    "--lock-timeout",
    type=DURATION,
    default="0s",
    metavar="DURATION",
    show_default=True,
    help="Local platform: wait this long for another apply to finish (e.g. 5m).",
)
@click.option(
    "--record",
    "record_file",
    type=click.Path(dir_okay=False),
    default=None,
    help="Append a JSON line per change as it is made, and a summary, to this file "
    "(masked like plan output; schemas/record.schema.json).",
)
@click.option("--show-personal", is_flag=True, help="Show personal data unmasked.")
@env_option
@refresh_option
@targeting_options
@verbose_option
def apply(
    paths: tuple[str, ...],
    plan_file: str | None,
    yes: bool,
    force: bool,
    allow_takeover: bool,
    continue_on_error: bool,
    concurrency: int | None,
    max_age: timedelta | None,
    lock_timeout: timedelta,
    record_file: str | None,
    show_personal: bool,
    envs: tuple[str, ...],
    refresh: Refresh | None,
    target: tuple[str, ...],
    exclude: tuple[str, ...],
    only: tuple[str, ...],
) -> None:
    """Plan afresh (or take a saved plan) and make the changes."""
    saved = load_plan(Path(plan_file)) if plan_file else None
    if not paths and saved is not None:
        paths = saved.manifest_files  # the files the plan was made from (digest-checked)
    if not paths:
        raise click.UsageError("give the manifest (file or directory) to apply")
    if saved is not None and refresh is not None and refresh != saved.refresh:
        raise click.UsageError(
            f"the saved plan was made with --refresh {saved.refresh}, and apply --plan reads "
            f"the same way; leave out --refresh {refresh}, or make the plan again with it"
        )
    manifest = _load(_one_environment(paths, envs).paths)
    mode = saved.refresh if saved is not None else refresh or "full"
    options = replace(
        _options(target, exclude, only, allow_takeover, "changed" if mode == "changed" else "full"),
        refuse_unmatched_targets=True,
    )
    with _open(manifest, mode, concurrency=concurrency, writable=True, lock_timeout=lock_timeout) as provider:
        with _reading(provider):
            if saved is not None:
                result = recheck(saved, manifest, provider, options, max_age=max_age)
            else:
                result = make_plan(manifest, provider, options)
        masker = _masker(manifest, provider, show_personal)
        click.echo(_render(result, "text", masker))
        recorder = None
        if record_file is not None:
            recorder = Recorder(
                Path(record_file),
                masker,
                provider=provider.type,
                owner=manifest.owner,
                environment=manifest.environment,
            )
        with recorded(recorder, result.changes):
            check_safety(result, manifest.policy, label(manifest), force=force, capacity=provider.capacity())
            if result.empty and not result.records:
                return
            _confirm(yes, len(result.changes), len(result.records))
            with interruptible(_note) as stop, _applying(len(result.changes)) as progress:
                outcome = recording(
                    manifest,
                    result,
                    provider,
                    lambda record: apply_changes(
                        result.changes,
                        provider,
                        stop=stop,
                        continue_on_error=continue_on_error,
                        progress=progress,
                        record=record,
                    ),
                    then=recorder.change if recorder is not None else None,
                    note=_note,
                )
    click.echo(f"Applied {outcome.done} change(s).")


def _one_environment(paths: Sequence[str], envs: Sequence[str]) -> Target:
    """Apply changes one app at a time: several environments are refused."""
    found = targets(paths, envs)
    if len(found) > 1:
        names = ", ".join(target.name for target in found)
        raise ChatrosterError(
            f"apply changes one environment at a time, and {len(found)} were given ({names}); "
            "nothing was applied: run apply once for each (plan and drift take several)"
        )
    return found[0]


def _confirm(yes: bool, count: int, records: int = 0) -> None:
    if yes:
        return
    if not sys.stdin.isatty():
        raise ChatrosterError(
            "refusing to apply without confirmation: stdin is not a terminal; re-run with --yes"
        )
    question = f"Apply {count} change(s)"
    if records:
        question += f" and record the applied state of {records} user(s)"
    if not click.confirm(question + "?", err=True):
        raise ChatrosterError("cancelled; nothing was changed")


@contextmanager
def _applying(total: int) -> Iterator[Callable[[int, int], None]]:
    """Apply's progress on stderr: a live line on a terminal, a line every tenth or
    10 s in a log; cleared (or ended on the last count) however apply ends."""
    meter = Meter(_console(), "applied")
    meter.update("changes", 0, total)
    try:
        yield lambda done, all_: meter.update("changes", done, all_)
    finally:
        meter.close()


@cli.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path())
@click.option("--out", type=click.Path(dir_okay=False), help="Write here instead of stdout.")
@click.option(
    "--uids",
    "uids_file",
    type=click.File("r"),
    default=None,
    help="A file of uids, one a line, to read as well: for Nexconn, which cannot "
    "list users without a hosted profile.",
)
@verbose_option
def export(paths: tuple[str, ...], out: str | None, uids_file: Any) -> None:
    """Write the live state of the manifest's provider as a manifest."""
    from .export import export_manifest, relocated, write_yaml

    manifest = _load(paths)
    uids = frozenset(
        line.strip() for line in uids_file or () if line.strip() and not line.lstrip().startswith("#")
    )
    config = relocated(manifest.provider, Path(out).parent if out else Path.cwd())
    owner = manifest.owner
    with _open(manifest) as provider, _reading(provider):
        live = read_live(manifest, provider, everything=True, uids=uids)
    del manifest  # only the live state is written: the declared users are worth freeing
    exported = export_manifest(live, provider=config, owner=owner)
    del live  # the plain data is all that is written; 100k users are worth freeing
    if out:
        write_private(Path(out), lambda stream: write_yaml(exported, stream))
        _note(f"Wrote {len(exported.get('users', {}))} users to {out}.")
    else:
        write_yaml(exported, sys.stdout)


@cli.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path())
@click.option("--format", "fmt", type=FORMATS, default="text", show_default=True)
@click.option("--show-personal", is_flag=True, help="Show personal data unmasked.")
@env_option
@targeting_options
@verbose_option
def drift(
    paths: tuple[str, ...],
    fmt: str,
    show_personal: bool,
    envs: tuple[str, ...],
    target: tuple[str, ...],
    exclude: tuple[str, ...],
    only: tuple[str, ...],
) -> None:
    """Exit 0 when live state matches the manifest, 2 when it differs, 1 on error.

    Several environments (environment files, or --env) are read at once, a report
    each; the exit code is the worst of theirs (1, then 2, then 0).
    """
    from .render.drift import drift_markdown, drift_text

    manifests = targets(paths, envs)
    options = _options(target, exclude, only, allow_takeover=False)
    if len(manifests) > 1:
        sys.exit(_drift_several(manifests, options, fmt, show_personal))
    found, environment = _drift_report(manifests[0], options, show_personal, progress=True)
    if fmt == "json":
        click.echo(json.dumps(found.to_json(), indent=2, ensure_ascii=False))
    else:
        click.echo(_titled((drift_markdown if fmt == "markdown" else drift_text)(found), environment, fmt))
    if not found.clean:
        sys.exit(EXIT_CHANGES)


def _drift_report(
    target: Target, options: Options, show_personal: bool, *, progress: bool
) -> tuple[DriftReport, str | None]:
    """The drift of one manifest, and its environment's name."""
    from .drift import report

    manifest = _load(target.paths)
    prefix = "" if progress else f"[{target.name}] "
    with _open(manifest, prefix=prefix) as provider:
        with _reading(provider) if progress else nullcontext():
            live = read_live(manifest, provider, owned=True)
        result = make_plan(manifest, provider, options, live=live)
        masker = _masker(manifest, provider, show_personal)
    for warning in unmatched_targets(manifest, live, options.targeting):
        _note(f"{prefix}warning: {warning}")
    return report(manifest, live, result, masker, options.targeting), manifest.environment


def _drift_several(found: Sequence[Target], options: Options, fmt: str, show_personal: bool) -> int:
    """Every environment read at once; a report each, then their summary."""
    from .render.drift import drift_markdown, drift_text

    def work(target: Target) -> tuple[DriftReport, int]:
        drifted, _ = _drift_report(target, options, show_personal, progress=False)
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


@cli.command()
@click.argument("path", type=click.Path())
@click.argument("uids", nargs=-1, required=True)
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
@click.option("--show-personal", is_flag=True, help="Show personal data unmasked.")
@verbose_option
def show(path: str, uids: tuple[str, ...], fmt: str, show_personal: bool) -> None:
    """Print users as the platform holds them (writes nothing); exit 1 if a uid is unknown."""
    from .show import read_users, report_json, report_text

    manifest = _load([path])
    with _open(manifest) as provider:
        with _reading(provider):
            found = read_users(manifest, provider, uids)
        masker = _masker(manifest, provider, show_personal)
    shown = report_json(found, masker) if fmt == "json" else None
    click.echo(
        report_text(found, masker) if shown is None else json.dumps(shown, indent=2, ensure_ascii=False)
    )
    if found.unknown:
        raise ChatrosterError(
            f"[{label(manifest)}] not on the platform: {', '.join(found.unknown)}; check the "
            "uid (the others are shown above)"
        )


@cli.command(
    context_settings={"ignore_unknown_options": True, "help_option_names": []}, add_help_option=False
)
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def emulator(args: tuple[str, ...]) -> None:
    """Serve a store over the Nexconn and CometChat HTTP APIs on 127.0.0.1."""
    # Imported here: the server stack costs start-up time every other command would pay.
    from .emulator.server import emulator_command

    # -v as on every other command: the emulator's --verbose (every request logged).
    given = ["--verbose" if arg in ("-v", "-vv") else arg for arg in args]
    emulator_command.main(args=given, prog_name="chatroster emulator", standalone_mode=False)


def main(argv: Sequence[str] | None = None) -> NoReturn:
    """Run the CLI; every error leaves here with its exit code and a clear message."""
    try:
        cli.main(args=list(argv) if argv is not None else None, prog_name="chatroster", standalone_mode=False)
    except Interrupted as exc:
        _note(exc.render())
        if exc.in_flight:  # stopped at once: do not wait for calls still running
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(exc.exit_code)
        sys.exit(exc.exit_code)
    except ChatrosterError as exc:
        _note(exc.render())
        sys.exit(exc.exit_code)
    except click.exceptions.Abort:
        # click turns Ctrl-C into Abort; apply's own interrupts are `Interrupted` above,
        # so this one came before anything was applied.
        _note("interrupted; nothing was changed")
        sys.exit(EXIT_INTERRUPTED)
    except click.ClickException as exc:
        # click's own exit code for usage errors is 2, which here means "changes".
        exc.show()
        sys.exit(EXIT_ERROR)
    except KeyboardInterrupt:
        _note("interrupted; nothing was changed")
        sys.exit(EXIT_INTERRUPTED)
    sys.exit(EXIT_OK)


__all__ = ["PlanFileError", "cli", "main"]
