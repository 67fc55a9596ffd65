"""BLNet: a fast Retinex network with noise removal and colour restoration.

Two U-Nets (Wei et al., arXiv 2106.15953): a decomposition net splits a frame S into
reflectance R (3 ch) and illumination I (1 ch) with S = R*I; its down/up-sampling
lets it remove noise from R. An enhancement net of almost the same structure maps
(R, I) of the dark frame to a bright illumination L_out; the output is R_low * L_out.
The NCBC module's CNN (``NCBCFeatures``) is used only by the training losses.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ._base import EnhancementModel
from ._layers import UNet, crop_to, pad_to_multiple
from ._registry import register_model

__all__ = ["BLNetConfig", "BLNET_DEFAULT", "BLNet", "NCBCFeatures", "blnet"]


@dataclass(frozen=True)
class BLNetConfig:
    #: channel widths per U-Net level of the decomposition net (depth = len - 1).
    decom_widths: tuple[int, ...] = (16, 32, 64, 64)
    #: channel widths per level of the enhancement net.
    enhance_widths: tuple[int, ...] = (16, 32, 48, 64)
    #: whole-frame context at the enhancement net's bottleneck (exposure is a global property).
    #: Field defaults are the first design; the registered default (``BLNET_DEFAULT``) turns it on.
    enhance_global: bool = False


class BLNet(EnhancementModel):
    illum_exposure = 0  # L_out is the illumination of the output

    def __init__(self, cfg: BLNetConfig):
        super().__init__()
        self.cfg = cfg
        # Input: RGB plus its channel-wise max (a cheap illumination prior).
        self.decom = UNet(4, 4, cfg.decom_widths)
        self.enhance = UNet(4, 1, cfg.enhance_widths, global_context=cfg.enhance_global)
        self.pad_multiple = max(self.decom.multiple, self.enhance.multiple)

    def decompose(self, s: Tensor) -> tuple[Tensor, Tensor]:
        """S (N,3,H,W), H and W multiples of ``pad_multiple`` -> R (N,3,H,W), I (N,1,H,W) in [0, 1]."""
        y = self.decom(torch.cat([s, s.amax(dim=1, keepdim=True)], dim=1))
        return torch.sigmoid(y[:, :3]), torch.sigmoid(y[:, 3:4])

    def relight(self, r: Tensor, i: Tensor) -> Tensor:
        """(R_low, I_low) -> enhanced illumination L_out (N,1,H,W) in [0, 1]."""
        return torch.sigmoid(self.enhance(torch.cat([r, i], dim=1)))

    def estimate(self, x: Tensor) -> tuple[Tensor, Tensor]:
        xp, h, w = pad_to_multiple(x, self.pad_multiple)
        r, i = self.decompose(xp)
        l_out = self.relight(r, i)
        return crop_to(r, h, w), crop_to(l_out, h, w)

    def render(self, x: Tensor, aux: Tensor | None, illum: Tensor) -> Tensor:
        assert aux is not None
        return (aux * illum).clamp(0.0, 1.0)


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


#: the shipped variant, what ``create_model("blnet")`` builds.
BLNET_DEFAULT = BLNetConfig(enhance_global=True)


@register_model("blnet", BLNetConfig, BLNET_DEFAULT, "BLNet: decomposition U-Net + enhancement U-Net (GPU model)")
def blnet(cfg: BLNetConfig) -> BLNet:
    return BLNet(cfg)
