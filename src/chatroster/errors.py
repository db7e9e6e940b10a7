"""The exception tree. Each error carries its exit code and renders its own message;
the CLI maps them to output in one place.

    ChatrosterError (exit 1)
    ├── ManifestError        every problem found in the manifest, with locations
    ├── ProviderError        the platform refused or failed a call
    │   └── AuthError        credentials rejected (names the variable to check)
    ├── PlanFileError        a saved plan is unreadable, stale, or for another app
    ├── ApplyError           one or more changes failed during apply
    ├── Interrupted          Ctrl-C during apply: what was applied (exit 130)
    └── UnsafePlanError      a safety limit refused the plan (exit 3)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_CHANGES = 2
EXIT_UNSAFE = 3
EXIT_INTERRUPTED = 130


class ChatrosterError(Exception):
    exit_code = EXIT_ERROR

    def render(self) -> str:
        return f"error: {self}"


@dataclass(frozen=True)
class Problem:
    """One problem in the manifest: where it is, what is wrong and what to do."""

    file: str
    line: int
    column: int
    path: str
    """The path inside the document, for example ``users.alice.blocklist[0]``."""
    message: str
    hint: str = ""

    def render(self) -> str:
        where = f"{self.file}:{self.line}:{self.column}"
        at = f" ({self.path})" if self.path else ""
        hint = f"\n    → {self.hint}" if self.hint else ""
        return f"{where}: {self.message}{at}{hint}"

    @property
    def sort_key(self) -> tuple[str, int, int, str]:
        return (self.file, self.line, self.column, self.message)


class ManifestError(ChatrosterError):
    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems = tuple(sorted(problems, key=lambda p: p.sort_key))
        super().__init__(f"{len(self.problems)} problem(s) in the manifest")

    def render(self) -> str:
        lines = [problem.render() for problem in self.problems]
        count = len(self.problems)
        lines.append(f"{count} problem{'s' if count != 1 else ''} found; nothing was changed.")
        return "\n".join(lines)


class ProviderError(ChatrosterError):
    pass


class AuthError(ProviderError):
    pass


class PlanFileError(ChatrosterError):
    pass


class ApplyError(ChatrosterError):
    def __init__(self, failures: Sequence[tuple[str, str]], done: int) -> None:
        self.failures = tuple(failures)
        self.done = done
        super().__init__(f"{len(self.failures)} change(s) failed")

    def render(self) -> str:
        lines = [f"error: {key}: {message}" for key, message in self.failures]
        lines.append(
            f"{len(self.failures)} change(s) failed, {self.done} applied; "
            "fix the cause and run apply again to finish."
        )
        return "\n".join(lines)


class Interrupted(ChatrosterError):
    """Apply stopped on Ctrl-C. Says exactly what is known to be applied: the first
    Ctrl-C lets the batch in flight settle; a second one stops at once, and that batch
    (``in_flight`` changes) may be partly applied."""

    exit_code = EXIT_INTERRUPTED

    def __init__(self, *, done: int, total: int, detail: str = "", in_flight: int = 0,
                 failed: int = 0) -> None:
        self.done, self.total, self.detail = done, total, detail
        self.in_flight, self.failed = in_flight, failed
        super().__init__(f"interrupted after {done} of {total} change(s)")

    def render(self) -> str:
        lines = [f"interrupted: applied {self.done} of {self.total} change(s)"
                 + (f" ({self.detail})" if self.detail else "")]
        if self.in_flight:
            lines.append(f"  {self.in_flight} more change(s) were in flight when apply stopped "
                         "and may or may not have been made")
        if self.failed:
            lines.append(f"  {self.failed} change(s) failed")
        if self.done or self.in_flight:
            lines.append("Run the same command again to finish: the next plan starts from "
                         "what is live.")
        else:
            lines.append("Nothing was changed.")
        return "\n".join(lines)


class UnsafePlanError(ChatrosterError):
    exit_code = EXIT_UNSAFE

    def __init__(self, reasons: Sequence[str]) -> None:
        self.reasons = tuple(reasons)
        super().__init__("; ".join(self.reasons))

    def render(self) -> str:
        return "\n".join(f"refused: {reason}" for reason in self.reasons)
