"""The inference stage: model + backend + temporal smoothing, uint8 frames in and out.

CPU: per-pixel work runs in numba/OpenCV kernels, torch only sees small tensors
(``lite``: box statistics -> network on the low-res grid -> smoother -> affine
coefficients -> fused up-sample-and-apply kernel; other models: one conversion into a
reused channels-last float buffer, the backend, one conversion back).

CUDA: a ring of pinned host slots; uploads on a copy stream, compute on its own
stream, downloads on a third stream back into pinned memory, with events so that no
slot is reused before its copy finished. uint8<->float and channel-order conversion
run on the GPU. Up to ``cuda_slots`` frames are in flight, so :meth:`process` returns
results a few frames late; :meth:`flush` returns the rest.
"""
from __future__ import annotations

import dataclasses
import logging
import time
from typing import Any

import cv2
import numpy as np
import torch
from torch import Tensor

from calibrate import backends
from models import grid_scale, lite_coefficients, with_config

from . import kernels
from .colour import i420_to_rgb, rgb_to_i420
from .denoise import DenoiseConfig, TemporalDenoiser, TorchTemporalDenoiser
from .denoise import warmup as denoise_warmup
from .errors import BackendUnavailableError, EngineError
from .frame import Frame
from .smoothing import TemporalSmoother
from .tone import ToneConfig, black_level, policy_coefficients

__all__ = ["InferenceEngine", "select_backend_for"]

logger = logging.getLogger(__name__)

_LUMA = (0.299, 0.587, 0.114)


def select_backend_for(model, model_name: str, device: torch.device, shape: tuple[int, int], preference: str = "auto", calibration: dict | None = None):
    """``calibrate.backends.select_backend`` with the pipeline's typed error.

    Raises:
        BackendUnavailableError: the requested backend is unavailable here.
    """
    try:
        return backends.select_backend(model, model_name, device, shape, preference=preference, calibration=calibration)
    except backends.BackendUnavailable as err:
        raise BackendUnavailableError(f"backend {preference!r} is unavailable: {err}") from err


