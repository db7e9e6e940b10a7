"""The `chatroster` command's entry point: the CLI, imported under a Ctrl-C guard.

Importing the CLI (jsonschema, click, the providers) takes a noticeable moment on a
busy machine; a Ctrl-C in it would otherwise end in a traceback. Nothing has been read
or written by then, so it says so and exits 130 like any other interrupt.
"""

from __future__ import annotations

import sys


def main() -> None:
    try:
        from .cli import main as run
    except KeyboardInterrupt:
        print("interrupted; nothing was changed", file=sys.stderr)
        sys.exit(130)  # errors.EXIT_INTERRUPTED, not imported: it might be what was interrupted
    run()
