"""Typed errors of the calibrate package (tuning); the backend errors it meets are the
runtime's (:mod:`realtime.errors`), all under :class:`models.errors.LowlightError`."""
from __future__ import annotations

from models.errors import LowlightError

__all__ = ["CalibrateError"]


class CalibrateError(LowlightError, RuntimeError):
    """No candidate configuration could be built, validated or measured."""

    exit_code = 2
