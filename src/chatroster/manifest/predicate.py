"""A quick yes/no "is this valid?" for a JSON Schema, to spare jsonschema the valid users.

jsonschema explains errors well but takes tens of microseconds per user, seconds for
a 100k-user manifest. `compile_schema` turns a schema into a plain Python predicate for
the keywords the manifest schema uses. The predicate may say "no" when unsure (an
unknown keyword, unusual values) — jsonschema then decides and explains — but it never
says "yes" to a value jsonschema would refuse.

The predicate is generated Python source, one function per schema and one per branch
of an ``anyOf`` or ``if``: every other keyword becomes a line or a loop inline, so a
user of a dozen fields costs one call instead of dozens (a 100k-user manifest is
checked in a third of the time of a tree of closures). Only the schema shapes the
code: names from the schema are written as literals (``repr``), and the data is never
part of it.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import cache
from typing import Any

Predicate = Callable[[Any], bool]

ANNOTATIONS = frozenset(
    {
        "$schema",
        "$id",
        "$defs",
        "$comment",
        "title",
        "description",
        "default",
        "examples",
        "patternErrorMessage",
        "errorMessage",
    }
)


def compile_schema(schema: Any) -> Predicate:
    """A predicate that is true only for values ``schema`` accepts."""
    if schema is True or schema == {}:
        return _always
    if not isinstance(schema, dict):
        return _never
    code = _Code()
    name = code.function(schema)
    namespace: dict[str, Any] = dict(code.constants)
    try:
        exec("\n".join(code.lines), namespace)  # noqa: S102 - source made above from the schema alone
    except (SyntaxError, RecursionError):
        return _never  # nested deeper than Python compiles (about 20 loops): jsonschema decides
    predicate: Predicate = namespace[name]
    return predicate


def _always(instance: Any) -> bool:
    return True


def _never(instance: Any) -> bool:
    return False


def _same(value: Any, expected: Any) -> bool:
    """JSON equality for scalars: true is not 1, but 1 is 1.0."""
    if isinstance(value, bool) or isinstance(expected, bool):
        return type(value) is type(expected) and value == expected
    if isinstance(value, (dict, list)) or isinstance(expected, (dict, list)):
        return False  # not used by the manifest schema; let jsonschema compare
    return bool(value == expected)


@cache
def compile_pattern(pattern: str) -> re.Pattern[str]:
    """A schema's ``pattern`` as JSON Schema (ECMA-262) reads it: a final ``$`` is the end
    of the text. Python's ``$`` also matches before a final line break, which would let
    "alice\\n" pass as a uid."""
    if pattern.endswith("$") and not pattern.endswith("\\$"):
        pattern = pattern[:-1] + r"\Z"
    return re.compile(pattern)


NUMBER = "(isinstance({v}, (int, float)) and not isinstance({v}, bool))"

TYPES = {
    "string": "isinstance({v}, str)",
    # An int is whole however long: float() of a 400-digit one overflows.
    "integer": "(type({v}) is int or (type({v}) is float and {v}.is_integer()))",
    "number": NUMBER,
    "boolean": "isinstance({v}, bool)",
    "array": "isinstance({v}, list)",
    "object": "isinstance({v}, dict)",
    "null": "{v} is None",
}
"""Each JSON type as a test of a variable (bool is not an integer)."""

BOUNDS = {"minimum": ">=", "maximum": "<=", "exclusiveMinimum": ">", "exclusiveMaximum": "<"}


class _Code:
    """The source of the predicate functions, and the constants they use."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.constants: dict[str, Any] = {"_same": _same}
        self._count = 0

    def fresh(self, prefix: str) -> str:
        self._count += 1
        return f"{prefix}{self._count}"

    def constant(self, value: Any) -> str:
        name = self.fresh("c")
        self.constants[name] = value
        return name

    def function(self, schema: Any) -> str:
        """A function for ``schema``; returns its name."""
        if schema is True or schema == {}:
            return self.constant(_always)
        if not isinstance(schema, dict):
            return self.constant(_never)
        body: list[str] = []
        self.node(schema, "v", body, 1)
        name = self.fresh("check")
        self.lines += [f"def {name}(v):", *body, "    return True", ""]
        return name

    def node(self, schema: Any, v: str, out: list[str], depth: int) -> None:
        """Lines (at ``depth``) that return False when the value in ``v`` fails ``schema``."""
        pad = "    " * depth
        if schema is True or schema == {}:
            return
        if not isinstance(schema, dict):
            out.append(f"{pad}return False")
            return
        for keyword, value in schema.items():
            if keyword in ANNOTATIONS or keyword in ("then", "else"):
                continue
            if keyword == "additionalProperties" and "properties" in schema:
                continue  # judged with "properties", in the same pass over the keys
            emit = _KEYWORDS.get(keyword)
            if emit is None:
                out.append(f"{pad}return False")  # unknown: let jsonschema decide
                return
            emit(self, value, schema, v, out, depth)


