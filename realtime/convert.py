"""uint8 images <-> float tensors: the one conversion, with one rounding rule.

Images are uint8 RGB, (H, W, 3) or a batch (N, H, W, 3). Tensors are float, (N, 3, H, W),
values in [0, 1]. Back to uint8, values are scaled by 255, clamped and rounded half up
(``floor(255 * v + 0.5)``), as the CPU kernels (:mod:`realtime.kernels`, which convert
straight into reused buffers on the per-frame path) and the CUDA path do.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

__all__ = ["to_tensor", "to_uint8", "unit_from_u8", "u8_from_unit"]


def unit_from_u8(t: Tensor, dtype: torch.dtype = torch.float32) -> Tensor:
    """uint8 tensor (any layout) -> ``dtype`` in [0, 1]; usable inside exported graphs."""
    return t.to(dtype) * (1.0 / 255.0)


def u8_from_unit(t: Tensor) -> Tensor:
    """Float tensor in [0, 1] (any layout) -> uint8, rounded half up and clamped; usable
    inside exported graphs."""
    return (t * 255.0 + 0.5).clamp(0.0, 255.0).to(torch.uint8)


def to_tensor(img: np.ndarray, device: torch.device | str | None = None, dtype: torch.dtype = torch.float32,
              channels_last: bool = False) -> Tensor:
    """uint8 RGB (H, W, 3) or (N, H, W, 3) -> (N, 3, H, W) in [0, 1] on ``device``.

    ``channels_last`` gives the memory format oneDNN runs fastest on the CPU.
    """
    a = np.ascontiguousarray(img)
    if a.dtype != np.uint8 or a.ndim not in (3, 4) or a.shape[-1] != 3:
        raise ValueError(f"expected uint8 (H, W, 3) or (N, H, W, 3), got {a.shape} {a.dtype}")
    t = unit_from_u8(torch.from_numpy(a if a.ndim == 4 else a[None]).permute(0, 3, 1, 2).to(device), dtype)
    return t.contiguous(memory_format=torch.channels_last) if channels_last else t.contiguous()


def to_uint8(t: Tensor) -> np.ndarray:
    """(N, 3, H, W) or (3, H, W) in [0, 1] -> uint8 RGB (N, H, W, 3) or (H, W, 3), rounded
    half up and clamped."""
    if t.ndim not in (3, 4) or t.shape[-3] != 3:
        raise ValueError(f"expected (N, 3, H, W) or (3, H, W), got {tuple(t.shape)}")
    return np.ascontiguousarray(u8_from_unit(t.detach().float()).movedim(-3, -1).cpu().numpy())
