"""Files chatroster writes for the user: saved plans and exported manifests."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import TextIO

from .errors import ChatrosterError


def write_private(path: Path, text: str | Callable[[TextIO], None]) -> None:
    """Write ``text`` whole or not at all, readable by its owner only: plans and
    exports hold personal data unmasked. ``text`` may be a writer that streams into
    the file (an export of 100k users is not held as one string)."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        descriptor = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w", encoding="utf-8") as stream:
            if isinstance(text, str):
                stream.write(text)
            else:
                text(stream)
        tmp.replace(path)
    except OSError as exc:
        raise ChatrosterError(f"cannot write {path}: {exc.strerror or exc}") from None
