"""The contract every enhancement model follows.

Input: float tensor (N, 3, H, W), RGB, values in [0, 1], any H and W (models pad to
their multiple internally and crop back). Output: the same shape, values in [0, 1].

Inference is split into two steps so that the real-time pipeline can smooth the
illumination over time between them::

    aux, illum = model.estimate(x)        # the network
    out = model.render(x, aux, illum)     # cheap recomposition

``illum`` is the part of the output that carries brightness. How it scales with the
exposure of the input is given by ``illum_exposure`` (e): a uniform change of input
exposure by k scales ``illum`` by about k**e when the network tracks it. The temporal
smoother divides by (frame exposure)**e before averaging and multiplies back after,
so averaging never fights a real exposure change.
"""
from __future__ import annotations

from typing import Any

from torch import Tensor, nn


class EnhancementModel(nn.Module):
    #: exponent e above: -1 for an illumination in the input's units (S = R*I),
    #: +1 for a gain applied to the input, 0 for an illumination in the output's units.
    illum_exposure: int = 0
    #: H and W of the network input are padded to a multiple of this.
    pad_multiple: int = 1

    def estimate(self, x: Tensor) -> tuple[Tensor | None, Tensor]:  # pragma: no cover - abstract
        raise NotImplementedError

    def render(self, x: Tensor, aux: Tensor | None, illum: Tensor) -> Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def forward(self, x: Tensor) -> Tensor:
        aux, illum = self.estimate(x)
        return self.render(x, aux, illum)

    def input_contract(self) -> dict[str, Any]:
        """What the model expects; stored in every checkpoint manifest."""
        return {
            "layout": "NCHW",
            "dtype": "float32",
            "color": "RGB",
            "range": [0.0, 1.0],
            "pad_multiple": self.pad_multiple,
            "pad_mode": "replicate, bottom/right; output cropped back",
            "illum_exposure": self.illum_exposure,
        }
