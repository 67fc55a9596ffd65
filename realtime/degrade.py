"""Dark video from bright references, made the way a camera makes it.

This is the one place that synthesises dark video (benchmarks, training, demos):

1. bright sRGB reference (uint8) -> linear light (inverse sRGB curve);
2. x ``exposure`` (a linear factor, see :func:`exposure_for_mean`);
3. Poisson-Gaussian sensor noise, drawn fresh for every frame: per pixel and channel
   ``y = x + sqrt(shot * x + read**2) * N(0, 1)`` in linear light, clipped to [0, 1]
   (the heteroscedastic Gaussian approximation of Poisson shot noise plus read noise,
   parameters in :class:`SensorNoise`);
4. optionally a camera pipeline (:class:`CameraPipeline`): the camera's own spatial
   denoising weighted toward dark regions, then black-level clipping;
5. the sRGB curve, rounding to 8 bits;
6. H.264 yuv420p with libx264 at CRF 23, as phones and webcams write (clips:
   :func:`write_dark_clip`; one frame, e.g. a training crop: :func:`h264_frame`).

Everything is vectorised numpy; one 600x400 frame takes a few tens of milliseconds.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Iterable, Sequence

import cv2
import numpy as np

__all__ = [
    "SensorNoise",
    "CameraPipeline",
    "NOISE_PRESETS",
    "CAMERA_PRESETS",
    "srgb_to_linear",
    "linear_to_srgb",
    "noise_std",
    "exposure_for_mean",
    "expose",
    "degrade_frame",
    "pattern_frames",
    "h264_frame",
    "write_dark_clip",
]


@dataclass(frozen=True)
class SensorNoise:
    """Poisson-Gaussian sensor noise in linear light (signal in [0, 1]).

    Attributes:
        shot: shot-noise variance per unit of (exposed) linear signal: ``var = shot * x``
            (``1 / shot`` is the photo-electron count at full scale).
        read: read-noise standard deviation (linear units).
    """

    shot: float = 4e-4
    read: float = 1e-3

    def std(self, x: np.ndarray | float) -> np.ndarray | float:
        """Noise standard deviation (linear) at exposed linear signal ``x``."""
        return noise_std(np.maximum(x, 0.0), self.shot, self.read)


def noise_std(x, shot, read):
    """Poisson-Gaussian noise std ``sqrt(shot * x + read**2)`` at exposed linear signal
    ``x`` >= 0; numpy arrays and torch tensors alike (``shot`` and ``read`` may be arrays
    that broadcast, e.g. one per training sample)."""
    return (shot * x + read**2) ** 0.5


@dataclass(frozen=True)
class CameraPipeline:
    """The camera's own processing before encoding.

    Attributes:
        denoise_sigma: std (pixels) of the Gaussian blur of the camera's spatial
            denoiser; 0 turns it off.
        dark_knee: 8-bit luma below which the denoised image is used fully; above it the
            weight falls linearly to 0 at ``2 * dark_knee`` (cameras smear the blacks).
        black_level: 8-bit level below which every channel value is crushed to 0.
    """

    denoise_sigma: float = 2.0
    dark_knee: float = 12.0
    black_level: float = 6.0


NOISE_PRESETS: dict[str, SensorNoise] = {
    "clean": SensorNoise(shot=1e-4, read=3e-4),
    "phone": SensorNoise(shot=4e-4, read=1e-3),
    "webcam": SensorNoise(shot=1e-3, read=2e-3),
}
CAMERA_PRESETS: dict[str, CameraPipeline] = {"phone": CameraPipeline()}


def srgb_to_linear(v: np.ndarray) -> np.ndarray:
    """Inverse sRGB curve, ``v`` in [0, 1] -> linear light in [0, 1] (float32)."""
    v = np.asarray(v, dtype=np.float32)
    return np.where(v <= 0.04045, v / 12.92, ((v + 0.055) / 1.055) ** 2.4).astype(np.float32)


def linear_to_srgb(x: np.ndarray) -> np.ndarray:
    """sRGB curve, linear light in [0, 1] -> ``v`` in [0, 1] (float32)."""
    x = np.clip(np.asarray(x, dtype=np.float32), 0.0, 1.0)
    return np.where(x <= 0.0031308, 12.92 * x, 1.055 * np.power(x, 1 / 2.4) - 0.055).astype(np.float32)


def _check_ref(ref: np.ndarray) -> None:
    if not isinstance(ref, np.ndarray) or ref.dtype != np.uint8 or ref.ndim != 3 or ref.shape[2] != 3:
        raise ValueError("reference must be an (H, W, 3) uint8 RGB array")


def exposure_for_mean(
    ref: np.ndarray,
    target_mean: float,
    noise: SensorNoise | None = None,
    iterations: int = 30,
    seed: int = 0,
) -> float:
    """Linear exposure factor that makes the dark frame's mean (0..255 scale) ``target_mean``.

    Bisection on log exposure. With ``noise`` the mean includes the lift that clipping
    negative noise at 0 gives to the darkest pixels (one fixed noise field, on every 2nd
    pixel, so the bisection is deterministic); without it the noise-free signal is used.

    Raises:
        ValueError: ``ref`` is not uint8 RGB, or the target is outside (0, mean of ``ref``].
    """
    _check_ref(ref)
    lin = srgb_to_linear(ref[::2, ::2] / 255.0)
    if not 0 < target_mean <= float(ref.mean()) + 1e-6:
        raise ValueError(f"target mean {target_mean} must lie in (0, {ref.mean():.1f}] (the reference's mean)")
    z = np.random.default_rng(seed).standard_normal(lin.shape, dtype=np.float32) if noise is not None else None

    def mean_at(k: float) -> float:
        x = lin * k
        if noise is not None:
            x = x + noise.std(x) * z
        return float(linear_to_srgb(x).mean() * 255.0)

    lo, hi = -12.0, 0.0  # log2 exposure
    for _ in range(iterations):
        mid = 0.5 * (lo + hi)
        if mean_at(2.0**mid) < target_mean:
            lo = mid
        else:
            hi = mid
    return float(2.0 ** (0.5 * (lo + hi)))


def _camera(v8: np.ndarray, cam: CameraPipeline) -> np.ndarray:
    """Camera spatial denoising (dark-weighted) and black clipping on 0..255 float32 RGB."""
    if cam.denoise_sigma > 0:
        blur = cv2.GaussianBlur(v8, (0, 0), cam.denoise_sigma)
        luma = blur @ np.array([0.299, 0.587, 0.114], np.float32)
        w = np.clip(2.0 - luma / max(cam.dark_knee, 1e-6), 0.0, 1.0)[..., None]
        v8 = w * blur + (1.0 - w) * v8
    if cam.black_level > 0:
        v8 = np.where(v8 < cam.black_level, 0.0, v8).astype(np.float32)
    return v8


def expose(
    x: np.ndarray,
    noise: SensorNoise | None,
    rng: np.random.Generator,
    camera: CameraPipeline | None = None,
) -> np.ndarray:
    """Steps 3 to 5: exposed linear light (H, W, 3) float32 -> a dark uint8 RGB frame.

    Args:
        x: linear light after the exposure, in [0, 1].
        noise: sensor noise (None: noise-free).
        rng: source of the noise; draw a fresh frame by calling again.
        camera: optional camera processing (denoise + black clipping).
    """
    if noise is not None:
        x = x + noise.std(x).astype(np.float32) * rng.standard_normal(x.shape, dtype=np.float32)
    v8 = linear_to_srgb(x) * np.float32(255.0)
    if camera is not None:
        v8 = _camera(v8, camera)
    return np.clip(np.rint(v8), 0, 255).astype(np.uint8)


def degrade_frame(
    ref: np.ndarray,
    exposure: float,
    noise: SensorNoise | None,
    rng: np.random.Generator,
    camera: CameraPipeline | None = None,
) -> np.ndarray:
    """One dark uint8 RGB frame from a bright uint8 RGB reference (before the codec).

    Args:
        ref: (H, W, 3) uint8 sRGB reference.
        exposure: linear factor (see :func:`exposure_for_mean`).
        noise: sensor noise (None: noise-free).
        rng: source of the noise; draw a fresh frame by calling again.
        camera: optional camera processing (denoise + black clipping).
    """
    _check_ref(ref)
    return expose(srgb_to_linear(ref / np.float32(255.0)) * np.float32(exposure), noise, rng, camera)


def pattern_frames(n: int, width: int, height: int, seed: int = 0, level: float = 0.12,
                   noise: SensorNoise | None = NOISE_PRESETS["webcam"]):
    """Yield ``n`` dark uint8 RGB frames of a moving test pattern (gradients and a moving
    square, no data needed): the pattern (sRGB values up to about ``2 * level``) taken to
    linear light, then :func:`expose` (fresh sensor noise in every frame, sRGB, 8 bits)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    s = max(2, height // 6)
    for i in range(n):
        t = i / max(1, n)
        r = 0.5 + 0.5 * np.sin(xx / max(8, width / 6) + 6.28 * t)
        g = 0.5 + 0.5 * np.cos(yy / max(6, height / 5) - 6.28 * t)
        b = ((xx + yy + i * 4) % max(16, width // 4)) / max(16, width // 4)
        v = np.stack([r, g, b], axis=-1) * np.float32(level)
        cx, cy = int((0.2 + 0.6 * t) * width), height // 2
        v[max(0, cy - s): cy + s, max(0, cx - s): cx + s] += np.float32(level)
        yield expose(srgb_to_linear(v), noise, rng)


def h264_frame(frame: np.ndarray, crf: int = 23, preset: str = "veryfast") -> np.ndarray:
    """One uint8 RGB frame through libx264 (yuv420p, CRF ``crf``, an intra frame) and back,
    as a decoder gives it: the codec's blocks, its flattened dark areas and 4:2:0 chroma.
    Odd sizes are padded by edge replication for the codec and cropped back."""
    import av

    _check_ref(frame)
    h, w = frame.shape[:2]
    src = np.ascontiguousarray(np.pad(frame, ((0, h % 2), (0, w % 2), (0, 0)), mode="edge"))
    enc = av.CodecContext.create("libx264", "w")
    enc.width, enc.height, enc.pix_fmt = src.shape[1], src.shape[0], "yuv420p"
    enc.time_base = Fraction(1, 25)
    enc.options = {"crf": str(int(crf)), "preset": preset, "threads": "1"}
    packets = list(enc.encode(av.VideoFrame.from_ndarray(src, format="rgb24"))) + list(enc.encode(None))
    dec = av.CodecContext.create("h264", "r")
    out = [f for p in packets for f in dec.decode(p)] + list(dec.decode(None))
    if not out:
        raise ValueError(f"libx264 returned no frame for a {w}x{h} input")
    return np.ascontiguousarray(out[0].to_ndarray(format="rgb24")[:h, :w])


def write_dark_clip(
    path: str | os.PathLike,
    refs: Iterable[np.ndarray] | Sequence[np.ndarray],
    exposure: float,
    noise: SensorNoise | None = NOISE_PRESETS["phone"],
    seed: int = 0,
    camera: CameraPipeline | None = None,
    fps: int = 24,
    crf: int = 23,
    preset: str = "fast",
) -> Path:
    """Write a dark H.264 (libx264, yuv420p, CRF ``crf``) clip, one frame per reference.

    Every frame gets fresh noise from ``np.random.default_rng(seed)``; the same seed and
    references give the same frames (and the same file). Returns the path.
    """
    from .synthetic import write_clip

    refs = list(refs)
    if not refs:
        raise ValueError("no reference frames")
    h, w = refs[0].shape[:2]
    if h % 2 or w % 2:
        raise ValueError(f"frame size {w}x{h} must be even for yuv420p")
    rng = np.random.default_rng(seed)
    frames = (degrade_frame(r, exposure, noise, rng, camera) for r in refs)
    return write_clip(path, size=(w, h), fps=fps, codec="libx264",
                      options={"crf": str(crf), "preset": preset, "threads": "1"}, frames=frames)
