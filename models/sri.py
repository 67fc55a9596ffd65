"""Synthetic-Real Interaction network.

A light residual CNN of 26 convolution layers (~0.93 M parameters) predicts the
illumination I of a dark frame L; the output is L / I. To keep it light at video
resolutions, the residual body runs on a 4x4 pixel-unshuffled frame and the tail
pixel-shuffles the illumination back to full resolution. A ``GlobalContext`` block in the
middle of the body gives every pixel whole-frame statistics (exposure is global).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ._base import EnhancementModel
from ._layers import GlobalContext, crop_to, pad_to_multiple
from ._registry import register_model

__all__ = ["SRIConfig", "SRINet", "sri"]


@dataclass(frozen=True)
class SRIConfig:
    width: int = 64
    #: residual blocks of two convs each; 1 head + 2*blocks + 1 tail convs in all.
    blocks: int = 12
    #: pixel-unshuffle factor of the body (4: twice the receptive field of 2 in each direction, at a quarter of the cost).
    unshuffle: int = 4
    #: lower bound of the illumination, guards the division.
    eps: float = 1e-3
    #: initial mean illumination (the tail bias starts at its logit).
    init_illum: float = 0.12
    #: whole-frame context in the middle of the body (two 1x1 convs on the pooled features,
    #: not counted among the 26 spatial convolutions): exposure is a global property.
    global_context: bool = True
    #: channels of I: 1 (grey illumination, the output keeps the input's colour ratios) or 3
    #: (one per colour channel: I also carries the white balance of the scene's light).
    illum_channels: int = 1


class _ResBlock(nn.Module):
    def __init__(self, c: int):
        super().__init__()
        self.conv1 = nn.Conv2d(c, c, 3, padding=1)
        self.conv2 = nn.Conv2d(c, c, 3, padding=1)

    def forward(self, x: Tensor) -> Tensor:
        return x + self.conv2(F.relu(self.conv1(x)))


class SRINet(EnhancementModel):
    illum_exposure = -1  # I is in the input's units: S = R * I

    def __init__(self, cfg: SRIConfig):
        super().__init__()
        if cfg.illum_channels not in (1, 3):
            raise ValueError(f"sri: illum_channels must be 1 or 3, not {cfg.illum_channels}")
        self.cfg = cfg
        u = cfg.unshuffle
        self.pad_multiple = u
        self.head = nn.Conv2d(3 * u * u, cfg.width, 3, padding=1)
        blocks: list[nn.Module] = [_ResBlock(cfg.width) for _ in range(cfg.blocks)]
        if cfg.global_context:
            blocks.insert(cfg.blocks // 2, GlobalContext(cfg.width, nn.ReLU))
        self.body = nn.Sequential(*blocks)
        self.tail = nn.Conv2d(cfg.width, cfg.illum_channels * u * u, 3, padding=1)
        with torch.no_grad():
            self.tail.weight.mul_(0.1)
            p = torch.tensor(cfg.init_illum)
            self.tail.bias.fill_(float(torch.log(p / (1 - p))))

    def estimate(self, x: Tensor) -> tuple[None, Tensor]:
        xp, h, w = pad_to_multiple(x, self.pad_multiple)
        f = F.relu(self.head(F.pixel_unshuffle(xp, self.cfg.unshuffle)))
        i = torch.sigmoid(F.pixel_shuffle(self.tail(self.body(f)), self.cfg.unshuffle))
        return None, crop_to(i, h, w)

    def render(self, x: Tensor, aux: Tensor | None, illum: Tensor) -> Tensor:
        return (x / illum.clamp(min=self.cfg.eps)).clamp(0.0, 1.0)

    def adapt_state_dict(self, state: dict[str, Tensor], source_cfg: SRIConfig) -> dict[str, Tensor]:
        """A state dict of an sri with a grey illumination, widened to this net's colour one.

        The tail's filters are repeated once per colour channel (pixel-shuffle groups output
        channels per colour), so the widened net starts out computing exactly what the grey
        one did, and fine-tuning can then separate the channels. Any other pair of configs
        passes through unchanged.
        """
        if source_cfg.illum_channels == 1 and self.cfg.illum_channels == 3 and "tail.weight" in state:
            state = dict(state)
            state["tail.weight"] = state["tail.weight"].repeat(3, 1, 1, 1)
            state["tail.bias"] = state["tail.bias"].repeat(3)
        return state


@register_model("sri", SRIConfig, SRIConfig(), "Synthetic-Real Interaction residual illumination net (26 conv, ~0.93 M)")
def sri(cfg: SRIConfig) -> SRINet:
    return SRINet(cfg)
