"""The value of a plain (unquoted) scalar, as YAML 1.1 reads it, timestamps aside.

Shared by both readers of a manifest file (`yamlsource` and `blockstyle`), so that
they type every value the same way.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from yaml.constructor import SafeConstructor
from yaml.nodes import ScalarNode
from yaml.resolver import Resolver

TAG = "tag:yaml.org,2002:"

_RESOLVERS = Resolver.yaml_implicit_resolvers
_CONSTRUCTOR = SafeConstructor()


@lru_cache(maxsize=4096)
def resolve_plain(text: str) -> Any:
    """The value of an unquoted scalar, as YAML 1.1 (PyYAML's SafeLoader) reads it.

    Timestamps stay text, so that `until: 2026-12-31T00:00:00Z` and its quoted form
    mean the same; the manifest parses both in one place. Cached: the values that may
    be typed (numbers, a team called t1) repeat across the users of a large manifest,
    and every result is immutable.
    """
    if text.isdigit() and text.isascii() and (text[0] != "0" or text == "0"):
        return int(text)  # a plain decimal, the usual number: no pattern needed
    for tag, pattern in _RESOLVERS.get(text[:1], ()):
        if pattern.match(text):
            return _construct(tag, text)
    return text


def _construct(tag: str, text: str) -> Any:
    kind = tag[len(TAG) :]
    if kind == "null":
        return None
    if kind == "bool":
        return SafeConstructor.bool_values[text.lower()]
    if kind == "int":
        if text.isdigit() and (text[0] != "0" or text == "0"):  # plain decimal: the usual case
            return int(text)
        return _CONSTRUCTOR.construct_yaml_int(ScalarNode(tag, text))
    if kind == "float":
        return _CONSTRUCTOR.construct_yaml_float(ScalarNode(tag, text))
    return text
