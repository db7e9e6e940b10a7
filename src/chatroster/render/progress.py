"""Progress and log lines on stderr, so that stdout stays the plan (text, JSON, markdown).

    Console         stderr, with one live status line on a terminal, cleared before
                    any other line is written (log lines, notes, errors)
    Meter           counted work as "read 420/1000 users (42%), 85/s, about 7s left"
    ConsoleHandler  log records (``-v``) as lines on a Console

On a terminal the live line is redrawn in place with ``\\r`` at most ten times a
second; elsewhere (a CI log) a line is written at each tenth of the work or every 10 s,
whichever comes first. A renderer of our own rather than click's progressbar: the work
is counted from several worker threads, its total is sometimes unknown (a vendor's list
pages), one meter goes through several steps of a read, and log lines must interleave
with the live line; click's bar does none of that, and this needs no dependency.
"""

from __future__ import annotations

import logging
import math
import shutil
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TextIO

Clock = Callable[[], float]

REDRAW_EVERY = 0.1
"""Seconds between two redraws of the live line."""
LOG_EVERY = 10.0
"""Seconds after which a CI log gets a line even if no tenth of the work was passed."""
SMALL = 200
"""Steps of fewer items are shown only once they have run `SHOW_AFTER` seconds: a quick
small step would only blink on a terminal and add ten lines to a log."""
SHOW_AFTER = 1.0
RATE_AFTER = 0.5
"""Seconds of work before a rate (and so a time left) means anything."""
ERASE = "\r\x1b[K"


class Console:
    """stderr for progress and log lines; ``live`` (a terminal) keeps a status line."""

    def __init__(self, stream: TextIO, *, live: bool | None = None) -> None:
        self.stream = stream
        self.live = _is_terminal(stream) if live is None else live
        self._status = ""
        self._lock = threading.RLock()

    def line(self, text: str) -> None:
        """A line that stays, written above the status line."""
        with self._lock:
            self._write(ERASE if self._status else "")
            self._write(text + "\n" + self._status)

    def status(self, text: str) -> None:
        """Replace the live line (nothing happens when not live)."""
        if not self.live:
            return
        with self._lock:
            self._status = _fit(text)
            self._write(ERASE + self._status)

    def clear(self) -> None:
        with self._lock:
            if self._status:
                self._status = ""
                self._write(ERASE)

    def _write(self, text: str) -> None:
        self.stream.write(text)
        self.stream.flush()


@dataclass
class _Step:
    what: str
    total: int | None
    started: float
    done: int = 0
    tenth: int = 0
    """The last tenth of the work a log line was written for."""
    logged_at: float = 0.0
    logged: int = -1
    """The count the last log line showed; -1: none yet."""


class Meter:
    """How far counted work is, on a `Console`. ``verb`` says what is done to the items
    ("read", "applied"); `update` may be called from any thread, with a new ``what``
    for each step of the work."""

    def __init__(self, console: Console, verb: str, *, clock: Clock = time.monotonic) -> None:
        self.console = console
        self.verb = verb
        self._clock = clock
        self._step: _Step | None = None
        self._drawn_at = float("-inf")
        self._lock = threading.Lock()

    def update(self, what: str, done: int, total: int | None = None) -> None:
        with self._lock:
            now = self._clock()
            step = self._step_for(what, total, now)
            step.done = max(step.done, done)
            step.total = total if total is not None else step.total
            if self.console.live:
                self._draw(step, now)
            elif self._log_due(step, now):
                self._log(step, now)

    def close(self) -> None:
        """The work is over: clear the live line, or log the last count."""
        with self._lock:
            self._end_step()
            self.console.clear()

    def _step_for(self, what: str, total: int | None, now: float) -> _Step:
        if self._step is None or self._step.what != what:
            self._end_step()
            self._step = _Step(what, total, started=now, logged_at=now)
        return self._step

    def _end_step(self) -> None:
        """A step that was logged ends on a line with its last count."""
        step = self._step
        if step is not None and not self.console.live and 0 <= step.logged != step.done:
            self._log(step, self._clock())

    def _draw(self, step: _Step, now: float) -> None:
        finished = step.total is not None and step.done >= step.total
        if (now - self._drawn_at >= REDRAW_EVERY or finished) and _worth_showing(step, now):
            self._drawn_at = now
            self.console.status(self._text(step, now))

    def _log_due(self, step: _Step, now: float) -> bool:
        if now - step.logged_at >= LOG_EVERY:
            return True
        return bool(step.total and step.total >= SMALL and _tenth(step) > step.tenth)

    def _log(self, step: _Step, now: float) -> None:
        step.tenth, step.logged_at, step.logged = _tenth(step), now, step.done
        self.console.line(self._text(step, now))

    def _text(self, step: _Step, now: float) -> str:
        if step.total is None:
            parts = [f"  {self.verb} {step.done} {step.what} so far"]
        else:
            parts = [f"  {self.verb} {step.done}/{step.total} {step.what} ({_percent(step)}%)"]
        elapsed = now - step.started
        if elapsed >= RATE_AFTER and step.done:
            rate = step.done / elapsed
            parts.append(f"{_rate(rate)}/s")
            if step.total is not None and step.done < step.total:
                parts.append(f"about {duration((step.total - step.done) / rate)} left")
        return ", ".join(parts)


class ConsoleHandler(logging.Handler):
    """Log records as lines on a `Console`, above its live line."""

    def __init__(self, console: Console, level: int = logging.NOTSET) -> None:
        super().__init__(level)
        self.console = console

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.console.line(self.format(record))
        except Exception:  # noqa: BLE001 - logging must never break the command
            self.handleError(record)


def duration(seconds: float) -> str:
    """``7s``, ``2m 05s``, ``1h 03m``."""
    whole = max(1, math.ceil(seconds))  # "about 0s left" would read as done
    if whole < 60:
        return f"{whole}s"
    if whole < 3600:
        return f"{whole // 60}m {whole % 60:02d}s"
    return f"{whole // 3600}h {whole % 3600 // 60:02d}m"


def _rate(per_second: float) -> str:
    return f"{per_second:.1f}" if per_second < 10 else f"{per_second:.0f}"


def _percent(step: _Step) -> int:
    return 100 if not step.total else step.done * 100 // step.total


def _tenth(step: _Step) -> int:
    return 10 if not step.total else step.done * 10 // step.total


def _worth_showing(step: _Step, now: float) -> bool:
    large = (step.total or step.done) >= SMALL
    return large or now - step.started >= SHOW_AFTER


def _fit(text: str) -> str:
    """One terminal line: a longer one would wrap, and ``\\r`` would not clear it."""
    width = shutil.get_terminal_size((80, 24)).columns - 1
    return text if len(text) <= width else text[: max(0, width - 1)] + "…"


def _is_terminal(stream: TextIO) -> bool:
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())
