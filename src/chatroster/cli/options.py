"""Options several commands share, and the command line's own parameter types."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any, ClassVar

import click

from ..refresh import REFRESH_MODES, Refresh
from ..runner import KINDS, Options, Targeting


class Duration(click.ParamType):  # type: ignore[type-arg]
    """``90s``, ``30m``, ``2h`` or ``1d``."""

    name = "duration"
    UNITS: ClassVar[dict[str, int]] = {"s": 1, "m": 60, "h": 3600, "d": 86400}

    def convert(self, value: Any, param: Any, ctx: Any) -> timedelta:
        if isinstance(value, timedelta):
            return value
        text = str(value).strip()
        if len(text) >= 2 and text[-1] in self.UNITS and text[:-1].isdigit():
            return timedelta(seconds=int(text[:-1]) * self.UNITS[text[-1]])
        self.fail(f"{value!r} is not a duration such as 30m, 2h or 1d", param, ctx)


DURATION = Duration()

FORMATS = click.Choice(["text", "json", "markdown"])
"""Every report's formats: text for people, json for programs, markdown for comments."""


def targeting_options(func: Callable[..., Any]) -> Callable[..., Any]:
    func = click.option(
        "--only",
        "only",
        multiple=True,
        type=click.Choice(sorted(KINDS)),
        help="Limit the plan to these kinds of change (repeatable).",
    )(func)
    func = click.option(
        "--exclude",
        "exclude",
        multiple=True,
        metavar="GLOB",
        help="Leave out uids matching GLOB (repeatable).",
    )(func)
    func = click.option(
        "--target", "target", multiple=True, metavar="GLOB", help="Only uids matching GLOB (repeatable)."
    )(func)
    return func


def env_option(func: Callable[..., Any]) -> Callable[..., Any]:
    """``--env NAME``: an environment of the base manifest PATH, by name (repeatable;
    ``all``: every one), found in its ``environments/`` directory."""
    return click.option(
        "--env",
        "envs",
        multiple=True,
        metavar="NAME",
        help="An environment of the base manifest PATH, from its environments/ directory "
        "(repeatable; 'all': every one).",
    )(func)


def refresh_option(func: Callable[..., Any]) -> Callable[..., Any]:
    return click.option(
        "--refresh",
        "refresh",
        type=click.Choice(REFRESH_MODES),
        default=None,
        help="full (default): read every declared user; changed: take users whose "
        "recorded state matches their declaration as in sync without per-user reads "
        "(misses changes made outside the manifest; see docs/workflows.md).",
    )(func)


def run_options(
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
