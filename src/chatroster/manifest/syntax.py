"""Where a YAML syntax or reader error is, and what to do about it.

The parser reports where it gave up; for an unclosed quote, bracket or key that can be
many lines later, or past the end of the file. These functions locate the problem where
the mistake is (where the quote or bracket opens) and never past the end of the text.
"""

from __future__ import annotations

from typing import Any

import yaml

from ..errors import Problem

PARSER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
"""The parser the loader uses (libyaml's when available), whose offsets differ."""

Position = tuple[int, int]
"""(line, column), both counted from 1."""


def syntax_problem(file: str, error: yaml.MarkedYAMLError, text: str) -> Problem:
    unclosed = _unclosed(file, error, text)
    if unclosed is not None:
        return unclosed
    mark = error.problem_mark or error.context_mark
    context = f" ({error.context})" if error.context else ""
    hint = "check the indentation and the quoting here"
    if mark is not None and text[mark.index : mark.index + 1] == "\t":
        hint = "indent with spaces: YAML does not allow tabs"
    elif "mapping values are not allowed" in str(error.problem):
        hint = "is a ':' missing on a line above? Quote a value that holds ': '"
    line, column = _within(text, mark)
    message = f"YAML syntax error: {error.problem or 'invalid YAML'}{context}"
    return Problem(file, line, column, "", message, hint)


OPENED = {
    "quoted scalar": (
        "the quoted value that starts here",
        "end the value with the quote it starts with",
    ),
    "flow sequence": (
        "the list opened with '[' here",
        "close the list with ']', and separate its items with ','",
    ),
    "flow mapping": (
        "the mapping opened with '{' here",
        "close the mapping with '}', and separate its entries with ','",
    ),
    "simple key": (
        "the key that starts here",
        "end the key with ':' on the same line; a key has at most 1024 characters",
    ),
}
"""What the parser may have been reading when it failed (the error's context): what
to call it in the message, and what to do."""


def _unclosed(file: str, error: yaml.MarkedYAMLError, text: str) -> Problem | None:
    """A problem found on a later line than the quote, bracket or key being read, or at
    the end of the file, is located where that starts: the mistake is there (an unclosed
    quote or bracket), not where the parser gave up."""
    start, found = error.context_mark, error.problem_mark
    opened = next((words for kind, words in OPENED.items() if kind in str(error.context)), None)
    if start is None or found is None or opened is None:
        return None
    at_end = (found.line, found.column) >= _end(text)
    if found.line == start.line and not at_end:
        return None  # on the line it starts: the problem is where it was found
    what, hint = opened
    where = "at the end of the file" if at_end else f"on line {found.line + 1}"
    message = f"YAML syntax error in {what}: {error.problem} ({where})"
    return Problem(file, start.line + 1, start.column + 1, "", message, hint)


def _end(text: str) -> Position:
    """Where the text ends, counted from 0 as YAML marks are."""
    return text.count("\n"), len(text) - (text.rfind("\n") + 1)


def _within(text: str, mark: yaml.Mark | None) -> Position:
    """The mark's (line, column) from 1, never past the end of the text."""
    if mark is None:
        return 1, 1
    end = _end(text.rstrip("\n"))
    line, column = min((mark.line, mark.column), end)
    return line + 1, column + 1


def reader_problem(file: str, error: yaml.YAMLError, text: str) -> Problem:
    offset = int(getattr(error, "position", 0))
    if PARSER is not yaml.SafeLoader:  # libyaml counts bytes of UTF-8, not characters
        offset = len(text.encode("utf-8")[:offset].decode("utf-8", "ignore"))
    line = text.count("\n", 0, offset) + 1
    column = offset - (text.rfind("\n", 0, offset) + 1) + 1
    reason = getattr(error, "reason", "invalid character")
    code = text[offset : offset + 1]
    shown = f" (U+{ord(code):04X})" if code else ""
    return Problem(file, line, column, "", f"YAML error: {reason}{shown}", "remove the character")
