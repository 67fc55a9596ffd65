"""Measure candidate configurations (model, model options, backend) on this machine and
pick the fastest one that meets a frame-rate target and passes validation."""
from __future__ import annotations

import datetime as _dt
import logging
import math
import os
import platform
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np
import torch
from torch import nn

import models

from realtime.backends import BACKENDS, PROFILE_FORMAT, BackendUnavailable, CompiledModel, ValidationFailed, build_backend
from realtime.backends.frames import validation_frames
from realtime.backends.thresholds import MAX_ABS_DIFF_U8, MIN_PSNR_DB, VALIDATION_FRAMES
from realtime.backends.validate import reference_outputs, validate_backend
from realtime.convert import to_tensor

from .errors import CalibrateError
from .thresholds import DEFAULT_ITERS, DEFAULT_WARMUP, TARGET_STAT

logger = logging.getLogger(__name__)

__all__ = [
    "Candidate",
    "base_models",
    "model_variants",
    "backend_variants",
    "measure_latency",
    "tune",
    "model_from_profile",
    "parse_resolution",
]



@dataclass
class Candidate:
    """One configuration to measure."""

    model: str
    backend: str
    model_options: dict[str, Any] = field(default_factory=dict)
    backend_options: dict[str, Any] = field(default_factory=dict)
    untrained: bool = False

    @property
    def label(self) -> str:
        mo = ",".join(f"{k}={v}" for k, v in self.model_options.items())
        bo = ",".join(f"{k}={v}" for k, v in self.backend_options.items())
        return f"{self.model}{'[' + mo + ']' if mo else ''}/{self.backend}{'[' + bo + ']' if bo else ''}"


def parse_resolution(text: str) -> tuple[int, int]:
    """``"1920x1080"`` -> (1920, 1080) = (width, height).

    Raises:
        ValueError: not WIDTHxHEIGHT with positive integers.
    """
    parts = text.lower().replace("*", "x").split("x")
    try:
        w, h = (int(p) for p in parts)
    except ValueError as err:
        raise ValueError(f"resolution must look like 1280x720, got {text!r}") from err
    if w <= 0 or h <= 0:
        raise ValueError(f"resolution must be positive, got {text!r}")
    return w, h


def base_models(names: Sequence[str] | None = None) -> list[tuple[str, nn.Module, dict | None]]:
    """(name, FP32 eval model on CPU, manifest or None when untrained) for each candidate model.

    Without ``names``: every model with shipped weights, or, when none ships yet, every
    registered model randomly initialised (manifest None = "untrained").

    Raises:
        ValueError: an unknown model name.
    """
    shipped = set(models.available_pretrained())
    if names is None:
        names = sorted(shipped) or models.list_models()
    out = []
    for name in names:
        models.get_entry(name)  # raises ValueError for unknown names
        if name in shipped:
            m, manifest = models.load_pretrained(name, "cpu")
        else:
            logger.warning("model %s has no shipped weights: measuring a randomly initialised copy (untrained)", name)
            m, manifest = models.create_model(name), None
        out.append((name, m.eval(), manifest))
    return out


def model_variants(model: nn.Module, resolution: tuple[int, int]) -> list[dict[str, Any]]:
    """Model options worth measuring at ``resolution`` (W, H), as the model declares them
    (``EnhancementModel.tuning_variants``; the model as it is when it declares none)."""
    w, h = resolution
    variants = getattr(model, "tuning_variants", None)
    return variants(h, w) if variants is not None else [{}]


def backend_variants(device: torch.device, backends: Sequence[str] | None = None, cpu_compile: bool = False) -> list[tuple[str, dict]]:
    """(backend, options) pairs to try on ``device``, restricted to ``backends`` if given."""
    wanted = list(backends) if backends else list(BACKENDS)
    out: list[tuple[str, dict]] = []
    for b in BACKENDS:
        if b not in wanted:
            continue
        if b != "cpu" and device.type != "cuda":
            continue
        if b == "cpu":
            out.append(("cpu", {}))
            if cpu_compile:
                out.append(("cpu", {"compile": True}))
        else:
            out.append((b, {}))
    return out


