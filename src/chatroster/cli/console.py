"""stderr as the user sees it: notes, log lines and progress, so that stdout stays the
plan (or the report) and can be piped or saved."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import click

from ..providers import Provider
from ..render.progress import Console, ConsoleHandler, Meter


def colour(stream: Any) -> bool:
    return "NO_COLOR" not in os.environ and hasattr(stream, "isatty") and stream.isatty()


_console_in_use: Console | None = None


def console() -> Console:
    """stderr as a `Console`: progress, log lines, notes and errors all go there, so
    that stdout stays the plan. Made anew when stderr is another stream (CliRunner)."""
    global _console_in_use
    if _console_in_use is None or _console_in_use.stream is not sys.stderr:
        live = sys.stderr.isatty() and os.environ.get("TERM") != "dumb"
        _console_in_use = Console(sys.stderr, live=live)
    return _console_in_use


def note(message: str) -> None:
    """Notes go to stderr so that stdout stays the plan."""
    console().line(message)


VERBOSITY = (logging.WARNING, logging.INFO, logging.DEBUG)


def _verbosity(ctx: click.Context, param: click.Parameter, count: int) -> int:
    """Log to stderr while the command runs: warnings (retries) always, with -v each
    HTTP call and apply batch, with -vv the host of each call too."""
    logger = logging.getLogger("chatroster")
    handler, level = ConsoleHandler(console()), logger.level
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
def reading(provider: Provider) -> Iterator[None]:
    """While live state is read, how far the read is, on stderr."""
    meter = Meter(console(), "read")
    provider.read_progress = meter.update
    try:
        yield
    finally:
        provider.read_progress = None
        meter.close()
