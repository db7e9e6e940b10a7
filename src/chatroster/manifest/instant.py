"""Dates and times as the manifest writes them (``until``, ``tokens_valid_after``)."""

from __future__ import annotations

from datetime import datetime

from ..model import utc

FOREVER = "forever"


def parse_instant(text: str) -> datetime:
    """An aware UTC datetime from text the schema accepted; no zone means UTC.

    Raises ValueError for a date that does not exist (2026-02-30).
    """
    # YAML also allows a lower-case t/z and a space before the zone; ISO does not.
    cleaned = text.upper().replace(" Z", "Z").replace(" +", "+").replace(" -", "-")
    return utc(datetime.fromisoformat(cleaned))
