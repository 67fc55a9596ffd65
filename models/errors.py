"""The root of every error the product raises on purpose.

Each package derives its typed errors from :class:`LowlightError` (and from the builtin
that fits, so callers may catch either). ``exit_code`` is what the command-line tools
exit with when the error reaches them: 2 for bad usage or unusable input/output, 1 for
failures while running.
"""
from __future__ import annotations

__all__ = ["LowlightError"]


class LowlightError(Exception):
    """Base class of all errors of ``models``, ``realtime``, ``calibrate`` and ``training``."""

    exit_code: int = 1
