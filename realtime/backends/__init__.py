"""Inference backends: TensorRT -> torch.compile (CUDA, FP16) -> eager CUDA FP16 -> CPU.

Every backend wraps a model into a :class:`CompiledModel` with the model contract's
``estimate`` / ``render`` split, built for one static frame shape. ``select_backend``
tries them in :data:`BACKENDS` order (or the one a calibration profile names), logs
why each was or was not chosen, and refuses a backend whose output is too far from
eager FP32 (:mod:`realtime.backends.thresholds`); nothing falls back silently.
"""
from __future__ import annotations

import copy
import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch
from torch import Tensor, nn

from ..errors import BackendUnavailableError, CalibrationError, ValidationFailed

#: the name this module has always used for the runtime's error
BackendUnavailable = BackendUnavailableError

logger = logging.getLogger(__name__)

__all__ = [
    "BACKENDS",
    "CUDA_BACKENDS",
    "BackendUnavailable",
    "BackendUnavailableError",
    "ValidationFailed",
    "CalibrationError",
    "CompiledModel",
    "build_backend",
    "select_backend",
    "resolve_preference",
    "load_calibration",
    "PROFILE_FORMAT",
]

BACKENDS: tuple[str, ...] = ("tensorrt", "compile", "cuda", "cpu")  # order tried by "auto"
CUDA_BACKENDS: frozenset[str] = frozenset({"tensorrt", "compile", "cuda"})
PROFILE_FORMAT = 1
#: torch.compile mode of the "compile" backend; reduce-overhead = CUDA graphs (outputs cloned).
DEFAULT_COMPILE_MODE = "reduce-overhead"


@dataclass
class CompiledModel:
    """A model ready to run at one static frame shape on one backend.

    ``model`` is the eager module (eval mode) the backend runs or was compiled from, on
    ``device`` in ``dtype`` (a copy: the module passed to :func:`build_backend` is not
    changed). ``estimate`` / ``render`` follow :class:`models.EnhancementModel`'s contract
    and take tensors in ``dtype`` on ``device`` (other inputs are converted).
    """

    backend: str
    model_name: str
    model: nn.Module
    device: torch.device
    dtype: torch.dtype
    shape: tuple[int, int]
    reason: str
    estimate: Callable[[Tensor], tuple[Tensor | None, Tensor]]
    render: Callable[[Tensor, Tensor | None, Tensor], Tensor]
    options: dict[str, Any] = field(default_factory=dict)

    def __call__(self, x: Tensor) -> Tensor:
        aux, illum = self.estimate(x)
        return self.render(x, aux, illum)


# ----------------------------------------------------------------------------- builders


def _check_cuda(device: torch.device) -> None:
    if device.type != "cuda":
        raise BackendUnavailable(f"device is {device.type}, not cuda")
    if not torch.cuda.is_available():
        raise BackendUnavailable("CUDA is not available (torch.cuda.is_available() is False)")


def _copy_to(model: nn.Module, device: torch.device, dtype: torch.dtype) -> nn.Module:
    return copy.deepcopy(model).to(device=device, dtype=dtype).eval()


def _clone(t: Tensor | None) -> Tensor | None:
    return None if t is None else t.clone()


