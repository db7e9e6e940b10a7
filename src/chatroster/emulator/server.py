"""`chatroster emulator`: serve a store over the vendors' HTTP APIs, as one process.

The process binds loopback unless told otherwise, on `DEFAULT_PORT` (8765) unless
given ``--port``, prints the address it listens on as
``chatroster emulator listening on http://HOST:PORT`` once it accepts connections (so
``--port 0`` can pick a free port), and stops cleanly, exit status 0, on SIGINT or
SIGTERM.
"""

from __future__ import annotations

import contextlib
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from types import FrameType
from typing import Any

import click
import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

from ..http.loopback import is_loopback
from ..store import Store, StoreError
from .app import build_app
from .config import (
    DEFAULT_API_KEY,
    DEFAULT_APP_ID,
    DEFAULT_APP_KEY,
    DEFAULT_APP_SECRET,
    DEFAULT_PORT,
    EmulatorConfig,
)
from .faults import DROP_EXTENSION, FAULT_KINDS
from .nexconn.profiles import EXT_KEY
from .nexconn.rules import ANY_KEY, DEFAULT_EXT_KEYS

DEFAULT_DB = Path(".chatroster/local.db")
"""The local provider's default store, so that the emulator serves it without flags."""

SHUTDOWN_GRACE = 2
"""Seconds open requests (a hanging fault, say) get to finish once asked to stop."""


