"""Which manifests a command runs on: the paths given, or environments by name.

An environment is found by its file's name in an ``environments/`` directory: inside
the base manifest when the base is a directory that has one (only a directory's own
``*.yaml`` files are read, so that subdirectory is never part of the base), else
beside the base (a file or a directory)::

    chatroster plan users/ --env staging          # users/environments/staging.yaml
    chatroster plan chat.yaml --env all           # every file in environments/ beside chat.yaml
    chatroster plan environments/*.yaml           # the same, by path

Several environment files given as paths are several manifests, one per environment
(plan and drift run them all); other files given together are one manifest.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ..errors import ChatrosterError
from .sources import SUFFIXES

DIRECTORY = "environments"
ALL = "all"

_LAYER_KEY = re.compile(rb"""^["']?(?:extends|environment)["']?[ \t]*:""", re.MULTILINE)
"""A top-level ``extends:`` or ``environment:`` key, as block-style YAML writes it.
Only used to tell several environment files from the files of one manifest: the
loader itself refuses an environment file merged with others, however it is written."""


@dataclass(frozen=True)
class Target:
    """One manifest a command runs on."""

    paths: tuple[str, ...]
    environment: str | None = None
    """The environment's name (its file's name); ``None`` for a plain manifest."""

    @property
    def name(self) -> str:
        """How reports name it: the environment, or the paths."""
        return self.environment or " ".join(self.paths)


def targets(paths: Sequence[str], names: Sequence[str] = ()) -> list[Target]:
    """The manifests ``paths`` and ``--env`` ``names`` stand for, in a stable order."""
    if names:
        return _named(paths, names)
    if len(paths) > 1:
        found = [path for path in paths if is_environment_file(Path(path))]
        if len(found) == len(paths):
            return [Target((path,), Path(path).stem) for path in dict.fromkeys(paths)]
        if found:
            others = [path for path in paths if path not in found]
            raise ChatrosterError(
                f"environment files ({', '.join(found)}) were given with other files "
                f"({', '.join(others)}): give environment files alone (each is a whole "
                "manifest), or the files of one manifest without them"
            )
    # One manifest; whether it is an environment, loading it tells (`Manifest.environment`).
    return [Target(tuple(paths))]


def directory_for(base: Path) -> Path:
    """Where ``--env`` looks: ``environments/`` in the base directory, else beside the
    base (a file or a directory)."""
    inside = base / DIRECTORY
    return inside if inside.is_dir() else base.parent / DIRECTORY


def available(directory: Path) -> dict[str, Path]:
    """The environments in ``directory``, by name."""
    try:
        files = sorted(entry for entry in directory.iterdir() if entry.suffix in SUFFIXES)
    except OSError:
        return {}
    return {file.stem: file for file in files if file.is_file()}


def _named(paths: Sequence[str], names: Sequence[str]) -> list[Target]:
    if len(paths) != 1:
        raise ChatrosterError(
            f"--env looks environments up beside one base manifest, and {len(paths)} paths were "
            "given; give the base (its file or directory) once, or the environment files "
            "themselves without --env"
        )
    directory = directory_for(Path(paths[0]))
    found = available(directory)
    if not found:
        raise ChatrosterError(
            f"no environment files in {directory}: --env NAME looks for {directory}/NAME.yaml; "
            "put each environment's file there (see docs/workflows.md)"
        )
    wanted = list(found) if ALL in names else list(dict.fromkeys(names))
    missing = [name for name in wanted if name not in found]
    if missing:
        raise ChatrosterError(
            f"no environment {', '.join(repr(name) for name in missing)} in {directory} "
            f"(there: {', '.join(found)}); --env all names every one"
        )
    return [Target((str(found[name]),), name) for name in wanted]


def is_environment_file(path: Path) -> bool:
    """Whether ``path`` is a file with a top-level ``extends`` or ``environment`` key."""
    try:
        if not path.is_file():
            return False
        with path.open("rb") as stream:
            return _LAYER_KEY.search(stream.read(64 * 1024 * 1024)) is not None
    except (OSError, ValueError):
        return False  # the loader says what is wrong with it
