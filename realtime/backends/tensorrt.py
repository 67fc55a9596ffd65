"""TensorRT FP16 through torch-tensorrt (optional), with an on-disk engine cache.

Nothing here imports ``torch_tensorrt`` at module level: version handling
(:func:`trt_compile_settings`) and cache keys (:func:`engine_cache_key`) are plain
functions that tests exercise on CPU with fake version strings.
"""
from __future__ import annotations

import copy
import hashlib
import json
import logging
import os
import re
from pathlib import Path
from typing import Any, Callable

import torch
from torch import Tensor, nn

from ..errors import BackendUnavailableError as BackendUnavailable
from ..errors import ExportError

logger = logging.getLogger(__name__)

__all__ = [
    "parse_version",
    "trt_compile_settings",
    "engine_cache_dir",
    "engine_cache_key",
    "model_checksum",
    "import_torch_tensorrt",
    "build_tensorrt",
]

#: oldest torch-tensorrt whose dynamo frontend (compile of an ExportedProgram, save/load) we support.
MIN_TORCH_TENSORRT = (2, 2)
BUILDING_MESSAGE = "building TensorRT engine (this takes a while)"


def parse_version(version: str) -> tuple[int, int, int]:
    """``"2.13.0.dev20260601+cu130"`` -> ``(2, 13, 0)``; a missing patch counts as 0.

    Raises:
        ValueError: the string does not start with ``MAJOR.MINOR``.
    """
    m = re.match(r"^\s*v?(\d+)\.(\d+)(?:\.(\d+))?", str(version))
    if not m:
        raise ValueError(f"cannot parse version {version!r}")
    return int(m.group(1)), int(m.group(2)), int(m.group(3) or 0)


def trt_compile_settings(version: str) -> dict[str, Any]:
    """Keyword arguments for ``torch_tensorrt.dynamo.compile`` that give an FP16 engine.

    The model and its inputs are always converted to half by the caller; what differs
    between releases is how TensorRT is told it may use FP16:

    * up to 2.9: ``enabled_precisions={torch.half}``;
    * 2.10 to 2.12: the same, plus ``use_explicit_typing=False`` (explicit typing became
      the default and rejects ``enabled_precisions`` with an AssertionError);
    * from 2.13: strong typing is always on and ``enabled_precisions`` /
      ``use_explicit_typing`` are gone; FP16 means a half model and half inputs.

    Args:
        version: ``torch_tensorrt.__version__``.

    Raises:
        BackendUnavailable: unparseable, or older than :data:`MIN_TORCH_TENSORRT`.
    """
    try:
        v = parse_version(version)
    except ValueError as err:
        raise BackendUnavailable(f"unrecognised torch_tensorrt version {version!r}") from err
    if v[:2] < MIN_TORCH_TENSORRT:
        need = ".".join(map(str, MIN_TORCH_TENSORRT))
        raise BackendUnavailable(f"torch_tensorrt {version} is too old (the dynamo frontend needs >= {need})")
    settings: dict[str, Any] = {"min_block_size": 1}
    if v[:2] <= (2, 9):
        settings["enabled_precisions"] = {torch.float16}
    elif v[:2] <= (2, 12):
        settings["enabled_precisions"] = {torch.float16}
        settings["use_explicit_typing"] = False
    return settings


def engine_cache_dir() -> Path:
    """``$LOWLIGHT_CACHE/engines`` if set, else ``~/.cache/lowlight-rt/engines``."""
    root = os.environ.get("LOWLIGHT_CACHE")
    base = Path(root) if root else Path.home() / ".cache" / "lowlight-rt"
    return base / "engines"


def model_checksum(model: nn.Module) -> str:
    """sha256 over the model's class, config and weights (bitwise, as float32 on CPU)."""
    h = hashlib.sha256()
    h.update(type(model).__qualname__.encode())
    h.update(repr(getattr(model, "cfg", None)).encode())
    for name, t in sorted(model.state_dict().items()):
        h.update(name.encode())
        t = t.detach().to("cpu")
        if t.is_floating_point():
            t = t.float()
        h.update(str(tuple(t.shape)).encode())
        h.update(t.contiguous().numpy().tobytes())
    return h.hexdigest()


def engine_cache_key(
    checksum: str,
    shape: tuple[int, int],
    precision: str,
    gpu: str,
    torch_version: str,
    trt_version: str,
    torch_tensorrt_version: str,
    part: str,
) -> str:
    """Hex key of one cached engine; any change of its inputs gives another key."""
    doc = {
        "model": checksum,
        "shape": [int(shape[0]), int(shape[1])],
        "precision": precision,
        "gpu": gpu,
        "torch": torch_version,
        "tensorrt": trt_version,
        "torch_tensorrt": torch_tensorrt_version,
        "part": part,
    }
    return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()[:24]


