"""Masking of personal data in everything printed (text, JSON, markdown, logs).

A masked value is shown as a short stable hash, so that a reviewer still sees that a
value changed, and which one, without seeing the value. Only text is masked: numbers
and booleans (a profile's ``level`` or ``gender``) are always shown. Saved plan files
keep the real values: they are as sensitive as the manifest.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+")
PHONE = re.compile(r"^\+?[\d][\d ().-]{6,}\d$")
#: A phone number inside text: a '+' and 7 digits or more, or 9 digits or more, so
#: that dates (8 digits) and times are left readable.
PHONE_IN_TEXT = re.compile(r"(?<![\w+])(?:\+\d[\d ().-]{5,}\d|\d[\d ().-]{7,}\d)(?!\w)")
MASK_KEY_VARIABLE = "CHATROSTER_MASK_KEY"
#: Fields whose every text value is personal data: the hosted profile, and what a
#: user keeps about a friend (its alias and ext fields).
PERSONAL_FIELDS = frozenset({"profile", "alias", "ext"})


def fingerprint(value: Any, key: bytes = b"") -> str:
    """A short stable hash of ``value``, keyed so that it cannot be looked up.

    Without a key, a hash of 'SG' or of a known email address is the same everywhere
    and can be reversed from a list of likely values.
    """
    digest = hmac.new(key, repr(value).encode(), hashlib.sha256).hexdigest()
    return "masked:" + digest[:8]


def mask_key(secrets: Mapping[str, Any], environ: Mapping[str, str], stored: bytes | None = None) -> bytes:
    """The key masks are computed with, never empty (a hash keyed by a constant can be
    reversed from a list of likely values). In order: ``CHATROSTER_MASK_KEY`` when set;
    a key derived from the provider's credentials, which readers of a pull request do
    not have; ``stored``, the platform's own random key (the local store's); a random
    key for this process. Each of the first three is stable for one app, so a value
    masks the same way on every run; the last, within one output."""
    chosen = environ.get(MASK_KEY_VARIABLE)
    if chosen:
        return chosen.encode()
    material = "\0".join(f"{k}={v}" for k, v in sorted(secrets.items()) if isinstance(v, str))
    if material:
        return hashlib.sha256(("chatroster-mask\0" + material).encode()).digest()
    return stored or process_mask_key()


_PROCESS_KEY = os.urandom(32)


def process_mask_key() -> bytes:
    """A random key made once per process: masks without a key kept anywhere still
    cannot be looked up, and stay equal within one output, which a reviewer compares."""
    return _PROCESS_KEY


ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def _phone_like(match: re.Match[str]) -> bool:
    text = match.group(0)
    if ISO_DATE.search(text):
        return False
    digits = sum(ch.isdigit() for ch in text)
    return digits >= (7 if text.startswith("+") else 9)


@dataclass(frozen=True)
class Masker:
    """Masks a change's values. ``show`` turns masking off (``--show-personal``)."""

    personal_metadata: frozenset[str] = frozenset()
    show: bool = False
    key: bytes = b""

    def field(self, name: str, value: Any) -> Any:
        """The printable form of user field ``name``'s value."""
        if self.show or value is None or name == "role":
            return value  # a role id names a group of users, never a person
        if name in PERSONAL_FIELDS:
            return value if value == "" else self._all(value)  # "no alias" is shown as such
        if name == "metadata" and isinstance(value, Mapping):
            return self._metadata(value)
        return self.value(value)

    def _metadata(self, value: Mapping[str, Any]) -> dict[str, Any]:
        """Listed keys masked whole at any depth; other values as any value."""
        return {
            key: self._all(item)
            if key in self.personal_metadata
            else self._metadata(item)
            if isinstance(item, Mapping)
            else self.value(item)
            for key, item in value.items()
        }

    def fields(self, values: Mapping[str, Any]) -> dict[str, Any]:
        return {name: self.field(name, value) for name, value in values.items()}

    def value(self, value: Any) -> Any:
        """Masks whatever looks like an email address or a phone number, at any depth;
        only text: a number is never masked, even one as long as a phone number."""
        if self.show:
            return value
        if isinstance(value, str):
            if PHONE.match(value.strip()):
                return self._hash(value)
            if "@" in value:
                value = EMAIL.sub(lambda m: self._hash(m.group(0)), value)
            # The usual case skips the search; map() counts the digits without a Python
            # step per character (every string of every change goes through here).
            if len(value) >= 7 and sum(map(str.isdigit, value)) >= 7:
                value = PHONE_IN_TEXT.sub(
                    lambda m: self._hash(m.group(0)) if _phone_like(m) else m.group(0), value
                )
            return value
        if value is None or isinstance(value, (int, float)):
            return value  # before the slower abstract Mapping test below
        if isinstance(value, Mapping):
            return {key: self.value(item) for key, item in value.items()}
        if isinstance(value, (list, tuple)):
            return [self.value(item) for item in value]
        return value

    def _all(self, value: Any) -> Any:
        """Every text leaf masked (hosted profile fields, listed metadata keys). Numbers
        and booleans are shown: a level or a gender code says nothing about who someone
        is, and a reviewer needs to see what changes."""
        if isinstance(value, str):
            return self._hash(value)  # before the slower abstract Mapping test below
        if value is None or isinstance(value, (bool, int, float)):
            return value
        if isinstance(value, Mapping):
            return {key: self._all(item) for key, item in value.items()}
        if isinstance(value, (list, tuple)):
            return [self._all(item) for item in value]
        return self._hash(value)

    def _hash(self, value: Any) -> str:
        return fingerprint(value, self.key)
