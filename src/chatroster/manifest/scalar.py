"""The value of a plain (unquoted) scalar, as YAML 1.1 reads it, timestamps aside.

Shared by both readers of a manifest file (`yamlsource` and `blockstyle`), so that
they type every value the same way, and refuse the same numbers and the same nesting.
"""

from __future__ import annotations

import math
from functools import lru_cache
from typing import Any

from yaml.constructor import SafeConstructor
from yaml.nodes import ScalarNode
from yaml.resolver import Resolver

TAG = "tag:yaml.org,2002:"

MAX_DIGITS = 640
"""Longer integers are refused. 640 is the lowest limit Python's int-to-text conversion
can be set to (`sys.set_int_max_str_digits`), so every number read can be written out
again (a plan, the JSON sent to a platform, the local store) whatever the setting. No
setting of a manifest needs a number nearly this long."""

MAX_NUMERAL = 4 * MAX_DIGITS
"""Longer numerals (binary, sexagesimal, with underscores) are refused before they are
converted: PyYAML converts a sexagesimal one in time growing with the square of its
length, and the binary form of the largest accepted number is shorter than this."""

MAX_DEPTH = 100
"""Mappings and lists nested deeper are refused. A manifest needs a handful of levels
(metadata a few more); every later step that walks the data (variables, the plan, its
JSON) recurses, and would fail on Python's recursion limit past some hundreds."""

_LARGEST = 10**MAX_DIGITS
_RESOLVERS = Resolver.yaml_implicit_resolvers
_CONSTRUCTOR = SafeConstructor()


class UnusableNumber(ValueError):
    """A plain scalar that reads as a number no platform can take: too large, or not finite."""

    def __init__(self, message: str, hint: str) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint


@lru_cache(maxsize=4096)
def resolve_plain(text: str) -> Any:
    """The value of an unquoted scalar, as YAML 1.1 (PyYAML's SafeLoader) reads it.

    Timestamps stay text, so that `until: 2026-12-31T00:00:00Z` and its quoted form
    mean the same; the manifest parses both in one place. Cached: the values that may
    be typed (numbers, a team called t1) repeat across the users of a large manifest,
    and every result is immutable.

    Raises `UnusableNumber` for a number too large to use, and for ``.inf`` and
    ``.nan``, which JSON cannot carry (and NaN never equals itself, so a plan with one
    would show a change on every run).
    """
    if text.isdigit() and text.isascii() and (text[0] != "0" or text == "0"):
        return _decimal(text)  # a plain decimal, the usual number: no pattern needed
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
            return _decimal(text)
        return _integer(text)
    if kind == "float":
        return _float(text)
    return text


def _decimal(text: str) -> int:
    if len(text) > MAX_DIGITS:
        raise _too_large()
    return int(text)


def _integer(text: str) -> int:
    """Any other form YAML 1.1 gives an integer: signed, 0x, 0b, octal, 1_000, 1:30."""
    if len(text) > MAX_NUMERAL:
        raise _too_large()
    try:
        value: int = _CONSTRUCTOR.construct_yaml_int(ScalarNode(TAG + "int", text))
    except ValueError:  # over Python's own limit of digits, where it is set lower
        raise _too_large() from None
    if not -_LARGEST < value < _LARGEST:
        raise _too_large()
    return value


def _float(text: str) -> float:
    if ":" in text and len(text) > MAX_NUMERAL:  # sexagesimal: slow to convert, and overflows
        raise _too_large("beyond the range of a floating-point number")
    value: float = _CONSTRUCTOR.construct_yaml_float(ScalarNode(TAG + "float", text))
    if math.isfinite(value):
        return value
    if text.lstrip("+-").lower() in (".inf", ".nan"):
        raise UnusableNumber(f"{value} is not a usable number", "write a finite number")
    raise _too_large("beyond the range of a floating-point number")


def _too_large(why: str = f"more than {MAX_DIGITS} digits") -> UnusableNumber:
    return UnusableNumber(
        f"number too large ({why})", "write a smaller number, or quote it to keep it as text"
    )
