"""A problem found in the data, before it is given a file and a position."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

DocPath = tuple[str | int, ...]
"""A path inside the document: ``("users", "alice", "blocklist", 0)``."""

At = Literal["key", "value"]
"""Whether a problem is about a key (unknown, missing, misnamed) or about its value."""


@dataclass(frozen=True)
class Finding:
    path: DocPath
    message: str
    hint: str = ""
    at: At = "value"

    def within(self, prefix: DocPath) -> bool:
        return self.path[: len(prefix)] == prefix


SHOWN_LENGTH = 80
"""Longer text from the manifest is cut when a message repeats it."""


def render_path(path: DocPath) -> str:
    """``users.alice.blocklist[0]``"""
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{shown(part)}" if text else shown(part)
    return text


def shown(text: str) -> str:
    """``text`` as a message may repeat it: control characters (a NUL, an escape that
    would drive the terminal), lone surrogates and the like spelt as Python escapes,
    and a long text cut short."""
    if len(text) > SHOWN_LENGTH:
        return shown(text[: SHOWN_LENGTH - 1]) + "…"
    if text.isprintable():
        return text
    return "".join(char if char.isprintable() else repr(char)[1:-1] for char in text)
