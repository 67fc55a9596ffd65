"""Pick the compute path for a model, a device and a backend."""
from __future__ import annotations

from typing import Any

import torch

from .. import backends
from ._base import InferenceEngine
from .cuda import CudaEngine
from .grid import GridEngine
from .torch_cpu import TorchEngine

__all__ = ["create_engine"]


def create_engine(model: Any, model_name: str, device: torch.device | str, backend: str | backends.CompiledModel = "auto",
                  calibration: dict | None = None, **options: Any) -> InferenceEngine:
    """The engine for ``model`` on ``device`` (arguments: :class:`InferenceEngine`).

    CUDA devices get :class:`CudaEngine`. On the CPU, a model that declares
    ``affine_grid`` runs on :class:`GridEngine` unless the backend (asked for, named by
    the calibration profile, or already built) is a compiled one; every other model runs
    on :class:`TorchEngine`.

    Raises:
        EngineError: bad options (see :class:`InferenceEngine`).
        CalibrationError: the profile is for another model.
    """
    if isinstance(backend, backends.CompiledModel):
        device, name, opts = backend.device, backend.backend, backend.options
    else:
        device = torch.device(device)
        name, opts = backend, {}
        if calibration is not None:
            name, opts = calibration.get("backend", name), dict(calibration.get("backend_options") or {})
    if device.type == "cuda":
        cls: type[InferenceEngine] = CudaEngine
    elif getattr(model, "affine_grid", False) and name in ("auto", "cpu") and not opts.get("compile"):
        cls = GridEngine
    else:
        cls = TorchEngine
    return cls(model, model_name, device, backend=backend, calibration=calibration, **options)
