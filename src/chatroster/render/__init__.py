"""Printed forms of a plan: text (terminal), JSON, and markdown (pull-request comments)."""

from .describe import Line, describe
from .json import plan_json
from .markdown import plan_markdown
from .text import plan_text

__all__ = ["Line", "describe", "plan_json", "plan_markdown", "plan_text"]
