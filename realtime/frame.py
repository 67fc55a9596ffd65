"""What flows between the pipeline stages."""
from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

import numpy as np

__all__ = ["Frame", "Passthrough", "END"]


@dataclass
class Frame:
    """One video frame or image.

    Attributes:
        image: input pixels, (H, W, 3) uint8, C-contiguous, channel order ``color``.
        index: position in the source (0-based, counting frames read, dropped ones included).
        pts: presentation timestamp in ``time_base`` units (None for images).
        time_base: unit of ``pts``.
        t_capture: ``time.perf_counter()`` when the frame left the source.
        name: file name for images (kept by the image-folder sink).
        reset: first frame of a new segment (new source, seek, next image): the
            temporal smoother starts over.
        color: "rgb", "bgr" (OpenCV cameras) or "yuv420p" (``image`` is then the
            (H*3/2, W) I420 planes; the CUDA engine converts on the GPU).
        result: enhanced frame set by the engine, (H, W, 3) uint8 RGB, or I420 planes
            when ``result_color`` is "yuv420p". May be a view into a ring buffer that
            is reused a bounded number of frames later.
    """

    image: np.ndarray
    index: int
    pts: int | None = None
    time_base: Fraction | None = None
    t_capture: float = 0.0
    name: str | None = None
    reset: bool = False
    color: str = "rgb"
    result: np.ndarray | None = None
    result_color: str = "rgb"
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def size(self) -> tuple[int, int]:
        """(height, width) in pixels."""
        h, w = self.image.shape[:2]
        return (h * 2 // 3, w) if self.color == "yuv420p" else (h, w)

    def image_rgb(self) -> np.ndarray:
        """The input as (H, W, 3) uint8 RGB."""
        return _to_rgb(self.image, self.color)

    def result_rgb(self) -> np.ndarray:
        """The enhanced frame (or the input when there is none) as (H, W, 3) uint8 RGB."""
        if self.result is None:
            return self.image_rgb()
        return _to_rgb(self.result, self.result_color)

    @property
    def time(self) -> float | None:
        """Timestamp in seconds, or None."""
        if self.pts is None or self.time_base is None:
            return None
        return float(self.pts * self.time_base)


def _to_rgb(img: np.ndarray, color: str) -> np.ndarray:
    import cv2

    if color == "rgb":
        return img
    if color == "bgr":
        return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
    if color == "yuv420p":
        return cv2.cvtColor(img, cv2.COLOR_YUV2RGB_I420)
    raise ValueError(f"unknown colour format {color!r}")


@dataclass
class Passthrough:
    """A compressed packet of a non-video stream (audio, subtitles) to copy as is."""

    packet: Any  # av.Packet
    stream_index: int


class _End:
    def __repr__(self) -> str:
        return "END"


#: Sentinel put on a queue after the last item.
END = _End()
