"""Frames for validation and demos: LOL eval15 low images when present, else built-in
demo frames (scikit-image sample photos darkened synthetically). Nothing is downloaded.
"""
from __future__ import annotations

import logging
import os
from pathlib import Path

import cv2
import numpy as np

logger = logging.getLogger(__name__)

__all__ = ["demo_frames", "darken", "fit_frame", "validation_frames", "default_lol_dir"]

#: scikit-image sample photos bundled with the package (no download needed).
_DEMO_IMAGES = ("coffee", "astronaut", "chelsea", "rocket", "immunohistochemistry")


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


def darken(img: np.ndarray, exposure: float, rng: np.random.Generator, noise: float = 0.01) -> np.ndarray:
    """Simulate a low-light capture of a well-exposed uint8 RGB image.

    Linearises with gamma 2.2, scales by ``exposure``, adds signal-dependent (shot) and
    read noise of relative size ``noise``, and re-encodes to uint8 sRGB-like values.
    """
    lin = (img.astype(np.float32) / 255.0) ** 2.2 * exposure
    sigma = noise * np.sqrt(lin + 1e-4)
    lin = np.clip(lin + rng.standard_normal(lin.shape).astype(np.float32) * sigma, 0.0, 1.0)
    out = np.round(lin ** (1.0 / 2.2) * 255.0)
    return np.clip(out, 0, 255).astype(np.uint8)


def demo_frames(n: int, size: tuple[int, int], seed: int = 0) -> list[np.ndarray]:
    """``n`` synthetic low-light frames, uint8 (H, W, 3) RGB, C-contiguous.

    Args:
        n: number of frames (the bundled photos repeat with different exposures).
        size: (width, height) of every frame, like ``cv2.resize``.
        seed: noise seed; the same arguments give the same frames.

    Raises:
        ValueError: ``n`` < 0 or a non-positive size.
    """
    import skimage.data

    if n < 0 or int(size[0]) <= 0 or int(size[1]) <= 0:
        raise ValueError(f"need n >= 0 and a positive (width, height), got n={n}, size={size}")
    rng = np.random.default_rng(seed)
    frames = []
    for i in range(n):
        src = getattr(skimage.data, _DEMO_IMAGES[i % len(_DEMO_IMAGES)])()
        exposure = float(rng.uniform(0.03, 0.15))
        frames.append(darken(fit_frame(src, size), exposure, rng))
    return frames


def default_lol_dir() -> Path:
    """Where LOL eval15 low images are looked for (``$LOWLIGHT_SHARED`` overrides ../shared)."""
    shared = os.environ.get("LOWLIGHT_SHARED")
    base = Path(shared) if shared else Path(__file__).resolve().parents[2] / "shared"
    return base / "data" / "lol" / "eval15" / "low"


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
