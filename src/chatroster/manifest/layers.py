"""Environments: one manifest declared once, applied to several apps.

An environment is one YAML file that names the manifest it builds on and says what
differs::

    # environments/staging.yaml
    extends: ..                      # the base: a manifest file or directory, relative to this file
    provider: {path: ../.chatroster/staging.db}
    users:
      qa-bot: {name: QA Bot}         # added
      alice: {avatar: https://staging.example.com/alice.png}   # one field overridden
      carol: null                    # removed

The layers are merged from the base up, each over the one below, as kustomize merges
a patch: mappings key by key, at every depth; lists and scalars replace; ``null``
removes what a layer below declares. A layer may extend another environment file
(layers chain, and a cycle is an error). Within one layer the usual rules hold (a uid
declared twice in a base directory is an error). The merged data remembers, for
every path an environment wrote, which file wrote it, so a problem with a merged
value is told at the line of the layer that set it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import Problem
from .finding import DocPath, Finding, shown
from .sources import SUFFIXES, Sources, read_plain
from .yamlsource import Document

LAYER_KEYS = ("extends", "environment")
"""Keys of an environment file that say how to layer it, not what to declare."""

MAX_LAYERS = 32
"""More layers than this is a mistake (and the chain is cut there)."""

OWN_FILE = "give environment files alone: each is a whole manifest (plan and drift take several)"


def is_environment(document: Document) -> bool:
    return isinstance(document.data, dict) and any(key in document.data for key in LAYER_KEYS)


def read_layers(sources: Sources) -> Sources:
    """``sources`` as read, or, when it is an environment file, that file merged over
    every layer it extends."""
    entries = [document for document in sources.documents if is_environment(document)]
    if not entries:
        return sources
    if len(sources.documents) > 1:
        for document in entries:
            message = "an environment file cannot be merged with other files"
            sources.problems.append(_at_layer_key(document, message, OWN_FILE))
        sources.broken = True
        return sources
    return _layered(entries[0], sources.problems)


@dataclass
class _Chain:
    """The environment files from the one given down to the last that extends, and
    the base they rest on (`None`: the last file extends nothing)."""

    files: list[Document]
    base: Sources | None
    problems: list[Problem]
    broken: bool = False


def _layered(entry: Document, problems: list[Problem]) -> Sources:
    chain = _follow(entry, problems)
    merged = chain.base if chain.base is not None else Sources()
    for document in reversed(chain.files):
        if not chain.broken:  # over a missing base, every null would remove nothing
            chain.problems += overlay(merged, document)
    merged.problems = chain.problems
    merged.broken = chain.broken
    merged.environment = Path(entry.file).stem
    merged.entry = (entry.file,)
    return merged


def _follow(entry: Document, problems: list[Problem]) -> _Chain:
    """Reads layer after layer, from ``entry`` down to the base."""
    chain = _Chain([], None, list(problems))
    seen: dict[Path, str] = {}
    document: Document | None = entry
    while document is not None:
        chain.files.append(document)
        seen[_identity(document.file)] = document.file
        chain.problems += _header_problems(document)
        document = _next(chain, document, seen)
    return chain


def _next(chain: _Chain, document: Document, seen: dict[Path, str]) -> Document | None:
    """The environment file ``document`` extends; `None` once the base is reached
    (kept in ``chain.base``) or the chain is broken."""
    assert isinstance(document.data, dict)
    target = document.data.get("extends")
    if target is None:
        return None  # a root environment: everything is declared in the files read
    if not isinstance(target, str) or not target.strip():
        return _broken(chain, document, "extends must be the path of the base manifest (file or directory)")
    path = Path(os.path.normpath(Path(document.file).parent / target))
    if _identity(str(path)) in seen:
        cycle = " → ".join([*seen.values(), str(path)])
        hint = "a layer cannot extend itself or a layer above it"
        return _broken(chain, document, f"extends makes a cycle: {cycle}", hint)
    if len(chain.files) >= MAX_LAYERS:
        return _broken(chain, document, f"more than {MAX_LAYERS} layers", "extend the base more directly")
    refused = _unusable(path)
    if refused:
        return _broken(chain, document, f"extends names {shown(str(path))}, {refused}")
    layer = read_plain([path])
    nested = [below for below in layer.documents if is_environment(below)]
    if len(layer.documents) > 1 and nested:
        for below in nested:
            chain.problems.append(
                _at_layer_key(
                    below,
                    "an environment file inside the base directory would be read as part of the base",
                    "move environment files into an environments/ directory "
                    "(only a directory's own *.yaml files are read)",
                )
            )
        chain.broken = True
        return None
    chain.problems += layer.problems  # a uid twice in a base directory, say: checks go on
    if not layer.documents:
        chain.broken = True
        return None
    if nested:
        return nested[0]
    chain.base = layer
    return None


def _unusable(path: Path) -> str:
    """Why ``path`` cannot be a base, or ``""``. Only a directory or a ``*.yaml`` file:
    a file in a pull request must not get any file of the machine that plans it read
    and quoted in a comment (as kustomize restricts what a kustomization may load)."""
    try:
        if path.is_dir():
            found = any(entry.suffix in SUFFIXES for entry in path.iterdir())
            return "" if found else "a directory without *.yaml or *.yml files"
        if not path.exists():
            return "which does not exist"
    except (OSError, ValueError) as error:  # ValueError: a NUL in the path
        return f"which cannot be read: {getattr(error, 'strerror', None) or error}"
    if path.suffix not in SUFFIXES:
        return "which is not a manifest (a *.yaml or *.yml file, or a directory)"
    return ""


RELATIVE = "give the base manifest file or directory, relative to this file"


def _broken(chain: _Chain, document: Document, message: str, hint: str = RELATIVE) -> Document | None:
    """Ends the chain at ``document``'s ``extends``, with the reason; always `None`."""
    chain.problems.append(document.problem(Finding(("extends",), message, hint)))
    chain.broken = True
    return None


