"""Lists paged by number, read several pages at a time (`chatroster.http.paging`).

The pure part runs against a list held in memory, with a fetch that records which pages
were asked for; that pages of one window are really in flight together is shown with a
barrier that only opens when all of them have arrived (no clock involved: a sequential
read would break it). The providers' use of it runs against the emulator, whose
counters say how many calls each listing cost.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable

import pytest

from chatroster.http.paging import WINDOW_PER_WORKER, Page, numbered_pages

PER_PAGE = 10


def listing(size: int, *, counted: bool) -> tuple[Callable[[int], Page[int]], list[int]]:
    """A fetch over the items 0..size-1, PER_PAGE a page, and the pages it was asked."""
    asked: list[int] = []
    lock = threading.Lock()
    pages = max(1, math.ceil(size / PER_PAGE))

    def fetch(page: int) -> Page[int]:
        with lock:
            asked.append(page)
        items = list(range((page - 1) * PER_PAGE, min(size, page * PER_PAGE)))
        if counted:
            return Page(items, last=page >= pages, pages=pages)
        return Page(items, last=len(items) < PER_PAGE)

    return fetch, asked


@pytest.mark.parametrize("counted", [True, False], ids=["page-count-given", "short-page-ends"])
@pytest.mark.parametrize("size", [0, 1, 9, 10, 11, 99, 100, 101, 1234])
@pytest.mark.parametrize("concurrency", [1, 3, 8])
def test_every_item_comes_once_in_order(counted: bool, size: int, concurrency: int) -> None:
    fetch, asked = listing(size, counted=counted)
    assert list(numbered_pages(fetch, concurrency)) == list(range(size))
    needed = size // PER_PAGE + 1 if not counted else max(1, math.ceil(size / PER_PAGE))
    assert sorted(set(asked)) == sorted(asked), "a page was fetched twice"
    assert set(range(1, needed + 1)) <= set(asked)
    if counted or concurrency == 1:
        assert len(asked) == needed  # nothing is guessed when the count is known
    else:
        # Past the end only within the last window, which is never more than the
        # pages read so far nor the concurrency.
        assert len(asked) - needed <= min(concurrency, needed) - 1


@pytest.mark.parametrize("pages", [1, 2])
def test_a_short_list_of_unknown_length_costs_what_a_sequential_read_costs(pages: int) -> None:
    fetch, asked = listing(pages * PER_PAGE - 1, counted=False)
    list(numbered_pages(fetch, 8))
    assert asked == list(range(1, pages + 1))


def test_pages_of_a_window_are_in_flight_together() -> None:
    concurrency, size = 4, 4 * WINDOW_PER_WORKER * PER_PAGE + 1  # page 1, then a full window
    barrier = threading.Barrier(concurrency, timeout=30)
    inner, _ = listing(size, counted=True)

    def fetch(page: int) -> Page[int]:
        if 2 <= page <= 1 + concurrency:
            barrier.wait()  # opens only once `concurrency` pages wait here at once
        return inner(page)

    assert list(numbered_pages(fetch, concurrency)) == list(range(size))
    assert not barrier.broken


def test_a_failed_page_fails_the_read() -> None:
    inner, _ = listing(100, counted=True)

    def fetch(page: int) -> Page[int]:
        if page == 5:
            raise RuntimeError("page 5 failed")
        return inner(page)

    with pytest.raises(RuntimeError, match="page 5 failed"):
        list(numbered_pages(fetch, 3))


def test_a_list_that_shrank_while_read_stops_at_its_short_page() -> None:
    # The first page said ten pages; by the time page 4 is read, the list has shrunk.
    def fetch(page: int) -> Page[int]:
        items = (
            [] if page > 4 else list(range((page - 1) * PER_PAGE, page * PER_PAGE - (5 if page == 4 else 0)))
        )
        return Page(items, last=len(items) < PER_PAGE or page >= 10, pages=10)

    assert list(numbered_pages(fetch, 8)) == list(range(35))
