"""The files of a manifest, merged into one document that remembers where each part came from."""

from __future__ import annotations

import hashlib
import stat
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import Problem
from .finding import DocPath, Finding, shown
from .yamlsource import Document, not_regular, read

MERGED = ("users", "bans", "roles")
"""Sections whose entries are merged across files; every other key is given once."""

SUFFIXES = (".yaml", ".yml")


@dataclass
class Sources:
    """The documents read, in order, and their merged data."""

    documents: list[Document] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)
    origins: dict[DocPath, Document] = field(default_factory=dict)
    """Which document declared each top-level key, and each user, ban and role; for
    an environment, also each deeper path a layer above the base wrote (`layers`)."""
    problems: list[Problem] = field(default_factory=list)
    environment: str | None = None
    """The environment's name, when the manifest is an environment file (`layers`)."""
    entry: tuple[str, ...] = ()
    """What to read to get this manifest again: the environment file alone, when it is
    one; empty for a plain manifest (its files)."""
    broken: bool = False
    """A layer could not be read (a missing base, a cycle): nothing more is checked."""

    @property
    def files(self) -> tuple[str, ...]:
        return tuple(document.file for document in self.documents)

    def drop_data(self) -> None:
        """Let go of the plain data once the model is built from it: the model holds what
        it needs, and a position is found again from the text. Kept, 100k users' data
        stayed beside their model to the end of a plan or an export."""
        self.data = {}
        for document in self.documents:
            document.data = None

    def digest(self) -> str:
        """sha256 of the files' bytes, in order: a saved plan can tell the manifest changed."""
        digest = hashlib.sha256()
        for document in self.documents:
            digest.update(document.raw)
        return digest.hexdigest()

    def locate(self, finding: Finding) -> Problem:
        """The finding as a problem at its file, line and column."""
        return self.origin(finding.path).problem(finding)

    def position(self, path: DocPath) -> tuple[str, int, int]:
        """(file, line, column) of ``path``'s value, or of its nearest parent."""
        document = self.origin(path)
        line, column = document.where(path, "value")
        return document.file, line, column

    def origin(self, path: DocPath) -> Document:
        """The document that wrote ``path``'s value: of an environment's layers, the
        last one that set it or a parent of it (a few lookups: only for problems)."""
        for depth in range(len(path), 0, -1):
            document = self.origins.get(path[:depth])
            if document is not None:
                return document
        return self.documents[0]

    def may_hold_references(self) -> bool:
        """Whether any value can hold a ``${NAME}`` reference: only when a file's text has
        one, or has a backslash, which can spell one in double quotes (``"\\x24{NAME}"``)."""
        return any("${" in document.text or "\\" in document.text for document in self.documents)

    @property
    def refused(self) -> set[DocPath]:
        return set().union(*(document.refused for document in self.documents))

    def add(self, document: Document) -> None:
        if not isinstance(document.data, dict):
            self.problems.append(_not_a_mapping(document))
            return
        self.documents.append(document)
        for key, value in document.data.items():
            if key in MERGED and isinstance(value, dict) and isinstance(self.data.get(key), dict):
                self._merge_section(document, key, value)
            elif (key,) in self.origins:
                self.problems.append(_twice(document, (key,), self.origins[(key,)], f"'{key}'"))
            else:
                self._declare(document, key, value)

    def _declare(self, document: Document, key: str, value: Any) -> None:
        self.data[key] = value
        self.origins[(key,)] = document
        if key in MERGED and isinstance(value, dict):
            for name in value:
                self.origins[(key, name)] = document

    def _merge_section(self, document: Document, key: str, entries: dict[str, Any]) -> None:
        merged = self.data[key]
        for name, entry in entries.items():
            path = (key, name)
            if name in merged:
                shown_name = shown(name)
                what = {"users": "the uid", "bans": "the ban of", "roles": "the role"}[key]
                what = f"{what} '{shown_name}'"
                self.problems.append(_twice(document, path, self.origins[path], what))
                continue
            merged[name] = entry
            self.origins[path] = document


def read_sources(paths: Sequence[str | Path]) -> Sources:
    """Read every file the paths name, merging as it goes; problems are collected, not raised.

    An environment file (one with ``extends``) is read with the layers it extends
    (`layers`); it is a manifest on its own, never merged with other files.
    """
    from .layers import read_layers  # layers builds on this module

    sources = read_plain(paths)
    return read_layers(sources)


def read_plain(paths: Sequence[str | Path]) -> Sources:
    """The files the paths name, merged as one layer (a file, or a directory's files)."""
    sources = Sources()
    files, problems = expand(paths)
    sources.problems += problems
    for path, file in files:
        document, problems = read(path, file)
        sources.problems += problems
        if document is not None:
            sources.add(document)
    return sources


def expand(paths: Sequence[str | Path]) -> tuple[list[tuple[Path, str]], list[Problem]]:
    """The files to read, as (path, name shown to the user); a directory gives its YAML files."""
    files: list[tuple[Path, str]] = []
    problems: list[Problem] = []
    seen: set[Path] = set()
    if not paths:
        problems.append(Problem("", 1, 1, "", "no manifest given", "name a YAML file or a directory"))
    for given in paths:
        found, refused = _files_named(Path(given))
        problems += refused
        for file in found:
            if file.resolve() not in seen:  # the same file named twice is read once
                seen.add(file.resolve())
                files.append((file, str(file)))
    return files, problems


def _files_named(path: Path) -> tuple[list[Path], list[Problem]]:
    """The manifest files ``path`` names: itself, or a directory's YAML files."""
    mode = _mode(path)
    if isinstance(mode, Problem):
        return [], [mode]
    if stat.S_ISREG(mode):
        return [path], []
    if not stat.S_ISDIR(mode):
        return [], [not_regular(str(path))]
    found, problems = _directory_files(path)
    if not found and not problems:
        problems.append(Problem(str(path), 1, 1, "", "no *.yaml or *.yml files in this directory"))
    return found, problems


def _directory_files(directory: Path) -> tuple[list[Path], list[Problem]]:
    """The directory's YAML files, in order. One that is not a regular file (a FIFO,
    whose read would wait for a writer forever, a device, a directory) is a problem."""
    try:
        entries = sorted(entry for entry in directory.iterdir() if entry.suffix in SUFFIXES)
    except OSError as error:
        reason = error.strerror or str(error)
        return [], [Problem(str(directory), 1, 1, "", f"cannot read the directory: {reason}")]
    files: list[Path] = []
    problems: list[Problem] = []
    for entry in entries:
        mode = _mode(entry)
        if isinstance(mode, Problem):
            problems.append(mode)
        elif stat.S_ISREG(mode):
            files.append(entry)
        else:
            problems.append(not_regular(str(entry)))
    return files, problems


def _mode(path: Path) -> int | Problem:
    """The type and mode of the file ``path`` names, following symbolic links."""
    try:
        return path.stat().st_mode
    except FileNotFoundError:
        return Problem(str(path), 1, 1, "", "no such file or directory")
    except (OSError, ValueError) as error:  # ValueError: a NUL in the path
        reason = getattr(error, "strerror", None) or str(error)
        return Problem(str(path), 1, 1, "", f"cannot read the file: {reason}")


def _twice(document: Document, path: DocPath, first: Document, what: str) -> Problem:
    line, column = first.where(path, "key")
    return document.problem(
        Finding(
            path,
            f"{what} is declared twice; first at {first.file}:{line}:{column}",
            "declare it once",
            "key",
        )
    )


def _not_a_mapping(document: Document) -> Problem:
    return document.problem(Finding((), "a manifest file must be a mapping (version, provider, users, ...)"))
