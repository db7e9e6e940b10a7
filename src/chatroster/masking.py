"""Masking of personal data in everything printed (text, JSON, markdown, logs).

A masked value is shown as a short stable hash, so that a reviewer still sees that a
value changed, and which one, without seeing the value. Saved plan files keep the
real values: they are as sensitive as the manifest.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+")
PHONE = re.compile(r"^\+?[\d][\d ().-]{6,}\d$")


def fingerprint(value: Any) -> str:
    return "masked:" + hashlib.sha256(repr(value).encode()).hexdigest()[:8]


@dataclass(frozen=True)
class Masker:
    """Masks a change's values. ``show`` turns masking off (``--show-personal``)."""

    personal_metadata: frozenset[str] = frozenset()
    show: bool = False

    def field(self, name: str, value: Any) -> Any:
        """The printable form of user field ``name``'s value."""
        if self.show or value is None:
            return value
        if name == "profile":
            return self._all(value)
        if name == "metadata" and isinstance(value, Mapping):
            return {
                key: self._all(item) if key in self.personal_metadata else self.value(item)
                for key, item in value.items()
            }
        return self.value(value)

    def fields(self, values: Mapping[str, Any]) -> dict[str, Any]:
        return {name: self.field(name, value) for name, value in values.items()}

    def value(self, value: Any) -> Any:
        """Masks whatever looks like an email address or a phone number, at any depth."""
        if self.show:
            return value
        if isinstance(value, str):
            if PHONE.match(value.strip()):
                return fingerprint(value)
            if "@" not in value:
                return value  # no email address either: the usual case, without a search
            return EMAIL.sub(lambda m: fingerprint(m.group(0)), value)
        if value is None or isinstance(value, (int, float)):
            return value  # before the slower abstract Mapping test below
        if isinstance(value, Mapping):
            return {key: self.value(item) for key, item in value.items()}
        if isinstance(value, (list, tuple)):
            return [self.value(item) for item in value]
        return value

    def _all(self, value: Any) -> Any:
        """Every leaf masked (hosted profile fields, listed metadata keys)."""
        if isinstance(value, (str, int, float)):
            return fingerprint(value)  # before the slower abstract Mapping test below
        if isinstance(value, Mapping):
            return {key: self._all(item) for key, item in value.items()}
        if isinstance(value, (list, tuple)):
            return [self._all(item) for item in value]
        return None if value is None else fingerprint(value)
