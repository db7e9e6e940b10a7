"""The command line.

commands   the commands, and `main`: every error leaves with its exit code there
options    options several commands share, and the parameter types
steps      what every command does: load, open the platform, render, save
several    plan and drift over several environments at once
console    stderr: notes, log lines and progress (stdout stays the report)
"""

from ..errors import PlanFileError
from .commands import cli, main

__all__ = ["PlanFileError", "cli", "main"]
