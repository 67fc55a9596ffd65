"""Building blocks shared by the model families."""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def pad_to_multiple(x: Tensor, multiple: int) -> tuple[Tensor, int, int]:
    """Replicate-pad the bottom/right of ``x`` so H and W are multiples of ``multiple``.

    Returns the padded tensor and the original (H, W). Shapes are Python ints, so
    under ``torch.export`` at a static shape the padding is a constant.
    """
    h, w = x.shape[-2], x.shape[-1]
    ph = (multiple - h % multiple) % multiple
    pw = (multiple - w % multiple) % multiple
    if ph or pw:
        x = F.pad(x, (0, pw, 0, ph), mode="replicate")
    return x, h, w


def crop_to(x: Tensor, h: int, w: int) -> Tensor:
    """Crop the bottom/right padding added by :func:`pad_to_multiple` (a no-op when none was)."""
    if x.shape[-2] == h and x.shape[-1] == w:
        return x
    return x[..., :h, :w]


def conv3x3(cin: int, cout: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, 3, stride=stride, padding=1)


class ConvBlock(nn.Sequential):
    """Two 3x3 convolutions, each followed by the activation."""

    def __init__(self, cin: int, cout: int, act_layer: type[nn.Module] = nn.LeakyReLU):
        super().__init__(conv3x3(cin, cout), act_layer(), conv3x3(cout, cout), act_layer())


def _act(act_layer: type[nn.Module]) -> nn.Module:
    return act_layer(0.2) if act_layer is nn.LeakyReLU else act_layer()


class GlobalContext(nn.Sequential):
    """Adds to every pixel of a feature map a per-channel bias computed from the map's
    spatial mean (two 1x1 convs), so a fully convolutional net sees whole-frame statistics
    such as the overall exposure, which no finite receptive field gives.

    The last conv starts near zero, so inserting it into a trained net keeps its output.
    """

    def __init__(self, channels: int, act_layer: type[nn.Module] = nn.LeakyReLU):
        super().__init__(nn.Conv2d(channels, channels, 1), _act(act_layer), nn.Conv2d(channels, channels, 1))
        with torch.no_grad():
            self[2].weight.mul_(0.01)
            self[2].bias.zero_()

    def forward(self, x: Tensor) -> Tensor:
        return x + super().forward(x.mean(dim=(2, 3), keepdim=True))


class UNet(nn.Module):
    """A compact U-Net: strided-conv down-sampling, bilinear up-sampling to the skip's
    size (no ``scale_factor``, so exported graphs carry explicit sizes), concatenated skips.

    Input H and W must be multiples of ``2 ** (len(widths) - 1)``.

    ``global_context`` adds a :class:`GlobalContext` at the bottleneck.
    """

    def __init__(
        self,
        in_ch: int,
        out_ch: int,
        widths: Sequence[int],
        act_layer: type[nn.Module] = nn.LeakyReLU,
        global_context: bool = False,
    ):
        super().__init__()
        widths = list(widths)
        self.depth = len(widths) - 1
        self.stem = nn.Sequential(conv3x3(in_ch, widths[0]), _act(act_layer), conv3x3(widths[0], widths[0]), _act(act_layer))
        self.down = nn.ModuleList()
        for cin, cout in zip(widths[:-1], widths[1:]):
            self.down.append(
                nn.Sequential(conv3x3(cin, cout, stride=2), _act(act_layer), conv3x3(cout, cout), _act(act_layer))
            )
        self.up = nn.ModuleList()
        for cin, cout in zip(widths[::-1][:-1], widths[::-1][1:]):
            self.up.append(nn.Sequential(conv3x3(cin + cout, cout), _act(act_layer), conv3x3(cout, cout), _act(act_layer)))
        self.head = nn.Conv2d(widths[0], out_ch, 3, padding=1)
        self.context = GlobalContext(widths[-1], act_layer) if global_context else None

    @property
    def multiple(self) -> int:
        return 2**self.depth

    def forward(self, x: Tensor) -> Tensor:
        skips = [self.stem(x)]
        for down in self.down:
            skips.append(down(skips[-1]))
        y = skips.pop()
        if self.context is not None:
            y = self.context(y)
        for up in self.up:
            skip = skips.pop()
            y = F.interpolate(y, size=(skip.shape[-2], skip.shape[-1]), mode="bilinear", align_corners=False)
            y = up(torch.cat([y, skip], dim=1))
        return self.head(y)


def luminance(x: Tensor) -> Tensor:
    """Rec.601 luma of an RGB tensor (N,3,H,W) -> (N,1,H,W)."""
    r, g, b = x[:, 0:1], x[:, 1:2], x[:, 2:3]
    return 0.299 * r + 0.587 * g + 0.114 * b
