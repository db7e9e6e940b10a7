"""Reading one manifest file: plain YAML into plain data, with every position kept.

The data is built here from YAML events (libyaml's C parser when available) rather
than by PyYAML's constructor, for three reasons: the events carry the anchors, aliases
and tags the manifest refuses; a duplicate key can be caught where it is written; and
building from events is several times faster than ``yaml.load`` on a large manifest.

A file in plain block style (what programs write, and so nearly every large manifest)
is first offered to `blockstyle`, which reads it twice as fast and hands anything
unusual back to the walker here. The walker stays the one reader that finds and
explains problems.

Positions are not stored while loading, which keeps a 100k-user manifest fast and
small. The first time a problem needs one, `Document.where` walks the file again and
records where every key and value starts.
"""

from __future__ import annotations

import os
import re
import stat
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import yaml
from yaml.events import (
    AliasEvent,
    DocumentStartEvent,
    Event,
    MappingEndEvent,
    MappingStartEvent,
    ScalarEvent,
    SequenceEndEvent,
    SequenceStartEvent,
    StreamEndEvent,
)

from ..errors import Problem
from . import blockstyle
from .finding import At, DocPath, Finding, render_path, shown
from .scalar import MAX_DEPTH, TAG, UnusableNumber, resolve_plain
from .syntax import PARSER, reader_problem, syntax_problem

MAX_BYTES = 64 * 1024 * 1024
"""Larger files are refused: a manifest that size is a mistake, or an attack. 100k
users with every field set take about 30 MiB."""

Parser: Any = PARSER

HARMLESS_TAGS = {
    ScalarEvent: TAG + "str",
    MappingStartEvent: TAG + "map",
    SequenceStartEvent: TAG + "seq",
}
"""Explicit tags that change nothing (``!!str 1`` is the text "1"); every other is refused."""

PLAIN_YAML = "write the value out in full; a manifest is plain YAML"

SURROGATE = re.compile(r"[\ud800-\udfff]").search
"""Half of a UTF-16 pair alone: PyYAML's own parser lets an escape make one."""

BOM = b"\xef\xbb\xbf"

Position = tuple[int, int]
"""(line, column), both counted from 1."""


@dataclass
class Document:
    """One parsed file: its plain data and where each part of it was written."""

    file: str
    text: str
    bom: bool = False
    """Whether the file began with a UTF-8 byte-order mark (not part of ``text``). The
    bytes are not kept beside the text: for a large manifest, they would double it."""
    data: Any = None
    refused: set[DocPath] = field(default_factory=set)
    """Paths whose value was refused (an alias, a tag): no further problem is told there."""

    def where(self, path: DocPath, at: At = "value") -> Position:
        """Where ``path`` was written; for a path that is not there, its nearest parent."""
        marks = self._marks
        first, second = (marks.keys, marks.values) if at == "key" else (marks.values, marks.keys)
        for depth in range(len(path), 0, -1):
            prefix = path[:depth]
            if prefix in first:
                return first[prefix]
            if prefix in second:
                return second[prefix]
        return marks.values.get((), (1, 1))

    @property
    def raw(self) -> bytes:
        """The file's bytes as read: the text encoded again (UTF-8 decodes and encodes
        back to the same bytes), after the byte-order mark if it had one."""
        return (BOM if self.bom else b"") + self.text.encode("utf-8")

    def problem(self, finding: Finding) -> Problem:
        line, column = self.where(finding.path, finding.at)
        return Problem(self.file, line, column, render_path(finding.path), finding.message, finding.hint)

    @cached_property
    def _marks(self) -> _Marks:
        walker = _Walker(self.file, self.text, record=True)
        walker.run()
        return walker.marks


def read(path: Path, file: str) -> tuple[Document | None, list[Problem]]:
    """Parse the file at ``path``, shown to the user as ``file``.

    The document is ``None`` when the file cannot be read or parsed at all; the
    problems are every one found.
    """
    raw = _read_bytes(path, file)
    if isinstance(raw, Problem):
        return None, [raw]
    text = _decode(raw, file)
    if isinstance(text, Problem):
        return None, [text]
    document = Document(file, text, raw.startswith(BOM))
    data = blockstyle.load(text)  # the fast path: a plain block-style file
    if data is not None:
        document.data = data
        return document, []
    walker = _Walker(file, text)
    data, failure = walker.run()
    problems = walker.refusals + [_duplicate(document, *duplicate) for duplicate in walker.duplicates]
    document.refused = walker.refused
    if failure is not None:
        return None, problems + [failure]
    document.data = {} if data is None else data
    return document, problems


