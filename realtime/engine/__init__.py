"""The inference stage: model + backend + denoising + temporal smoothing, uint8 frames in
and out. One interface (:class:`InferenceEngine`), one implementation per compute path:

* :class:`GridEngine`: CPU, models that declare ``affine_grid`` (``lite``): numba kernels
  compute per-cell statistics from the uint8 frame, the network runs on the small grid,
  one fused kernel up-samples the affine coefficients and applies them;
* :class:`TorchEngine`: CPU, every other model, through its backend
  (:mod:`realtime.backends`) on a reused channels-last float buffer;
* :class:`CudaEngine`: CUDA, pinned host buffers and three streams, results a few frames
  late (:meth:`InferenceEngine.flush` returns the rest).

:func:`create_engine` picks the path from the device, the model's contract and the backend.
"""
from ._base import InferenceEngine, select_backend_for
from .cuda import CudaEngine
from .factory import create_engine
from .grid import GridEngine
from .torch_cpu import TorchEngine

__all__ = ["InferenceEngine", "GridEngine", "TorchEngine", "CudaEngine", "create_engine", "select_backend_for"]
