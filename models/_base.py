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

What the runtime needs to know about a model, the model declares (the engine never
tests a model's name):

* ``sized_for(height, width)``: the model to run on frames of that size (the same
  weights; a model whose settings follow the frame size returns a re-configured copy);
* ``tuning_variants(height, width)``: config changes the tuner should time;
* ``affine_grid``: the model can run as an affine grid. It then also provides
  ``grid_cell`` (side of a grid cell in pixels), ``estimate_from_stats(mean, m1, m2)``
  (``estimate`` from the per-cell box means of RGB, luma and luma**2 of the frame padded
  to ``pad_multiple``; ``aux`` holds the detail weight and the cells' mean RGB, ``illum``
  the colour gain) and ``grid_coefficients(aux, illum, strength)`` (per-cell affine
  coefficients P, Q with ``out = P * x + Q``, bilinearly up-sampled). The CPU runtime
  then never builds a full-resolution tensor: numba kernels compute the statistics
  from the uint8 frame and apply the coefficients in one pass.
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
    #: the model can run as an affine grid (see the module docstring).
    affine_grid: bool = False

    def sized_for(self, height: int, width: int) -> "EnhancementModel":
        """The model to run on frames of (height, width): itself unless its settings follow
        the frame size."""
        return self

    def tuning_variants(self, height: int, width: int) -> list[dict[str, Any]]:
        """Config changes worth timing for frames of (height, width) (``python -m
        calibrate``); the weights must fit every one. Default: the model as it is."""
        return [{}]

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
