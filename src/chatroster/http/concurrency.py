"""A bounded thread pool for the calls of a read or an apply, results in input order.

`finished_items` lets apply's progress hear of each item as it finishes, from whichever
provider ran it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")

ItemListener = Callable[[object], None]
_item_listeners: list[ItemListener] = []
_listeners_lock = threading.Lock()


@contextmanager
def finished_items(listener: ItemListener) -> Iterator[None]:
    """Within the block, ``listener`` is called (from the worker thread) with each item
    `run_concurrently` finishes, whoever called it. Apply's progress counts the changes
    a provider writes one by one this way, between the batches it hands over."""
    with _listeners_lock:
        _item_listeners.append(listener)
    try:
        yield
    finally:
        with _listeners_lock:
            _item_listeners.remove(listener)


def _finished(item: object) -> None:
    for listener in tuple(_item_listeners):
        listener(item)


def run_concurrently(
    func: Callable[[T], R], items: Sequence[T], concurrency: int
) -> list[tuple[T, R | BaseException]]:
    """``func`` over ``items`` on at most ``concurrency`` threads; each item paired with
    its result or the exception it raised, in the order of ``items``."""

    def guarded(item: T) -> R | BaseException:
        try:
            return func(item)
        except Exception as exc:  # noqa: BLE001 - reported per item to the caller
            return exc
        finally:
            if _item_listeners:
                _finished(item)

    if concurrency <= 1 or len(items) <= 1:
        return [(item, guarded(item)) for item in items]
    with ThreadPoolExecutor(max_workers=min(concurrency, len(items))) as pool:
        return list(zip(items, pool.map(guarded, items), strict=True))