Emit = Callable[[_Code, Any, dict[str, Any], str, list[str], int], None]


def _type(code: _Code, expected: Any, schema: dict[str, Any], v: str, out: list[str], depth: int) -> None:
    names = [expected] if isinstance(expected, str) else list(expected)
    if any(name not in TYPES for name in names):
        out.append("    " * depth + "return False")
        return
    test = " or ".join(TYPES[name].format(v=v) for name in names)
    out.append("    " * depth + f"if not ({test}): return False")


def _properties(
    code: _Code, properties: Any, schema: dict[str, Any], v: str, out: list[str], depth: int
) -> None:
    """``properties``, and ``additionalProperties`` beside it: one pass over the keys."""
    pad = "    " * depth
    if "patternProperties" in schema:
        out.append(f"{pad}return False")
        return
    key, item = code.fresh("k"), code.fresh("x")
    out.append(f"{pad}if isinstance({v}, dict):")
    out.append(f"{pad}    for {key}, {item} in {v}.items():")
    branch = "if"
    for name, sub in properties.items():
        out.append(f"{pad}        {branch} {key} == {name!r}:")
        out.append(f"{pad}            pass")
        code.node(sub, item, out, depth + 3)
        branch = "elif"
    additional = schema.get("additionalProperties", True)
    if properties:
        out.append(f"{pad}        else:")
        out.append(f"{pad}            pass")
        code.node(additional, item, out, depth + 3)
    else:
        out.append(f"{pad}        pass")
        code.node(additional, item, out, depth + 2)


def _additional_properties(
    code: _Code, additional: Any, schema: dict[str, Any], v: str, out: list[str], depth: int
) -> None:
    # Only reached without "properties" beside it (see `_Code.node`).
    _properties(code, {}, schema, v, out, depth)


def _required(code: _Code, names: Any, schema: dict[str, Any], v: str, out: list[str], depth: int) -> None:
    if names:
        present = " and ".join(f"{name!r} in {v}" for name in names)
        out.append("    " * depth + f"if isinstance({v}, dict) and not ({present}): return False")


def _property_names(
    code: _Code, names: Any, schema: dict[str, Any], v: str, out: list[str], depth: int
) -> None:
    pad = "    " * depth
    key = code.fresh("k")
    out += [f"{pad}if isinstance({v}, dict):", f"{pad}    for {key} in {v}:", f"{pad}        pass"]
    code.node(names, key, out, depth + 2)


def _items(code: _Code, items: Any, schema: dict[str, Any], v: str, out: list[str], depth: int) -> None:
    pad = "    " * depth
    if "prefixItems" in schema:
        out.append(f"{pad}return False")
        return
    item = code.fresh("x")
    out += [f"{pad}if isinstance({v}, list):", f"{pad}    for {item} in {v}:", f"{pad}        pass"]
    code.node(items, item, out, depth + 2)


def _unique_items(
    code: _Code, unique: Any, schema: dict[str, Any], v: str, out: list[str], depth: int
) -> None:
    if unique:
        # Only lists of text are judged here; jsonschema compares anything else.
        item = code.fresh("x")
        test = f"all(type({item}) is str for {item} in {v}) and len(set({v})) == len({v})"
        out.append("    " * depth + f"if isinstance({v}, list) and not ({test}): return False")


def _enum(code: _Code, choices: Any, schema: dict[str, Any], v: str, out: list[str], depth: int) -> None:
    item = code.fresh("c")
    out.append(
        "    " * depth + f"if not any(_same({v}, {item}) for {item} in {code.constant(list(choices))}):"
    )
    out.append("    " * depth + "    return False")


def _const(code: _Code, expected: Any, schema: dict[str, Any], v: str, out: list[str], depth: int) -> None:
    out.append("    " * depth + f"if not _same({v}, {code.constant(expected)}): return False")


