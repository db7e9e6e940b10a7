"""A quick yes/no "is this valid?" for a JSON Schema, to spare jsonschema the valid users.

jsonschema explains errors well but takes tens of microseconds per user, seconds for
a 100k-user manifest. `compile_schema` turns a schema into a plain Python predicate for
the keywords the manifest schema uses. The predicate may say "no" when unsure (an
unknown keyword, unusual values) — jsonschema then decides and explains — but it never
says "yes" to a value jsonschema would refuse.
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
    checks: list[Predicate] = []
    for keyword, value in schema.items():
        if keyword in ANNOTATIONS or keyword in ("then", "else"):
            continue
        if keyword == "additionalProperties" and "properties" in schema:
            continue  # judged with "properties", in the same pass over the keys
        make = _KEYWORDS.get(keyword)
        if make is None:
            return _never  # a keyword this module does not know: let jsonschema decide
        checks.append(make(value, schema))
    return checks[0] if len(checks) == 1 else _every(checks)


def _every(checks: list[Predicate]) -> Predicate:
    # Plain loops, not all(<generator>): this runs for every value of every user.
    def check(instance: Any) -> bool:
        for test in checks:  # noqa: SIM110
            if not test(instance):
                return False
        return True

    return check


def _always(instance: Any) -> bool:
    return True


def _never(instance: Any) -> bool:
    return False


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


TYPES: dict[str, Predicate] = {
    "string": lambda value: isinstance(value, str),
    # An int is whole however long: float() of a 400-digit one overflows.
    "integer": lambda value: (type(value) is int) or (type(value) is float and value.is_integer()),
    "number": _is_number,
    "boolean": lambda value: isinstance(value, bool),
    "array": lambda value: isinstance(value, list),
    "object": lambda value: isinstance(value, dict),
    "null": lambda value: value is None,
}


def _type(expected: str | list[str], schema: dict[str, Any]) -> Predicate:
    if isinstance(expected, str):
        return TYPES[expected]
    tests = [TYPES[name] for name in expected]
    return lambda instance: any(test(instance) for test in tests)


def _properties(properties: dict[str, Any], schema: dict[str, Any]) -> Predicate:
    """``properties``, and ``additionalProperties`` beside it (one pass over the keys of
    each of 100k users, not two)."""
    if "patternProperties" in schema:
        return _never
    compiled = {name: compile_schema(sub) for name, sub in properties.items()}
    additional = compile_schema(schema.get("additionalProperties", True))

    def check(instance: Any) -> bool:
        if isinstance(instance, dict):
            for key, value in instance.items():
                if not compiled.get(key, additional)(value):
                    return False
        return True

    return check


def _additional_properties(additional: Any, schema: dict[str, Any]) -> Predicate:
    if "patternProperties" in schema:
        return _never
    known = frozenset(schema.get("properties", ()))
    test = compile_schema(additional)

    def check(instance: Any) -> bool:
        if isinstance(instance, dict):
            for key, value in instance.items():
                if key not in known and not test(value):
                    return False
        return True

    return check


def _required(names: list[str], schema: dict[str, Any]) -> Predicate:
    return lambda instance: not isinstance(instance, dict) or all(n in instance for n in names)


def _property_names(names: Any, schema: dict[str, Any]) -> Predicate:
    return _keys(compile_schema(names))


def _keys(test: Predicate) -> Predicate:
    def check(instance: Any) -> bool:
        if isinstance(instance, dict):
            for key in instance:
                if not test(key):
                    return False
        return True

    return check


def _items(items: Any, schema: dict[str, Any]) -> Predicate:
    if "prefixItems" in schema:
        return _never
    test = compile_schema(items)

    def check(instance: Any) -> bool:
        if isinstance(instance, list):
            for item in instance:
                if not test(item):
                    return False
        return True

    return check


def _unique_items(unique: bool, schema: dict[str, Any]) -> Predicate:
    def check(instance: Any) -> bool:
        if not unique or not isinstance(instance, list):
            return True
        # Only lists of text are judged here; jsonschema compares anything else.
        return all(type(item) is str for item in instance) and len(set(instance)) == len(instance)

    return check


def _same(value: Any, expected: Any) -> bool:
    """JSON equality for scalars: true is not 1, but 1 is 1.0."""
    if isinstance(value, bool) or isinstance(expected, bool):
        return type(value) is type(expected) and value == expected
    if isinstance(value, (dict, list)) or isinstance(expected, (dict, list)):
        return False  # not used by the manifest schema; let jsonschema compare
    return bool(value == expected)


def _enum(choices: list[Any], schema: dict[str, Any]) -> Predicate:
    return lambda instance: any(_same(instance, choice) for choice in choices)


def _const(expected: Any, schema: dict[str, Any]) -> Predicate:
    return lambda instance: _same(instance, expected)


@cache
def compile_pattern(pattern: str) -> re.Pattern[str]:
    """A schema's ``pattern`` as JSON Schema (ECMA-262) reads it: a final ``$`` is the end
    of the text. Python's ``$`` also matches before a final line break, which would let
    "alice\\n" pass as a uid."""
    if pattern.endswith("$") and not pattern.endswith("\\$"):
        pattern = pattern[:-1] + r"\Z"
    return re.compile(pattern)


def _pattern(pattern: str, schema: dict[str, Any]) -> Predicate:
    search = compile_pattern(pattern).search
    return lambda instance: not isinstance(instance, str) or search(instance) is not None


def _min_length(limit: int, schema: dict[str, Any]) -> Predicate:
    return lambda instance: not isinstance(instance, str) or len(instance) >= limit


def _max_length(limit: int, schema: dict[str, Any]) -> Predicate:
    return lambda instance: not isinstance(instance, str) or len(instance) <= limit


def _bound(compare: Callable[[Any, Any], bool]) -> Callable[[Any, dict[str, Any]], Predicate]:
    def make(limit: Any, schema: dict[str, Any]) -> Predicate:
        return lambda instance: not _is_number(instance) or compare(instance, limit)

    return make


def _any_of(branches: list[Any], schema: dict[str, Any]) -> Predicate:
    tests = [compile_schema(branch) for branch in branches]
    return lambda instance: any(test(instance) for test in tests)


def _all_of(branches: list[Any], schema: dict[str, Any]) -> Predicate:
    tests = [compile_schema(branch) for branch in branches]
    return lambda instance: all(test(instance) for test in tests)


def _if(condition: Any, schema: dict[str, Any]) -> Predicate:
    test = compile_schema(condition)
    then = compile_schema(schema.get("then", True))
    otherwise = compile_schema(schema.get("else", True))
    return lambda instance: then(instance) if test(instance) else otherwise(instance)


_KEYWORDS: dict[str, Callable[[Any, dict[str, Any]], Predicate]] = {
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
    "minimum": _bound(lambda value, limit: value >= limit),
    "maximum": _bound(lambda value, limit: value <= limit),
    "exclusiveMinimum": _bound(lambda value, limit: value > limit),
    "exclusiveMaximum": _bound(lambda value, limit: value < limit),
    "anyOf": _any_of,
    "allOf": _all_of,
    "if": _if,
}
