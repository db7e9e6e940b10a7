"""Bulk work: reading, checking and planning 100k users in one go.

Such work builds millions of small containers (parsed YAML, `User` values, changes)
that hold no reference cycles. Python's cyclic garbage collector is triggered by the
number of containers created, and each full collection walks every live one, so it
walks the growing heap again and again: a third of `validate` on 100k users, 4 s of a
12 s plan. `paused_collection` switches it off for such a stretch. Reference counting
still frees everything at once; only cycles wait until the stretch ends.

At the end of a large stretch, what it left alive is moved out of the collector's
sight (`gc.freeze`) before collection is switched back on. Otherwise the very next
allocation starts a collection of the youngest generation, which then holds every
container made during the stretch: half a second per stretch for 100k users, a tenth
of a no-change plan. Those containers hold no cycles (the premise of the pause), and
when one is no longer used, reference counting still frees it; a cycle among them,
should there be one, stays until the process ends.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

LARGE = 100_000
"""Containers made during a stretch from which its survivors are frozen. A small
stretch (a test's manifest) leaves them to the collector as usual."""


@contextmanager
def paused_collection() -> Iterator[None]:
    """No cyclic garbage collection inside the block (nesting is fine)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            if gc.get_count()[0] >= LARGE:
                gc.freeze()
            gc.enable()
