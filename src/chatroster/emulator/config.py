"""Settings of one emulator process, shared by the server and both vendor modules."""

from __future__ import annotations

from dataclasses import dataclass

from .nexconn.rules import DEFAULT_EXT_KEYS

DEFAULT_APP_KEY = "emulator-app-key"
DEFAULT_APP_SECRET = "emulator-app-secret"
DEFAULT_APP_ID = "emulator-app"
DEFAULT_API_KEY = "emulator-api-key"
DEFAULT_PORT = 8765
"""Where `chatroster emulator` listens unless told otherwise, and where the vendor
examples point by default: fixed, so that a manifest can name it. Not a well-known port,
so it rarely clashes with something else on a developer's machine."""


@dataclass(frozen=True)
class EmulatorConfig:
    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    """0 picks a free port (printed at start-up)."""
    app_key: str = DEFAULT_APP_KEY
    app_secret: str = DEFAULT_APP_SECRET
    app_id: str = DEFAULT_APP_ID
    api_key: str = DEFAULT_API_KEY
    nexconn_rate: float | None = None
    """Requests per second per App-Key; None: no limit (the default)."""
    cometchat_rate: int | None = None
    """Requests per minute per rate class; None: no limit (the default)."""
    fault_rate: float = 0.0
    """Fraction of requests that fail (500/503, 429, hang, dropped connection)."""
    fault_seed: int = 0
    fault_kinds: tuple[str, ...] = ("error", "throttle", "hang", "drop")
    fault_paths: tuple[str, ...] = ()
    """Only requests to these paths draw faults; empty: every API request."""
    hang_seconds: float = 30.0
    latency_ms: float = 0.0
    """Milliseconds every API answer is held back, as a network would (0: none)."""
    timestamp_tolerance_ms: int = 5 * 60 * 1000
    """How old a Nexconn Timestamp may be before the signature is refused as stale."""

    # -- added for the server framework and Nexconn (emulator/app.py, signing.py) --
    nexconn_ext_keys: tuple[str, ...] = DEFAULT_EXT_KEYS
    """The ``userExtProfile`` keys declared in the Nexconn console (``*``: any key)."""
    nexconn_max_users: int | None = None
    """Registered users a Nexconn development app may hold; None: no limit."""
    nonce_cache_size: int = 100_000
    """How many recent Nexconn nonces are remembered to refuse replays (oldest go first)."""