def _identity(file: str) -> Path:
    try:
        return Path(file).resolve()
    except (OSError, RuntimeError, ValueError):  # a link loop, a NUL: the name must do
        return Path(os.path.abspath(file))


def _header_problems(document: Document) -> list[Problem]:
    """``environment``, when given, must be the file's own name: environments are found
    by their file's name (``--env staging``: ``environments/staging.yaml``)."""
    assert isinstance(document.data, dict)
    name = document.data.get("environment")
    if name is None:
        return []
    stem = Path(document.file).stem
    if name == stem:
        return []
    written = shown(str(name)) if isinstance(name, (str, int, float, bool)) else "a " + type(name).__name__
    return [
        document.problem(
            Finding(
                ("environment",),
                f"environment is {written}, but the file is named {shown(stem)}: "
                "an environment is named by its file",
                f"write environment: {shown(stem)}, or rename the file",
            )
        )
    ]


def _at_layer_key(document: Document, message: str, hint: str) -> Problem:
    assert isinstance(document.data, dict)
    key = next(key for key in LAYER_KEYS if key in document.data)
    return document.problem(Finding((key,), message, hint, "key"))


# ------------------------------------------------------------------------- merge


def overlay(sources: Sources, document: Document) -> list[Problem]:
    """Merges ``document`` over what ``sources`` holds so far; the problems of the merge."""
    sources.documents.append(document)
    assert isinstance(document.data, dict)
    merge = _Merge(sources, document)
    for key, value in document.data.items():
        if key not in LAYER_KEYS:
            merge.set(sources.data, (key,), value)
    return merge.problems


class _Merge:
    """Mappings merge key by key, lists and scalars replace, ``null`` removes."""

    def __init__(self, sources: Sources, document: Document) -> None:
        self.origins = sources.origins
        self.document = document
        self.problems: list[Problem] = []

    def set(self, below: dict[str, Any], path: DocPath, value: Any) -> None:
        key = str(path[-1])
        if isinstance(value, dict) and isinstance(below.get(key), dict):
            # The mapping stays the lower layer's (a problem with it is told there);
            # the keys this layer writes are this layer's.
            for name, item in value.items():
                self.set(below[key], (*path, name), item)
            return
        self.origins[path] = self.document
        if value is not None:
            below[key] = self._checked(path, value)
        elif key in below:
            del below[key]
        else:
            self._nothing_to_remove(path)

    def _checked(self, path: DocPath, value: Any) -> Any:
        """A value new at ``path``: a ``null`` inside it removes nothing, and says so."""
        if isinstance(value, dict):
            for name, item in list(value.items()):
                if item is None:
                    self._nothing_to_remove((*path, name))
                    del value[name]
                else:
                    value[name] = self._checked((*path, name), item)
        return value

    def _nothing_to_remove(self, path: DocPath) -> None:
        self.problems.append(
            self.document.problem(
                Finding(
                    path,
                    "null in an environment file removes what a layer below declares, "
                    "and no layer below declares this",
                    "check the name; for an empty entry write {} (null is never kept in an environment file)",
                )
            )
        )
