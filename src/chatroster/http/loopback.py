"""A connection refused by a loopback address: nothing is listening there.

Such a request fails at once instead of being retried, with a message that says to
start the emulator: waiting will not start it (a remote host may be restarting).
"""

from __future__ import annotations

import ipaddress

import httpx


def is_loopback(host: str) -> bool:
    """Whether ``host`` is this machine (127.0.0.0/8, ::1 or localhost)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def is_loopback_url(url: str) -> bool:
    """Whether ``url`` points at this machine."""
    return is_loopback(httpx.URL(url).host)


def origin(url: str) -> str:
    """``scheme://host[:port]`` of ``url``: the server, without the API's path."""
    parsed = httpx.URL(url)
    return f"{parsed.scheme}://{parsed.netloc.decode('ascii')}"


def is_refused(exc: BaseException) -> bool:
    """Whether a connection failed because nothing listens on the port (not a timeout,
    a reset or a name that does not resolve)."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ConnectionRefusedError):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def nothing_listening(url: str) -> str:
    """What to say when a loopback address refuses the connection."""
    # Imported here: the emulator package brings its web framework, which a command
    # that talks to a vendor never needs.
    from ..emulator.config import DEFAULT_PORT as EMULATOR_PORT

    parsed = httpx.URL(url)
    start = "chatroster emulator"
    if parsed.port not in (None, EMULATOR_PORT):
        start += f" --port {parsed.port}"
    return f"nothing is listening on {origin(url)} — is the emulator running? (start it with `{start}`)"
