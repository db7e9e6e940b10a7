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


def render_path(path: DocPath) -> str:
    """``users.alice.blocklist[0]``"""
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else part
    return text
