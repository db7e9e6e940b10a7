"""The exception tree, all of it, in one place. Each error carries its exit code and
renders its own message; the CLI maps them to output in one place (`cli.main`).

    ChatrosterError (exit 1)
    ├── ManifestError        every problem found in the manifest, with locations
    ├── ProviderError        the platform refused or failed a call
    │   ├── AuthError        credentials rejected (names the variable to check); stops apply
    │   ├── TransportError   an HTTP request failed after every retry
    │   ├── PartialFailure   some changes of a batch failed: each one's key and reason
    │   ├── Refusal          Nexconn answered a call with an error code
    │   ├── CometChatError   CometChat answered a call with an error envelope
    │   └── StoreError       the local store cannot be used: damaged, newer, busy
    │       ├── NotAStoreError    not a chatroster store; left untouched
    │       └── StoreLockedError  another apply holds the store
    ├── PlanFileError        a saved plan is unreadable, edited, stale, or for another app
    ├── ApplyError           one or more changes failed during apply
    ├── Interrupted          Ctrl-C during apply: what was applied (exit 130)
    ├── UnsafePlanError      a safety limit or a refused takeover (exit 3)
    └── ActionError          the GitHub Action was given inputs it cannot use

The emulator's own errors (`emulator.nexconn.errors.NexconnError`, `emulator.cometchat.errors.
ApiError`) are not here: they are answers the emulator sends, never raised to a user.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

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


class TransportError(ProviderError):
    """A request failed after every retry; the message names the call, never a secret."""

    def __init__(self, message: str, *, status: int | None = None, attempts: int = 0) -> None:
        super().__init__(message)
        self.status = status
        """The last HTTP status seen, or ``None`` when the last attempt got no answer."""
        self.attempts = attempts


class PartialFailure(ProviderError):
    """Some changes of a batch failed; ``failed`` maps each change's key to the reason."""

    def __init__(self, failed: Mapping[str, str]) -> None:
        self.failed = dict(failed)
        super().__init__(f"{len(self.failed)} change(s) failed")


class Refusal(ProviderError):
    """Nexconn answered a call with an error code (the whole call had no effect).

    ``endpoint`` is the `providers.nexconn.api.Endpoint` called; ``where`` the call as
    ``METHOD URL`` (the endpoint's path when not known)."""

    def __init__(
        self,
        endpoint: Any,
        status: int,
        code: int | None,
        message: str,
        where: str | None = None,
    ) -> None:
        self.endpoint = endpoint
        self.status = status
        self.code = code
        self.message = message
        self.where = where or endpoint.path
        super().__init__(f"[nexconn] {self.where} refused (HTTP {status}, code {code}): {message}")


class CometChatError(ProviderError):
    """CometChat answered a call with an error envelope."""

    def __init__(self, message: str, *, code: str, status: int) -> None:
        super().__init__(message)
        self.code = code
        self.status = status


class StoreError(ProviderError):
    """The file cannot be used as a chatroster store: damaged, from a newer version,
    unreadable or busy. The message names the file and says what to do. A
    `ProviderError` (exit 1): the store is the local platform."""


class NotAStoreError(StoreError):
    """The file is not a chatroster store; it was left untouched."""


class StoreLockedError(StoreError):
    """Another apply holds the store's `ApplyLock`."""


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

    def __init__(
        self, *, done: int, total: int, detail: str = "", in_flight: int = 0, failed: int = 0
    ) -> None:
        self.done, self.total, self.detail = done, total, detail
        self.in_flight, self.failed = in_flight, failed
        super().__init__(f"interrupted after {done} of {total} change(s)")

    def render(self) -> str:
        lines = [
            f"interrupted: applied {self.done} of {self.total} change(s)"
            + (f" ({self.detail})" if self.detail else "")
        ]
        if self.in_flight:
            lines.append(
                f"  {self.in_flight} more change(s) were in flight when apply stopped "
                "and may or may not have been made"
            )
        if self.failed:
            lines.append(f"  {self.failed} change(s) failed")
        if self.done or self.in_flight:
            lines.append("Run the same command again to finish: the next plan starts from what is live.")
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


class ActionError(ChatrosterError):
    """The workflow gave the GitHub Action something it cannot work with."""
