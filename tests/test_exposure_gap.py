"""bench/exposure_gap.py's post-processing levers: chroma blur keeps the luma, sharpening
keeps the chroma and adds contrast only at edges."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def _ycc_filter():
    spec = importlib.util.spec_from_file_location("exposure_gap", ROOT / "bench" / "exposure_gap.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod._ycc_filter


def _luma(rgb: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(rgb, cv2.COLOR_RGB2YCrCb)[..., 0].astype(np.float32)


def test_chroma_blur_keeps_luma_and_flattens_colour_noise():
    rng = np.random.default_rng(0)
    img = np.full((48, 64, 3), 128, np.uint8)
    img[:, 32:] = (200, 60, 40)  # a colour edge
    noisy = np.clip(img.astype(np.int16) + rng.integers(-20, 21, img.shape), 0, 255).astype(np.uint8)
    out = _ycc_filter()(noisy, chroma_sigma=3.0)
    assert np.abs(_luma(out) - _luma(noisy)).mean() < 1.5  # only rounding and clipping
    chroma = lambda a: cv2.cvtColor(a, cv2.COLOR_RGB2YCrCb)[8:-8, 4:24, 1:].astype(np.float32)
    assert chroma(out).std() < 0.5 * chroma(noisy).std()


def test_sharpen_is_identity_on_flat_frames_and_steepens_edges():
    flat = np.full((32, 32, 3), (90, 120, 150), np.uint8)
    f = _ycc_filter()
    assert np.abs(f(flat, sharpen=(1.0, 0.6)).astype(int) - f(flat).astype(int)).max() <= 1
    step = np.zeros((32, 32, 3), np.uint8)
    step[:, 16:] = 200
    step = cv2.GaussianBlur(step, (0, 0), 1.5)
    y0, y1 = _luma(step), _luma(f(step, sharpen=(1.0, 0.6)))
    assert np.abs(np.diff(y1, axis=1)).max() > np.abs(np.diff(y0, axis=1)).max() + 2