def _warm_up(estimate: Callable, render: Callable, device: torch.device, dtype: torch.dtype, shape: tuple[int, int], n: int) -> None:
    from .thresholds import BUILD_WARMUP

    x = torch.rand(1, 3, shape[0], shape[1], device=device, dtype=dtype)
    if device.type == "cpu":
        x = x.contiguous(memory_format=torch.channels_last)
    for _ in range(n if n >= 0 else BUILD_WARMUP):
        aux, illum = estimate(x)
        render(x, aux, illum)
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _build_cpu(model: nn.Module, shape: tuple[int, int], options: dict[str, Any]) -> tuple[CompiledModel, str]:
    device = torch.device("cpu")
    m = _copy_to(model, device, torch.float32).to(memory_format=torch.channels_last)
    est_fn, ren_fn = m.estimate, m.render
    detail = "float32, channels_last, eager"
    if options.get("compile"):
        try:
            est_fn = torch.compile(m.estimate, dynamic=False)
            ren_fn = torch.compile(m.render, dynamic=False)
        except RuntimeError as err:
            raise BackendUnavailable(f"torch.compile on CPU is not available: {err}") from err
        detail = "float32, channels_last, torch.compile (inductor)"

    def estimate(x: Tensor) -> tuple[Tensor | None, Tensor]:
        x = x.to(device=device, dtype=torch.float32).contiguous(memory_format=torch.channels_last)
        with torch.inference_mode():
            return est_fn(x)

    def render(x: Tensor, aux: Tensor | None, illum: Tensor) -> Tensor:
        x = x.to(device=device, dtype=torch.float32)
        with torch.inference_mode():
            return ren_fn(x, aux, illum)

    if options.get("compile"):
        try:
            _warm_up(estimate, render, device, torch.float32, shape, 1)
        except Exception as err:  # inductor raises many types (missing compiler, codegen errors)
            raise BackendUnavailable(f"torch.compile on CPU failed: {type(err).__name__}: {err}") from err
    cm = CompiledModel("cpu", "", m, device, torch.float32, shape, "", estimate, render, dict(options))
    return cm, detail


def _build_cuda(model: nn.Module, device: torch.device, shape: tuple[int, int]) -> tuple[CompiledModel, str]:
    _check_cuda(device)
    m = _copy_to(model, device, torch.float16)

    def estimate(x: Tensor) -> tuple[Tensor | None, Tensor]:
        with torch.inference_mode():
            return m.estimate(x.to(device=device, dtype=torch.float16))

    def render(x: Tensor, aux: Tensor | None, illum: Tensor) -> Tensor:
        with torch.inference_mode():
            return m.render(x.to(device=device, dtype=torch.float16), aux, illum)

    cm = CompiledModel("cuda", "", m, device, torch.float16, shape, "", estimate, render, {})
    return cm, "eager FP16"


def _build_compile(model: nn.Module, device: torch.device, shape: tuple[int, int], options: dict[str, Any]) -> tuple[CompiledModel, str]:
    _check_cuda(device)
    try:
        import triton  # noqa: F401  (inductor's CUDA code generator)
    except ImportError as err:
        raise BackendUnavailable("triton is not installed (torch.compile on CUDA needs it)") from err
    mode = options.get("mode", DEFAULT_COMPILE_MODE)
    m = _copy_to(model, device, torch.float16)
    est_c = torch.compile(m.estimate, mode=mode, dynamic=False)
    ren_c = torch.compile(m.render, mode=mode, dynamic=False)
    graphs = mode == "reduce-overhead"

    # CUDA-graph trees overwrite their outputs on the next replay: mark each step and
    # clone outputs so callers (temporal smoothing state included) own what they get.
    def estimate(x: Tensor) -> tuple[Tensor | None, Tensor]:
        x = x.to(device=device, dtype=torch.float16)
        with torch.inference_mode():
            if graphs:
                torch.compiler.cudagraph_mark_step_begin()
                aux, illum = est_c(x)
                return _clone(aux), illum.clone()
            return est_c(x)

    def render(x: Tensor, aux: Tensor | None, illum: Tensor) -> Tensor:
        x = x.to(device=device, dtype=torch.float16)
        with torch.inference_mode():
            if graphs:
                torch.compiler.cudagraph_mark_step_begin()
                return ren_c(x, aux, illum).clone()
            return ren_c(x, aux, illum)

    try:
        _warm_up(estimate, render, device, torch.float16, shape, -1)
    except Exception as err:  # dynamo/inductor raise many types; report with the cause
        raise BackendUnavailable(f"torch.compile failed: {type(err).__name__}: {err}") from err
    cm = CompiledModel("compile", "", m, device, torch.float16, shape, "", estimate, render, {"mode": mode})
    return cm, f"torch.compile mode={mode}, FP16" + (" (CUDA graphs, outputs cloned)" if graphs else "")


