"""What every compute path of the engine shares: arguments, the output ring, temporal
smoothing and denoising state, shape changes and the frame checks."""
from __future__ import annotations

import dataclasses
import logging
import time
from typing import Any

import numpy as np
import torch
from torch import Tensor

from models import with_config

from .. import backends, kernels
from ..denoise import DenoiseConfig, TemporalDenoiser, TorchTemporalDenoiser
from ..denoise import warmup as denoise_warmup
from ..errors import BackendUnavailableError, EngineError
from ..frame import Frame
from ..smoothing import TemporalSmoother
from ..tone import ToneConfig

__all__ = ["InferenceEngine", "select_backend_for"]

#: Rec.601 luma weights, as ``models.luminance`` (the frame exposure fed to the smoother).
LUMA = (0.299, 0.587, 0.114)

logger = logging.getLogger("realtime.engine")


def select_backend_for(model, model_name: str, device: torch.device, shape: tuple[int, int], preference: str = "auto",
                       calibration: dict | None = None) -> backends.CompiledModel:
    """:func:`realtime.backends.select_backend`, its failure said with the backend asked for.

    Raises:
        BackendUnavailableError: the requested backend is unavailable here (or fails validation).
    """
    try:
        return backends.select_backend(model, model_name, device, shape, preference=preference, calibration=calibration)
    except BackendUnavailableError as err:
        raise type(err)(f"backend {preference!r} is unavailable: {err}") from err


