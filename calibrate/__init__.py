"""Measure and tune the enhancement models for a target machine.

    python -m calibrate --resolution 1280x720 --fps 30 -o profile.json

The tuner (:mod:`calibrate.tune`) times every model x backend candidate through the
runtime's engine, validates reduced-precision backends against eager FP32 and writes the
fastest configuration that meets the frame rate. The backends themselves (TensorRT FP16
-> torch.compile on CUDA FP16 -> eager CUDA FP16 -> CPU), their graph export and their
validation belong to the runtime (:mod:`realtime.backends`), which reads the profile;
they are re-exported here.
"""
from realtime.backends import (
    BACKENDS,
    BackendUnavailable,
    CalibrationError,
    CompiledModel,
    ValidationFailed,
    build_backend,
    load_calibration,
    select_backend,
)
from realtime.backends.frames import demo_frames, validation_frames
from realtime.errors import ExportError

from .errors import CalibrateError

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
