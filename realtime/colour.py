"""Colour conversions in torch (so they run on the GPU next to the model).

I420 (planar YUV 4:2:0, the layout of ``VideoFrame.to_ndarray()`` for yuv420p and of
OpenCV's ``COLOR_*_I420`` codes): a (H*3/2, W) uint8 array holding Y (H x W), then U
and V (H/2 x W/2 each). BT.601 limited range, chroma up-sampled by repetition, as
OpenCV does, so the GPU and CPU paths agree to a level or two.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["i420_to_rgb", "rgb_to_i420"]


def _planes(i420: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    h2, w = i420.shape
    h = h2 * 2 // 3
    flat = i420.reshape(-1)
    q = (h // 2) * (w // 2)
    y = flat[: h * w].view(h, w)
    u = flat[h * w: h * w + q].view(h // 2, w // 2)
    v = flat[h * w + q: h * w + 2 * q].view(h // 2, w // 2)
    return y, u, v


def i420_to_rgb(i420: Tensor, dtype: torch.dtype = torch.float32) -> Tensor:
    """(H*3/2, W) uint8 I420 -> (1, 3, H, W) RGB in [0, 1] of ``dtype`` (channels-last)."""
    y, u, v = _planes(i420)
    yf = (y.to(torch.float32) - 16.0) * (255.0 / 219.0)
    uv = torch.stack([u, v]).to(torch.float32).sub_(128.0)[None]
    uv = F.interpolate(uv, scale_factor=2, mode="nearest")[0] * (255.0 / 224.0)
    uc, vc = uv[0], uv[1]
    r = yf + 1.402 * vc
    g = yf - 0.344136 * uc - 0.714136 * vc
    b = yf + 1.772 * uc
    rgb = torch.stack([r, g, b])[None].div_(255.0).clamp_(0.0, 1.0)
    return rgb.to(dtype).contiguous(memory_format=torch.channels_last)


def rgb_to_i420(rgb: Tensor, out: Tensor | None = None) -> Tensor:
    """(1, 3, H, W) RGB in [0, 1] (H, W even) -> (H*3/2, W) uint8 I420 (into ``out``)."""
    x = rgb[0].to(torch.float32) * 255.0
    r, g, b = x[0], x[1], x[2]
    h, w = r.shape
    y = 0.299 * r + 0.587 * g + 0.114 * b
    # chroma from the 2x2 means (as OpenCV's RGB2YUV_I420)
    sub = F.avg_pool2d(x[None], 2)[0]
    ys = 0.299 * sub[0] + 0.587 * sub[1] + 0.114 * sub[2]
    u = (sub[2] - ys) * (0.564 * 224.0 / 255.0) + 128.0
    v = (sub[0] - ys) * (0.713 * 224.0 / 255.0) + 128.0
    y = y * (219.0 / 255.0) + 16.0
    if out is None:
        out = torch.empty((h * 3 // 2, w), dtype=torch.uint8, device=rgb.device)
    yo, uo, vo = _planes(out)
    for dst, src in ((yo, y), (uo, u), (vo, v)):
        dst.copy_(src.add_(0.5).clamp_(0.0, 255.0))
    return out
