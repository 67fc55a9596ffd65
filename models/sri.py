"""Synthetic-Real Interaction network.

A light residual CNN of 26 convolution layers (~0.96 M parameters) predicts the
illumination I of a dark frame L; the output is L / I. To keep it light at video
resolutions, the residual body runs on a 4x4 pixel-unshuffled frame and the tail
pixel-shuffles the illumination back to full resolution. A ``GlobalContext`` block in the
middle of the body gives every pixel whole-frame statistics (exposure is global).

In the shipped variant (``SRI_DEFAULT``) I = light * detail: the light has one channel per
colour (the white balance of the scene's light), and the detail term
``((L + e) / (box(L) + e)) ** beta``, with beta in [0, 1] predicted per pixel, moves the
fine-scale structure the network judges to be sensor noise into I, so that the division
removes it instead of amplifying it.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ._base import EnhancementModel
from ._layers import GlobalContext, crop_to, pad_to_multiple
from ._registry import register_model

__all__ = ["SRIConfig", "SRI_DEFAULT", "SRINet", "sri"]


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
    #: side of the box over which a detail term averages the input (0: none). With it, I is
    #: the light times ``((L + e) / (box(L) + e)) ** beta``, beta in [0, 1] predicted per pixel:
    #: the fine-scale structure the network judges to be sensor noise moves into I, so the
    #: division L / I removes it (an edge-aware filter), while real edges keep beta near 0.
    detail_box: int = 0
    #: the e above: keeps the ratio bounded in black regions.
    detail_eps: float = 0.01


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
        if cfg.detail_box < 0 or (cfg.detail_box and cfg.detail_box % 2 == 0):
            raise ValueError(f"sri: detail_box must be 0 or odd, not {cfg.detail_box}")
        self.cfg = cfg
        u = cfg.unshuffle
        self.pad_multiple = u
        self.head = nn.Conv2d(3 * u * u, cfg.width, 3, padding=1)
        blocks: list[nn.Module] = [_ResBlock(cfg.width) for _ in range(cfg.blocks)]
        if cfg.global_context:
            blocks.insert(cfg.blocks // 2, GlobalContext(cfg.width, nn.ReLU))
        self.body = nn.Sequential(*blocks)
        self.tail = nn.Conv2d(cfg.width, self._tail_channels(cfg) * u * u, 3, padding=1)
        with torch.no_grad():
            self.tail.weight.mul_(0.1)
            p = torch.tensor(cfg.init_illum)
            self.tail.bias.fill_(float(torch.log(p / (1 - p))))
            if cfg.detail_box:  # beta starts at 0.5
                self.tail.bias[cfg.illum_channels * u * u :].zero_()

    @staticmethod
    def _tail_channels(cfg: SRIConfig) -> int:
        return cfg.illum_channels + (1 if cfg.detail_box else 0)

    def estimate(self, x: Tensor) -> tuple[Tensor | None, Tensor]:
        """``(detail, light)``: I = light * detail (detail is None without ``detail_box``).

        ``light`` is the smooth illumination (what the synthetic stage supervises and the
        temporal smoother averages); ``detail`` is the per-pixel noise term.
        """
        xp, h, w = pad_to_multiple(x, self.pad_multiple)
        f = F.relu(self.head(F.pixel_unshuffle(xp, self.cfg.unshuffle)))
        t = crop_to(F.pixel_shuffle(self.tail(self.body(f)), self.cfg.unshuffle), h, w)
        ic = self.cfg.illum_channels
        light = torch.sigmoid(t[:, :ic])
        if not self.cfg.detail_box:
            return None, light
        k, e = self.cfg.detail_box, self.cfg.detail_eps
        local = F.avg_pool2d(x, k, stride=1, padding=k // 2, count_include_pad=False)
        beta = torch.sigmoid(t[:, ic : ic + 1])
        return ((x + e) / (local + e)).pow(beta), light

    def illumination(self, aux: Tensor | None, illum: Tensor) -> Tensor:
        """The whole I of ``estimate``'s parts."""
        return illum if aux is None else illum * aux

    def render(self, x: Tensor, aux: Tensor | None, illum: Tensor) -> Tensor:
        return (x / self.illumination(aux, illum).clamp(min=self.cfg.eps)).clamp(0.0, 1.0)

    def adapt_state_dict(self, state: dict[str, Tensor], source_cfg: SRIConfig) -> dict[str, Tensor]:
        """A state dict of another sri config, widened to this one's tail.

        Grey to colour illumination: the tail's filters are repeated once per colour channel
        (pixel-shuffle groups output channels per colour), so the light starts out exactly
        what the grey net computed and fine-tuning can then separate the channels. A detail
        term the source lacks starts at beta = 0.5 everywhere (zero filters). Any other pair
        of configs passes through unchanged.
        """
        if "tail.weight" not in state or source_cfg.unshuffle != self.cfg.unshuffle or source_cfg.width != self.cfg.width:
            return state
        uu = self.cfg.unshuffle**2
        w, b = state["tail.weight"], state["tail.bias"]
        light_w, light_b = w[: source_cfg.illum_channels * uu], b[: source_cfg.illum_channels * uu]
        if source_cfg.illum_channels == 1 and self.cfg.illum_channels == 3:
            light_w, light_b = light_w.repeat(3, 1, 1, 1), light_b.repeat(3)
        elif source_cfg.illum_channels != self.cfg.illum_channels:
            return state
        parts_w, parts_b = [light_w], [light_b]
        if self.cfg.detail_box:
            if source_cfg.detail_box:
                parts_w.append(w[source_cfg.illum_channels * uu :])
                parts_b.append(b[source_cfg.illum_channels * uu :])
            else:  # no detail term yet: it starts at beta = 0.5 everywhere
                parts_w.append(torch.zeros_like(w[:uu]))
                parts_b.append(torch.zeros_like(b[:uu]))
        state = dict(state)
        state["tail.weight"], state["tail.bias"] = torch.cat(parts_w), torch.cat(parts_b)
        return state


#: the shipped variant, what ``create_model("sri")`` builds: colour light and detail term.
#: (The field defaults are the grey design before them, so older manifests still load.)
SRI_DEFAULT = SRIConfig(illum_channels=3, detail_box=5)


@register_model("sri", SRIConfig, SRI_DEFAULT, "Synthetic-Real Interaction residual illumination net (26 conv, ~0.96 M)")
def sri(cfg: SRIConfig) -> SRINet:
    return SRINet(cfg)
