"""Check a backend's output against eager FP32 of the same model on real frames."""
from __future__ import annotations

import copy
import logging
import math
from contextlib import contextmanager
from typing import Callable, Iterator, Sequence

import numpy as np
import torch
from torch import Tensor, nn

from ..convert import to_tensor, to_uint8
from ..errors import ValidationFailed
from .thresholds import MAX_ABS_DIFF_U8, MIN_PSNR_DB

logger = logging.getLogger(__name__)

__all__ = ["compare_uint8", "reference_outputs", "validate_backend"]


def compare_uint8(a: np.ndarray, b: np.ndarray) -> tuple[float, int]:
    """(PSNR in dB, largest absolute difference) of two uint8 images; PSNR is inf when equal."""
    if a.shape != b.shape:
        raise ValueError(f"shapes differ: {a.shape} vs {b.shape}")
    d = a.astype(np.int16) - b.astype(np.int16)
    mse = float(np.mean(d.astype(np.float64) ** 2))
    psnr = math.inf if mse == 0.0 else 10.0 * math.log10(255.0**2 / mse)
    return psnr, int(np.abs(d).max(initial=0))


@contextmanager
def _no_tf32() -> Iterator[None]:
    saved = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved


def reference_outputs(model: nn.Module, frames: Sequence[np.ndarray], device: torch.device) -> list[np.ndarray]:
    """uint8 outputs of eager FP32 ``model`` (a copy, TF32 off) on ``frames``."""
    ref = copy.deepcopy(model).to(device=device, dtype=torch.float32).eval()
    outs = []
    with torch.inference_mode(), _no_tf32():
        for f in frames:
            outs.append(to_uint8(ref(to_tensor(f, device, channels_last=device.type == "cpu")))[0])
    return outs


def validate_backend(
    compiled: Callable[[Tensor], Tensor],
    reference: nn.Module,
    frames: Sequence[np.ndarray],
    *,
    references: Sequence[np.ndarray] | None = None,
    min_psnr: float = MIN_PSNR_DB,
    max_abs_diff: int = MAX_ABS_DIFF_U8,
) -> dict:
    """Run ``compiled`` (a :class:`~realtime.backends.CompiledModel`) on ``frames`` and
    compare its uint8 output with eager FP32 ``reference``.

    Args:
        compiled: the backend; needs ``device``, ``dtype`` and ``__call__``.
        reference: the FP32 model it was built from.
        frames: uint8 (H, W, 3) RGB frames of the backend's shape.
        references: precomputed :func:`reference_outputs` (saves time when several
            backends are validated on the same frames).

    Returns:
        {"psnr_db": worst PSNR, "max_abs_diff": worst difference, "frames": count}.

    Raises:
        ValidationFailed: a frame's PSNR is below ``min_psnr`` or a value differs by more
            than ``max_abs_diff``.
        ValueError: no frames.
    """
    if not frames:
        raise ValueError("validation needs at least one frame")
    device = compiled.device  # type: ignore[attr-defined]
    dtype = compiled.dtype  # type: ignore[attr-defined]
    refs = list(references) if references is not None else reference_outputs(reference, frames, device)
    worst_psnr, worst_diff = math.inf, 0
    for f, r in zip(frames, refs):
        out = compiled(to_tensor(f, device, dtype, channels_last=device.type == "cpu"))
        if not bool(torch.isfinite(out).all()):
            raise ValidationFailed(f"{getattr(compiled, 'backend', 'backend')} produced NaN/inf values")
        psnr, diff = compare_uint8(to_uint8(out)[0], r)
        worst_psnr, worst_diff = min(worst_psnr, psnr), max(worst_diff, diff)
    name = f"{getattr(compiled, 'backend', 'backend')}/{getattr(compiled, 'model_name', '?')}"
    if worst_psnr < min_psnr or worst_diff > max_abs_diff:
        raise ValidationFailed(
            f"{name} differs from eager FP32: PSNR {worst_psnr:.1f} dB (need >= {min_psnr:g}), "
            f"max diff {worst_diff}/255 (allowed {max_abs_diff})"
        )
    logger.info("%s matches eager FP32: PSNR %.1f dB, max diff %d/255", name, worst_psnr, worst_diff)
    return {"psnr_db": worst_psnr, "max_abs_diff": worst_diff, "frames": len(frames)}
