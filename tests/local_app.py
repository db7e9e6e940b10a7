"""Helpers for tests that drive the real CLI against a local app: run a command as a
subprocess, edit the manifest, and look at everything the platform holds."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml

from chatroster.store import Store

Edit = Callable[[dict[str, Any]], None]


def chatroster(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "chatroster", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ, "NO_COLOR": "1"},
    )


def rewrite(path: Path, edit: Edit) -> None:
    document = yaml.safe_load(path.read_text())
    edit(document)
    path.write_text(yaml.safe_dump(document, sort_keys=False))


@contextmanager
def store(manifest: Path) -> Iterator[Store]:
    """The store of a manifest whose provider path is ``app.db`` beside it."""
    db = Store(manifest.parent / "app.db")
    try:
        yield db
    finally:
        db.close()


def platform(manifest: Path) -> tuple[object, ...]:
    """Everything the platform holds that a refused apply must leave as it was."""
    with store(manifest) as db:
        return db.all_users(), db.bans(), db.relations("blocks"), db.relations("whitelist")