class DroppableProtocol(H11Protocol):
    """uvicorn's HTTP/1.1 protocol, with a way for the app to drop the connection.

    ASGI has no message for "close the connection without answering", and an app that
    returns without answering gets a 500 from uvicorn. Fault injection needs the real
    thing, so each request's scope carries a callable that closes the transport.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        inner = self.app

        async def app(scope: Any, receive: Any, send: Any) -> None:
            scope["extensions"] = {**(scope.get("extensions") or {}), DROP_EXTENSION: self._drop}
            await inner(scope, receive, send)

        self.app = app

    def _drop(self) -> None:
        self.transport.close()


class EmulatorServer(uvicorn.Server):
    """Prints the bound address once serving; exits quietly on the first signal."""

    def __init__(self, config: uvicorn.Config, announce: Callable[[str], None]) -> None:
        super().__init__(config)
        self._announce = announce

    async def startup(self, sockets: Any = None) -> None:
        await super().startup(sockets=sockets)
        if self.started:
            host, port = self.servers[0].sockets[0].getsockname()[:2]
            shown = f"[{host}]" if ":" in host else host
            self._announce(f"chatroster emulator listening on http://{shown}:{port}")

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        # uvicorn re-raises the signal after shutting down, which ends the process with
        # a signal status; a clean stop here returns normally and exits with 0.
        if self.should_exit and sig == signal.SIGINT:
            self.force_exit = True
        else:
            self.should_exit = True


def _shown(value: str, default: str, label: str) -> str:
    """A credential for the start-up banner: the public test default, or not at all."""
    return f"{label} {value} (default)" if value == default else f"{label} as given"


def banner(config: EmulatorConfig, db: Path, vendors: list[str]) -> list[str]:
    nexconn = ", ".join(
        [
            _shown(config.app_key, DEFAULT_APP_KEY, "App-Key"),
            _shown(config.app_secret, DEFAULT_APP_SECRET, "App-Secret"),
        ]
    )
    lines = [f"store: {db}", f"nexconn: /v4 and legacy /user/*; {nexconn}"]
    if "cometchat" in vendors:
        cometchat = ", ".join(
            [
                _shown(config.app_id, DEFAULT_APP_ID, "app id"),
                _shown(config.api_key, DEFAULT_API_KEY, "apikey"),
            ]
        )
        lines.append(f"cometchat: /v3; {cometchat}")
    else:
        lines.append("cometchat: not available in this build")
    limits = [
        f"nexconn {config.nexconn_rate:g} req/s" if config.nexconn_rate else "",
        f"cometchat {config.cometchat_rate} req/min" if config.cometchat_rate else "",
    ]
    lines.append("rate limits: " + (", ".join(x for x in limits if x) or "off"))
    if config.latency_ms:
        lines.append(f"latency: {config.latency_ms:g} ms added to every answer")
    lines.append("nexconn ext keys declared: " + (", ".join(config.nexconn_ext_keys) or "none"))
    if config.nexconn_max_users is not None:
        lines.append(f"nexconn registered users: at most {config.nexconn_max_users} (development app)")
    if config.fault_rate:
        lines.append(
            f"faults: {config.fault_rate:g} of requests ({', '.join(config.fault_kinds)}),"
            f" seed {config.fault_seed}"
            + (f", only to {', '.join(config.fault_paths)}" if config.fault_paths else "")
        )
    return lines


def _uvicorn_config(app: Any, config: EmulatorConfig, verbose: bool) -> uvicorn.Config:
    return uvicorn.Config(
        app,
        host=config.host,
        port=config.port,
        http=DroppableProtocol,
        lifespan="off",
        log_level="info" if verbose else "warning",
        access_log=verbose,
        timeout_graceful_shutdown=SHUTDOWN_GRACE,
        server_header=False,
    )


def serve(config: EmulatorConfig, db: Path, *, clock_offset: float = 0.0, verbose: bool = False) -> int:
    """Run until SIGINT/SIGTERM, then return 0; `click.ClickException` if it cannot."""
    clock = (lambda: time.time() + clock_offset) if clock_offset else time.time
    try:
        store = Store(db, clock=clock)
    except StoreError as exc:
        raise click.ClickException(str(exc)) from None
    try:
        app = build_app(store, config)
        for line in banner(config, db, app.state.vendors):
            click.echo(line)
        server = EmulatorServer(_uvicorn_config(app, config, verbose), announce=click.echo)
        with contextlib.suppress(SystemExit):  # uvicorn could not bind; it has logged why
            server.run()
        if not server.started:
            raise click.ClickException(cannot_listen(config))
        click.echo("chatroster emulator stopped", err=True)
        return 0
    finally:
        store.close()


def cannot_listen(config: EmulatorConfig) -> str:
    """Why start-up failed, and what to do: the usual cause is another emulator (or any
    other program) on the port."""
    message = f"could not listen on {config.host}:{config.port}"
    if config.port:
        message += (
            " (is another emulator already running there?); stop it, or pass --port N "
            "for another port (--port 0 picks a free one)"
        )
    return message


def _ext_keys(ctx: click.Context, param: click.Parameter, value: str) -> tuple[str, ...]:
    keys = tuple(key.strip() for key in value.split(",") if key.strip())
    bad = sorted(key for key in keys if key != ANY_KEY and not EXT_KEY.match(key))
    if bad:
        raise click.BadParameter(f"{', '.join(bad)}: an ext key is 'ext_' and letters or digits")
    return keys


def _kinds(ctx: click.Context, param: click.Parameter, value: str) -> tuple[str, ...]:
    kinds = tuple(kind.strip() for kind in value.split(",") if kind.strip())
    unknown = sorted(set(kinds) - set(FAULT_KINDS))
    if unknown:
        raise click.BadParameter(
            f"unknown kind(s) {', '.join(unknown)}; choose from {', '.join(FAULT_KINDS)}"
        )
    return kinds


@click.command(
    "emulator",
    context_settings={"help_option_names": ["-h", "--help"]},
    help="Serve a chatroster store over the Nexconn and CometChat HTTP APIs "
    "(Nexconn v4 under /v4, its legacy whitelist endpoints under /user, CometChat "
    "under /v3; counters at GET /_emulator/stats).",
)
@click.option(
    "--db",
    type=click.Path(dir_okay=False, path_type=Path),
    default=DEFAULT_DB,
    show_default=True,
    help="The SQLite store to serve (created if missing).",
)
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind.")
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=DEFAULT_PORT,
    show_default=True,
    help="Port to bind; 0 picks a free one (printed at start-up).",
)
@click.option(
    "--allow-remote",
    is_flag=True,
    help="Allow a --host other than loopback (the emulator has no real security).",
)
@click.option(
    "--app-key",
    envvar="CHATROSTER_EMULATOR_APP_KEY",
    default=DEFAULT_APP_KEY,
    show_default=True,
    help="Nexconn App-Key the emulator accepts.",
)
@click.option(
    "--app-secret",
    envvar="CHATROSTER_EMULATOR_APP_SECRET",
    default=DEFAULT_APP_SECRET,
    show_default=True,
    help="Nexconn App Secret that signs requests (env: CHATROSTER_EMULATOR_APP_SECRET).",
)
@click.option(
    "--app-id",
    envvar="CHATROSTER_EMULATOR_APP_ID",
    default=DEFAULT_APP_ID,
    show_default=True,
    help="CometChat app id.",
)
@click.option(
    "--api-key",
    envvar="CHATROSTER_EMULATOR_API_KEY",
    default=DEFAULT_API_KEY,
    show_default=True,
    help="CometChat REST API key (env: CHATROSTER_EMULATOR_API_KEY).",
)
@click.option(
    "--nexconn-rate",
    type=click.FloatRange(min=0, min_open=True),
    default=None,
    help="Nexconn requests per second per App-Key and endpoint (vendor default 100); off unless set.",
)
@click.option(
    "--cometchat-rate",
    type=click.IntRange(min=1),
    default=None,
    help="CometChat requests per minute per rate class; off unless set.",
)
@click.option(
    "--fault-rate",
    type=click.FloatRange(0, 1),
    default=0.0,
    show_default=True,
    help="Fraction of API requests that fail (500/503, 429, hang, dropped connection).",
)
@click.option("--fault-seed", type=int, default=0, show_default=True, help="Seed of the fault sequence.")
@click.option(
    "--fault-kinds",
    default=",".join(FAULT_KINDS),
    show_default=True,
    callback=_kinds,
    help="Comma-separated kinds of fault to inject.",
)
@click.option(
    "--fault-paths",
    default="",
    callback=lambda ctx, param, value: tuple(p.strip() for p in value.split(",") if p.strip()),
    help="Comma-separated API paths that draw faults (e.g. /v4/user/get); default: every path.",
)
@click.option(
    "--hang-seconds",
    type=click.FloatRange(min=0),
    default=EmulatorConfig.hang_seconds,
    show_default=True,
    help="How long a 'hang' fault waits before answering 503.",
)
@click.option(
    "--latency",
    "latency_ms",
    type=click.FloatRange(min=0),
    default=0.0,
    show_default=True,
    metavar="MS",
    help="Milliseconds added to every API answer, as a real network adds (benchmarks, timeouts).",
)
@click.option(
    "--nexconn-ext-keys",
    default=",".join(DEFAULT_EXT_KEYS),
    show_default=True,
    callback=_ext_keys,
    help="Comma-separated userExtProfile keys declared in the Nexconn console; other keys "
    "are refused as the vendor does ('*': any key).",
)
@click.option(
    "--nexconn-max-users",
    type=click.IntRange(min=0),
    default=None,
    help="Registered users the Nexconn app may hold, as a development app (100); no limit unless set.",
)
@click.option("--verbose", is_flag=True, help="Log every request (uvicorn access log).")
@click.option("--clock-offset", type=float, default=0.0, hidden=True)
def emulator_command(
    db: Path,
    host: str,
    port: int,
    allow_remote: bool,
    app_key: str,
    app_secret: str,
    app_id: str,
    api_key: str,
    nexconn_rate: float | None,
    cometchat_rate: int | None,
    fault_rate: float,
    fault_seed: int,
    fault_kinds: tuple[str, ...],
    fault_paths: tuple[str, ...],
    hang_seconds: float,
    latency_ms: float,
    nexconn_ext_keys: tuple[str, ...],
    nexconn_max_users: int | None,
    verbose: bool,
    clock_offset: float,
) -> int:
    if not is_loopback(host) and not allow_remote:
        raise click.ClickException(
            f"--host {host} is not a loopback address; the emulator accepts test "
            "credentials, so serving it beyond this machine needs --allow-remote"
        )
    config = replace(
        EmulatorConfig(),
        host=host,
        port=port,
        app_key=app_key,
        app_secret=app_secret,
        app_id=app_id,
        api_key=api_key,
        nexconn_rate=nexconn_rate,
        cometchat_rate=cometchat_rate,
        fault_rate=fault_rate,
        fault_seed=fault_seed,
        fault_kinds=fault_kinds,
        fault_paths=fault_paths,
        hang_seconds=hang_seconds,
        latency_ms=latency_ms,
        nexconn_ext_keys=nexconn_ext_keys,
        nexconn_max_users=nexconn_max_users,
    )
    return serve(config, db, clock_offset=clock_offset, verbose=verbose)


def main(argv: list[str] | None = None) -> int:
    """Run ``chatroster emulator`` with ``argv``; returns the exit status."""
    try:
        status = emulator_command.main(args=argv, prog_name="chatroster emulator", standalone_mode=False)
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except click.exceptions.Exit as exc:  # --help
        return exc.exit_code
    except click.Abort:
        return 1
    return status if isinstance(status, int) else 0


if __name__ == "__main__":
    sys.exit(main())