class InferenceEngine:
    """Enhance uint8 frames with a model (build one with :func:`create_engine`).

    Args:
        model: an ``EnhancementModel`` (eval mode) on ``device``.
        model_name: its registry name.
        device: where to run.
        backend: "auto", "tensorrt", "compile", "cuda" or "cpu" (see
            :mod:`realtime.backends`), or a backend already built
            (:class:`realtime.backends.CompiledModel`, used as it is).
        calibration: parsed profile.json; its backend wins over ``backend``.
        model_options: config fields fixed for every frame (e.g. ``{"scale": 4}``); None
            lets the model size itself to each frame (``model.sized_for``). Ignored when
            ``calibration`` is given (its options are already applied to ``model``).
        strength: in (0, 1]: how much of the enhancement to apply (the output is
            ``x + strength * (enhanced - x)``); 1 = full.
        temporal_strength: smoothing of the illumination over time (0 = off).
        out_ring: output buffers cycled through; must exceed the results alive downstream
            at once. A :class:`~realtime.pipeline.Pipeline` raises it to fit its queues
            (:meth:`reserve_outputs`).
        cuda_slots: frames in flight on the GPU (>= 3 to overlap copy/compute/copy).
        cuda_output: "rgb", or "yuv420p" to convert back to I420 on the GPU (half the
            download, no colour conversion before encoding; for video-file sinks).
        denoise: strength of the motion-adaptive temporal denoiser run on the input
            before the model (``realtime.denoise``), in [0, 1]; 0 turns it off.
        tone: the exposure policy of the grid path (``realtime.tone``); None renders the
            network's output as it is. The other paths render their model's own exposure.

    Raises:
        EngineError: bad strength or denoise value; a backend that cannot be built.
    """

    #: what the engine runs on, for reports.
    path = "torch"

    def __init__(
        self,
        model: Any,
        model_name: str,
        device: torch.device,
        backend: str | backends.CompiledModel = "auto",
        calibration: dict | None = None,
        model_options: dict[str, Any] | None = None,
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
        prebuilt = isinstance(backend, backends.CompiledModel)
        # the model sizes itself to each frame unless a profile, fixed options or a built
        # backend fixed its configuration
        self._auto_size = calibration is None and model_options is None and not prebuilt
        if model_options and calibration is None and not prebuilt:
            self.model = with_config(model_name, self.model, **model_options)
        exponent = int(getattr(model, "illum_exposure", 0))
        self.smoother = TemporalSmoother(strength=temporal_strength, exposure_exponent=exponent) if temporal_strength > 0 else None
        self.out_ring = max(3, out_ring)
        self.cuda_slots = max(3, cuda_slots)
        self.cuda_output = cuda_output
        if not 0.0 <= denoise <= 1.0:
            raise EngineError(f"denoise strength must be in [0, 1], got {denoise}")
        self.denoise_cfg = DenoiseConfig(strength=denoise)
        self.tone = tone
        self._den = None  # built per shape in _setup
        self.backend: backends.CompiledModel | None = None
        self._shape: tuple | None = None
        self._out: list[np.ndarray] = []
        self._k = 0
        if self.device.type == "cpu":
            kernels.warmup()  # compile (or load cached) kernels before the first frame
            if denoise > 0:
                denoise_warmup()

    # ----------------------------------------------------------------- to implement
    def _build(self, h: int, w: int, color: str) -> None:
        """Build the backend, buffers and denoiser for frames of (h, w)."""
        raise NotImplementedError

    def _process(self, frame: Frame) -> list[Frame]:
        """Enhance one frame (its shape already set up); return the finished frames."""
        raise NotImplementedError

    def _grow_ring(self, n: int) -> None:
        """Add output buffers so that ``n`` results can be alive downstream at once."""
        h, w = self._shape[:2]
        self._out += [np.empty((h, w, 3), np.uint8) for _ in range(n - len(self._out))]

    # ----------------------------------------------------------------- API
    def describe(self) -> dict[str, Any]:
        """What runs, for reports (model, config, backend and why, path, options)."""
        b = self.backend
        cfg = getattr(self.model, "cfg", None)
        return {
            "model": self.model_name,
            "model_config": dataclasses.asdict(cfg) if dataclasses.is_dataclass(cfg) else None,
            "device": str(self.device),
            "backend": getattr(b, "backend", None),
            "dtype": str(getattr(b, "dtype", None)),
            "reason": getattr(b, "reason", None),
            "cpu_path": self.path,
            "temporal_smoothing": self.smoother is not None,
            "denoise": self.denoise_cfg.strength,
            "tone": None,
        }

    def reserve_outputs(self, n: int) -> None:
        """Keep at least ``n`` results valid at once (a result's buffer is reused ``n``
        frames later): the pipeline calls this with what its queues can hold."""
        if n > self.out_ring:
            self.out_ring = n
            if self._shape is not None:
                self._grow_ring(n)

    def prepare(self, height: int, width: int, color: str = "rgb") -> None:
        """Build the backend and buffers for (height, width) now instead of at the first
        frame, so that an unavailable backend fails before any output is written.

        Raises:
            BackendUnavailableError: the requested backend is unavailable.
        """
        if self._shape != self._key(height, width, color):
            self._setup(height, width, color)

    def process(self, frame: Frame) -> list[Frame]:
        """Enhance one frame; returns the frames finished so far (in order).

        Raises:
            EngineError: the frame is not (H, W, 3) uint8 or I420 planes.
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
        return earlier + self._process(frame)

    def flush(self) -> list[Frame]:
        """Finish every frame still in flight and return them in order."""
        return []

    def reset(self) -> None:
        """Start the temporal smoothing over (new source, seek, scene change)."""
        if self.smoother is not None:
            self.smoother.reset()
        if self._den is not None:
            self._den.reset()

    # ----------------------------------------------------------------- shared
    def _key(self, h: int, w: int, color: str) -> tuple:
        return (h, w)

    def _setup(self, h: int, w: int, color: str = "rgb") -> None:
        if self._auto_size:
            self.model = self.model.sized_for(h, w)
        self._shape = None  # stays unset if the build fails
        self._out = []
        self._build(h, w, color)
        self._shape = self._key(h, w, color)
        if not self._out:
            self._grow_ring(self.out_ring)

    def _new_denoiser(self) -> TemporalDenoiser | TorchTemporalDenoiser | None:
        """The temporal denoiser of this device (numba on the CPU, torch on CUDA), or None."""
        if self.denoise_cfg.strength <= 0:
            return None
        return TemporalDenoiser(self.denoise_cfg) if self.device.type == "cpu" else TorchTemporalDenoiser(self.denoise_cfg)

    def _select(self, h: int, w: int) -> backends.CompiledModel:
        if isinstance(self.preference, backends.CompiledModel):
            return self.preference
        b = select_backend_for(self.model, self.model_name, self.device, (h, w), self.preference, self.calibration)
        logger.info("backend %s for %s at %dx%d: %s", b.backend, self.model_name, w, h, b.reason)
        return b

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
