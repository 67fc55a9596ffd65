"""BLNet: a fast Retinex network with noise removal and colour restoration.

Two U-Nets (Wei et al., arXiv 2106.15953): a decomposition net splits a frame S into
reflectance R (3 ch) and illumination I (1 ch) with S = R*I; its down/up-sampling
lets it remove noise from R. An enhancement net of almost the same structure maps
(R, I) of the dark frame to a bright illumination L_out; the output is R_low * L_out.
The NCBC module's CNN (``NCBCFeatures``) is used only by the training losses.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ._base import EnhancementModel
from ._layers import UNet, crop_to, pad_to_multiple
from ._registry import register_model

__all__ = ["BLNetConfig", "BLNET_DEFAULT", "BLNet", "NCBCFeatures", "blnet", "retinex_prior", "transfer_detail"]


def retinex_prior(s: Tensor, eps: float) -> tuple[Tensor, Tensor]:
    """S (N,3,H,W) -> its channel-wise max (N,1,H,W) and R0 = S / (max_c S + eps) in [0, 1),
    the frame at a normalised exposure (a Retinex split with the max channel as illumination)."""
    peak = s.amax(dim=1, keepdim=True)
    return peak, s / (peak + eps)


def transfer_detail(light: Tensor, guide: Tensor, window: float) -> Tensor:
    """``guide * box(light) / box(guide)``, clamped to [0, 1]: the low frequencies of
    ``light`` (N,1,H,W) with the fine structure of ``guide`` (N,1,H,W, > 0).

    box is a mean over about ``window * min(H, W)`` pixels, computed on a coarse grid
    (average pooling over cells of a third of the window, a 3x3 mean of cells, bilinear
    back to full size), so its cost does not grow with the window and it stays exact
    enough in FP16 (no running sums).
    """
    h, w = light.shape[-2], light.shape[-1]
    cell = max(1, round(min(h, w) * window / 3))

    def cells(t: Tensor) -> Tensor:  # each map pooled on its own: no full-size concatenated copy
        t, _, _ = pad_to_multiple(t, cell)
        return F.avg_pool2d(t, cell) if cell > 1 else t

    coarse = F.avg_pool2d(F.pad(torch.cat([cells(light), cells(guide)], dim=1), (1, 1, 1, 1), mode="replicate"), 3, stride=1)
    ratio = coarse[:, :1] / coarse[:, 1:2]
    if cell > 1:
        size = (-(-h // cell) * cell, -(-w // cell) * cell)  # the padded frame's
        ratio = crop_to(F.interpolate(ratio, size=size, mode="bilinear", align_corners=False), h, w)
    return (guide * ratio).clamp(0.0, 1.0)


@dataclass(frozen=True)
class BLNetConfig:
    """The field defaults are the shipped design (``models/weights/blnet.json``)."""

    #: fields that change only how the output is rendered, not the weights: a checkpoint
    #: trained with one value is a valid start for another (``training.train``'s strict init).
    RENDER_FIELDS: ClassVar[tuple[str, ...]] = ("detail_gamma", "detail_window")
    #: what a field added after the first design means when a manifest leaves it out (one
    #: written before the field existed): the behaviour before it, i.e. off. Manifests are
    #: read with these (``models.load_checkpoint``), new models get the field defaults.
    ABSENT_FIELD_VALUES: ClassVar[dict[str, object]] = {"enhance_global": False, "retinex_skip": False, "detail_gamma": 0.0}

    #: channel widths per U-Net level of the decomposition net (depth = len - 1).
    decom_widths: tuple[int, ...] = (16, 32, 64, 64)
    #: channel widths per level of the enhancement net.
    enhance_widths: tuple[int, ...] = (16, 32, 48, 64)
    #: whole-frame context at the enhancement net's bottleneck (exposure is a global property).
    enhance_global: bool = True
    #: gated Retinex skip in the decomposition: the net also sees R0 = S / (max_c S + e) and
    #: outputs a per-pixel gate a, R = a * R0 + (1 - a) * R_net. Where the frame is clean
    #: (bright regions, every reference) R0 carries its full detail past the U-Net; where it
    #: is noisy the net's own denoised R_net takes over.
    retinex_skip: bool = True
    #: e of R0 (keeps R0 bounded where the frame is black).
    retinex_eps: float = 0.01
    #: detail transfer (0 = off, the plain R_low * L_out): the output's illumination takes
    #: its fine structure from the frame's own illumination, G = (I_low + e)^gamma, and its
    #: tone from the enhancement net, L = G * box(L_out) / box(G), with box a mean over a
    #: window of ``detail_window`` times the frame's short side. gamma is this field.
    detail_gamma: float = 0.5
    #: the window of the detail transfer, as a fraction of the frame's short side.
    detail_window: float = 0.0625


class BLNet(EnhancementModel):
    illum_exposure = 0  # L_out is the illumination of the output

    def __init__(self, cfg: BLNetConfig):
        super().__init__()
        self.cfg = cfg
        # Input: RGB plus its channel-wise max (a cheap illumination prior); with the Retinex
        # skip also R0 (3 channels in) and the gate (1 channel out).
        extra_in, extra_out = (3, 1) if cfg.retinex_skip else (0, 0)
        self.decom = UNet(4 + extra_in, 4 + extra_out, cfg.decom_widths)
        self.enhance = UNet(4, 1, cfg.enhance_widths, global_context=cfg.enhance_global)
        self.pad_multiple = max(self.decom.multiple, self.enhance.multiple)

    #: the decomposition head's output channel that carries the gate's logit (after R, I).
    GATE_CHANNEL = 4

    def decompose(self, s: Tensor) -> tuple[Tensor, Tensor]:
        """S (N,3,H,W), H and W multiples of ``pad_multiple`` -> R (N,3,H,W), I (N,1,H,W) in [0, 1].

        With the Retinex skip R = a * R0 + (1 - a) * R_net, a the gate (head channel
        ``GATE_CHANNEL``)."""
        if not self.cfg.retinex_skip:
            y = self.decom(torch.cat([s, s.amax(dim=1, keepdim=True)], dim=1))
            return torch.sigmoid(y[:, :3]), torch.sigmoid(y[:, 3:4])
        peak, r0 = retinex_prior(s, self.cfg.retinex_eps)
        y = self.decom(torch.cat([s, peak, r0], dim=1))
        r_net, g = torch.sigmoid(y[:, :3]), self.GATE_CHANNEL
        gate = torch.sigmoid(y[:, g : g + 1])
        return r_net + gate * (r0 - r_net), torch.sigmoid(y[:, 3:4])

    def relight(self, r: Tensor, i: Tensor) -> Tensor:
        """(R_low, I_low) -> enhanced illumination L_out (N,1,H,W) in [0, 1]."""
        return torch.sigmoid(self.enhance(torch.cat([r, i], dim=1)))

    #: e of the detail transfer's guide G = (I_low + e)^gamma (keeps box(G) away from 0).
    DETAIL_EPS = 1e-3

    def estimate(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """x -> (aux, L_out): aux is R_low, or with the detail transfer R_low and the guide G
        (4 channels); L_out is the enhancement net's illumination, what temporal smoothing
        averages (the guide's per-frame detail is applied after it, in :meth:`render`)."""
        xp, h, w = pad_to_multiple(x, self.pad_multiple)
        r, i = self.decompose(xp)
        l_out = self.relight(r, i)
        if self.cfg.detail_gamma > 0:
            r = torch.cat([r, self.detail_guide(i)], dim=1)
        return crop_to(r, h, w), crop_to(l_out, h, w)

    def detail_guide(self, i_low: Tensor) -> Tensor:
        """The detail transfer's guide G = (I_low + e)^gamma."""
        return (i_low + self.DETAIL_EPS).pow(self.cfg.detail_gamma)

    def output_light(self, l_out: Tensor, i_low: Tensor) -> Tensor:
        """The illumination the output is rendered with: L_out itself, or with the detail
        transfer G * box(L_out) / box(G), G = (I_low + e)^gamma (what training's L_eh sees)."""
        if self.cfg.detail_gamma <= 0:
            return l_out
        return transfer_detail(l_out, self.detail_guide(i_low), self.cfg.detail_window)

    def render(self, x: Tensor, aux: Tensor | None, illum: Tensor) -> Tensor:
        assert aux is not None
        if self.cfg.detail_gamma > 0:
            aux, illum = aux[:, :3], transfer_detail(illum, aux[:, 3:4], self.cfg.detail_window)
        return (aux * illum).clamp(0.0, 1.0)

    #: bias of a new gate's logit: it starts nearly closed (a = 0.018).
    GATE_INIT_BIAS = -4.0

    def adapt_state_dict(self, state: dict[str, Tensor], source_cfg: BLNetConfig) -> dict[str, Tensor]:
        """A state dict of a blnet without the Retinex skip, widened to this one's.

        The first convolution gets zero filters for the R0 input and the head a gate with
        zero filters and a closed bias, so the decomposition starts out (almost exactly: the
        gate is 1.8 % open) what the source computed. Any other pair of configs passes through.
        """
        if not self.cfg.retinex_skip or source_cfg.retinex_skip or source_cfg.decom_widths != self.cfg.decom_widths:
            return state
        state = dict(state)
        w = state["decom.stem.0.weight"]
        state["decom.stem.0.weight"] = torch.cat([w, w.new_zeros(w.shape[0], 3, *w.shape[2:])], dim=1)
        hw, hb = state["decom.head.weight"], state["decom.head.bias"]
        state["decom.head.weight"] = torch.cat([hw, hw.new_zeros(1, *hw.shape[1:])])
        state["decom.head.bias"] = torch.cat([hb, hb.new_full((1,), self.GATE_INIT_BIAS)])
        return state


class NCBCFeatures(nn.Module):
    """phi of the NCBC module: a small fixed CNN mapping a reflectance to opponent-colour
    features (luma, two chroma) smoothed by a 3x3 Gaussian.

    Its weights are buffers, not parameters: the NCBC losses (total variation of phi(R_low)
    and |phi(R_low) - phi(R_high)|) would drive a learnable phi to a constant map.
    """

    def __init__(self) -> None:
        super().__init__()
        opp = torch.tensor(
            [[0.299, 0.587, 0.114], [-0.169, -0.331, 0.5], [0.5, -0.419, -0.081]], dtype=torch.float32
        )  # YCbCr rows
        self.register_buffer("w1", opp.view(3, 3, 1, 1))
        g = torch.tensor([1.0, 2.0, 1.0])
        g2 = (g[:, None] * g[None, :]) / 16.0
        self.register_buffer("w2", g2.expand(3, 1, 3, 3).clone())

    def forward(self, r: Tensor) -> Tensor:
        y = F.conv2d(r, self.w1)
        return F.conv2d(F.pad(y, (1, 1, 1, 1), mode="replicate"), self.w2, groups=3)


#: the shipped variant, what ``create_model("blnet")`` builds (the field defaults).
BLNET_DEFAULT = BLNetConfig()


@register_model("blnet", BLNetConfig, BLNET_DEFAULT, "BLNet: decomposition U-Net + enhancement U-Net (GPU model)")
def blnet(cfg: BLNetConfig) -> BLNet:
    return BLNet(cfg)
