"""Which vendor requests carried out each change: the apply record's ``request_ids``.

A provider's batch helpers say which changes a unit of work serves (`serving`: one
change, or the chunk of a batch call); its client notes the id of each write call made
within it for every change served (`RequestIds.note`), so that a batch call that serves
several changes is listed by each of them. The apply record takes a change's ids when
the change settles (`RequestIds.take`), which is after the provider's write for its
batch returned: every call made for it is in by then.

A read made within a unit (a verification, a read-modify-write) is not noted: it changes
nothing. Work a unit hands to further threads is not attributed (a context variable is
per thread); no write does so today.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar

from ..changes import Change

_serving: ContextVar[tuple[str, ...]] = ContextVar("serving", default=())


@contextmanager
def serving(changes: Sequence[Change]) -> Iterator[None]:
    """Within the block (on this thread), calls are made for ``changes``."""
    token = _serving.set(tuple(change.key for change in changes))
    try:
        yield
    finally:
        _serving.reset(token)


def served() -> tuple[str, ...]:
    """The keys of the changes the calls made now are for (none outside `serving`)."""
    return _serving.get()


class RequestIds:
    """Request ids of write calls by change key, in the order the calls were made;
    filled from a provider's worker threads, taken once by the apply record."""

    def __init__(self) -> None:
        self._ids: dict[str, list[str]] = {}
        self._lock = threading.Lock()

    def note(self, request_id: str, keys: Sequence[str] | None = None) -> None:
        """A write call with ``request_id`` was made for ``keys`` (default: `served`)."""
        with self._lock:
            for key in served() if keys is None else keys:
                self._ids.setdefault(key, []).append(request_id)

    def take(self, change: Change) -> tuple[str, ...]:
        """The ids noted for ``change``, forgotten once taken."""
        with self._lock:
            return tuple(self._ids.pop(change.key, ()))