def measure_latency(fn: Callable[[], Any], device: torch.device, iters: int, warmup: int, max_seconds: float) -> dict[str, float]:
    """Median / p99 / mean latency (ms) of ``fn`` over up to ``iters`` calls.

    Fewer calls (at least 3) are made when they would take longer than ``max_seconds``.
    """
    sync = (lambda: torch.cuda.synchronize(device)) if device.type == "cuda" else (lambda: None)
    warm_start = time.perf_counter()
    for _ in range(warmup):
        fn()
        sync()
        if time.perf_counter() - warm_start > max_seconds / 4:  # slow model: one warm-up is enough
            break
    times: list[float] = []
    start = time.perf_counter()
    while len(times) < max(1, iters):
        t0 = time.perf_counter()
        fn()
        sync()
        times.append((time.perf_counter() - t0) * 1000.0)
        if len(times) >= 3 and time.perf_counter() - start > max_seconds:
            break
    arr = np.asarray(times)
    median = float(np.median(arr))
    return {
        "median": median,
        "p99": float(np.percentile(arr, 99)),
        "mean": float(arr.mean()),
        "fps": 1000.0 / median if median > 0 else math.inf,
        "iters": len(times),
    }


def candidate_latency(cm: CompiledModel, frame: np.ndarray, iters: int, warmup: int, max_seconds: float) -> tuple[dict[str, float], str]:
    """Latency of a built backend on one uint8 RGB frame, timed the way the pipeline runs it.

    On CPU the frame goes through the engine the pipeline would use with this very
    backend (:func:`realtime.create_engine`: uint8 in and out; for affine-grid models
    without compilation the numba box-statistics and fused up-sample-and-apply kernels);
    on CUDA the backend runs on a float tensor already on the device (model only,
    synchronised).

    Returns:
        (latency dict of :func:`measure_latency`, a line saying what was timed)
    """
    if cm.device.type == "cpu":
        from realtime import Frame, create_engine

        h, w = cm.shape
        # the built backend itself (its options included), no smoothing: what is timed is
        # the per-frame work of this candidate
        engine = create_engine(cm.model, cm.model_name, cm.device, backend=cm, temporal_strength=0.0)
        engine.prepare(h, w)
        item = Frame(index=0, image=np.ascontiguousarray(frame))
        what = f"uint8 frame in/out through realtime's {type(engine).__name__} ({engine.path})"
        return measure_latency(lambda: engine.process(item), cm.device, iters, warmup, max_seconds), what
    x = to_tensor(frame, cm.device, cm.dtype)
    with torch.inference_mode():
        lat = measure_latency(lambda: cm(x), cm.device, iters, warmup, max_seconds)
    return lat, "float tensor in/out on the device (model only, synchronised)"


def _device_info(device: torch.device) -> dict[str, Any]:
    info: dict[str, Any] = {
        "type": device.type,
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "cpu": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
    }
    if device.type == "cuda":
        info["name"] = torch.cuda.get_device_name(device)
        info["cuda"] = torch.version.cuda
    try:
        import torch_tensorrt

        info["torch_tensorrt"] = str(torch_tensorrt.__version__)
    except (ImportError, OSError):
        info["torch_tensorrt"] = None
    return info


