"""``python -m chatroster.emulator``: the same as ``chatroster emulator``."""

from .server import main

raise SystemExit(main())
