"""The JSON Schema of the manifest, and its errors in words a user understands.

`schemas/manifest.schema.json` is the one description of the format: editors use it
for completion and hover help, and `check` validates with it. Messages use the
schema's own ``patternErrorMessage`` and ``errorMessage`` annotations (which editors
show too) where a bare pattern would say little.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Iterable, Iterator, Mapping
from functools import cache
from importlib.resources import files
from typing import TYPE_CHECKING, Any, cast

from ..model import ProviderConfig
from .finding import DocPath, Finding, shown
from .predicate import Predicate, compile_pattern, compile_schema

if TYPE_CHECKING:
    from jsonschema import Draft202012Validator
    from jsonschema.exceptions import ValidationError

SCHEMA_FILE = "manifest.schema.json"

SECTIONS = ("users", "bans")
"""The sections with one entry per uid, where nearly all the data is."""

TYPE_NAMES = {
    "string": "text",
    "integer": "a whole number",
    "number": "a number",
    "boolean": "true or false",
    "array": "a list",
    "object": "a mapping",
    "null": "empty",
}

WRONG_KIND = frozenset({"type", "const", "enum", "required"})
"""Errors that say a branch of an ``anyOf`` was the wrong shape, not a near miss."""


def load_schema() -> dict[str, Any]:
    """The manifest's JSON Schema, as shipped in the package."""
    text = files("chatroster").joinpath("schemas", SCHEMA_FILE).read_text(encoding="utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema


@cache
def inlined_schema() -> dict[str, Any]:
    # References are inlined once here: resolving "$ref" for each of 100k users
    # costs jsonschema more than a third of its time.
    schema = load_schema()
    inlined: dict[str, Any] = inline_refs(schema, schema["$defs"])
    return inlined


@cache
def validator() -> Draft202012Validator:
    """jsonschema's validator, with JSON Schema's ``pattern``. Imported only here: a
    manifest that the quick tests pass never needs it (a tenth of a second saved on
    every command)."""
    from jsonschema import Draft202012Validator, validators
    from jsonschema.exceptions import ValidationError

    def pattern(
        validator: Draft202012Validator, pattern: str, instance: Any, schema: dict[str, Any]
    ) -> Iterator[ValidationError]:
        """``pattern`` with the final ``$`` of JSON Schema (see `compile_pattern`)."""
        if isinstance(instance, str) and not compile_pattern(pattern).search(instance):
            yield ValidationError(f"{instance!r} does not match {pattern!r}")

    extended = cast(
        type[Draft202012Validator],
        validators.extend(Draft202012Validator, {"pattern": pattern}),  # type: ignore[no-untyped-call]
    )
    return extended(inlined_schema())


@cache
def whole_test() -> Predicate:
    """A quick test of the whole manifest (used once its users and bans are judged)."""
    return compile_schema(inlined_schema())


@cache
def entry_tests() -> dict[str, tuple[Predicate, Predicate]]:
    """For ``users`` and ``bans``: quick tests of an entry's key and of its value."""
    properties = inlined_schema()["properties"]
    return {
        section: (
            compile_schema(properties[section]["propertyNames"]),
            compile_schema(properties[section]["additionalProperties"]),
        )
        for section in SECTIONS
    }


def check(data: Any) -> list[Finding]:
    """Every way ``data`` breaks the schema, one finding each."""
    suspects = _suspects(data)
    if whole_test()(suspects):
        return []
    findings: dict[tuple[DocPath, str], Finding] = {}
    for error in validator().iter_errors(suspects):
        for finding in _explain(error):
            findings.setdefault((finding.path, finding.message), finding)
    return list(findings.values())


def _suspects(data: Any) -> Any:
    """``data`` without the users and bans that certainly pass: jsonschema judges the rest.

    Only entries are left out, never their sections, so every path stays the same.
    """
    if not isinstance(data, dict):
        return data
    suspects = dict(data)
    for section, (key_passes, entry_passes) in entry_tests().items():
        entries = data.get(section)
        if isinstance(entries, dict):
            suspects[section] = {
                key: entry for key, entry in entries.items() if not (key_passes(key) and entry_passes(entry))
            }
    return suspects


def inline_refs(node: Any, definitions: dict[str, Any]) -> Any:
    """``node`` with every ``{"$ref": "#/$defs/x", ...}`` replaced by ``x`` and the rest.

    The keywords beside a ``$ref`` in this schema are annotations (description,
    default), so merging them over the definition keeps the meaning.
    """
    if isinstance(node, list):
        return [inline_refs(item, definitions) for item in node]
    if not isinstance(node, dict):
        return node
    inlined = {key: inline_refs(value, definitions) for key, value in node.items()}
    reference = inlined.pop("$ref", None)
    if reference is None:
        return inlined
    name = reference.removeprefix("#/$defs/")
    return {**inline_refs(definitions[name], definitions), **inlined}


def _explain(error: ValidationError) -> Iterable[Finding]:
    path = tuple(error.absolute_path)
    if "propertyNames" in error.relative_schema_path:
        # jsonschema reports a bad key at its mapping; point at the key itself.
        key = str(_instance(error))
        message = f"the key '{shown(key)}' is not valid: {_pattern_text(error)}"
        return [Finding((*path, key), message, at="key")]
    explain = _EXPLAINERS.get(str(error.validator), _fallback)
    return explain(error, path)


def _unknown_fields(error: ValidationError, path: DocPath) -> list[Finding]:
    known = list(_schema(error).get("properties", {}))
    findings = []
    for key in _instance(error):
        if key in known:
            continue
        close = difflib.get_close_matches(key, known, n=1)
        guess = f" (did you mean '{close[0]}'?)" if close else ""
        hint = f"known fields here: {', '.join(known)}" if known else ""
        message = f"unknown field '{shown(key)}'{guess}"
        findings.append(Finding((*path, key), message, hint, at="key"))
    return findings


def _missing(error: ValidationError, path: DocPath) -> list[Finding]:
    properties = _schema(error).get("properties", {})
    given = _instance(error)
    unknown = [key for key in given if key not in properties]
    findings = []
    for name in _expected(error):
        # A misspelt field is reported once, as unknown with a suggestion.
        if name not in given and not difflib.get_close_matches(name, unknown, n=1):
            hint = properties.get(name, {}).get("description", "")
            findings.append(Finding((*path, name), f"missing required field '{name}'", hint, "key"))
    return findings


def _wrong_type(error: ValidationError, path: DocPath) -> list[Finding]:
    expected = _expected(error)
    names = [expected] if isinstance(expected, str) else list(expected)
    wanted = " or ".join(TYPE_NAMES.get(name, name) for name in names)
    instance = _instance(error)
    message = f"must be {wanted}, not {_kind_of(instance)}"
    return [Finding(path, message, _type_hint(instance, names))]


def _type_hint(instance: Any, expected: list[str]) -> str:
    if instance is None:
        return "the value is empty: give one, or remove the key"
    if "string" in expected and isinstance(instance, bool):
        return "quote it: YAML reads yes, no, on, off, true and false as booleans"
    if "string" in expected and isinstance(instance, (int, float)):
        return "quote it to keep it as text"
    if {"number", "integer"} & set(expected) and isinstance(instance, str):
        return "write the number without quotes (a ${VAR} reference always gives text)"
    return ""


def _not_const(error: ValidationError, path: DocPath) -> list[Finding]:
    if path == ("version",):
        return [
            Finding(
                path,
                f"unsupported version {_shown(_instance(error))}",
                "this chatroster reads version 1",
            )
        ]
    return [Finding(path, f"must be {_shown(_expected(error))}")]


def _not_in_enum(error: ValidationError, path: DocPath) -> list[Finding]:
    choices = [str(choice) for choice in _expected(error)]
    instance = _instance(error)
    close = difflib.get_close_matches(str(instance), choices, n=1)
    guess = f" (did you mean '{close[0]}'?)" if close and isinstance(instance, str) else ""
    message = f"{_shown(instance)} is not one of: {', '.join(choices)}{guess}"
    return [Finding(path, message)]


def _no_match(error: ValidationError, path: DocPath) -> list[Finding]:
    value = "the value" if _is_secret(path) else _shown(_instance(error))
    return [Finding(path, f"{value} is not valid: {_pattern_text(error)}")]


def _repeated(error: ValidationError, path: DocPath) -> list[Finding]:
    seen: list[Any] = []
    for index, item in enumerate(_instance(error)):
        if item in seen:
            return [
                Finding(
                    (*path, index),
                    f"{_shown(item)} is listed more than once",
                    "give each item once",
                )
            ]
        seen.append(item)
    return [Finding(path, "has an item more than once")]


def _too_short(error: ValidationError, path: DocPath) -> list[Finding]:
    return [Finding(path, "must not be empty")]


def _too_long(error: ValidationError, path: DocPath) -> list[Finding]:
    limit = _expected(error)
    instance = _instance(error)
    return [
        Finding(
            path, f"{len(instance)} characters, over the limit of {limit}", f"shorten it to at most {limit}"
        )
    ]


def _out_of_range(error: ValidationError, path: DocPath) -> list[Finding]:
    words = {
        "minimum": "at least",
        "maximum": "at most",
        "exclusiveMinimum": "more than",
        "exclusiveMaximum": "less than",
    }
    return [Finding(path, f"must be {words[str(error.validator)]} {_expected(error)}")]


def _no_branch(error: ValidationError, path: DocPath) -> list[Finding]:
    """An ``anyOf``: explain the branch that nearly fitted, else the accepted forms."""
    near = [e for e in error.context or () if e.validator not in WRONG_KIND or e.path]
    summary = _schema(error).get("errorMessage")
    if near and not (summary and all(e.validator == "pattern" and not e.path for e in near)):
        return [finding for e in near for finding in _explain(e)]
    return [Finding(path, summary or f"{_shown(_instance(error))} is not valid here")]


def _fallback(error: ValidationError, path: DocPath) -> list[Finding]:
    if _is_secret(path):
        return [Finding(path, "is not valid here")]
    return [Finding(path, error.message)]


_EXPLAINERS = {
    "additionalProperties": _unknown_fields,
    "required": _missing,
    "type": _wrong_type,
    "const": _not_const,
    "enum": _not_in_enum,
    "pattern": _no_match,
    "uniqueItems": _repeated,
    "minLength": _too_short,
    "maxLength": _too_long,
    "minimum": _out_of_range,
    "maximum": _out_of_range,
    "exclusiveMinimum": _out_of_range,
    "exclusiveMaximum": _out_of_range,
    "anyOf": _no_branch,
    "oneOf": _no_branch,
}


def _instance(error: ValidationError) -> Any:
    """The value that failed (jsonschema types it as possibly unset; here it never is)."""
    return error.instance


def _expected(error: ValidationError) -> Any:
    """The keyword's value in the schema: the type, the choices, the pattern."""
    return error.validator_value


def _schema(error: ValidationError) -> dict[str, Any]:
    return dict(error.schema) if isinstance(error.schema, Mapping) else {}


def _pattern_text(error: ValidationError) -> str:
    return str(_schema(error).get("patternErrorMessage") or f"it must match {_expected(error)}")


def _kind_of(value: Any) -> str:
    if value is None:
        return "empty"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "text"
    return "a list" if isinstance(value, list) else "a mapping"


def _shown(value: Any) -> str:
    if isinstance(value, str):
        return f"'{shown(value)}'"
    return shown(json.dumps(value))


def _is_secret(path: DocPath) -> bool:
    return len(path) == 2 and path[0] == "provider" and path[1] in ProviderConfig.SECRET_KEYS
