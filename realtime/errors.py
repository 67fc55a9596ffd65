"""Typed errors of the real-time pipeline.

Every class also inherits the builtin that fits it, so callers may catch either.
``exit_code`` is what ``run_stream`` exits with when the error reaches it: 2 for
bad usage or unusable input/output, 1 for failures while running.
"""
from __future__ import annotations

from models.errors import LowlightError

__all__ = [
    "LowlightError",
    "PipelineError",
    "SourceError",
    "FrameFormatError",
    "SinkError",
    "OutputExistsError",
    "OutputWriteError",
    "EngineError",
    "BackendUnavailableError",
    "ValidationFailed",
    "CalibrationError",
    "ExportError",
    "StageError",
]


class PipelineError(LowlightError):
    """Base class of all errors of the runtime (engine, backends, sources, sinks, pipeline)."""

    exit_code: int = 1


class SourceError(PipelineError, OSError):
    """An input cannot be opened or read (missing, empty, not a video, no camera)."""

    exit_code = 2


class FrameFormatError(PipelineError, ValueError):
    """An input holds data the pipeline cannot use (unsupported image, bad frame shape)."""

    exit_code = 2


class SinkError(PipelineError, OSError):
    """An output cannot be created or written."""

    exit_code = 2


class OutputExistsError(SinkError, FileExistsError):
    """The output exists and overwriting was not allowed."""


class OutputWriteError(SinkError):
    """Writing an output failed while running (disk full, I/O error): a runtime failure,
    for videos and images alike (unusable outputs are refused before the run, exit 2)."""

    exit_code = 1


class EngineError(PipelineError, RuntimeError):
    """The model or its backend cannot be loaded or run."""

    exit_code = 1


class BackendUnavailableError(EngineError):
    """The requested inference backend cannot be used here (a usage error); the message
    is a one-line reason."""

    exit_code = 2


class ValidationFailed(BackendUnavailableError):
    """A backend's output is too far from eager FP32 (see
    :mod:`realtime.backends.thresholds`): it cannot be used here."""


class CalibrationError(PipelineError, ValueError):
    """A calibration profile (``profile.json``) is missing, malformed or does not fit."""

    exit_code = 2


class ExportError(EngineError):
    """``torch.export`` of a model failed or produced a graph TensorRT cannot take."""


class StageError(PipelineError, RuntimeError):
    """A pipeline stage failed; the original error is chained as ``__cause__``.

    ``exit_code`` is the original error's when it has one (e.g. an unsupported image
    met while streaming a folder is still a usage error), else 1.
    """

    def __init__(self, stage: str, error: BaseException):
        self.stage = stage
        self.error = error
        self.exit_code = int(getattr(error, "exit_code", 1))
        super().__init__(f"{stage} stage failed: {error}")
