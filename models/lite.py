"""``lite``: our CPU real-time model.

Illumination is low-frequency, so the network never sees the full-resolution frame.
It works on a ``scale``-times smaller grid of box means (which also averages the
sensor noise down) plus a local-contrast map, and predicts per cell

* a colour gain ``G`` (3 ch), and
* a detail weight ``a`` in [0, 1] (1 ch): how much full-resolution detail to keep.

At full resolution the frame is rendered as an edge-aware, guided-filter-like blend
``out = G * (a * x + (1 - a) * mean)``. That folds into one per-pixel, per-channel
affine map ``out = P * x + Q`` whose coefficients are computed on the small grid and
bilinearly up-sampled (as in the fast guided filter and HDRNet's slicing), so the
full-resolution work is one fused multiply-add per pixel.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from ._base import EnhancementModel
from ._layers import UNet, luminance, pad_to_multiple
from ._registry import register_model, with_config

__all__ = ["LiteConfig", "LiteNet", "lite", "lite_coefficients", "grid_scale", "GRID_ROWS"]


@dataclass(frozen=True)
class LiteConfig:
    #: side of the box over which the network's grid cells average the frame.
    scale: int = 4
    #: U-Net widths on the small grid.
    widths: tuple[int, ...] = (8, 16, 32, 48)
    #: output brightness the gain starts from (mean of the LOL references is ~0.45).
    target: float = 0.45


class LiteNet(EnhancementModel):
    illum_exposure = 1  # G is a gain applied to the input
    affine_grid = True

    def __init__(self, cfg: LiteConfig):
        super().__init__()
        self.cfg = cfg
        self.net = UNet(6, 4, cfg.widths)
        self.pad_multiple = cfg.scale * self.net.multiple
        with torch.no_grad():
            self.net.head.weight.mul_(0.1)
            self.net.head.bias.zero_()

    @property
    def grid_cell(self) -> int:
        """Side of a grid cell in pixels (the config's ``scale``)."""
        return self.cfg.scale

    def sized_for(self, height: int, width: int) -> "LiteNet":
        """The same weights with the grid scale of :func:`grid_scale` for this frame size."""
        s = grid_scale(height, width)
        return self if s == self.cfg.scale else with_config("lite", self, scale=s)

    def tuning_variants(self, height: int, width: int) -> list[dict]:
        """The frame-size scale of :func:`grid_scale` and the fixed scales of
        :data:`TUNED_SCALES` that fit the frame (the weights do not depend on the scale)."""
        scales = {grid_scale(height, width)} | {s for s in TUNED_SCALES if s * 8 <= min(height, width)}
        return [{"scale": s} for s in sorted(scales)]

    def grid_coefficients(self, aux: Tensor, gain: Tensor, strength: float = 1.0) -> Tensor:
        """Per-cell affine coefficients (:func:`lite_coefficients`)."""
        return lite_coefficients(aux, gain, strength)

    def box_stats(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Padded frame -> per-cell box means of RGB (N,3,h,w), luma (N,1,h,w) and luma^2 (N,1,h,w).

        CPU kernels may compute the same statistics straight from uint8 frames and call
        :meth:`estimate_from_stats`.
        """
        s = self.cfg.scale
        lum = luminance(x)
        return F.avg_pool2d(x, s), F.avg_pool2d(lum, s), F.avg_pool2d(lum * lum, s)

    def estimate_from_stats(self, mean: Tensor, m1: Tensor, m2: Tensor) -> tuple[Tensor, Tensor]:
        """Grid statistics (see :meth:`box_stats`) -> (aux, gain) as :meth:`estimate` returns them."""
        std = (m2 - m1 * m1).clamp(min=0.0).add(1e-6).sqrt()
        norm = m1.mean(dim=(2, 3), keepdim=True) + 1e-3
        feats = torch.cat(
            [
                mean / norm,  # exposure-normalised colour and structure
                std / (m1 + 0.01),  # relative local contrast: edges vs noise
                std / norm,
                torch.log(norm).expand_as(m1) / 4.0,  # how dark the frame is overall
            ],
            dim=1,
        )
        y = self.net(feats)
        gain = torch.exp(y[:, :3].clamp(-6.0, 6.0)) * (self.cfg.target / norm)
        a = torch.sigmoid(y[:, 3:4] + 2.0)
        return torch.cat([a, mean], dim=1), gain

    def estimate(self, x: Tensor) -> tuple[Tensor, Tensor]:
        xp, _, _ = pad_to_multiple(x, self.pad_multiple)
        return self.estimate_from_stats(*self.box_stats(xp))

    def render(self, x: Tensor, aux: Tensor | None, illum: Tensor) -> Tensor:
        assert aux is not None
        h, w = x.shape[-2], x.shape[-1]
        s = self.cfg.scale
        coef = lite_coefficients(aux, illum)
        up = F.interpolate(coef, size=(aux.shape[-2] * s, aux.shape[-1] * s), mode="bilinear", align_corners=False)
        up = up[..., :h, :w]
        return (up[:, :3] * x + up[:, 3:]).clamp(0.0, 1.0)


#: fixed grid scales ``python -m calibrate`` also times.
TUNED_SCALES: tuple[int, ...] = (4, 8)

#: grid cells across the short side of a frame that the network was trained at
#: (LOL 600x400 frames at scale 4: 100 rows).
GRID_ROWS = 100


def grid_scale(height: int, width: int, rows: int = GRID_ROWS) -> int:
    """The ``scale`` that gives a frame of this size about ``rows`` grid cells across its
    short side: the network then sees the same cell size, relative to the frame, as in
    training, and its cost stays about constant with resolution (720p: 7, 1080p: 11).
    """
    return max(1, round(min(height, width) / rows))


def lite_coefficients(aux: Tensor, gain: Tensor, strength: float = 1.0) -> Tensor:
    """Low-resolution affine coefficients (N, 6, h, w): P = G*a (3 ch), Q = G*(1-a)*mean (3 ch).

    The full-resolution output is ``P_up * x + Q_up``; CPU kernels in ``realtime``
    apply it without materialising the up-sampled maps. ``strength`` < 1 blends the
    result with the input, ``x + strength * (out - x)``, folded into the coefficients.
    """
    a, mean = aux[:, :1], aux[:, 1:4]
    p, q = gain * a, gain * (1.0 - a) * mean
    if strength != 1.0:
        p, q = torch.lerp(torch.ones_like(p), p, strength), q * strength
    return torch.cat([p, q], dim=1)


@register_model("lite", LiteConfig, LiteConfig(), "CPU real-time model: low-res gain + detail grid, affine slicing")
def lite(cfg: LiteConfig) -> LiteNet:
    return LiteNet(cfg)
