"""Training data: LOL pairs with paired augmentation, and synthetic dark/bright pairs.

LOL layout: ``ROOT/low/NAME.png`` and ``ROOT/high/NAME.png``. By default the pairs of
``../shared/data/lol/our485`` are used and a fixed, deterministic validation split is held
out from them (eval15 is never used for training, selection or tuning).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from models.errors import LowlightError
from realtime.convert import to_tensor as _batch_to_tensor
from realtime.degrade import CAMERA_PRESETS, SensorNoise, degrade_frame, exposure_for_mean, h264_frame, noise_std
from realtime.paths import lol_root as default_lol_root

__all__ = [
    "DataError",
    "default_lol_root",
    "list_pairs",
    "split_pairs",
    "load_rgb",
    "PairedCrops",
    "DarkVideoConfig",
    "dark_video_sample",
    "SyntheticConfig",
    "synthesize_dark",
]

IMAGE_EXTS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")


class DataError(LowlightError, ValueError):
    """Training data is missing or malformed."""

    exit_code = 2


def list_pairs(root: str | Path) -> list[tuple[Path, Path]]:
    """Same-named (low, high) image pairs under ``root/low`` and ``root/high``, sorted by name.

    Raises:
        DataError: a folder is missing, empty, or a low image has no high partner.
    """
    root = Path(root)
    low_dir, high_dir = root / "low", root / "high"
    if not low_dir.is_dir() or not high_dir.is_dir():
        raise DataError(f"{root} must contain low/ and high/ folders")
    lows = sorted((p for p in low_dir.iterdir() if p.suffix.lower() in IMAGE_EXTS), key=_natural_key)
    if not lows:
        raise DataError(f"no images in {low_dir}")
    pairs = []
    for p in lows:
        q = high_dir / p.name
        if not q.exists():
            raise DataError(f"{p.name} has no partner in {high_dir}")
        pairs.append((p, q))
    return pairs


def _natural_key(p: Path):
    stem = p.stem
    return (int(stem), "") if stem.isdigit() else (math.inf, stem)


def split_pairs(pairs: list, val_every: int = 14) -> tuple[list, list]:
    """Deterministic split: every ``val_every``-th pair (by sorted name) is validation."""
    val = pairs[val_every // 2 :: val_every]
    train = [p for p in pairs if p not in val]
    return train, val


def load_rgb(path: str | Path) -> np.ndarray:
    """uint8 HxWx3 RGB image.

    Raises:
        DataError: the file cannot be decoded as an image.
    """
    img = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if img is None:
        raise DataError(f"cannot read image {path}")
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


def to_tensor(img: np.ndarray) -> Tensor:
    """uint8 (H, W, 3) -> (3, H, W) in [0, 1] (:func:`realtime.convert.to_tensor`)."""
    return _batch_to_tensor(img)[0]


@dataclass(frozen=True)
class DarkVideoConfig:
    """Training input that looks like real dark video (``realtime.degrade``, the same
    synthesiser as the dark-video benchmark): per crop, a dark frame made from the bright
    reference or LOL's own low image, then the camera's encoder."""

    #: share of the crops whose input is made from the bright reference (the rest keep
    #: LOL's low image, a real capture).
    synthetic: float = 0.5
    #: mean (8-bit) of the synthetic input, drawn log-uniformly.
    mean: tuple[float, float] = (4.0, 45.0)
    #: sensor noise of the synthetic input, each drawn log-uniformly (``SensorNoise``).
    shot: tuple[float, float] = (1e-4, 1e-3)
    read: tuple[float, float] = (3e-4, 2e-3)
    #: share of the synthetic crops also put through the camera pipeline (spatial
    #: denoising of the blacks, black clipping: ``CAMERA_PRESETS["phone"]``).
    camera: float = 0.3
    #: share of all crops put through H.264 yuv420p (an intra frame), CRF drawn uniformly.
    codec: float = 0.8
    crf: tuple[int, int] = (18, 30)


def _log_uniform(rng: np.random.Generator, lo: float, hi: float) -> float:
    return float(np.exp(rng.uniform(np.log(lo), np.log(hi))))


def dark_video_sample(low: np.ndarray, high: np.ndarray, cfg: DarkVideoConfig, rng: np.random.Generator) -> np.ndarray:
    """The training input for one (low, high) uint8 RGB crop under ``cfg``."""
    x = np.ascontiguousarray(low)
    if rng.random() < cfg.synthetic:
        ref = np.ascontiguousarray(high)
        target = min(_log_uniform(rng, *cfg.mean), float(ref.mean()))
        noise = SensorNoise(shot=_log_uniform(rng, *cfg.shot), read=_log_uniform(rng, *cfg.read))
        camera = CAMERA_PRESETS["phone"] if rng.random() < cfg.camera else None
        if target > 0.5:
            x = degrade_frame(ref, exposure_for_mean(ref, target), noise, rng, camera)
    if rng.random() < cfg.codec:
        x = h264_frame(x, crf=int(rng.integers(cfg.crf[0], cfg.crf[1] + 1)))
    return x


class PairedCrops:
    """Random paired crops of LOL pairs held in memory.

    Augmentation parameters (crop window, flips, 90-degree rotation) are drawn once per
    sample and applied to both images of the pair. With ``dark_video`` the input of each
    crop is then made to look like real dark video (:func:`dark_video_sample`).
    """

    def __init__(self, pairs: list[tuple[Path, Path]], seed: int = 0, dark_video: DarkVideoConfig | None = None):
        if not pairs:
            raise DataError("no training pairs")
        self.low = [load_rgb(a) for a, _ in pairs]
        self.high = [load_rgb(b) for _, b in pairs]
        for (a, _), lo, hi in zip(pairs, self.low, self.high):
            if lo.shape != hi.shape:
                raise DataError(f"{a.name}: low and high differ in size {lo.shape} vs {hi.shape}")
        self.rng = np.random.default_rng(seed)
        self.dark_video = dark_video

    def __len__(self) -> int:
        return len(self.low)

    def sample_params(self, shape: tuple[int, ...], patch: int) -> tuple[int, int, int, bool]:
        h, w = shape[:2]
        if h < patch or w < patch:
            raise DataError(f"patch {patch} is larger than an image of {w}x{h}")
        y = int(self.rng.integers(0, h - patch + 1))
        x = int(self.rng.integers(0, w - patch + 1))
        return y, x, int(self.rng.integers(0, 4)), bool(self.rng.integers(0, 2))

    @staticmethod
    def apply(img: np.ndarray, params: tuple[int, int, int, bool], patch: int) -> np.ndarray:
        y, x, rot, flip = params
        out = img[y : y + patch, x : x + patch]
        if flip:
            out = out[:, ::-1]
        return np.rot90(out, rot)

    def batch(self, size: int, patch: int) -> tuple[Tensor, Tensor]:
        """(low, high) float tensors (size, 3, patch, patch) in [0, 1]."""
        lows, highs = [], []
        for _ in range(size):
            k = int(self.rng.integers(0, len(self.low)))
            params = self.sample_params(self.low[k].shape, patch)
            lo, hi = self.apply(self.low[k], params, patch), self.apply(self.high[k], params, patch)
            if self.dark_video is not None:
                lo = dark_video_sample(lo, hi, self.dark_video, self.rng)
            lows.append(lo)
            highs.append(hi)
        lo, hi = _batch_to_tensor(np.stack(lows)), _batch_to_tensor(np.stack(highs))
        return lo, hi


@dataclass(frozen=True)
class SyntheticConfig:
    """Synthetic dark frames made from bright ones, in linear light."""

    gamma: float = 2.2
    #: mean illumination range (linear light).
    level: tuple[float, float] = (0.02, 0.25)
    #: relative spread of the smooth illumination field (log-normal, low frequency).
    field_spread: float = 0.5
    #: coarse grid of the random field (cells across the short side).
    field_cells: int = 4
    #: Poisson (shot) noise: variance = shot * x, range of shot.
    shot: tuple[float, float] = (1e-4, 4e-3)
    #: Gaussian (read) noise std range, linear light.
    read: tuple[float, float] = (1e-3, 8e-3)
    #: colour of the light: per-channel log-normal gains with this spread (geometric mean 1).
    #: 0 keeps the light grey and I one channel; > 0 makes I three channels.
    cast_spread: float = 0.0


def synthesize_dark(high: Tensor, cfg: SyntheticConfig = SyntheticConfig(), generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
    """Bright sRGB-ish images (N,3,H,W) in [0,1] -> (dark image, its illumination I).

    A smooth random illumination field L (one channel, times a random colour per channel when
    ``cfg.cast_spread`` > 0) multiplies the image in linear light,
    Poisson-Gaussian sensor noise is added, and the gamma is re-applied. The target I is the
    noise-free ratio dark/high in the gamma domain, i.e. L**(1/gamma), so that dark / I
    recovers the bright image as the S/I model output does.
    """
    n, _, h, w = high.shape
    g = generator
    lin = high.clamp(0, 1) ** cfg.gamma
    cells = max(2, cfg.field_cells)
    ch = cells if h <= w else max(2, round(cells * h / w))
    cw = cells if w <= h else max(2, round(cells * w / h))
    z = torch.randn(n, 1, ch, cw, generator=g) * cfg.field_spread
    field = torch.exp(F.interpolate(z, size=(h, w), mode="bicubic", align_corners=False))
    lo, hi = cfg.level
    level = torch.exp(torch.empty(n, 1, 1, 1).uniform_(math.log(lo), math.log(hi), generator=g))
    illum = level * field / field.mean(dim=(2, 3), keepdim=True)
    if cfg.cast_spread > 0:
        cast = torch.randn(n, 3, 1, 1, generator=g) * cfg.cast_spread
        illum = illum * torch.exp(cast - cast.mean(dim=1, keepdim=True))
    illum = illum.clamp(1e-3, 1.0)
    dark = lin * illum
    shot = torch.empty(n, 1, 1, 1).uniform_(*cfg.shot, generator=g)
    read = torch.empty(n, 1, 1, 1).uniform_(*cfg.read, generator=g)
    noise = torch.randn(dark.shape, generator=g) * noise_std(dark, shot, read)  # realtime.degrade's sensor model
    dark = (dark + noise).clamp(0.0, 1.0) ** (1.0 / cfg.gamma)
    return dark, illum ** (1.0 / cfg.gamma)
