"""Export, compile, validate and tune the enhancement models for a target machine.

    python -m calibrate --resolution 1280x720 --fps 30 -o profile.json

Backends (:mod:`calibrate.backends`): TensorRT FP16 (torch-tensorrt, optional) ->
torch.compile on CUDA FP16 -> eager CUDA FP16 -> CPU float32 channels_last.
"""
from .backends import (
    BACKENDS,
    BackendUnavailable,
    CalibrationError,
    CompiledModel,
    ValidationFailed,
    build_backend,
    load_calibration,
    select_backend,
)
from .errors import CalibrateError, ExportError
from .frames import demo_frames, validation_frames

__all__ = [
    "BACKENDS",
    "BackendUnavailable",
    "CalibrationError",
    "CalibrateError",
    "CompiledModel",
    "ExportError",
    "ValidationFailed",
    "build_backend",
    "demo_frames",
    "load_calibration",
    "select_backend",
    "validation_frames",
]