class InferenceEngine:
    """Enhance uint8 frames with a model.

    Args:
        model: an ``EnhancementModel`` (eval mode) on ``device``.
        model_name: its registry name.
        device: where to run.
        backend: "auto", "tensorrt", "compile", "cuda" or "cpu" (see calibrate.backends).
        calibration: parsed profile.json; its backend wins over ``backend``.
        temporal_strength: smoothing of the illumination over time (0 = off).
        strength: in (0, 1]: how much of the enhancement to apply (the output is
            ``x + strength * (enhanced - x)``); 1 = full.
        lite_scale: for ``lite``, "auto" (grid scale from each frame size, see
            ``models.grid_scale``) or a fixed scale; ignored when ``calibration`` is given.
        out_ring: number of output buffers cycled through; must exceed the number of
            results that can be alive downstream at once (queue size + 2).
        cuda_slots: frames in flight on the GPU (>= 3 to overlap copy/compute/copy).
        cuda_output: "rgb", or "yuv420p" to convert back to I420 on the GPU (half the
            download, no colour conversion before encoding; for video-file sinks).
        denoise: strength of the motion-adaptive temporal denoiser run on the input
            before the model (``realtime.denoise``), in [0, 1]; 0 turns it off.
        tone: the exposure policy of the ``lite`` CPU path (``realtime.tone``: exposure
            target, black level, lift limit, signal and chroma floors, auto-bypass); None
            renders the network's output as it is.

    Raises:
        EngineError: the backend cannot be built.
    """

    def __init__(
        self,
        model: Any,
        model_name: str,
        device: torch.device,
        backend: str = "auto",
        calibration: dict | None = None,
        lite_scale: str | int = "auto",
        strength: float = 1.0,
        temporal_strength: float = 0.8,
        out_ring: int = 8,
        cuda_slots: int = 3,
        cuda_output: str = "rgb",
        denoise: float = DenoiseConfig.strength,
        tone: ToneConfig | None = ToneConfig(),
    ):
        self.model = model.eval()
        self.model_name = model_name
        self.device = torch.device(device)
        self.preference = backend
        self.calibration = calibration
        if not 0.0 < strength <= 1.0:
            raise EngineError(f"strength must be in (0, 1], got {strength}")
        self.strength = float(strength)
        # "auto": lite's grid scale follows each frame size; an int fixes it. A calibration
        # profile's model options (already applied to ``model``) take precedence.
        self._lite_auto_scale = model_name == "lite" and calibration is None and lite_scale == "auto"
        if model_name == "lite" and calibration is None and isinstance(lite_scale, int):
            self.model = with_config("lite", self.model, scale=lite_scale)
        exponent = int(getattr(model, "illum_exposure", 0))
        self.smoother = TemporalSmoother(strength=temporal_strength, exposure_exponent=exponent) if temporal_strength > 0 else None
        self.out_ring = max(3, out_ring)
        self.cuda_slots = max(3, cuda_slots)
        self.cuda_output = cuda_output
        if not 0.0 <= denoise <= 1.0:
            raise EngineError(f"denoise strength must be in [0, 1], got {denoise}")
        self.denoise_cfg = DenoiseConfig(strength=denoise)
        self.tone = tone
        self._den = None  # built per device in _setup
        self._m_ema: tuple[float, Tensor] | None = None
        self.backend = None
        self._shape: tuple | None = None
        self._lite = model_name == "lite" and self.device.type == "cpu"
        if self.device.type == "cpu":
            kernels.warmup()  # compile (or load cached) kernels before the first frame
            if denoise > 0:
                denoise_warmup()
        self._k = 0
        self._pending: list[tuple[Frame, int, int]] = []

    # ----------------------------------------------------------------- setup
    def describe(self) -> dict[str, Any]:
        b = self.backend
        return {
            "model": self.model_name,
            "model_config": dataclasses.asdict(self.model.cfg) if dataclasses.is_dataclass(getattr(self.model, "cfg", None)) else None,
            "device": str(self.device),
            "backend": getattr(b, "backend", None),
            "dtype": str(getattr(b, "dtype", None)),
            "reason": getattr(b, "reason", None),
            "cpu_path": "lite numba kernels" if self._lite else "torch",
            "temporal_smoothing": self.smoother is not None,
            "denoise": self.denoise_cfg.strength,
            "tone": dataclasses.asdict(self.tone) if (self.tone is not None and self._lite) else None,
        }

    def prepare(self, height: int, width: int, color: str = "rgb") -> None:
        """Build the backend and buffers for (height, width) now instead of at the first
        frame, so that an unavailable backend fails before any output is written.

        Raises:
            BackendUnavailableError: the requested backend is unavailable.
        """
        if self._shape != self._key(height, width, color):
            self._setup(height, width, color)

    def _key(self, h: int, w: int, color: str) -> tuple:
        # CUDA input buffers hold the frames as they come (RGB/BGR or I420)
        return (h, w, color == "yuv420p") if self.device.type == "cuda" else (h, w)

    def _setup(self, h: int, w: int, color: str = "rgb") -> None:
        if self._lite_auto_scale:
            # lite's grid scale follows the frame size (about models.GRID_ROWS cells across
            # the short side, as in training) unless a calibration profile fixed it
            self.model = with_config("lite", self.model, scale=grid_scale(h, w))
        self.backend = select_backend_for(self.model, self.model_name, self.device, (h, w), self.preference, self.calibration)
        logger.info("backend %s for %s at %dx%d: %s", self.backend.backend, self.model_name, w, h, self.backend.reason)
        self._shape = self._key(h, w, color)
        self._out = [np.empty((h, w, 3), np.uint8) for _ in range(self.out_ring)]
        self._den = None
        self._m_ema = None
        if self.denoise_cfg.strength > 0:
            cpu = self.device.type == "cpu"
            self._den = TemporalDenoiser(self.denoise_cfg) if cpu else TorchTemporalDenoiser(self.denoise_cfg)
        if self.device.type == "cuda":
            self._setup_cuda(h, w, color == "yuv420p")
        elif not self._lite:
            # input buffer reused every frame; channels-last is oneDNN's fast layout
            self._fbuf = torch.empty((1, 3, h, w), dtype=torch.float32).contiguous(memory_format=torch.channels_last)
        else:
            # the lite network runs ~1.3x faster channels-last on CPU (in place, idempotent)
            self.backend.model.to(memory_format=torch.channels_last)

    def _setup_cuda(self, h: int, w: int, yuv_in: bool) -> None:
        dev = self.device
        n = self.cuda_slots
        self._yuv_out = self.cuda_output == "yuv420p" and h % 2 == 0 and w % 2 == 0
        in_shape = (h * 3 // 2, w) if yuv_in else (h, w, 3)
        out_shape = (h * 3 // 2, w) if self._yuv_out else (h, w, 3)
        # pinned output ring: in-flight frames + everything queued downstream
        self._out_pinned = [torch.empty(out_shape, dtype=torch.uint8, pin_memory=True) for _ in range(self.out_ring + n)]
        self._out = [t.numpy() for t in self._out_pinned]
        self._in_pinned = [torch.empty(in_shape, dtype=torch.uint8, pin_memory=True) for _ in range(n)]
        self._in_np = [t.numpy() for t in self._in_pinned]
        self._dev_in = [torch.empty(in_shape, dtype=torch.uint8, device=dev) for _ in range(n)]
        self._dev_out = [torch.empty(out_shape, dtype=torch.uint8, device=dev) for _ in range(n)]
        ev = lambda: torch.cuda.Event(enable_timing=True)  # noqa: E731
        self._h2d_done = [ev() for _ in range(n)]
        self._compute_done = [ev() for _ in range(n)]
        self._d2h_done = [ev() for _ in range(len(self._out_pinned))]
        self._marks = [[ev() for _ in range(5)] for _ in range(n)]  # up0, c0, s0, s1, c1
        self._d2h_start = [ev() for _ in range(len(self._out_pinned))]
        self._copy_stream = torch.cuda.Stream(dev)
        self._compute_stream = torch.cuda.Stream(dev)
        self._d2h_stream = torch.cuda.Stream(dev)
        self._slot = 0
        self._luma = torch.tensor(_LUMA, device=dev).view(1, 3, 1, 1)

    def reset(self) -> None:
        """Start the temporal smoothing over (new source, seek, scene change)."""
        if self.smoother is not None:
            self.smoother.reset()
        if self._den is not None:
            self._den.reset()
        self._m_ema = None

    # ----------------------------------------------------------------- API
    def process(self, frame: Frame) -> list[Frame]:
        """Enhance one frame; returns the frames finished so far (in order).

        Raises:
            EngineError: the frame is not (H, W, 3) uint8.
        """
        img = frame.image
        planar = frame.color == "yuv420p"
        ok = img.dtype == np.uint8 and (img.ndim == 2 and img.shape[0] % 3 == 0 if planar else img.ndim == 3 and img.shape[2] == 3)
        if not ok:
            raise EngineError(f"frame {frame.index}: expected (H, W, 3) uint8 or I420 planes, got {img.shape} {img.dtype}")
        h, w = frame.size
        earlier: list[Frame] = []
        if self._shape != self._key(h, w, frame.color):
            earlier = self.flush() if self._shape is not None else []
            self._setup(h, w, frame.color)
        if frame.reset:
            self.reset()
        if self.device.type == "cuda":
            return earlier + self._process_cuda(frame)
        with torch.inference_mode():
            if self._lite:
                self._process_lite(frame)
            else:
                self._process_cpu(frame)
        return earlier + [frame]

    def flush(self) -> list[Frame]:
        """Finish every frame still in flight (GPU) and return them in order."""
        done = []
        while self._pending:
            done.append(self._finish_cuda())
        return done

    # ----------------------------------------------------------------- CPU
    def _next_out(self) -> np.ndarray:
        buf = self._out[self._k % len(self._out)]
        self._k += 1
        return buf


    def _blend(self, x: Tensor, y: Tensor) -> Tensor:
        """``x + strength * (y - x)``; the enhanced frame itself at full strength."""
        return y if self.strength == 1.0 else torch.lerp(x.to(y.dtype), y, self.strength)

    def _smooth(self, illum: Tensor, exposure: Tensor | float, t: dict) -> Tensor:
        if self.smoother is None:
            return illum
        t0 = time.perf_counter()
        out = self.smoother(illum, exposure)
        t["smooth"] = time.perf_counter() - t0
        return out

    def _exposure(self, m: float, black: Tensor) -> tuple[float, Tensor]:
        """The input's mean luma and black level, smoothed over time (the policy must not
        pump with noise)."""
        if self._m_ema is None:
            self._m_ema = (m, black)
        else:
            m0, b0 = self._m_ema
            self._m_ema = (0.8 * m0 + 0.2 * m, 0.8 * b0 + 0.2 * black)
        return self._m_ema

    def _process_lite(self, frame: Frame) -> None:
        t = frame.timings
        img = frame.image_rgb()
        model = self.backend.model
        scale = model.cfg.scale
        if self._den is not None:
            t0 = time.perf_counter()
            img = self._den(img)  # float32 0..255: the average keeps its sub-level precision
            t["denoise"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        mean, m1, m2 = (torch.from_numpy(a) for a in kernels.box_stats_u8(img, scale, model.pad_multiple))
        mean = mean.contiguous(memory_format=torch.channels_last)  # oneDNN's fast path
        t1 = time.perf_counter()
        aux, gain = model.estimate_from_stats(mean, m1, m2)
        t2 = time.perf_counter()
        t["prep"], t["infer"] = t1 - t0, t2 - t1
        m = m1.mean()
        gain = self._smooth(gain, m, t)
        t3 = time.perf_counter()
        if self.tone is None:
            coef = lite_coefficients(aux, gain, self.strength)[0].numpy()
        else:
            floor = self._den.noise_floor() if self._den is not None else 1.0
            m_s, black = self._exposure(float(m), black_level(aux[:, 1:4], self.tone))
            coef = policy_coefficients(aux, gain, m_s, floor, self.tone, self.strength, black)[0].numpy()
        frame.result = kernels.lite_render_u8(img, coef, scale, out=self._next_out())
        t["render"] = time.perf_counter() - t3

    def _process_cpu(self, frame: Frame) -> None:
        t = frame.timings
        img = frame.image_rgb()
        b = self.backend
        t0 = time.perf_counter()
        if self._den is not None:
            # the denoised frame (float32, 0..255) straight into the channels-last buffer
            np.multiply(self._den(img), np.float32(1.0 / 255.0), out=self._fbuf.numpy()[0].transpose(1, 2, 0))
        else:
            kernels.u8_to_float_chw(img, self._fbuf.numpy())
        x = self._fbuf if b.dtype == torch.float32 else self._fbuf.to(b.dtype)
        r, g, bl = cv2.mean(img)[:3]
        exposure = (_LUMA[0] * r + _LUMA[1] * g + _LUMA[2] * bl) / 255.0
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

    # ----------------------------------------------------------------- CUDA
    def _process_cuda(self, frame: Frame) -> list[Frame]:
        i = self._slot
        self._slot = (i + 1) % self.cuda_slots
        b = self.backend
        up0, c0, s0, s1, c1 = self._marks[i]
        # the pinned input slot may still be the source of an upload: wait for it
        self._h2d_done[i].synchronize()
        np.copyto(self._in_np[i], frame.image)
        with torch.cuda.stream(self._copy_stream):
            # the device input slot may still be read by the compute of 3 frames ago
            self._copy_stream.wait_event(self._compute_done[i])
            up0.record(self._copy_stream)
            self._dev_in[i].copy_(self._in_pinned[i], non_blocking=True)
            self._h2d_done[i].record(self._copy_stream)
        with torch.cuda.stream(self._compute_stream), torch.inference_mode():
            self._compute_stream.wait_event(self._h2d_done[i])
            c0.record(self._compute_stream)
            if frame.color == "yuv420p":
                x = i420_to_rgb(self._dev_in[i], b.dtype)
            else:
                x = self._dev_in[i].permute(2, 0, 1)[None]
                if frame.color == "bgr":
                    x = x.flip(1)
                x = x.to(b.dtype).div_(255.0).contiguous(memory_format=torch.channels_last)
            if self._den is not None:
                x = self._den(x).contiguous(memory_format=torch.channels_last)
            aux, illum = b.estimate(x)
            s0.record(self._compute_stream)
            if self.smoother is not None:
                exposure = (x.float() * self._luma).sum(1).mean()
                illum = self.smoother(illum, exposure)
            s1.record(self._compute_stream)
            y = self._blend(x, b.render(x, aux, illum))
            if self._yuv_out:
                rgb_to_i420(y, out=self._dev_out[i])
            else:
                self._dev_out[i].copy_(y[0].permute(1, 2, 0).float().mul_(255.0).add_(0.5).clamp_(0.0, 255.0))
            c1.record(self._compute_stream)
            self._compute_done[i].record(self._compute_stream)
        k = self._k % len(self._out_pinned)
        self._k += 1
        with torch.cuda.stream(self._d2h_stream):
            self._d2h_stream.wait_event(self._compute_done[i])
            self._d2h_start[k].record(self._d2h_stream)
            self._out_pinned[k].copy_(self._dev_out[i], non_blocking=True)
            self._d2h_done[k].record(self._d2h_stream)
        self._pending.append((frame, i, k))
        # At most cuda_slots - 1 frames stay in flight: the frame that last used slot i
        # was finished (its D2H event synchronised) before slot i comes round again,
        # so its device buffers and events are free for reuse.
        done = []
        while len(self._pending) >= self.cuda_slots:
            done.append(self._finish_cuda())
        return done

    def _finish_cuda(self) -> Frame:
        frame, i, k = self._pending.pop(0)
        self._d2h_done[k].synchronize()  # D2H of a non_blocking copy is garbage until then
        up0, c0, s0, s1, c1 = self._marks[i]
        ms = 1e-3
        t = frame.timings
        t["upload"] = up0.elapsed_time(self._h2d_done[i]) * ms
        t["infer"] = (c0.elapsed_time(s0) + s1.elapsed_time(c1)) * ms
        t["smooth"] = s0.elapsed_time(s1) * ms
        t["download"] = self._d2h_start[k].elapsed_time(self._d2h_done[k]) * ms
        frame.result = self._out[k]
        frame.result_color = "yuv420p" if self._yuv_out else "rgb"
        return frame