def _read_bytes(path: Path, file: str) -> bytes | Problem:
    try:
        raw = _read_regular(path)
    except OSError as error:
        return Problem(file, 1, 1, "", f"cannot read the file: {error.strerror or error}")
    if raw is None:
        return not_regular(file)
    if len(raw) > MAX_BYTES:
        return Problem(
            file,
            1,
            1,
            "",
            f"the file is larger than {MAX_BYTES // (1024 * 1024)} MiB",
            "split the users over several files in one directory",
        )
    return raw


def _read_regular(path: Path) -> bytes | None:
    """The first ``MAX_BYTES + 1`` bytes of the file, or ``None`` if it is not a regular file.

    The caller checked the type before, but the file may have been swapped since: so it
    is opened without blocking (a FIFO would wait for a writer) and checked again.
    """
    descriptor = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOCTTY", 0))
    with os.fdopen(descriptor, "rb") as stream:
        if not stat.S_ISREG(os.fstat(descriptor).st_mode):
            return None
        return stream.read(MAX_BYTES + 1)


def not_regular(file: str) -> Problem:
    """A manifest path that names a FIFO, a device, a socket, or a directory among files."""
    return Problem(file, 1, 1, "", "not a regular file; give a manifest file or a directory of *.yaml files")


def _decode(raw: bytes, file: str) -> str | Problem:
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        before = raw[: error.start]
        line = before.count(b"\n") + 1
        column = error.start - (before.rfind(b"\n") + 1) + 1
        byte = raw[error.start : error.start + 1].hex()
        return Problem(
            file,
            line,
            column,
            "",
            f"the file is not valid UTF-8 (byte 0x{byte})",
            "save the file as UTF-8",
        )


def _duplicate(document: Document, path: DocPath, position: Position) -> Problem:
    first_line, _ = document.where(path, "key")
    return Problem(
        document.file,
        *position,
        render_path(path),
        f"duplicate key '{shown(str(path[-1]))}' (first given on line {first_line})",
        "give each key once; remove or merge one of them",
    )


@dataclass
class _Marks:
    keys: dict[DocPath, Position] = field(default_factory=dict)
    values: dict[DocPath, Position] = field(default_factory=dict)


class _Frame:
    """An open mapping or sequence while walking the events."""

    __slots__ = ("container", "key", "path", "wants_key")

    def __init__(self, container: dict[str, Any] | list[Any], path: DocPath) -> None:
        self.container = container
        self.path = path
        self.key: str | None = None
        """The key whose value comes next; ``None`` drops that value (a refused key)."""
        self.wants_key = isinstance(container, dict)

    def child_path(self) -> DocPath:
        if isinstance(self.container, list):
            return (*self.path, len(self.container))
        return self.path if self.key is None else (*self.path, self.key)


