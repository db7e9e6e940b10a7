"""The commands: each parses its options, runs the work (in `runner`, `planner`, `apply`
and the providers) and prints; `main` maps every error to its exit code in one place."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any, NoReturn

import click

from .. import __version__
from ..apply import apply as apply_changes
from ..apply import interruptible
from ..errors import (
    EXIT_CHANGES,
    EXIT_ERROR,
    EXIT_INTERRUPTED,
    EXIT_OK,
    ChatrosterError,
    Interrupted,
    ManifestError,
)
from ..files import write_private
from ..manifest import check
from ..manifest.environments import Target, targets
from ..record import Recorder, recorded
from ..refresh import Refresh, recording
from ..render.progress import Meter
from ..runner import label, make_plan, read_live
from ..safety import check as check_safety
from ..saved import load_plan, recheck
from .console import console, note, reading, verbose_option
from .options import DURATION, FORMATS, env_option, refresh_option, run_options, targeting_options
from .several import PlanFlags, drift_several, plan_several
from .steps import (
    drift_report,
    environment_plan,
    load_manifest,
    masker_for,
    open_platform,
    render_plan,
    save_plan,
    titled,
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
            note("\n".join(f"[{target.name}] {line}" for line in exc.render().splitlines()))
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
@click.option(
    "--out-dir",
    type=click.Path(file_okay=False),
    help="Save each environment's plan for `apply --plan` as DIR/<environment>.json.",
)
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
    out_dir: str | None,
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
    if out and out_dir:
        raise click.UsageError(
            "give --out FILE (one plan) or --out-dir DIR (a plan per environment), not both"
        )
    found = targets(paths, envs)
    options = run_options(target, exclude, only, allow_takeover, refresh or "full")
    if len(found) > 1:
        if out:
            raise ChatrosterError(
                f"--out saves the plan of one environment, and {len(found)} were given; "
                "save a plan each with --out-dir DIR (DIR/<environment>.json)"
            )
        flags = PlanFlags(fmt, detailed_exitcode, force, show_personal, Path(out_dir) if out_dir else None)
        sys.exit(plan_several(found, options, flags))
    manifest = load_manifest(found[0].paths)
    saved_as = (
        Path(out) if out else environment_plan(Path(out_dir), manifest.environment) if out_dir else None
    )
    with open_platform(manifest, refresh) as provider:
        with reading(provider):
            result = make_plan(manifest, provider, options)
        masker = masker_for(manifest, provider, show_personal)
        capacity = provider.capacity()
    click.echo(titled(render_plan(result, fmt, masker), manifest.environment, fmt))
    if saved_as is not None:
        save_plan(result, saved_as)
    check_safety(result, manifest.policy, label(manifest), force=force, capacity=capacity)
    if detailed_exitcode and not result.empty:
        sys.exit(EXIT_CHANGES)


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
    manifest = load_manifest(_one_environment(paths, envs).paths)
    mode = saved.refresh if saved is not None else refresh or "full"
    options = replace(
        run_options(target, exclude, only, allow_takeover, "changed" if mode == "changed" else "full"),
        refuse_unmatched_targets=True,
    )
    with open_platform(
        manifest, mode, concurrency=concurrency, writable=True, lock_timeout=lock_timeout
    ) as provider:
        with reading(provider):
            if saved is not None:
                result = recheck(saved, manifest, provider, options, max_age=max_age)
            else:
                result = make_plan(manifest, provider, options)
        masker = masker_for(manifest, provider, show_personal)
        click.echo(render_plan(result, "text", masker))
        recorder = None
        if record_file is not None:
            recorder = Recorder(
                Path(record_file),
                masker,
                provider=provider.type,
                owner=manifest.owner,
                environment=manifest.environment,
                request_ids=provider.request_ids,
            )
        with recorded(recorder, result.changes):
            check_safety(result, manifest.policy, label(manifest), force=force, capacity=provider.capacity())
            if result.empty and not result.records:
                return
            _confirm(yes, len(result.changes), len(result.records))
            with interruptible(note) as stop, _applying(len(result.changes)) as progress:
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
                    note=note,
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
    meter = Meter(console(), "applied")
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
    from ..export import export_manifest, relocated, write_yaml

    manifest = load_manifest(paths)
    uids = frozenset(
        line.strip() for line in uids_file or () if line.strip() and not line.lstrip().startswith("#")
    )
    config = relocated(manifest.provider, Path(out).parent if out else Path.cwd())
    owner = manifest.owner
    with open_platform(manifest) as provider, reading(provider):
        live = read_live(manifest, provider, everything=True, uids=uids)
    del manifest  # only the live state is written: the declared users are worth freeing
    exported = export_manifest(live, provider=config, owner=owner)
    del live  # the plain data is all that is written; 100k users are worth freeing
    if out:
        write_private(Path(out), lambda stream: write_yaml(exported, stream))
        note(f"Wrote {len(exported.get('users', {}))} users to {out}.")
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
    from ..render.drift import drift_markdown, drift_text

    manifests = targets(paths, envs)
    options = run_options(target, exclude, only, allow_takeover=False)
    if len(manifests) > 1:
        sys.exit(drift_several(manifests, options, fmt, show_personal))
    found, environment = drift_report(manifests[0], options, show_personal, progress=True)
    if fmt == "json":
        click.echo(json.dumps(found.to_json(), indent=2, ensure_ascii=False))
    else:
        click.echo(titled((drift_markdown if fmt == "markdown" else drift_text)(found), environment, fmt))
    if not found.clean:
        sys.exit(EXIT_CHANGES)


@cli.command()
@click.argument("path", type=click.Path())
@click.argument("uids", nargs=-1, required=True)
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
@click.option("--show-personal", is_flag=True, help="Show personal data unmasked.")
@verbose_option
def show(path: str, uids: tuple[str, ...], fmt: str, show_personal: bool) -> None:
    """Print users as the platform holds them (writes nothing); exit 1 if a uid is unknown."""
    from ..show import read_users, report_json, report_text

    manifest = load_manifest([path])
    with open_platform(manifest) as provider:
        with reading(provider):
            found = read_users(manifest, provider, uids)
        masker = masker_for(manifest, provider, show_personal)
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
    from ..emulator.server import emulator_command

    # -v as on every other command: the emulator's --verbose (every request logged).
    given = ["--verbose" if arg in ("-v", "-vv") else arg for arg in args]
    emulator_command.main(args=given, prog_name="chatroster emulator", standalone_mode=False)


def main(argv: Sequence[str] | None = None) -> NoReturn:
    """Run the CLI; every error leaves here with its exit code and a clear message."""
    try:
        cli.main(args=list(argv) if argv is not None else None, prog_name="chatroster", standalone_mode=False)
    except Interrupted as exc:
        note(exc.render())
        if exc.in_flight:  # stopped at once: do not wait for calls still running
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(exc.exit_code)
        sys.exit(exc.exit_code)
    except ChatrosterError as exc:
        note(exc.render())
        sys.exit(exc.exit_code)
    except click.exceptions.Abort:
        # click turns Ctrl-C into Abort; apply's own interrupts are `Interrupted` above,
        # so this one came before anything was applied.
        note("interrupted; nothing was changed")
        sys.exit(EXIT_INTERRUPTED)
    except click.ClickException as exc:
        # click's own exit code for usage errors is 2, which here means "changes".
        exc.show()
        sys.exit(EXIT_ERROR)
    except KeyboardInterrupt:
        note("interrupted; nothing was changed")
        sys.exit(EXIT_INTERRUPTED)
    sys.exit(EXIT_OK)
