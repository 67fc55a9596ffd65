"""Typed errors of the calibrate package (each also inherits the fitting builtin)."""
from __future__ import annotations

__all__ = ["CalibrateError", "BackendUnavailable", "ValidationFailed", "CalibrationError", "ExportError"]


class CalibrateError(Exception):
    """Base class of every error raised by ``calibrate``."""


class BackendUnavailable(CalibrateError, RuntimeError):
    """A backend cannot be built here; the message is a one-line reason."""


class ValidationFailed(CalibrateError, RuntimeError):
    """A backend's output is too far from eager FP32 (see :mod:`calibrate.thresholds`)."""


class CalibrationError(CalibrateError, ValueError):
    """A calibration profile (``profile.json``) is missing, malformed or does not fit."""


class ExportError(CalibrateError, RuntimeError):
    """``torch.export`` of a model failed or produced a graph TensorRT cannot take."""
