"""A short dark, noisy clip built from public-domain images shipped with scikit-image.

``make_demo_clip`` darkens ``skimage.data`` photographs in linear light with a slow
pan/zoom and exposes them as a camera does (:func:`realtime.degrade.expose`: fresh
Poisson-Gaussian sensor noise, sRGB, 8 bits), and encodes them (H.264) with a
quiet AAC tone, so a fresh machine can run the whole pipeline without any data.
"""
from __future__ import annotations

import math
import os
from pathlib import Path

import cv2
import numpy as np

from .degrade import SensorNoise, expose, srgb_to_linear

__all__ = ["make_demo_clip", "demo_images", "DEMO_IMAGES"]

DEMO_IMAGES = ("astronaut", "chelsea", "coffee", "rocket")


def demo_images() -> list[np.ndarray]:
    """The ``DEMO_IMAGES`` photos bundled with scikit-image, uint8 RGB (no download)."""
    from skimage import data

    out = []
    for name in DEMO_IMAGES:
        img = getattr(data, name)()
        if img.ndim == 2:
            img = np.stack([img] * 3, axis=-1)
        out.append(np.ascontiguousarray(img[..., :3]))
    return out


def _pan_zoom(img: np.ndarray, w: int, h: int, t: float) -> np.ndarray:
    """View of ``img`` covering (w, h), zooming 1.0 -> 1.2 and panning with t in [0, 1]."""
    ih, iw = img.shape[:2]
    s = max(w / iw, h / ih) * (1.0 + 0.2 * t)
    # centre moves across the slack left by the zoom
    cx = iw / 2 + (t - 0.5) * max(0.0, iw - w / s) * 0.8
    cy = ih / 2 + (0.5 - t) * max(0.0, ih - h / s) * 0.5
    m = np.array([[s, 0, w / 2 - s * cx], [0, s, h / 2 - s * cy]], dtype=np.float64)
    return cv2.warpAffine(img, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)


def make_demo_clip(
    path: str | os.PathLike,
    seconds: float = 6.0,
    fps: int = 24,
    size: tuple[int, int] = (640, 360),
    darken: tuple[float, float] = (0.1, 0.2),
    photons: float = 300.0,
    read_noise: float = 0.004,
    audio: bool = True,
    crf: int = 18,
    preset: str = "veryfast",
    seed: int = 0,
) -> Path:
    """Write a dark, noisy H.264 clip and return its path.

    Args:
        path: output file (.mp4 or .mkv).
        seconds, fps, size: length, frame rate and (width, height).
        darken: range of the linear-light exposure factor (one per image segment).
        photons: photo-electrons at full scale (lower = more shot noise).
        read_noise: standard deviation of the Gaussian read noise (linear units).
        audio: add a quiet 440 Hz AAC tone (to exercise audio passthrough).
        crf, preset: libx264 settings.
        seed: noise seed.
    """
    from .synthetic import write_clip  # PyAV, only needed here

    rng = np.random.default_rng(seed)
    w, h = size
    images = [srgb_to_linear(im / np.float32(255.0)) for im in demo_images()]
    noise = SensorNoise(shot=1.0 / photons, read=read_noise)
    n = max(1, round(seconds * fps))
    per = math.ceil(n / len(images))
    gains = np.linspace(darken[0], darken[1], len(images))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)

    def frames():
        for i in range(n):
            seg = min(i // per, len(images) - 1)
            t = (i - seg * per) / max(1, per - 1)
            yield expose(_pan_zoom(images[seg], w, h, t) * np.float32(gains[seg]), noise, rng)

    write_clip(path, n, (w, h), fps, audio="aac" if audio else None, options={"crf": str(crf), "preset": preset}, frames=frames())
    return path
