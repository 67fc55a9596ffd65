"""Losses of BLNet, the Synthetic-Real Interaction network and ``lite``.

Conventions (so that every term can be checked by hand): ``‖·‖₁`` is the mean absolute
value and ``‖·‖₂²`` the mean square over all elements; image gradients are forward
differences, ``∇_h x = x[..., :, 1:] - x[..., :, :-1]`` and ``∇_v`` likewise along H.
Tensors are (N, C, H, W).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from models import NCBCFeatures
from models.errors import LowlightError
from models._layers import luminance

__all__ = [
    "grad_h",
    "grad_v",
    "l1",
    "mse",
    "recon_loss",
    "smooth_loss",
    "decom_loss",
    "ncbc_loss",
    "enhance_loss",
    "ssim",
    "lite_loss",
    "VGG16Features",
    "PerceptualLoss",
    "PerceptualWeightsMissing",
    "DecomWeights",
    "NCBCWeights",
    "EnhanceWeights",
]


def grad_h(x: Tensor) -> Tensor:
    return x[..., :, 1:] - x[..., :, :-1]


def grad_v(x: Tensor) -> Tensor:
    return x[..., 1:, :] - x[..., :-1, :]


def l1(a: Tensor, b: Tensor | float = 0.0) -> Tensor:
    return (a - b).abs().mean()


def mse(a: Tensor, b: Tensor | float = 0.0) -> Tensor:
    return (a - b).pow(2).mean()


# --------------------------------------------------------------------------- decomposition


@dataclass(frozen=True)
class DecomWeights:
    rc: float = 1.0
    smooth: float = 0.1
    equal: float = 0.01
    cross: float = 0.001  # lambda_ij for i != j in L_rc
    lambda_g: float = 10.0


def recon_loss(r_low: Tensor, i_low: Tensor, r_high: Tensor, i_high: Tensor, s_low: Tensor, s_high: Tensor, cross: float = 0.001) -> Tensor:
    """L_rc = sum_i sum_j lambda_ij ‖R_i∘I_j − S_j‖₁, lambda = 1 for i = j, ``cross`` otherwise."""
    return (
        l1(r_low * i_low, s_low)
        + l1(r_high * i_high, s_high)
        + cross * l1(r_high * i_low, s_low)
        + cross * l1(r_low * i_high, s_high)
    )


def smooth_loss(i: Tensor, r: Tensor, lambda_g: float = 10.0) -> Tensor:
    """Structure-aware smoothness of one image:
    ‖∇_h I · exp(−λ_g |∇_h R|)‖₁ + ‖∇_v I · exp(−λ_g |∇_v R|)‖₁, with R taken as its luma."""
    g = luminance(r)
    return l1(grad_h(i) * torch.exp(-lambda_g * grad_h(g).abs())) + l1(grad_v(i) * torch.exp(-lambda_g * grad_v(g).abs()))


def decom_loss(r_low, i_low, r_high, i_high, s_low, s_high, w: DecomWeights = DecomWeights()) -> dict[str, Tensor]:
    """L_decom = 1.0·L_rc + 0.1·L_smooth + 0.01·L_equal; returns every term and ``total``."""
    rc = recon_loss(r_low, i_low, r_high, i_high, s_low, s_high, w.cross)
    sm = smooth_loss(i_low, r_low, w.lambda_g) + smooth_loss(i_high, r_high, w.lambda_g)
    eq = l1(r_low, r_high)
    return {"rc": rc, "smooth": sm, "equal": eq, "total": w.rc * rc + w.smooth * sm + w.equal * eq}


# --------------------------------------------------------------------------- NCBC


@dataclass(frozen=True)
class NCBCWeights:
    tv: float = 0.05
    mse: float = 1.0
    noise: float = 0.2
    color: float = 0.1


def ncbc_loss(phi: nn.Module, r_low: Tensor, r_high: Tensor, w: NCBCWeights = NCBCWeights()) -> dict[str, Tensor]:
    """L_NCBC = 0.2·L_noise + 0.1·L_color with
    L_noise = 0.05·L_TV(φ(R_low)) + 1.0·‖R_low − R_high‖₂², L_TV = ‖∇_h φ(R_low)‖₂² + ‖∇_v φ(R_low)‖₂²,
    L_color = ‖φ(R_low) − φ(R_high)‖₁."""
    f_low, f_high = phi(r_low), phi(r_high)
    tv = mse(grad_h(f_low)) + mse(grad_v(f_low))
    noise = w.tv * tv + w.mse * mse(r_low, r_high)
    color = l1(f_low, f_high)
    return {"tv": tv, "noise": noise, "color": color, "total": w.noise * noise + w.color * color}


# --------------------------------------------------------------------------- enhancement


@dataclass(frozen=True)
class EnhanceWeights:
    rc: float = 1.0
    bri: float = 1.0
    per: float = 1.0
    grad: float = 1.0
    #: weight of (1 - SSIM(output, S_high)); **not in the BLNet paper** (0: L_eh is the
    #: paper's). A recipe may set it to score the output's local structure directly.
    ssim: float = 0.0


class PerceptualWeightsMissing(LowlightError, RuntimeError):
    """L_per has a non-zero weight but no VGG16 weights file was given."""


class VGG16Features(nn.Module):
    """VGG16 convolutional trunk up to relu3_3, with torchvision's ``features.N`` key names,
    so that torchvision's ImageNet ``vgg16-*.pth`` file loads into it."""

    _CFG = (64, 64, "M", 128, 128, "M", 256, 256, 256)

    def __init__(self) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        cin = 3
        for v in self._CFG:
            if v == "M":
                layers.append(nn.MaxPool2d(2, 2))
            else:
                layers += [nn.Conv2d(cin, int(v), 3, padding=1), nn.ReLU(inplace=False)]
                cin = int(v)
        self.features = nn.Sequential(*layers)
        self.register_buffer("mean", torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1))

    @classmethod
    def from_file(cls, path: str | Path) -> "VGG16Features":
        """Load ImageNet weights from a torchvision-format file (``features.*`` keys; the
        classifier keys are ignored). Nothing is ever downloaded."""
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"VGG16 weights file {path} does not exist")
        state = torch.load(path, map_location="cpu", weights_only=True)
        feats = {k: v for k, v in state.items() if k.startswith("features.") and int(k.split(".")[1]) < 16}
        m = cls()
        missing = m.load_state_dict(feats, strict=False).missing_keys
        missing = [k for k in missing if k not in ("mean", "std")]
        if missing:
            raise ValueError(f"{path} is not a torchvision VGG16 state_dict (missing {missing[:3]} ...)")
        m.requires_grad_(False).eval()
        return m

    def forward(self, x: Tensor) -> Tensor:
        return self.features((x - self.mean) / self.std)


