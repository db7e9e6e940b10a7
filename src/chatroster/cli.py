"""The command line. It parses, prints, and maps errors to exit codes in one place
(`main`); the work itself is in `runner`, `planner`, `apply` and the providers."""

from __future__ import annotations

import json
import logging
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any, NoReturn

import click

from . import __version__
from .apply import apply as apply_changes
from .apply import interruptible
from .changes import Change
from .cli_options import DURATION, refresh_option, targeting_options
from .errors import (
    EXIT_CHANGES,
    EXIT_ERROR,
    EXIT_INTERRUPTED,
    EXIT_OK,
    ApplyError,
    ChatrosterError,
    Interrupted,
    PlanFileError,
    UnsafePlanError,
)
from .files import write_private
from .manifest import check, load
from .masking import Masker, mask_key
from .model import Manifest
from .plan import Plan
from .providers import Provider, open_provider
from .record import Recorder, RunOutcome
from .refresh import Refresh, recording
from .render import plan_json, plan_markdown, plan_text
from .render.progress import Console, ConsoleHandler, Meter
from .runner import Options, Targeting, label, make_plan, read_live, unmatched_targets
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


def _render(plan: Plan, fmt: str, masker: Masker) -> str:
    if fmt == "json":
        return json.dumps(plan_json(plan, masker), indent=2, ensure_ascii=False)
    if fmt == "markdown":
        return plan_markdown(plan, masker)
    return plan_text(plan, masker, colour=_colour(sys.stdout))


def _masker(manifest: Manifest, provider: Provider, show_personal: bool) -> Masker:
    secrets = {k: v for k, v in manifest.provider.settings.items() if k in manifest.provider.SECRET_KEYS}
    return Masker(
        personal_metadata=manifest.policy.personal_metadata,
        show=show_personal,
        key=mask_key(secrets, os.environ, provider.mask_key()),
    )


def _open(manifest: Manifest, refresh: str | None = None, **options: Any) -> Provider:
    """The manifest's platform, with what the user should know about it on stderr."""
    provider = open_provider(manifest.provider, **options)
    for note in provider.notes:
        _note(f"note: {note}")
    if refresh == "changed" and not provider.capabilities.refresh_changed:
        _note(
            f"note: [{provider.type}] reads every user cheaply, so --refresh changed "
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
@verbose_option
def validate(paths: tuple[str, ...]) -> None:
    """Check a manifest offline: YAML, schema, semantics and provider capabilities.

    Needs no credentials: unset variables in the provider section are not errors here.
    """
    checked = check(list(paths), offline=True)
    click.echo(f"{', '.join(checked.files)}: valid ({checked.users} users, provider {checked.provider}).")


@cli.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path())
@click.option("--format", "fmt", type=FORMATS, default="text", show_default=True)
@click.option("--out", type=click.Path(dir_okay=False), help="Save the plan for `apply --plan`.")
@click.option("--detailed-exitcode", is_flag=True, help="Exit 0 when there are no changes, 2 when there are.")
@click.option("--allow-takeover", is_flag=True, help="Plan to take over other owners' users.")
@click.option("--force", is_flag=True, help="Do not stop at safety limits.")
@click.option("--show-personal", is_flag=True, help="Show personal data unmasked.")
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
    refresh: Refresh | None,
    target: tuple[str, ...],
    exclude: tuple[str, ...],
    only: tuple[str, ...],
) -> None:
    """Read live state and show what apply would change."""
    manifest = _load(paths)
    options = _options(target, exclude, only, allow_takeover, refresh or "full")
    with _open(manifest, refresh) as provider:
        with _reading(provider):
            result = make_plan(manifest, provider, options)
        masker = _masker(manifest, provider, show_personal)
        capacity = provider.capacity()
    click.echo(_render(result, fmt, masker))
    if out:
        _save_plan(result, Path(out))
    check_safety(result, manifest.policy, label(manifest), force=force, capacity=capacity)
    if detailed_exitcode and not result.empty:
        sys.exit(EXIT_CHANGES)


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
    manifest = _load(paths)
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
            recorder = Recorder(Path(record_file), masker, provider=provider.type, owner=manifest.owner)
        with _recorded(recorder, result.changes):
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


@contextmanager
def _recorded(recorder: Recorder | None, changes: Sequence[Change]) -> Iterator[None]:
    """The apply record's summary line, however the run ends."""
    if recorder is None:
        yield
        return
    outcome: RunOutcome = "applied" if changes else "nothing_to_apply"
    message = None
    try:
        yield
    except BaseException as exc:
        outcome = (
            "interrupted"
            if isinstance(exc, (Interrupted, KeyboardInterrupt, click.exceptions.Abort))
            else "refused"
            if isinstance(exc, UnsafePlanError)
            else "failed"
            if isinstance(exc, ApplyError)
            else "error"
        )
        message = str(exc) or type(exc).__name__
        raise
    finally:
        recorder.summary(changes, outcome, message)
        recorder.close()


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
    with _open(manifest) as provider, _reading(provider):
        live = read_live(manifest, provider, everything=True, uids=uids)
    config = relocated(manifest.provider, Path(out).parent if out else Path.cwd())
    exported = export_manifest(live, provider=config, owner=manifest.owner)
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
@targeting_options
@verbose_option
def drift(
    paths: tuple[str, ...],
    fmt: str,
    show_personal: bool,
    target: tuple[str, ...],
    exclude: tuple[str, ...],
    only: tuple[str, ...],
) -> None:
    """Exit 0 when live state matches the manifest, 2 when it differs, 1 on error."""
    from .drift import report
    from .render.drift import drift_markdown, drift_text

    manifest = _load(paths)
    options = _options(target, exclude, only, allow_takeover=False)
    with _open(manifest) as provider:
        with _reading(provider):
            live = read_live(manifest, provider, owned=True)
        result = make_plan(manifest, provider, options, live=live)
        masker = _masker(manifest, provider, show_personal)
    for warning in unmatched_targets(manifest, live, options.targeting):
        _note(f"warning: {warning}")
    found = report(manifest, live, result, masker, options.targeting)
    if fmt == "json":
        click.echo(json.dumps(found.to_json(), indent=2, ensure_ascii=False))
    elif fmt == "markdown":
        click.echo(drift_markdown(found))
    else:
        click.echo(drift_text(found))
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
