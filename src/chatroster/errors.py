"""The exception tree. Each error carries its exit code and renders its own message;
the CLI maps them to output in one place.

    ChatrosterError (exit 1)
    ├── ManifestError        every problem found in the manifest, with locations
    ├── ProviderError        the platform refused or failed a call
    │   └── AuthError        credentials rejected (names the variable to check)
    ├── PlanFileError        a saved plan is unreadable, stale, or for another app
    ├── ApplyError           one or more changes failed during apply
    └── UnsafePlanError      a safety limit refused the plan (exit 3)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_CHANGES = 2
EXIT_UNSAFE = 3


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


class UnsafePlanError(ChatrosterError):
    exit_code = EXIT_UNSAFE

    def __init__(self, reasons: Sequence[str]) -> None:
        self.reasons = tuple(reasons)
        super().__init__("; ".join(self.reasons))

    def render(self) -> str:
        return "\n".join(f"refused: {reason}" for reason in self.reasons)