def _pattern(code: _Code, pattern: Any, schema: dict[str, Any], v: str, out: list[str], depth: int) -> None:
    search = code.constant(compile_pattern(pattern).search)
    out.append("    " * depth + f"if isinstance({v}, str) and {search}({v}) is None: return False")


def _min_length(code: _Code, limit: Any, schema: dict[str, Any], v: str, out: list[str], depth: int) -> None:
    out.append(
        "    " * depth + f"if isinstance({v}, str) and len({v}) < {code.constant(limit)}: return False"
    )


def _max_length(code: _Code, limit: Any, schema: dict[str, Any], v: str, out: list[str], depth: int) -> None:
    out.append(
        "    " * depth + f"if isinstance({v}, str) and len({v}) > {code.constant(limit)}: return False"
    )


def _bound(operator: str) -> Emit:
    def emit(code: _Code, limit: Any, schema: dict[str, Any], v: str, out: list[str], depth: int) -> None:
        number = NUMBER.format(v=v)
        out.append(
            "    " * depth + f"if {number} and not ({v} {operator} {code.constant(limit)}): return False"
        )

    return emit


def _any_of(code: _Code, branches: Any, schema: dict[str, Any], v: str, out: list[str], depth: int) -> None:
    tests = " or ".join(f"{code.function(branch)}({v})" for branch in branches) or "False"
    out.append("    " * depth + f"if not ({tests}): return False")


def _all_of(code: _Code, branches: Any, schema: dict[str, Any], v: str, out: list[str], depth: int) -> None:
    for branch in branches:
        code.node(branch, v, out, depth)


def _if(code: _Code, condition: Any, schema: dict[str, Any], v: str, out: list[str], depth: int) -> None:
    pad = "    " * depth
    out += [f"{pad}if {code.function(condition)}({v}):", f"{pad}    pass"]
    code.node(schema.get("then", True), v, out, depth + 1)
    out += [f"{pad}else:", f"{pad}    pass"]
    code.node(schema.get("else", True), v, out, depth + 1)
    if not _exact(condition):
        # A "no" from an unsure condition may be jsonschema's "yes": then "then" applies.
        code.node(schema.get("then", True), v, out, depth + 1)


EXACT = frozenset(
    {"type", "properties", "additionalProperties", "required", "propertyNames", "items", "pattern"}
    | {"minLength", "maxLength", *BOUNDS, "anyOf", "allOf", "if", "then", "else"}
)
"""Keywords whose test here is never unsure (given exact subschemas): an ``if`` whose
condition uses only these may trust its "no". ``enum`` and ``const`` are exact for
scalars; ``uniqueItems`` is not (lists of anything but text go to jsonschema)."""


def _exact(schema: Any) -> bool:
    """Whether the predicate of ``schema`` says exactly what jsonschema says."""
    if isinstance(schema, bool):
        return True
    if not isinstance(schema, dict) or "patternProperties" in schema or "prefixItems" in schema:
        return False
    subschemas: list[Any] = []
    for keyword, value in schema.items():
        if keyword in ANNOTATIONS:
            continue
        if keyword in ("enum", "const"):
            choices = value if keyword == "enum" else [value]
            if not isinstance(choices, list) or any(isinstance(c, (dict, list)) for c in choices):
                return False
            continue
        if keyword not in EXACT:
            return False
        if keyword == "type":
            if not all(name in TYPES for name in ([value] if isinstance(value, str) else value)):
                return False
        elif keyword == "properties":
            subschemas += value.values()
        elif keyword in ("anyOf", "allOf"):
            subschemas += value
        elif keyword in ("additionalProperties", "propertyNames", "items", "if", "then", "else"):
            subschemas.append(value)
    return all(_exact(sub) for sub in subschemas)


_KEYWORDS: dict[str, Emit] = {
    "type": _type,
    "properties": _properties,
    "additionalProperties": _additional_properties,
    "required": _required,
    "propertyNames": _property_names,
    "items": _items,
    "uniqueItems": _unique_items,
    "enum": _enum,
    "const": _const,
    "pattern": _pattern,
    "minLength": _min_length,
    "maxLength": _max_length,
    **{keyword: _bound(operator) for keyword, operator in BOUNDS.items()},
    "anyOf": _any_of,
    "allOf": _all_of,
    "if": _if,
}
