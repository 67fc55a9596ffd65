"""Published low-light enhancers used as peers in the benchmarks (benchmark-only code).

Our own small ``nn.Module`` definitions, written to match the layout of the published
state_dicts in ``../shared/peers`` (see ``../shared/data/SOURCES.md`` for their origin):

* **Zero-DCE++** (Li, Guo, Loy, TPAMI 2021): seven depthwise-separable 3x3 convolutions
  (32 features, ReLU; layers 5-7 see the concatenation of a mirror layer, as in the paper's
  symmetric skip design), ``tanh`` output: one 3-channel curve-parameter map ``r``,
  predicted on the input down-scaled by ``scale`` (12 in the authors' test script) and
  up-sampled back. The light-enhancement curve is applied 8 times with the same map:
  ``x <- x + r * (x**2 - x)`` (i.e. ``x - r x (1 - x)``; ``r < 0`` brightens).
* **SCI** (Ma et al., CVPR 2022), test-time network only (the self-calibration branch is
  used in training): ``in_conv`` (3x3 conv + ReLU), one residual ``conv + BN + ReLU``
  block (the published weights hold it twice, under ``conv`` and ``blocks.0``: the same
  module), ``out_conv`` (3x3 conv + sigmoid); illumination ``i = clamp(x + out, 1e-4, 1)``,
  result ``clamp(x / i, 0, 1)``.

Both take and return float RGB tensors in [0, 1], shape (N, 3, H, W).
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["PeerWeightsMissing", "peers_root", "ZeroDCEpp", "SCI", "load_zero_dce_pp", "load_sci", "run_peer"]


class PeerWeightsMissing(FileNotFoundError):
    """The published weights of a peer are not where they should be."""


def peers_root() -> Path:
    """``peers`` in the shared folder (:func:`realtime.paths.peers_root`)."""
    root = str(Path(__file__).resolve().parents[1])
    if root not in sys.path:
        sys.path.insert(0, root)
    from realtime.paths import peers_root as shared_peers

    return shared_peers()


class _DepthwiseSeparable(nn.Module):
    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.depth_conv = nn.Conv2d(cin, cin, 3, 1, 1, groups=cin)
        self.point_conv = nn.Conv2d(cin, cout, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.point_conv(self.depth_conv(x))


class ZeroDCEpp(nn.Module):
    """Zero-DCE++ curve estimator and its 8-step curve (see module docstring)."""

    def __init__(self, scale: int = 12, features: int = 32, iterations: int = 8):
        super().__init__()
        f = features
        self.scale = scale
        self.iterations = iterations
        self.e_conv1 = _DepthwiseSeparable(3, f)
        self.e_conv2 = _DepthwiseSeparable(f, f)
        self.e_conv3 = _DepthwiseSeparable(f, f)
        self.e_conv4 = _DepthwiseSeparable(f, f)
        self.e_conv5 = _DepthwiseSeparable(2 * f, f)
        self.e_conv6 = _DepthwiseSeparable(2 * f, f)
        self.e_conv7 = _DepthwiseSeparable(2 * f, 3)

    def curve_map(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        small = x
        if self.scale > 1:
            small = F.interpolate(x, size=(max(1, h // self.scale), max(1, w // self.scale)), mode="bilinear", align_corners=False)
        x1 = F.relu(self.e_conv1(small))
        x2 = F.relu(self.e_conv2(x1))
        x3 = F.relu(self.e_conv3(x2))
        x4 = F.relu(self.e_conv4(x3))
        x5 = F.relu(self.e_conv5(torch.cat([x3, x4], 1)))
        x6 = F.relu(self.e_conv6(torch.cat([x2, x5], 1)))
        r = torch.tanh(self.e_conv7(torch.cat([x1, x6], 1)))
        if self.scale > 1:
            r = F.interpolate(r, size=(h, w), mode="bilinear", align_corners=True)
        return r

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        r = self.curve_map(x)
        for _ in range(self.iterations):
            x = x + r * (x * x - x)
        return x.clamp(0.0, 1.0)


class _SCIEnhance(nn.Module):
    def __init__(self, channels: int = 3, layers: int = 1):
        super().__init__()
        self.in_conv = nn.Sequential(nn.Conv2d(3, channels, 3, 1, 1), nn.ReLU())
        self.conv = nn.Sequential(nn.Conv2d(channels, channels, 3, 1, 1), nn.BatchNorm2d(channels), nn.ReLU())
        self.blocks = nn.ModuleList([self.conv for _ in range(layers)])  # one shared block
        self.out_conv = nn.Sequential(nn.Conv2d(channels, 3, 3, 1, 1), nn.Sigmoid())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        fea = self.in_conv(x)
        for block in self.blocks:
            fea = fea + block(fea)
        return torch.clamp(self.out_conv(fea) + x, 1e-4, 1.0)


class SCI(nn.Module):
    """SCI at test time: illumination estimate, then ``x / i`` (see module docstring)."""

    def __init__(self, channels: int = 3, layers: int = 1):
        super().__init__()
        self.enhance = _SCIEnhance(channels, layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.clamp(x / self.enhance(x), 0.0, 1.0)


def _load_state(path: Path) -> dict:
    if not path.is_file():
        raise PeerWeightsMissing(
            f"peer weights {path} not found (expected ../shared/peers beside the checkout, or under $LOWLIGHT_SHARED)"
        )
    return torch.load(str(path), map_location="cpu", weights_only=True)


def load_zero_dce_pp(path: str | os.PathLike | None = None, scale: int = 12) -> ZeroDCEpp:
    """Zero-DCE++ with the published weights (default ``peers/zero_dce_pp/Epoch99.pth``).

    Raises:
        PeerWeightsMissing: the file is absent.
    """
    p = Path(path) if path else peers_root() / "zero_dce_pp" / "Epoch99.pth"
    model = ZeroDCEpp(scale=scale)
    model.load_state_dict(_load_state(p), strict=True)
    return model.eval()


def load_sci(path: str | os.PathLike | None = None, variant: str = "medium") -> SCI:
    """SCI with the published weights (default ``peers/sci/<variant>.pt``); the calibration
    branch in the file (training only) is ignored.

    Raises:
        PeerWeightsMissing: the file is absent.
    """
    p = Path(path) if path else peers_root() / "sci" / f"{variant}.pt"
    sd = {k: v for k, v in _load_state(p).items() if k.startswith("enhance.")}
    model = SCI()
    model.load_state_dict(sd, strict=True)
    return model.eval()


@torch.inference_mode()
def run_peer(model: nn.Module, img: np.ndarray) -> np.ndarray:
    """Enhance one (H, W, 3) uint8 RGB image; returns uint8 RGB."""
    from realtime.convert import to_tensor, to_uint8

    return to_uint8(model(to_tensor(img)))[0]
