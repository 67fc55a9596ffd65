"""Real-time capture -> infer -> encode pipeline (CPU and CUDA).

    >>> from realtime import VideoFileSource, create_engine, VideoFileSink, Pipeline
"""
from .engine import InferenceEngine, create_engine, select_backend_for
from .errors import (
    BackendUnavailableError,
    CalibrationError,
    ExportError,
    LowlightError,
    ValidationFailed,
    EngineError,
    FrameFormatError,
    OutputExistsError,
    OutputWriteError,
    PipelineError,
    SinkError,
    SourceError,
    StageError,
)
from .frame import END, Frame, Passthrough
from .pipeline import Aborted, Pipeline, RunResult, StageQueue
from .profiling import Profiler
from .sinks import ImageFolderSink, NullSink, PreviewSink, TeeSink, VideoFileSink, check_output_file, check_output_folder
from .sources import IMAGE_EXTENSIONS, ImageSource, VideoFileSource, WebcamSource, decode_image, is_url

__all__ = [
    "InferenceEngine",
    "create_engine",
    "select_backend_for",
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
    "LowlightError",
    "StageError",
    "Frame",
    "Passthrough",
    "END",
    "Pipeline",
    "RunResult",
    "StageQueue",
    "Aborted",
    "Profiler",
    "VideoFileSource",
    "WebcamSource",
    "ImageSource",
    "IMAGE_EXTENSIONS",
    "decode_image",
    "is_url",
    "VideoFileSink",
    "ImageFolderSink",
    "PreviewSink",
    "NullSink",
    "TeeSink",
    "check_output_file",
    "check_output_folder",
]
