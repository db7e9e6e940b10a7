"""Bulk work: reading, checking and planning 100k users in one go.

Such work builds millions of small containers (parsed YAML, `User` values, changes)
that hold no reference cycles. Python's cyclic garbage collector is triggered by the
number of containers created, and each full collection walks every live one, so it
walks the growing heap again and again: a third of `validate` on 100k users, 4 s of a
12 s plan. `paused_collection` switches it off for such a stretch. Reference counting
still frees everything at once; only cycles wait until the stretch ends.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def paused_collection() -> Iterator[None]:
    """No cyclic garbage collection inside the block (nesting is fine)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
