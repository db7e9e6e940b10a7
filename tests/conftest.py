# Fixtures shared by the test modules. Keep this file thin: each fixture lives in the
# module that owns it, and is re-exported here so that pytest finds it.

from emulator_process import emulator, emulator_factory  # noqa: F401
