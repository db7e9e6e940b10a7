"""Secrets out of any text before it is logged or raised.

API keys, and any request header whose name says key, secret, sign, auth, token or
nonce, are replaced by ``***`` (URL-encoded forms too) in every log line and error.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from urllib.parse import quote

REDACTED = "***"

#: Shorter values are not real credentials, and replacing every occurrence of, say,
#: "s" would garble every message without protecting anything.
MIN_SECRET_LENGTH = 6

#: Header names whose values are credentials or signatures (redacted wherever they appear).
_SENSITIVE_HEADER_WORDS = ("key", "secret", "sign", "auth", "token", "nonce")


def redact(text: str, secrets: Sequence[str]) -> str:
    """``text`` with every secret (and its URL-encoded form) replaced by ``***``."""
    forms = {
        form
        for secret in secrets
        if len(secret) >= MIN_SECRET_LENGTH
        for form in (secret, quote(secret, safe=""))
    }
    # Longest first, so that a secret containing another is replaced whole.
    for form in sorted(forms, key=len, reverse=True):
        text = text.replace(form, REDACTED)
    return text


def header_secrets(headers: Mapping[str, str] | None) -> list[str]:
    """The values of credential-like headers (keys, signatures, nonces) of one attempt."""
    return [
        value
        for name, value in (headers or {}).items()
        if any(word in name.lower() for word in _SENSITIVE_HEADER_WORDS) and len(value) >= 4
    ]
