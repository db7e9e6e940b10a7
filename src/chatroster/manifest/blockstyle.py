"""A fast reader for the common shape of a large manifest: plain block-style YAML.

A manifest with 100k users is nearly always written by a program (``chatroster
export``, ``yaml.safe_dump``, a script), and then it is block style: one ``key:
value`` or ``- item`` per line, indented with spaces. Reading such a file line by
line here is about twice as fast as walking libyaml's events in Python, because
PyYAML's C binding spends most of its time turning each event into Python objects.
(Letting ``yaml.CSafeLoader`` build the data is slower still: it makes a node with
two marks for every value before constructing anything.)

`load` reads only a conservative subset and returns ``None`` for anything outside
it, as soon as it sees it: flow collections, block or multi-line scalars, escapes,
anchors, aliases, tags, comments after a value, duplicate keys, odd indentation,
unusual characters, unusable numbers, deep nesting. The caller then reads the file
with the precise event walker in `yamlsource`, which stays the one reader that
explains problems. Within the subset, the data is exactly what that walker builds:
keys as written, plain values typed by the same `resolve_plain`, quoted values as text.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from sys import intern
from typing import Any

from yaml.resolver import Resolver

from .scalar import MAX_DEPTH, UnusableNumber, resolve_plain

LINE = re.compile(
    r"""^( *)(?:(-) +|(['"]?)([A-Za-z0-9_][A-Za-z0-9_.-]{0,199})\3:(?: +|$))?(.*)$""", re.MULTILINE
)
"""One line: its indentation, then ``- `` (an item) or ``key:`` (an entry), then the
rest. Keys are uids and field names, bare or quoted (``'007':``, as YAML writers quote
a key that would otherwise read as a number); any other key leaves the line with
neither, and the file goes to the walker."""

UNUSUAL = re.compile(
    r"[^\n\x20-\x7e\xa0-\u2027\u202a-\ud7ff\ue000-\ufefe\uff00-\ufffd\U00010000-\U0010ffff]"
).search
"""Characters YAML refuses, or reads as a line break (NEL, U+2028, U+2029), plus tab,
carriage return and a byte-order mark: any of them sends the file to the walker."""

SPECIAL_FIRST = frozenset("-?:,[]{}#&*!|>%@` '\"") | {""}
"""First characters that give a scalar another meaning than plain text: YAML's
indicators, quotes, a space (and nothing at all)."""

TYPED_FIRST = frozenset(Resolver.yaml_implicit_resolvers) - {""}
"""First characters of plain scalars that may be something other than text (a number,
a boolean, null): only those go through `resolve_plain`."""

CHUNK = 1 << 20
"""Lines are split a megabyte at a time, so that a large file is never held twice."""


def load(text: str) -> dict[str, Any] | None:
    """The data of ``text`` if it is in the plain block subset, else ``None``."""
    if UNUSUAL(text):
        return None
    try:
        return _load(text)
    except UnusableNumber:
        return None  # the walker reports it, at its place


def _load(text: str) -> dict[str, Any] | None:
    root: dict[str, Any] = {}
    # Open containers, innermost last, each with the indentation of its entries; the
    # innermost one is also kept in `level` and `container`.
    stack: list[tuple[int, Any]] = [(0, root)]
    level, container = stack[-1]
    # A `key:` with nothing after it: its value is the block that the next line opens,
    # or null when the next line is not indented under it.
    pending: tuple[dict[str, Any], str, int] | None = None
    # The hot loop of a large manifest: everything inline, one pass, no backtracking.
    # Keys are interned: the same dozen field names under each of 100k users were each
    # a string of their own, 60 MB of 100k users' data (600 MB of a million's).
    for spaces, dash, _, key, rest in (line for lines in _chunks(text) for line in lines):
        indent = len(spaces)
        if key and rest and indent == level and pending is None and type(container) is dict:
            # The usual line: `key: value` beside the one before it.
            value = _scalar(rest)
            if value is _OUTSIDE or key in container:
                return None  # a duplicate key goes to the walker, which reports it
            container[intern(key)] = value
            continue
        if not dash and not key:
            if not rest or rest[0] == "#" or rest.isspace():
                continue  # blank lines and comment lines mean nothing in block style
            return None
        if pending is not None:
            parent, above_key, above = pending
            pending = None
            # A sequence may sit at its key's own indentation (as yaml.safe_dump writes it).
            if indent > above or (indent == above and dash):
                level, container = indent, [] if dash else {}
                parent[above_key] = container
                stack.append((level, container))
                if len(stack) > MAX_DEPTH:
                    return None
        while indent < level:
            stack.pop()
            level, container = stack[-1]
        if indent != level:
            return None  # indented under a value, or between two levels
        if type(container) is list:
            if dash:
                value = _scalar(rest)
                if value is _OUTSIDE:
                    return None
                container.append(value)
                continue
            stack.pop()  # a key after a sequence ends it: it must belong to the parent
            level, container = stack[-1]
            if indent != level:
                return None
        if dash or key in container:
            return None  # an item among keys, or a duplicate key
        if rest:
            value = _scalar(rest)
            if value is _OUTSIDE:
                return None
            container[intern(key)] = value
        else:
            container[intern(key)] = None
            pending = (container, key, indent)
    return root if root else None


_OUTSIDE = object()
"""What `_scalar` returns for a value outside the subset."""


def _scalar(text: str) -> Any:
    """The value of one scalar written on one line, or `_OUTSIDE`."""
    first = text[:1]
    if (
        first not in SPECIAL_FIRST
        and text[-1] != ":"  # `key: value:` is an error
        and text[-1] != " "
        and ": " not in text
        and " #" not in text  # a comment
    ):
        return resolve_plain(text) if first in TYPED_FIRST else text
    return _special_scalar(text)


def _special_scalar(text: str) -> Any:
    if text[-1:] == " ":
        return _scalar(text.rstrip(" "))  # trailing spaces are not part of a value
    if text == "[]" or text == "{}":  # how YAML writers give an empty list or mapping
        return [] if text == "[]" else {}
    first = text[:1]
    if len(text) < 2 or text[-1] != first:
        return _OUTSIDE
    # Quoted on one line: the text between the quotes. In single quotes, '' is a
    # quote; a double-quoted value with an escape (backslash) goes to the walker.
    inner = text[1:-1]
    if first == "'" and "'" not in inner.replace("''", ""):
        return inner.replace("''", "'")
    if first == '"' and '"' not in inner and "\\" not in inner:
        return inner
    return _OUTSIDE  # a nested block, a comment, an indicator: the walker reads it


def _chunks(text: str) -> Iterator[list[tuple[str, str, str, str, str]]]:
    """The lines of ``text`` as `LINE` splits them, a list per chunk."""
    start, end = 0, len(text)
    while start < end:
        stop = text.find("\n", start + CHUNK)
        if stop == -1:
            stop = end
        yield LINE.findall(text, start, stop)
        start = stop + 1
