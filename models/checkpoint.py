"""Checkpoints: a ``state_dict`` (``NAME.pt``) plus a JSON manifest (``NAME.json``).

The manifest carries the model name, its config, the input contract, training data
and recipe, evaluation results and the sha256 of the weights file. Loading checks the
checksum and uses ``torch.load(weights_only=True)``.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .errors import LowlightError
from ._registry import config_from_dict, create_model, get_entry

__all__ = [
    "CheckpointError",
    "WEIGHTS_DIR",
    "save_checkpoint",
    "load_checkpoint",
    "load_pretrained",
    "read_manifest",
    "sha256_file",
    "available_pretrained",
]

WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"
MANIFEST_VERSION = 1


class CheckpointError(LowlightError, ValueError):
    """A checkpoint is missing, corrupt, or does not match its manifest."""

    exit_code = 2


def sha256_file(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _manifest_path(weights: Path) -> Path:
    return weights.with_suffix(".json")


def save_checkpoint(model: nn.Module, name: str, path: str | os.PathLike, **manifest: Any) -> Path:
    """Write ``path`` (``.pt`` state_dict) and its ``.json`` manifest next to it.

    ``manifest`` keys (``data``, ``recipe``, ``metrics``, ``trained_on`` ...) are stored
    as given. Returns the manifest path.
    """
    path = Path(path).with_suffix(".pt")
    path.parent.mkdir(parents=True, exist_ok=True)
    cfg = getattr(model, "cfg", None)
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    tmp = path.with_suffix(".pt.tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)
    doc = {
        "format": MANIFEST_VERSION,
        "model": name,
        "config": dataclasses.asdict(cfg) if cfg is not None else {},
        "input_contract": model.input_contract() if hasattr(model, "input_contract") else {},
        "parameters": sum(p.numel() for p in model.parameters()),
        **manifest,
        "weights_file": path.name,
        "sha256": sha256_file(path),
    }
    mpath = _manifest_path(path)
    mpath.write_text(json.dumps(doc, indent=2, sort_keys=False) + "\n")
    return mpath


def read_manifest(path: str | os.PathLike) -> dict[str, Any]:
    """Manifest of the checkpoint at ``path`` (either the ``.pt`` or the ``.json``)."""
    mpath = _manifest_path(Path(path))
    try:
        return json.loads(mpath.read_text())
    except FileNotFoundError as err:
        raise CheckpointError(f"no manifest {mpath} next to the weights") from err
    except json.JSONDecodeError as err:
        raise CheckpointError(f"manifest {mpath} is not valid JSON: {err}") from err


def _flush_subnormals(state: dict[str, torch.Tensor]) -> None:
    # float32 subnormals make oneDNN convolutions many times slower; they carry no signal.
    tiny = torch.finfo(torch.float32).tiny
    for v in state.values():
        if v.is_floating_point():
            v[v.abs() < tiny] = 0.0


def load_checkpoint(path: str | os.PathLike, device: torch.device | str | None = None) -> tuple[nn.Module, dict]:
    """Load a checkpoint written by :func:`save_checkpoint`.

    Returns ``(model in eval mode on device, manifest)``.

    Raises:
        CheckpointError: missing file, checksum mismatch, or weights that do not fit.
        ValueError: the manifest names an unknown model.
    """
    path = Path(path).with_suffix(".pt")
    manifest = read_manifest(path)
    if not path.exists():
        raise CheckpointError(f"weights file {path} does not exist")
    digest = sha256_file(path)
    if digest != manifest.get("sha256"):
        raise CheckpointError(f"{path} does not match its manifest (sha256 {digest[:12]} != {str(manifest.get('sha256'))[:12]})")
    name = manifest["model"]
    get_entry(name)
    # A manifest holds every config field its writer knew; fields added since take the
    # dataclass default, i.e. the behaviour the checkpoint was trained with.
    model = create_model(name, config_from_dict(name, manifest.get("config") or {}, base="fields"))
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
        _flush_subnormals(state)
        model.load_state_dict(state, strict=True)
    except (RuntimeError, OSError) as err:
        raise CheckpointError(f"cannot load {path}: {err}") from err
    model.eval()
    if device is not None:
        model.to(torch.device(device))
    return model, manifest


def available_pretrained() -> list[str]:
    """Names of the models that ship weights in ``models/weights``."""
    return sorted(p.stem for p in WEIGHTS_DIR.glob("*.pt") if _manifest_path(p).exists())


def load_pretrained(name: str, device: torch.device | str | None = None) -> tuple[nn.Module, dict]:
    """Load the shipped weights of model ``name``.

    Raises:
        ValueError: unknown model name.
        CheckpointError: the model has no shipped weights.
    """
    get_entry(name)
    path = WEIGHTS_DIR / f"{name}.pt"
    if not path.exists():
        raise CheckpointError(
            f"model {name!r} has no shipped weights in {WEIGHTS_DIR}; available: {', '.join(available_pretrained()) or 'none'}"
        )
    return load_checkpoint(path, device)