def _build_tensorrt(model: nn.Module, model_name: str, device: torch.device, shape: tuple[int, int], options: dict[str, Any]) -> tuple[CompiledModel, str]:
    from .tensorrt import build_tensorrt, import_torch_tensorrt

    import_torch_tensorrt()  # cheapest check first: most machines have no TensorRT
    _check_cuda(device)
    cache_dir = options.get("cache_dir")
    estimate, render, detail = build_tensorrt(model, model_name, device, shape, Path(cache_dir) if cache_dir else None)
    try:
        _warm_up(estimate, render, device, torch.float16, shape, -1)
    except Exception as err:  # TensorRT runtime errors come in many types
        raise BackendUnavailable(f"TensorRT engine does not run: {type(err).__name__}: {err}") from err
    m = _copy_to(model, device, torch.float16)
    cm = CompiledModel("tensorrt", "", m, device, torch.float16, shape, "", estimate, render, {})
    return cm, detail


def build_backend(
    model: nn.Module,
    model_name: str,
    backend: str,
    device: torch.device,
    shape: tuple[int, int],
    *,
    options: dict[str, Any] | None = None,
) -> CompiledModel:
    """Build one backend for frames of static shape ``shape`` = (H, W).

    Args:
        model: an enhancement model (not modified; the backend works on a copy).
        model_name: its registry name (used in messages and engine-cache file names).
        backend: one of :data:`BACKENDS`.
        device: target device; the "cpu" backend always runs on the CPU.
        shape: (H, W) of the frames.
        options: backend options: "cpu" ``{"compile": bool}``; "compile" ``{"mode": str}``;
            "tensorrt" ``{"cache_dir": str}``.

    Raises:
        BackendUnavailable: the backend cannot run here (message says why).
        ValueError: unknown backend name or bad shape.
    """
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}; valid: {', '.join(BACKENDS)}")
    if len(shape) != 2 or int(shape[0]) <= 0 or int(shape[1]) <= 0:
        raise ValueError(f"shape must be (H, W) with positive sizes, got {shape}")
    shape = (int(shape[0]), int(shape[1]))
    device = torch.device(device)
    opts = dict(options or {})
    if backend == "cpu":
        cm, detail = _build_cpu(model, shape, opts)
    elif backend == "cuda":
        cm, detail = _build_cuda(model, device, shape)
    elif backend == "compile":
        cm, detail = _build_compile(model, device, shape, opts)
    else:
        cm, detail = _build_tensorrt(model, model_name, device, shape, opts)
    cm.model_name = model_name
    cm.reason = detail
    return cm


# ----------------------------------------------------------------------------- selection


def _validate(cm: CompiledModel, reference: nn.Module, n_frames: int) -> str:
    from .frames import validation_frames
    from .validate import validate_backend

    frames, source = validation_frames(n_frames, (cm.shape[1], cm.shape[0]))
    report = validate_backend(cm, reference, frames)  # raises ValidationFailed
    return f"validated on {source}: PSNR {report['psnr_db']:.1f} dB, max diff {report['max_abs_diff']}/255"


def resolve_preference(
    model_name: str, shape: tuple[int, int], preference: str = "auto", calibration: dict | None = None
) -> tuple[str, dict[str, Any]]:
    """The backend to build and its options: ``preference`` with no options, or what a
    calibration profile names (the profile wins).

    Raises:
        CalibrationError: the profile is for another model.
    """
    if calibration is None:
        return preference, {}
    if calibration.get("model") != model_name:
        raise CalibrationError(f"calibration profile is for model {calibration.get('model')!r}, not {model_name!r}")
    w, h = calibration["resolution"]
    if (h, w) != tuple(shape):
        logger.warning(
            "calibration profile was measured at %dx%d, frames are %dx%d: its latency figures do not apply",
            w, h, shape[1], shape[0],
        )
    logger.info("backend %s chosen by the calibration profile", calibration["backend"])
    return calibration["backend"], dict(calibration.get("backend_options") or {})