def tune(
    resolution: tuple[int, int],
    fps: float,
    model_names: Sequence[str] | None = None,
    device: torch.device | str | None = None,
    backends: Sequence[str] | None = None,
    *,
    iters: int = DEFAULT_ITERS,
    warmup: int = DEFAULT_WARMUP,
    max_seconds: float = 10.0,
    cpu_compile: bool = False,
    lol_dir: str | os.PathLike | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Measure every candidate and return the calibration profile (see ``docs/DEPLOY.md``).

    Args:
        resolution: (width, height) of the stream.
        fps: target frame rate; a candidate meets it when its ``TARGET_STAT`` latency
            fits in 1/fps.
        model_names: candidate models; ``None`` for every shipped model.
        device: where to run; ``None`` picks CUDA when available.
        backends: restrict to these backends; ``None`` for all that apply to ``device``.
        iters, warmup, max_seconds: timing budget per candidate.
        cpu_compile: also measure the CPU backend under torch.compile (slow to build).
        lol_dir: folder of LOL eval15 low images for validation.
        progress: show a tqdm progress bar.

    Raises:
        CalibrateError: no candidate could be built and validated.
        ValueError: bad resolution / fps / model name.
    """
    from tqdm import tqdm

    w, h = int(resolution[0]), int(resolution[1])
    if w <= 0 or h <= 0 or fps <= 0:
        raise ValueError(f"need a positive resolution and fps, got {w}x{h} @ {fps}")
    dev = torch.device(device) if device is not None else torch.device("cuda" if torch.cuda.is_available() else "cpu")
    budget_ms = 1000.0 / fps
    frames, frames_source = validation_frames(VALIDATION_FRAMES, (w, h), lol_dir)
    bases = base_models(model_names)
    bvars = backend_variants(dev, backends, cpu_compile)
    if not bvars:
        raise CalibrateError(f"no backend among {list(backends or [])} can run on device {dev}")
    jobs = []
    for name, base, manifest in bases:
        for mopts in model_variants(base, (w, h)):
            for bname, bopts in bvars:
                jobs.append((name, base, manifest, Candidate(name, bname, mopts, bopts, manifest is None)))
    results: list[dict[str, Any]] = []
    refs_cache: dict[tuple[str, str, str], list[np.ndarray]] = {}
    bar = tqdm(jobs, desc="calibrating", unit="cfg", disable=not progress, leave=False)
    for name, base, manifest, cand in bar:
        bar.set_postfix_str(cand.label)
        model = models.with_config(name, base, **cand.model_options)
        row: dict[str, Any] = {
            "label": cand.label,
            "model": cand.model,
            "backend": cand.backend,
            "model_options": cand.model_options,
            "backend_options": cand.backend_options,
            "untrained": cand.untrained,
        }
        try:
            t0 = time.perf_counter()
            cm = build_backend(model, name, cand.backend, dev, (h, w), options=cand.backend_options)
            row["build_s"] = round(time.perf_counter() - t0, 3)
            row["details"] = cm.reason
            if cand.backend == "cpu" and not cand.backend_options.get("compile"):
                row["validation"] = {"skipped": "eager FP32 on CPU is the reference"}
            else:
                key = (cand.label.split("/")[0], str(cm.device), "fp32")
                if key not in refs_cache:
                    refs_cache[key] = reference_outputs(model, frames, cm.device)
                row["validation"] = validate_backend(cm, model, frames, references=refs_cache[key])
            lat, row["timed"] = candidate_latency(cm, frames[0], iters, warmup, max_seconds)
            row["latency_ms"] = {k: round(v, 3) if isinstance(v, float) else v for k, v in lat.items()}
            row["meets_target"] = lat[TARGET_STAT] <= budget_ms
            row["status"] = "ok"
        except BackendUnavailable as err:
            row.update(status="unavailable", reason=str(err))
            logger.info("%s: not available: %s", cand.label, err)
        except ValidationFailed as err:
            row.update(status="refused", reason=str(err))
            logger.warning("%s: refused: %s", cand.label, err)
        results.append(row)
    bar.close()
    ok = [r for r in results if r["status"] == "ok"]
    if not ok:
        reasons = "; ".join(f"{r['label']}: {r.get('reason')}" for r in results)
        raise CalibrateError(f"no candidate could be built and validated ({reasons})")
    meeting = [r for r in ok if r["meets_target"]]
    pool = meeting or ok
    best = min(pool, key=lambda r: r["latency_ms"][TARGET_STAT])
    warning = None
    if not meeting:
        warning = (
            f"no configuration meets {fps:g} fps at {w}x{h} on this machine "
            f"(budget {budget_ms:.1f} ms); wrote the fastest one: {best['label']} "
            f"at {best['latency_ms']['median']:.1f} ms median"
        )
        logger.warning(warning)
    manifest = next((m for n, _, m in bases if n == best["model"]), None)
    return {
        "format": PROFILE_FORMAT,
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "model": best["model"],
        "backend": best["backend"],
        "resolution": [w, h],
        "fps": fps,
        "model_options": best["model_options"],
        "backend_options": best["backend_options"],
        "untrained": best["untrained"],
        "weights_sha256": manifest.get("sha256") if manifest else None,
        "latency_ms": best["latency_ms"],
        "meets_target": bool(best["meets_target"]),
        "warning": warning,
        "target": {"fps": fps, "budget_ms": round(budget_ms, 3), "statistic": TARGET_STAT},
        "validation": {
            "frames": frames_source,
            "min_psnr_db": MIN_PSNR_DB,
            "max_abs_diff_u8": MAX_ABS_DIFF_U8,
            "result": best.get("validation"),
        },
        "device": _device_info(dev),
        "measurement": {"iters": iters, "warmup": warmup, "max_seconds": max_seconds, "scope": best.get("timed")},
        "candidates": results,
    }


def model_from_profile(profile: dict, device: torch.device | str = "cpu") -> tuple[nn.Module, str, bool]:
    """The model a calibration profile names, with its model options applied.

    Returns:
        (FP32 eval model on ``device``, model name, untrained flag). Shipped weights are
        used when they exist; otherwise a randomly initialised model (untrained=True).

    Raises:
        ValueError: unknown model or option.
    """
    name = profile["model"]
    (_, base, manifest), = base_models([name])
    model = models.with_config(name, base, **dict(profile.get("model_options") or {}))
    return model.to(torch.device(device)), name, manifest is None