def import_torch_tensorrt():
    """Import torch_tensorrt.

    Raises:
        BackendUnavailable: not installed, or its TensorRT libraries do not load.
    """
    try:
        import torch_tensorrt
    except ImportError as err:
        raise BackendUnavailable(f"torch_tensorrt is not installed ({err})") from err
    except OSError as err:  # shared libraries of TensorRT missing
        raise BackendUnavailable(f"torch_tensorrt does not load its TensorRT libraries ({err})") from err
    return torch_tensorrt


def _tensorrt_version() -> str:
    try:
        import tensorrt
    except ImportError:
        return "unknown"
    return str(getattr(tensorrt, "__version__", "unknown"))


def _as_tuple(out: Any) -> tuple[Tensor, ...]:
    if isinstance(out, Tensor):
        return (out,)
    return tuple(out)


def build_tensorrt(
    model: nn.Module, model_name: str, device: torch.device, shape: tuple[int, int], cache_dir: Path | None = None
) -> tuple[Callable, Callable, str]:
    """Build (or load from the engine cache) FP16 TensorRT modules for estimate and render.

    Returns:
        (estimate callable, render callable, one-line detail for the backend's reason).

    Raises:
        BackendUnavailable: torch_tensorrt missing or too old, no CUDA, or the build failed.
    """
    from .export import export_parts

    ttrt = import_torch_tensorrt()
    tt_version = str(getattr(ttrt, "__version__", "unknown"))
    settings = trt_compile_settings(tt_version)
    if device.type != "cuda" or not torch.cuda.is_available():
        raise BackendUnavailable("TensorRT needs a CUDA device")
    cache = Path(cache_dir) if cache_dir is not None else engine_cache_dir()
    cache.mkdir(parents=True, exist_ok=True)
    half = copy.deepcopy(model).to(device=device, dtype=torch.float16).eval()
    checksum = model_checksum(model)
    gpu = torch.cuda.get_device_name(device)
    keyargs = dict(
        checksum=checksum,
        shape=shape,
        precision="fp16",
        gpu=gpu,
        torch_version=torch.__version__,
        trt_version=_tensorrt_version(),
        torch_tensorrt_version=tt_version,
    )
    paths = {
        part: cache / f"{model_name}-{shape[0]}x{shape[1]}-{part}-{engine_cache_key(part=part, **keyargs)}.ep"
        for part in ("estimate", "render")
    }
    modules: dict[str, Callable] = {}
    with torch.no_grad():
        x0 = torch.rand(1, 3, shape[0], shape[1], device=device, dtype=torch.float16)
        aux0, _ = half.estimate(x0)
    has_aux = aux0 is not None
    hits = []
    for part, path in paths.items():
        if path.is_file():
            try:
                modules[part] = ttrt.load(str(path)).module()
                hits.append(part)
                logger.info("loaded cached TensorRT %s engine %s", part, path)
            except (RuntimeError, OSError, ValueError) as err:
                logger.warning("cached engine %s does not load (%s); rebuilding it", path, err)
                path.unlink()
    if len(modules) < 2:
        logger.warning("%s: %s %dx%d FP16 (torch_tensorrt %s) ...", BUILDING_MESSAGE, model_name, shape[0], shape[1], tt_version)
        try:
            est_ep, ren_ep, est_args, ren_args, _ = export_parts(half, shape, device, torch.float16)
        except ExportError as err:
            raise BackendUnavailable(str(err)) from err
        for part, ep, args in (("estimate", est_ep, est_args), ("render", ren_ep, ren_args)):
            if part in modules:
                continue
            try:
                trt_gm = ttrt.dynamo.compile(ep, arg_inputs=list(args), **settings)
                tmp = paths[part].with_name(paths[part].stem + ".partial.ep")
                ttrt.save(trt_gm, str(tmp), output_format="exported_program", arg_inputs=list(args))
                os.replace(tmp, paths[part])
            except Exception as err:  # TensorRT raises many types; report it as unavailable with the cause
                raise BackendUnavailable(f"TensorRT build of {part} failed: {type(err).__name__}: {err}") from err
            modules[part] = trt_gm
            logger.info("saved TensorRT %s engine to %s", part, paths[part])
    est_mod, ren_mod = modules["estimate"], modules["render"]

    def estimate(x: Tensor) -> tuple[Tensor | None, Tensor]:
        out = _as_tuple(est_mod(x.to(device=device, dtype=torch.float16)))
        return (out[0], out[1]) if has_aux else (None, out[0])

    def render(x: Tensor, aux: Tensor | None, illum: Tensor) -> Tensor:
        x = x.to(device=device, dtype=torch.float16)
        args = (x, aux, illum) if has_aux else (x, illum)
        return _as_tuple(ren_mod(*args))[0]

    cached = "engines from cache" if len(hits) == 2 else "engines built and cached"
    detail = f"torch_tensorrt {tt_version}, FP16, {cached} in {cache}"
    return estimate, render, detail
