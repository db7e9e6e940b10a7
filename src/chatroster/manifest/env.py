"""``${NAME}`` and ``${NAME:-default}`` in string values, replaced after parsing.

Replacing in the parsed values, not in the file's text, means a variable's value is
always just text: it cannot add keys or change the YAML around it. As in the shell,
the default also applies when the variable is set but empty. ``$${`` is a literal
``${``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from .finding import DocPath, Finding

REFERENCE = re.compile(r"\$\$\{|\$\{(?:([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\})?")


def substitute(data: Any, env: Mapping[str, str]) -> list[Finding]:
    """Replace the references in every string value of ``data``, in place.

    A value with a reference that cannot be resolved keeps its text; each such
    reference is a finding at the value.
    """
    findings: list[Finding] = []
    _visit(data, (), env, findings)
    return findings


def _visit(node: Any, path: DocPath, env: Mapping[str, str], findings: list[Finding]) -> None:
    items = node.items() if isinstance(node, dict) else enumerate(node)
    for key, value in items:
        if isinstance(value, str):
            if "$" in value:
                node[key] = _expand(value, (*path, key), env, findings)
        elif isinstance(value, (dict, list)):
            _visit(value, (*path, key), env, findings)


def _expand(text: str, path: DocPath, env: Mapping[str, str], findings: list[Finding]) -> str:
    def replace(match: re.Match[str]) -> str:
        whole, name, default = match.group(0), match.group(1), match.group(2)
        if whole == "$${":
            return "${"
        if name is None:
            findings.append(_malformed(path))
            return whole
        value = env.get(name, "")
        if value:
            return value
        if default is not None:
            return default
        if name not in env:
            findings.append(_undefined(path, name))
            return whole
        return value

    return REFERENCE.sub(replace, text)


def _undefined(path: DocPath, name: str) -> Finding:
    return Finding(
        path,
        f"the environment variable {name} is not set",
        f"set {name}, or give a default: ${{{name}:-value}}",
    )


def _malformed(path: DocPath) -> Finding:
    return Finding(
        path,
        "'${' does not start a valid ${NAME} or ${NAME:-default} reference",
        "write $${ for a literal '${'",
    )
