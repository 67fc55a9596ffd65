"""The CPU path of affine-grid models (``models.EnhancementModel.affine_grid``): torch only
sees the small grid.

Per frame: (denoise) -> box statistics of the uint8 (or denoised float) frame in one numba
pass -> the network on the grid -> temporal smoothing of the gain -> per-cell
coefficients (under the exposure policy of :mod:`realtime.tone`, or the network's own)
-> one fused kernel that up-samples them bilinearly and applies them to the frame.
"""
from __future__ import annotations

import copy
import dataclasses
import time
from typing import Any

import torch
from torch import Tensor

from .. import backends, kernels
from ..errors import BackendUnavailableError
from ..frame import Frame
from ..tone import black_level, pixel_chroma_gate, policy_coefficients
from ._base import InferenceEngine

__all__ = ["GridEngine"]


class GridEngine(InferenceEngine):
    """CPU engine of affine-grid models (arguments: :class:`InferenceEngine`).

    The backend must be the eager CPU one ("auto" or "cpu"): the fused kernels replace
    the model's ``render`` and there is nothing else to compile.
    """

    path = "affine grid, numba kernels"

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self._m_ema: tuple[float, Tensor] | None = None

    def describe(self) -> dict[str, Any]:
        d = super().describe()
        d["tone"] = dataclasses.asdict(self.tone) if self.tone is not None else None
        return d

    def _build(self, h: int, w: int, color: str) -> None:
        if isinstance(self.preference, backends.CompiledModel):
            b = self.preference
        else:
            name, options = backends.resolve_preference(self.model_name, (h, w), self.preference, self.calibration)
            if name not in ("auto", "cpu") or options.get("compile"):
                why = f"device is {self.device.type}, not cuda" if name in backends.CUDA_BACKENDS else "the fused grid path runs eager"
                raise BackendUnavailableError(f"backend {name!r} is unavailable: {why}")
            # a float32 copy; the grid network runs ~1.3x faster channels-last on CPU
            m = copy.deepcopy(self.model).to(dtype=torch.float32).eval().to(memory_format=torch.channels_last)
            b = backends.CompiledModel("cpu", self.model_name, m, self.device, torch.float32, (h, w),
                                       "float32, channels_last, eager; affine grid through the fused kernels",
                                       m.estimate, m.render)
        self.backend = b
        self._den = self._new_denoiser()
        self._m_ema = None

    def reset(self) -> None:
        super().reset()
        self._m_ema = None

    def _exposure(self, m: float, black: Tensor) -> tuple[float, Tensor]:
        """The input's mean luma and black level, smoothed over time (the policy must not
        pump with noise)."""
        if self._m_ema is None:
            self._m_ema = (m, black)
        else:
            m0, b0 = self._m_ema
            self._m_ema = (0.8 * m0 + 0.2 * m, 0.8 * b0 + 0.2 * black)
        return self._m_ema

    def _process(self, frame: Frame) -> list[Frame]:
        t = frame.timings
        img = frame.image_rgb()
        model = self.backend.model
        cell = model.grid_cell
        with torch.inference_mode():
            if self._den is not None:
                t0 = time.perf_counter()
                img = self._den(img)  # float32 0..255: the average keeps its sub-level precision
                t["denoise"] = time.perf_counter() - t0
            t0 = time.perf_counter()
            mean, m1, m2 = (torch.from_numpy(a) for a in kernels.box_stats_u8(img, cell, model.pad_multiple))
            mean = mean.contiguous(memory_format=torch.channels_last)  # oneDNN's fast path
            t1 = time.perf_counter()
            aux, gain = model.estimate_from_stats(mean, m1, m2)
            t2 = time.perf_counter()
            t["prep"], t["infer"] = t1 - t0, t2 - t1
            m = m1.mean()
            gain = self._smooth(gain, m, t)
            t3 = time.perf_counter()
            gate = None
            if self.tone is None:
                coef = model.grid_coefficients(aux, gain, self.strength)[0].numpy()
            else:
                floor = self._den.noise_floor() if self._den is not None else 1.0
                m_s, black = self._exposure(float(m), black_level(aux[:, 1:4], self.tone))
                coef = policy_coefficients(aux, gain, m_s, floor, self.tone, self.strength, black,
                                           denoised=self._den is not None, stats=(m1, m2),
                                           noise=self._den.noise if self._den is not None else None)[0].numpy()
                gate = pixel_chroma_gate(floor, black, m_s, self.tone, self.strength)
            frame.result = kernels.lite_render_u8(img, coef, cell, out=self._next_out(), pixel_chroma=gate)
            t["render"] = time.perf_counter() - t3
        return [frame]
