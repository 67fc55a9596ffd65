"""The CPU path of every model that is not an affine grid: one conversion into a reused
channels-last float buffer, the backend, one conversion back."""
from __future__ import annotations

import time
import cv2
import numpy as np
import torch

from .. import kernels
from ..frame import Frame
from ._base import LUMA, InferenceEngine

__all__ = ["TorchEngine"]



class TorchEngine(InferenceEngine):
    """CPU engine running the model's ``estimate`` / ``render`` through its backend
    (arguments: :class:`InferenceEngine`)."""

    path = "torch"

    def _build(self, h: int, w: int, color: str) -> None:
        self.backend = self._select(h, w)
        self._den = self._new_denoiser()
        # input buffer reused every frame; channels-last is oneDNN's fast layout
        self._fbuf = torch.empty((1, 3, h, w), dtype=torch.float32).contiguous(memory_format=torch.channels_last)

    def _process(self, frame: Frame) -> list[Frame]:
        t = frame.timings
        img = frame.image_rgb()
        b = self.backend
        with torch.inference_mode():
            t0 = time.perf_counter()
            if self._den is not None:
                # the denoised frame (float32, 0..255) straight into the channels-last buffer
                np.multiply(self._den(img), np.float32(1.0 / 255.0), out=self._fbuf.numpy()[0].transpose(1, 2, 0))
            else:
                kernels.u8_to_float_chw(img, self._fbuf.numpy())
            x = self._fbuf if b.dtype == torch.float32 else self._fbuf.to(b.dtype)
            r, g, bl = cv2.mean(img)[:3]
            exposure = (LUMA[0] * r + LUMA[1] * g + LUMA[2] * bl) / 255.0
            t1 = time.perf_counter()
            aux, illum = b.estimate(x)
            t2 = time.perf_counter()
            t["prep"], t["infer"] = t1 - t0, t2 - t1
            illum = self._smooth(illum, exposure, t)
            t3 = time.perf_counter()
            y = self._blend(x, b.render(x, aux, illum))
            t4 = time.perf_counter()
            frame.result = kernels.float_chw_to_u8(y.float().numpy(), self._next_out())
            t["render"] = t4 - t3
            t["download"] = time.perf_counter() - t4
        return [frame]
