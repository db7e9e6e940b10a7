"""Apply records: a JSON line per change as apply settles it, then one summary line.

`chatroster apply --record FILE` appends to FILE (created readable by its owner only:
like a saved plan, it is about people), so a file kept across runs is a journal of
every apply made with it. A change's line is written as soon as its batch settles, so
a run that is killed still leaves what it did. Values are masked as in plan output
(`--show-personal` shows them). Every line follows `schemas/record.schema.json`.

A change's ``request_ids`` are the vendor's ids of the write calls made for it, taken
from the provider when the change settles (`Provider.request_ids`): Nexconn, the
``X-Request-ID`` of each call (a batch call is listed by every change it served);
CometChat documents no request id and the local platform has none, so there the list is
empty.

    {"record": "change", "time": ..., "environment": ..., "action": "create_user",
     "uid": "alice", "target": null, "outcome": "applied", "before": {}, "after": {...},
     "request_ids": ["3f0c..."]}
    {"record": "summary", "time": ..., "outcome": "applied", "planned": 3, "applied": 3,
     "failed": 0, "not_attempted": 0, "by_action": {"create_user": {"planned": 3, ...}}}
"""

from __future__ import annotations

import json
import os
import threading
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import click

from .apply import NOT_ATTEMPTED
from .changes import Change
from .errors import ApplyError, ChatrosterError, Interrupted, UnsafePlanError
from .masking import Masker

RECORD_FORMAT = 1

Outcome = Literal["applied", "failed", "not_attempted"]
RunOutcome = Literal["applied", "nothing_to_apply", "failed", "interrupted", "refused", "error"]


def outcome_of(reason: str | None) -> Outcome:
    if reason is None:
        return "applied"
    return "not_attempted" if reason.startswith(NOT_ATTEMPTED) else "failed"


class Recorder:
    """Appends records to one file; `change` may be called from several threads."""

    def __init__(
        self,
        path: Path,
        masker: Masker,
        *,
        provider: str,
        owner: str,
        environment: str | None = None,
        request_ids: Callable[[Change], Sequence[str]] = lambda change: (),
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.path, self.masker, self.clock = path, masker, clock
        self.request_ids = request_ids
        self.context = {"environment": environment, "provider": provider, "owner": owner}
        self.counts: Counter[tuple[str, Outcome]] = Counter()
        self.lock = threading.Lock()
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        except OSError as exc:
            raise ChatrosterError(f"cannot write the apply record {path}: {exc.strerror or exc}") from None
        self.stream = os.fdopen(descriptor, "a", encoding="utf-8")

    def _time(self) -> str:
        return self.clock().astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")

    def _write(self, line: dict[str, Any]) -> None:
        self.stream.write(json.dumps(line, ensure_ascii=False, sort_keys=False) + "\n")
        self.stream.flush()  # a killed apply still leaves every line it settled

    def change(self, change: Change, reason: str | None) -> None:
        """``change`` settled: applied (``reason`` None), failed, or not attempted."""
        outcome = outcome_of(reason)
        data = change.to_json()
        line: dict[str, Any] = {
            "record": "change",
            "format_version": RECORD_FORMAT,
            "time": self._time(),
            "environment": self.context["environment"],
            "action": data["action"],
            "uid": data["uid"],
            "target": data.get("target"),
            "outcome": outcome,
            "before": self.masker.fields(data.get("before") or {}),
            "after": self.masker.fields(data.get("after") or {}),
            "request_ids": list(self.request_ids(change)),
        }
        if reason is not None:
            line["reason"] = reason
        with self.lock:
            self.counts[(data["action"], outcome)] += 1
            self._write(line)

    def summary(self, planned: Sequence[Change], outcome: RunOutcome, message: str | None = None) -> None:
        """The run's last line: what was planned and what became of it."""
        by_action: dict[str, dict[str, int]] = {}
        for change in planned:
            counts = by_action.setdefault(
                change.action.value, {"planned": 0, "applied": 0, "failed": 0, "not_attempted": 0}
            )
            counts["planned"] += 1
        with self.lock:
            for (action, settled), count in self.counts.items():
                by_action[action][settled] += count
            totals = {
                kind: sum(count for (_, settled), count in self.counts.items() if settled == kind)
                for kind in ("applied", "failed", "not_attempted")
            }
            line: dict[str, Any] = {
                "record": "summary",
                "format_version": RECORD_FORMAT,
                "time": self._time(),
                **self.context,
                "outcome": outcome,
                "planned": len(planned),
                **totals,
                "by_action": by_action,
            }
            if message:
                line["message"] = message
            self._write(line)

    def close(self) -> None:
        with self.lock:
            self.stream.close()


@contextmanager
def recorded(recorder: Recorder | None, changes: Sequence[Change]) -> Iterator[None]:
    """The apply record's summary line, however the run ends (`None`: no record)."""
    if recorder is None:
        yield
        return
    outcome: RunOutcome = "applied" if changes else "nothing_to_apply"
    message = None
    try:
        yield
    except BaseException as exc:
        outcome = (
            "interrupted"
            if isinstance(exc, (Interrupted, KeyboardInterrupt, click.exceptions.Abort))
            else "refused"
            if isinstance(exc, UnsafePlanError)
            else "failed"
            if isinstance(exc, ApplyError)
            else "error"
        )
        message = str(exc) or type(exc).__name__
        raise
    finally:
        recorder.summary(changes, outcome, message)
        recorder.close()