def select_backend(
    model: nn.Module,
    model_name: str,
    device: torch.device,
    shape: tuple[int, int],
    preference: str = "auto",
    calibration: dict | None = None,
    *,
    validate: bool = True,
    validation_frames: int = 2,
) -> CompiledModel:
    """Pick and build the best backend for ``model`` at frame shape ``shape`` = (H, W).

    ``preference="auto"`` tries :data:`BACKENDS` in order (CUDA ones only on a CUDA
    device) and logs for each why it was or was not chosen; a backend name builds that
    one only. A ``calibration`` profile (see :func:`load_calibration`) overrides the
    preference with its backend and backend options. Reduced-precision or compiled
    backends are validated against eager FP32 before use (plain eager CPU FP32 is the
    reference itself and is not).

    Raises:
        BackendUnavailable: the requested backend (or every backend) cannot run here.
        ValidationFailed: the requested backend's output is too far from eager FP32.
        CalibrationError: the profile is for another model.
        ValueError: unknown preference.
    """
    device = torch.device(device)
    preference, options = resolve_preference(model_name, shape, preference, calibration)
    if preference != "auto" and preference not in BACKENDS:
        raise ValueError(f"unknown backend {preference!r}; valid: auto, {', '.join(BACKENDS)}")
    order = list(BACKENDS) if preference == "auto" else [preference]
    reasons: list[str] = []
    for name in order:
        if preference == "auto" and name in CUDA_BACKENDS and device.type != "cuda":
            msg = f"backend {name}: not tried (device is {device.type})"
            logger.info(msg)
            reasons.append(msg)
            continue
        try:
            cm = build_backend(model, model_name, name, device, shape, options=options)
            if validate and not (name == "cpu" and not cm.options.get("compile")):
                cm.reason += "; " + _validate(cm, model, validation_frames)
        except (BackendUnavailable, ValidationFailed) as err:
            msg = f"backend {name}: not used: {err}"
            if preference != "auto":
                logger.error(msg)
                raise
            logger.info(msg)
            reasons.append(msg)
            continue
        why = "requested" if preference != "auto" else "first available in " + " > ".join(BACKENDS)
        if calibration is not None:
            why = "from the calibration profile"
        cm.reason = f"{why}: {cm.reason}"
        logger.info("backend %s chosen for %s at %dx%d (%s)", name, model_name, shape[1], shape[0], cm.reason)
        return cm
    raise BackendUnavailable("no backend could be built: " + " | ".join(reasons))


# ----------------------------------------------------------------------------- profiles


def load_calibration(path: str | os.PathLike) -> dict:
    """Read and check a ``profile.json`` written by ``python -m calibrate``.

    Returns the parsed profile; guaranteed keys: "model" (registered name), "backend"
    (one of :data:`BACKENDS`), "resolution" [W, H] (positive ints), "model_options"
    (dict of model config fields), "backend_options" (dict).

    Raises:
        CalibrationError: unreadable file, bad JSON or a key missing / out of range.
    """
    from models import list_models

    p = Path(path)
    try:
        doc = json.loads(p.read_text())
    except OSError as err:
        raise CalibrationError(f"cannot read calibration profile {p}: {err.strerror or err}") from err
    except json.JSONDecodeError as err:
        raise CalibrationError(f"calibration profile {p} is not valid JSON: {err}") from err
    if not isinstance(doc, dict):
        raise CalibrationError(f"calibration profile {p} must hold a JSON object")
    fmt = doc.get("format", PROFILE_FORMAT)
    if fmt != PROFILE_FORMAT:
        raise CalibrationError(f"calibration profile {p} has format {fmt!r}; this version reads {PROFILE_FORMAT}")
    for key in ("model", "backend", "resolution"):
        if key not in doc:
            raise CalibrationError(f"calibration profile {p} has no {key!r}")
    if doc["model"] not in list_models():
        raise CalibrationError(f"calibration profile {p} names unknown model {doc['model']!r}; valid: {', '.join(list_models())}")
    if doc["backend"] not in BACKENDS:
        raise CalibrationError(f"calibration profile {p} names unknown backend {doc['backend']!r}; valid: {', '.join(BACKENDS)}")
    res = doc["resolution"]
    if (
        not isinstance(res, list)
        or len(res) != 2
        or not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in res)
    ):
        raise CalibrationError(f"calibration profile {p}: 'resolution' must be [width, height] positive ints, got {res!r}")
    for key in ("model_options", "backend_options"):
        doc.setdefault(key, {})
        if not isinstance(doc[key], dict):
            raise CalibrationError(f"calibration profile {p}: {key!r} must be an object, got {type(doc[key]).__name__}")
    return doc
