"""Frames for backend validation: LOL eval15 low images when present, else demo frames
(scikit-image sample photos darkened by :mod:`realtime.degrade`). Nothing is downloaded.
"""
from __future__ import annotations

import logging
import os
from pathlib import Path

import cv2
import numpy as np

from ..degrade import SensorNoise, degrade_frame
from ..demo import demo_images
from ..paths import lol_root

logger = logging.getLogger(__name__)

__all__ = ["demo_frames", "fit_frame", "validation_frames", "default_lol_dir"]

#: sensor noise of the demo frames (a clean camera: validation compares backends, not noise)
_NOISE = SensorNoise(shot=1e-4, read=1e-3)


def fit_frame(img: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Centre-crop ``img`` (H, W, 3) to the aspect of ``size`` = (width, height) and resize to it."""
    w, h = int(size[0]), int(size[1])
    ih, iw = img.shape[:2]
    if ih * w > iw * h:  # too tall: crop rows
        ch = max(1, round(iw * h / w))
        top = (ih - ch) // 2
        img = img[top : top + ch]
    else:  # too wide: crop columns
        cw = max(1, round(ih * w / h))
        left = (iw - cw) // 2
        img = img[:, left : left + cw]
    interp = cv2.INTER_AREA if img.shape[0] > h else cv2.INTER_LINEAR
    return np.ascontiguousarray(cv2.resize(img, (w, h), interpolation=interp))


def demo_frames(n: int, size: tuple[int, int], seed: int = 0) -> list[np.ndarray]:
    """``n`` synthetic low-light frames, uint8 (H, W, 3) RGB, C-contiguous.

    Args:
        n: number of frames (the bundled photos repeat with different exposures).
        size: (width, height) of every frame, like ``cv2.resize``.
        seed: noise seed; the same arguments give the same frames.

    Raises:
        ValueError: ``n`` < 0 or a non-positive size.
    """
    if n < 0 or int(size[0]) <= 0 or int(size[1]) <= 0:
        raise ValueError(f"need n >= 0 and a positive (width, height), got n={n}, size={size}")
    rng = np.random.default_rng(seed)
    photos = demo_images() if n else []
    frames = []
    for i in range(n):
        exposure = float(rng.uniform(0.03, 0.15))
        frames.append(degrade_frame(fit_frame(photos[i % len(photos)], size), exposure, _NOISE, rng))
    return frames


def default_lol_dir() -> Path:
    """Where LOL eval15 low images are looked for (:func:`realtime.paths.lol_root`)."""
    return lol_root() / "eval15" / "low"


def validation_frames(n: int, size: tuple[int, int], lol_dir: str | os.PathLike | None = None) -> tuple[list[np.ndarray], str]:
    """Real frames for backend validation: LOL eval15 low images when present, else demo frames.

    Args:
        n: number of frames.
        size: (width, height) they are fitted to.
        lol_dir: folder of low-light PNGs; ``None`` for :func:`default_lol_dir`.

    Returns:
        (frames as uint8 (H, W, 3) RGB, a short description of their source).
    """
    folder = Path(lol_dir) if lol_dir is not None else default_lol_dir()
    paths = sorted(folder.glob("*.png"))[:n] if folder.is_dir() else []
    if not paths:
        logger.info("no LOL images in %s; validating on %d demo frames", folder, n)
        return demo_frames(n, size), "demo frames (scikit-image photos, darkened)"
    frames = []
    for p in paths:
        bgr = cv2.imread(str(p), cv2.IMREAD_COLOR)
        if bgr is None:
            raise OSError(f"cannot read image {p}")
        frames.append(fit_frame(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), size))
    return frames, f"LOL eval15 low ({len(frames)} images from {folder})"