class PerceptualLoss(nn.Module):
    """L_per = (1/CHW)‖φ_VGG16(a) − φ_VGG16(b)‖₂² (relu3_3 features)."""

    def __init__(self, vgg: VGG16Features):
        super().__init__()
        self.vgg = vgg

    def forward(self, a: Tensor, b: Tensor) -> Tensor:
        return mse(self.vgg(a), self.vgg(b))


def enhance_loss(
    r_low: Tensor,
    l_out: Tensor,
    s_high: Tensor,
    i_high: Tensor,
    perceptual: nn.Module | None = None,
    w: EnhanceWeights = EnhanceWeights(),
    light: Tensor | None = None,
) -> dict[str, Tensor]:
    """L_eh = 1.0·L_rc + 1.0·L_bri + 1.0·L_per + 1.0·L_grad (+ ``w.ssim``·(1 − SSIM), 0 by default).

    ``light`` is the illumination the output is rendered with, R_low * light (default
    ``l_out``; blnet's detail transfer renders with a light derived from ``l_out``); L_bri
    always compares ``l_out`` itself with I_high.

    Raises:
        PerceptualWeightsMissing: ``w.per`` is non-zero and ``perceptual`` is None.
    """
    out = r_low * (l_out if light is None else light)
    rc = l1(out, s_high)
    bri = l1(l_out, i_high)
    grad = l1(grad_h(out), grad_h(s_high)) + l1(grad_v(out), grad_v(s_high))
    if w.per:
        if perceptual is None:
            raise PerceptualWeightsMissing(
                "L_per needs ImageNet VGG16 weights: pass --vgg16 PATH (torchvision format) or set the recipe's per weight to 0"
            )
        per = perceptual(out, s_high)
    else:
        per = out.new_zeros(())
    structure = 1.0 - ssim(out, s_high) if w.ssim else out.new_zeros(())
    total = w.rc * rc + w.bri * bri + w.per * per + w.grad * grad + w.ssim * structure
    return {"rc": rc, "bri": bri, "per": per, "grad": grad, "ssim": structure, "total": total}


# --------------------------------------------------------------------------- SSIM and lite


def _gauss(size: int = 11, sigma: float = 1.5, device=None, dtype=None) -> Tensor:
    x = torch.arange(size, device=device, dtype=dtype) - (size - 1) / 2
    g = torch.exp(-(x * x) / (2 * sigma * sigma))
    return g / g.sum()


def ssim(a: Tensor, b: Tensor, data_range: float = 1.0) -> Tensor:
    """Mean SSIM (Wang et al. 2004; 11x11 Gaussian, sigma 1.5, valid region), per channel."""
    c = a.shape[1]
    g = _gauss(device=a.device, dtype=a.dtype)
    wh = g.view(1, 1, 1, -1).expand(c, 1, 1, -1)
    wv = g.view(1, 1, -1, 1).expand(c, 1, -1, 1)

    def blur(x: Tensor) -> Tensor:
        return F.conv2d(F.conv2d(x, wh, groups=c), wv, groups=c)

    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    mu_a, mu_b = blur(a), blur(b)
    saa = blur(a * a) - mu_a**2
    sbb = blur(b * b) - mu_b**2
    sab = blur(a * b) - mu_a * mu_b
    s = ((2 * mu_a * mu_b + c1) * (2 * sab + c2)) / ((mu_a**2 + mu_b**2 + c1) * (saa + sbb + c2))
    return s.mean()


def lite_loss(out: Tensor, target: Tensor, ssim_weight: float = 0.3, grad_weight: float = 0.5) -> dict[str, Tensor]:
    """Loss of our ``lite`` model: ‖out − S_high‖₁ + 0.5·gradient L1 + 0.3·(1 − SSIM)."""
    rc = l1(out, target)
    grad = l1(grad_h(out), grad_h(target)) + l1(grad_v(out), grad_v(target))
    s = 1.0 - ssim(out, target)
    return {"rc": rc, "grad": grad, "ssim": s, "total": rc + grad_weight * grad + ssim_weight * s}
