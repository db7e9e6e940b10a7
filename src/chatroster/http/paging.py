"""Lists the API pages by number, read several pages at a time.

A list paged by number can be fetched in parallel, since page n does not depend on page
n - 1. When the first page says how many pages there are (CometChat's
``meta.pagination.total_pages``), the rest are fetched a window at a time; when it does
not (Nexconn: a short page is the last), windows of 1, 2, 4 ... pages up to
``concurrency`` are fetched, and reading stops at the first last page: a list of one or
two pages costs no more calls than reading it page by page, a longer one at most
``min(concurrency, pages) - 1`` calls past its end (they come back empty). Items come
out in page order either way.

A cursor list (each page names the next) cannot be read this way and stays sequential.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from .concurrency import run_concurrently

T = TypeVar("T")

WINDOW_PER_WORKER = 4
"""Pages asked for per worker and window when the page count is known: enough to keep
every worker busy, few enough that a large list is not held in memory all at once."""


@dataclass(frozen=True)
class Page(Generic[T]):
    """One page of a list: its items, whether it is the last, and the page count when
    the API gives one."""

    items: Sequence[T]
    last: bool
    pages: int | None = None


def numbered_pages(fetch: Callable[[int], Page[T]], concurrency: int) -> Iterator[T]:
    """Every item of the list ``fetch(1)``, ``fetch(2)``, ... describes, in page order,
    with up to ``concurrency`` pages in flight. Any failed page fails the read."""
    first = fetch(1)
    yield from first.items
    if first.last:
        return
    width = max(1, concurrency)
    growing = 1  # the window of a list of unknown length: 1, 2, 4 ... pages
    page = 2
    while True:
        if first.pages is not None:
            end = min(first.pages, page + width * WINDOW_PER_WORKER - 1)
            if end < page:  # the first page said there is no page after it
                return
        else:
            end = page + growing - 1
            growing = min(width, growing * 2)
        window = list(range(page, end + 1))
        for _, result in run_concurrently(fetch, window, min(width, len(window))):
            if isinstance(result, BaseException):
                raise result
            yield from result.items
            if result.last:
                return
        page = end + 1
