"""Several environments in one report: a section per environment, then (text) or first
(markdown) a summary of them all. Each section's body is the usual plan or drift
report, rendered by its own module; an environment that failed shows its error."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from .describe import code

#: GitHub refuses comments over 65,536 characters: the sections share what is left.
MAX_CHARS = 60_000


@dataclass(frozen=True)
class Section:
    """One environment's part of the report."""

    name: str
    files: str
    """The file it was read from, as given."""
    status: str
    """Its result in a few words: ``3 change(s)``, ``in sync``, ``error``."""
    body: str
    """The rendered report, or the error's message."""
    failed: bool = False


def several_text(kind: str, sections: Sequence[Section]) -> str:
    lines: list[str] = []
    for section in sections:
        lines += [f"== Environment {section.name} ({section.files}) ==", section.body, ""]
    width = max(len(section.name) for section in sections)
    lines.append(f"Summary of the {kind} of {len(sections)} environments:")
    lines += [f"  {section.name.ljust(width)}  {section.status}" for section in sections]
    return "\n".join(lines)


def several_markdown(kind: str, sections: Sequence[Section]) -> str:
    lines = [f"## chatroster {kind}: {len(sections)} environments", ""]
    lines += ["| environment | result |", "|---|---|"]
    lines += [f"| {code(section.name)} | {_cell(section.status)} |" for section in sections]
    lines.append("")
    for section in sections:
        lines += [f"## Environment {code(section.name)}", ""]
        lines += [_fenced(section.body), ""] if section.failed else [section.body.rstrip("\n"), ""]
    return "\n".join(lines)


def share(sections: int) -> int:
    """The characters each environment's markdown section may take."""
    return max(2_000, MAX_CHARS // max(1, sections))


def _cell(text: str) -> str:
    """``text`` in a table cell: a ``|`` would end the cell, markup would render."""
    return re.sub(r"([\\`*_<>\[\]#|~])", r"\\\1", text.replace("\n", " "))


def _fenced(text: str) -> str:
    """``text`` as a code block that nothing inside it can close early."""
    longest = max((len(run) for run in re.findall(r"`{3,}", text)), default=2)
    fence = "`" * (longest + 1)
    return f"{fence}text\n{text}\n{fence}"