class _Walker:
    """Builds plain data from YAML events, refusing what plain data has no use for.

    With ``record`` it only notes where every key and value starts (the second walk,
    made when a problem needs a position).
    """

    def __init__(self, file: str, text: str, record: bool = False) -> None:
        self.file = file
        self.text = text
        self.record = record
        self.marks = _Marks()
        self.refusals: list[Problem] = []
        self.refused: set[DocPath] = set()
        """Where a refused alias or tag left a value that means nothing."""
        self.duplicates: list[tuple[DocPath, Position]] = []
        self.stack: list[_Frame] = []
        self.documents = 0

    def run(self) -> tuple[Any, Problem | None]:
        """The data, or ``None`` and the syntax error that stopped the walk."""
        try:
            parser = Parser(self.text)  # PyYAML's own reader checks the characters here
        except yaml.YAMLError as error:
            return None, reader_problem(self.file, error, self.text)
        try:
            return self._walk(parser.get_event), None
        except yaml.MarkedYAMLError as error:
            return None, syntax_problem(self.file, error, self.text)
        except yaml.YAMLError as error:  # libyaml's ReaderError: a forbidden character
            return None, reader_problem(self.file, error, self.text)
        finally:
            parser.dispose()

    def _walk(self, next_event: Any) -> Any:
        # The hot loop of a large manifest: one type test per event, no dispatch table.
        root: Any = None
        stack = self.stack
        while True:
            event = next_event()
            kind = type(event)
            if kind is ScalarEvent:
                if stack and stack[-1].wants_key:
                    self._key(stack[-1], event)
                    continue
                value = self._scalar(event)
            elif kind is MappingStartEvent or kind is SequenceStartEvent:
                if len(stack) < MAX_DEPTH:
                    self._open(event)
                    continue
                self._too_deep(event, next_event)
                value = None
            elif kind is MappingEndEvent or kind is SequenceEndEvent:
                value = stack.pop().container
            elif kind is AliasEvent:
                self._alias(event)
                value = None
            elif kind is DocumentStartEvent:
                if self._second_document(event):
                    return root
                continue
            elif kind is StreamEndEvent:
                return root
            else:
                continue
            if stack:
                self._place(stack[-1], value, event)
            else:
                root = value

    def _place(self, frame: _Frame, value: Any, event: Event) -> None:
        container = frame.container
        if type(container) is list:
            container.append(value)
        elif frame.wants_key:  # a mapping or a sequence used as a key
            self._refuse(event, "a key must be plain text, not a list or a mapping", "")
            frame.key, frame.wants_key = None, False
        else:
            if frame.key is not None:
                container[frame.key] = value  # type: ignore[call-overload]
            frame.key, frame.wants_key = None, True

    def _key(self, frame: _Frame, event: ScalarEvent) -> None:
        self._check(event)
        # The key as written, whatever it looks like: `12345:` is the uid "12345".
        key = event.value
        if self.record:
            self.marks.keys.setdefault((*frame.path, key), _position(event))
        elif key in frame.container:
            self.duplicates.append(((*frame.path, key), _position(event)))
        frame.key, frame.wants_key = key, False

    def _open(self, event: Event) -> None:
        self._check(event)
        path = self._here()
        if self.record:
            self.marks.values.setdefault(path, _position(event))
        container: dict[str, Any] | list[Any] = {} if type(event) is MappingStartEvent else []
        self.stack.append(_Frame(container, path))

    def _scalar(self, event: ScalarEvent) -> Any:
        self._check(event)
        if self.record:
            self.marks.values.setdefault(self._here(), _position(event))
        if event.tag is None and event.implicit[0]:
            try:
                return resolve_plain(event.value)
            except UnusableNumber as unusable:
                self._refuse_value(event, unusable.message, unusable.hint)
                return None
        if event.style == '"' and SURROGATE(event.value):
            # Not a character: no platform, terminal or file can take it.
            self._refuse_value(
                event,
                "a lone surrogate escape (\\ud800-\\udfff) is not a character",
                "write a character above U+FFFF as \\U0001F600",
            )
            return None
        return event.value

    def _check(self, event: Any) -> None:
        if event.anchor is not None:
            self._refuse(event, f"anchors (&{event.anchor}) are not allowed", PLAIN_YAML)
        tag = event.tag
        if tag is not None and tag != "!" and tag != HARMLESS_TAGS[type(event)]:
            written = "!!" + tag[len(TAG) :] if tag.startswith(TAG) else tag
            self._refuse_value(
                event,
                f"the tag {shown(written)} is not allowed",
                "remove the tag; a manifest is plain YAML (quote a value to keep it as text)",
            )

    def _too_deep(self, event: Event, next_event: Any) -> None:
        """Refuses a collection nested too deep, and skips to its end."""
        self._refuse_value(
            event,
            f"nested more than {MAX_DEPTH} levels deep",
            "flatten the data; a manifest needs only a few levels",
        )
        depth = 1
        while depth:
            kind = type(next_event())
            if kind is MappingStartEvent or kind is SequenceStartEvent:
                depth += 1
            elif kind is MappingEndEvent or kind is SequenceEndEvent:
                depth -= 1

    def _alias(self, event: AliasEvent) -> None:
        # Refused outright, never expanded: a few lines of aliases can stand for
        # billions of values (the "billion laughs" attack).
        self._refuse_value(event, f"aliases (*{event.anchor}) are not allowed", PLAIN_YAML)

    def _second_document(self, event: Event) -> bool:
        self.documents += 1
        if self.documents > 1:
            self._refuse(
                event,
                "a second YAML document ('---') in the same file",
                "keep one document per file; use several files in a directory instead",
            )
        return self.documents > 1

    def _refuse_value(self, event: Event, message: str, hint: str) -> None:
        self._refuse(event, message, hint)
        self.refused.add(self._here())

    def _here(self) -> DocPath:
        return self.stack[-1].child_path() if self.stack else ()

    def _refuse(self, event: Event, message: str, hint: str) -> None:
        if not self.record:
            where = _position(event)
            self.refusals.append(Problem(self.file, *where, render_path(self._here()), message, hint))


def _position(event: Event) -> Position:
    mark = event.start_mark
    return (mark.line + 1, mark.column + 1) if mark is not None else (1, 1)
