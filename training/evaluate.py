"""Evaluate an enhancement model on paired low/high images and print the papers' table.

Command line::

    python -m training.evaluate --model lite --data ../shared/data/lol/eval15 \\
        [--weights PATH] [--out DIR] [--json FILE] [--limit N] [--device cpu] \\
        [--lpips-weights FILE.pt]

Every ``low/`` image of ``--data`` is enhanced (``models.load_pretrained(NAME)``, or
``models.load_checkpoint(--weights)``), quantised to uint8 exactly as written to PNG
(``--out``), and scored against the same-named ``high/`` image at full resolution with
:mod:`training.metrics`. Two reference rows are scored in the same run: the input
itself and a fixed gamma curve ``out = in ** 0.4`` (``GAMMA_REFERENCE``; a textbook
reference value, not tuned on any evaluation set).

Time per image is the model's wall time for one forward pass under
``torch.inference_mode`` (after one warm-up pass), in ms; it excludes decoding,
quantisation and metrics.

LPIPS needs network weights we do not ship and never download. ``--lpips-weights``
takes a complete, self-contained LPIPS module (e.g. ``lpips.LPIPS(net="alex")`` prepared
on another machine) called as ``module(out, ref)`` with (1, 3, H, W) RGB tensors in
[-1, 1]: either a ``torch.export`` program saved as ``.pt2`` (export it with dynamic H
and W) or a TorchScript file (any other suffix). Without it the column reads
"n/a (no weights given)".

Python API for the training loop (validation on held-out pairs)::

    from training.evaluate import evaluate_model
    res = evaluate_model(model, pairs, metrics=("psnr", "ssim"), progress=False)
    res["mean"]["psnr"]
"""
from __future__ import annotations

import argparse
import json
import logging
import math
import os
import platform
import sys
import time
import zipfile
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from models.errors import LowlightError
from realtime.convert import to_tensor, to_uint8

from . import metrics as M
from .data import DataError, list_pairs, load_rgb

__all__ = [
    "GAMMA_REFERENCE",
    "EvaluationError",
    "EvalDataError",
    "EvalIOError",
    "LPIPSScorer",
    "gamma_curve",
    "evaluate_model",
    "evaluate_references",
    "run_evaluation",
    "format_table",
    "main",
]

logger = logging.getLogger(__name__)

#: exponent of the reference gamma curve out = in ** GAMMA_REFERENCE (values in [0, 1]).
GAMMA_REFERENCE = 0.4

Pair = tuple[Path, Path]


class EvaluationError(LowlightError):
    """Base class of the evaluation errors."""


class EvalDataError(EvaluationError, ValueError):
    """An image pair cannot be scored (sizes differ, the model changed the size...)."""


class EvalIOError(EvaluationError, OSError):
    """An output or a weights file cannot be written or read."""


# --------------------------------------------------------------------------- helpers


def gamma_curve(img: np.ndarray, gamma: float = GAMMA_REFERENCE) -> np.ndarray:
    """``round(255 * (img / 255) ** gamma)`` as uint8 (a lookup table)."""
    lut = np.clip(np.rint(255.0 * (np.arange(256) / 255.0) ** gamma), 0, 255).astype(np.uint8)
    return lut[img]


def _write_png(path: Path, img: np.ndarray) -> None:
    if not cv2.imwrite(str(path), cv2.cvtColor(img, cv2.COLOR_RGB2BGR)):
        raise EvalIOError(f"cannot write {path}")


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _model_device(model: nn.Module) -> torch.device:
    for p in model.parameters():
        return p.device
    return torch.device("cpu")


def _mean(values: Iterable[float]) -> float:
    """Mean of the non-nan values (nan when there are none)."""
    vals = [v for v in values if not math.isnan(v)]
    return float(np.mean(vals)) if vals else math.nan


def _summarise(per_image: dict[str, dict[str, float]]) -> dict[str, float]:
    keys: list[str] = []
    for row in per_image.values():
        keys += [k for k in row if k not in keys]
    return {k: _mean(row[k] for row in per_image.values() if k in row) for k in keys}


class LPIPSScorer:
    """LPIPS from a local, self-contained module file (never downloads anything).

    Args:
        path: a ``torch.export`` program (``.pt2``, saved with dynamic H and W) or a
            TorchScript file (any other suffix) of a module called as ``module(out, ref)``
            with (1, 3, H, W) float RGB tensors in [-1, 1], returning the distance (any
            shape; its mean is taken).
        device: where to run it.

    Raises:
        EvalIOError: the file is missing or cannot be loaded as such a module.
    """

    def __init__(self, path: str | os.PathLike, device: torch.device | str = "cpu"):
        self.path = Path(path)
        self.device = torch.device(device)
        if not self.path.is_file():
            raise EvalIOError(f"LPIPS weights {self.path} do not exist")
        try:
            if self.path.suffix == ".pt2":
                self.module = torch.export.load(str(self.path)).module().to(self.device)
            else:
                self.module = torch.jit.load(str(self.path), map_location=self.device).eval()
        except (RuntimeError, ValueError, OSError, zipfile.BadZipFile) as err:
            raise EvalIOError(f"cannot load an LPIPS module from {self.path}: {err}") from err

    def __call__(self, out: np.ndarray, ref: np.ndarray) -> float:
        with torch.inference_mode():
            a = to_tensor(out, self.device) * 2.0 - 1.0
            b = to_tensor(ref, self.device) * 2.0 - 1.0
            return float(self.module(a, b).float().mean())


def _score(out: np.ndarray, ref: np.ndarray, names: Sequence[str], lpips: LPIPSScorer | None, label: str) -> dict[str, float]:
    try:
        row = M.compute_all(out, ref, names)
    except M.MetricInputError as err:
        raise EvalDataError(f"{label}: {err}") from err
    if lpips is not None:
        row["lpips"] = lpips(out, ref)
    return row


# --------------------------------------------------------------------------- API


def evaluate_model(
    model: nn.Module,
    pairs: Sequence[Pair],
    out_dir: str | os.PathLike | None = None,
    device: torch.device | str | None = None,
    metrics: Sequence[str] = M.ALL_METRICS,
    lpips: LPIPSScorer | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Enhance every low image of ``pairs`` and score it against its high image.

    The model runs in eval mode under ``torch.inference_mode`` on one image at a time
    (full resolution); its training mode is restored afterwards. The first image is run
    once untimed as a warm-up.

    Args:
        model: an enhancement model ((N,3,H,W) in [0,1] -> same).
        pairs: ``(low_path, high_path)`` pairs.
        out_dir: if given, the uint8 outputs are written there as PNGs named like the inputs.
        device: where to run; None keeps the model where it is, otherwise the model is moved.
        metrics: names from ``training.metrics.METRICS`` (e.g. ``("psnr", "ssim")`` for a
            fast validation).
        lpips: optional LPIPS scorer, adds an ``"lpips"`` key.
        progress: show a tqdm progress bar.

    Returns:
        ``{"per_image": {name: {metric: value, "time_ms": ms}}, "mean": {...}, "n_images": n}``.

    Raises:
        DataError: an image cannot be read.
        EvalDataError: a pair (or the model output) has mismatched sizes.
        EvalIOError: an output cannot be written.
        KeyError: an unknown metric name.
    """
    unknown = [n for n in metrics if n not in M.METRICS]
    if unknown:
        raise KeyError(f"unknown metric(s) {unknown}; known: {', '.join(M.METRICS)}")
    if not pairs:
        raise EvalDataError("no image pairs to evaluate")
    dev = _model_device(model) if device is None else torch.device(device)
    model.to(dev)
    out_path = None
    if out_dir is not None:
        out_path = Path(out_dir)
        out_path.mkdir(parents=True, exist_ok=True)
    was_training = model.training
    model.eval()
    per_image: dict[str, dict[str, float]] = {}
    try:
        with torch.inference_mode():
            model(to_tensor(load_rgb(pairs[0][0]), dev))  # warm-up, untimed
            for low_p, high_p in tqdm(pairs, desc="model", unit="img", disable=not progress, leave=False):
                low, high = load_rgb(low_p), load_rgb(high_p)
                x = to_tensor(low, dev)
                _sync(dev)
                t0 = time.perf_counter()
                y = model(x)
                _sync(dev)
                ms = (time.perf_counter() - t0) * 1000.0
                out = to_uint8(y)[0]
                if out_path is not None:
                    _write_png(out_path / Path(low_p.name).with_suffix(".png"), out)
                row = _score(out, high, metrics, lpips, low_p.name)
                row["time_ms"] = ms
                per_image[low_p.name] = row
    finally:
        model.train(was_training)
    return {"per_image": per_image, "mean": _summarise(per_image), "n_images": len(per_image)}


def evaluate_references(
    pairs: Sequence[Pair],
    gamma: float = GAMMA_REFERENCE,
    metrics: Sequence[str] = M.ALL_METRICS,
    lpips: LPIPSScorer | None = None,
    progress: bool = True,
) -> dict[str, dict[str, Any]]:
    """Score the inputs themselves and the fixed gamma curve, and the ground truths' entropies.

    Returns:
        ``{"input": row, "gamma": row, "ground_truth": row}``; each row is
        ``{"per_image": ..., "mean": ...}``. The gamma rows carry ``time_ms`` of the lookup
        table; the ground-truth row only the no-reference entropies.

    Raises:
        DataError: an image cannot be read.
        EvalDataError: a pair has mismatched sizes.
    """
    no_ref = [n for n in metrics if M.HIGHER_IS_BETTER.get(n, False) is None]
    rows: dict[str, dict[str, dict[str, float]]] = {"input": {}, "gamma": {}, "ground_truth": {}}
    for low_p, high_p in tqdm(pairs, desc="references", unit="img", disable=not progress, leave=False):
        low, high = load_rgb(low_p), load_rgb(high_p)
        rows["input"][low_p.name] = _score(low, high, metrics, lpips, low_p.name)
        t0 = time.perf_counter()
        g = gamma_curve(low, gamma)
        ms = (time.perf_counter() - t0) * 1000.0
        rows["gamma"][low_p.name] = {**_score(g, high, metrics, lpips, low_p.name), "time_ms": ms}
        rows["ground_truth"][low_p.name] = M.compute_all(high, high, no_ref)
    return {k: {"per_image": v, "mean": _summarise(v), "n_images": len(v)} for k, v in rows.items()}


def run_evaluation(
    model: nn.Module,
    pairs: Sequence[Pair],
    model_label: str,
    out_dir: str | os.PathLike | None = None,
    device: torch.device | str = "cpu",
    gamma: float = GAMMA_REFERENCE,
    lpips: LPIPSScorer | None = None,
    progress: bool = True,
    meta: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The full table: rows ``input``, ``gamma`` and ``model`` (all metrics), plus metadata.

    Raises:
        DataError, EvalDataError, EvalIOError: as :func:`evaluate_model`.
    """
    t0 = time.perf_counter()
    refs = evaluate_references(pairs, gamma, lpips=lpips, progress=progress)
    res_model = evaluate_model(model, pairs, out_dir, device, lpips=lpips, progress=progress)
    wall = time.perf_counter() - t0
    dev = torch.device(device)
    return {
        "meta": {
            "model": model_label,
            "n_images": len(pairs),
            "device": str(dev),
            "torch_threads": torch.get_num_threads() if dev.type == "cpu" else None,
            "host": platform.node(),
            "gamma": gamma,
            "lpips": str(lpips.path) if lpips is not None else None,
            "wall_s": wall,
            "protocol": protocol_notes(gamma, lpips),
            **(meta or {}),
        },
        "rows": {"input": refs["input"], "gamma": refs["gamma"], "model": res_model},
        "ground_truth": refs["ground_truth"],
    }


# --------------------------------------------------------------------------- table

_COLUMNS: list[tuple[str, str, str]] = [  # key, header, format
    ("psnr", "PSNR ↑", "{:.2f}"),
    ("ssim", "SSIM ↑", "{:.4f}"),
    ("fsim", "FSIM ↑", "{:.4f}"),
    ("fsimc", "FSIMc ↑", "{:.4f}"),
    ("uqi", "UQI ↑", "{:.4f}"),
    ("angular_error", "AE (°) ↓", "{:.2f}"),
    ("delta_e", "ΔE76 ↓", "{:.2f}"),
    ("gray_entropy", "gray H", "{:.3f}"),
    ("color_entropy", "colour H", "{:.3f}"),
    ("lpips", "LPIPS ↓", "{:.4f}"),
    ("time_ms", "ms / img", "{:.1f}"),
]


def protocol_notes(gamma: float = GAMMA_REFERENCE, lpips: LPIPSScorer | None = None) -> list[str]:
    """One line per metric saying exactly how it was computed."""
    return [
        "All metrics on the uint8 outputs as written to PNG, full resolution, against the high/ image.",
        "PSNR: plain, RGB, data_range 255 (no GT-mean rescaling).",
        "SSIM: skimage, RGB (channel_axis=2), data_range=255, gaussian_weights=True, sigma=1.5, "
        "use_sample_covariance=False (Wang et al. 2004), mean over channels.",
        "FSIM / FSIMc: Zhang et al. 2011 on YIQ luma (+ chroma for FSIMc), log-Gabor phase congruency "
        "(4 scales, 4 orientations), auto down-sampling F = max(1, round(min(H, W) / 256)).",
        f"UQI: Wang & Bovik 2002, {M.UQI_BLOCK}x{M.UQI_BLOCK} sliding windows (stride 1), per channel, then mean.",
        "AE: mean per-pixel angle between RGB vectors in degrees; pixels black in either image skipped.",
        "ΔE76: mean CIE76 (skimage deltaE_cie76 on rgb2lab, sRGB, D65).",
        "gray H: Shannon entropy (bits) of the 256-bin histogram of round(0.299R+0.587G+0.114B); "
        "colour H: mean over R, G, B of the per-channel entropy (bits).",
        f"LPIPS: {'TorchScript module ' + str(lpips.path) if lpips is not None else 'n/a (no weights given)'}.",
        f"gamma row: out = in ** {gamma:g} on [0, 1] values (fixed reference, not tuned); its time is the lookup table.",
        "ms / img: model forward wall time under torch.inference_mode after one warm-up (excludes I/O and metrics).",
    ]


def _cell(row: dict[str, float], key: str, fmt: str) -> str:
    if key not in row:
        return "n/a"
    v = row[key]
    if math.isnan(v):
        return "nan"
    if math.isinf(v):
        return "inf" if v > 0 else "-inf"
    return fmt.format(v)


def format_table(results: dict[str, Any]) -> str:
    """Markdown table of :func:`run_evaluation`'s result (rows input, gamma, model) plus notes."""
    meta = results["meta"]
    labels = {"input": "input (low)", "gamma": f"gamma {meta['gamma']:g}", "model": meta["model"]}
    head = "| method | " + " | ".join(h for _, h, _ in _COLUMNS) + " |"
    sep = "|---|" + "|".join("---:" for _ in _COLUMNS) + "|"
    lines = [head, sep]
    for key, label in labels.items():
        row = results["rows"][key]["mean"]
        lines.append(f"| {label} | " + " | ".join(_cell(row, k, f) for k, _, f in _COLUMNS) + " |")
    gt = results.get("ground_truth", {}).get("mean", {})
    notes = [f"{meta['n_images']} images, device {meta['device']}."]
    if gt:
        notes.append(
            f"Ground truth (high/) for reference: gray H {_cell(gt, 'gray_entropy', '{:.3f}')}, "
            f"colour H {_cell(gt, 'color_entropy', '{:.3f}')}."
        )
    notes += meta["protocol"]
    return "\n".join(lines) + "\n\n" + "\n".join(f"- {n}" for n in notes)


# --------------------------------------------------------------------------- CLI


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, (np.floating, np.integer)):
        return obj.item()
    return obj


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m training.evaluate", description=__doc__.split("\n\n")[0])
    p.add_argument("--model", help="registered model name (shipped weights unless --weights is given)")
    p.add_argument("--data", required=True, type=Path, help="folder with low/ and high/ same-named images")
    p.add_argument("--weights", type=Path, help="checkpoint .pt written by models.save_checkpoint")
    p.add_argument("--out", type=Path, help="write the enhanced uint8 PNGs here")
    p.add_argument("--json", type=Path, help="write all per-image and mean results here")
    p.add_argument("--limit", type=int, help="only the first N pairs (sorted by name)")
    p.add_argument("--device", default="cpu", help="torch device (default: cpu)")
    p.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice); 1 avoids oversubscription on a busy machine")
    p.add_argument("--gamma", type=float, default=GAMMA_REFERENCE, help="exponent of the reference gamma row (default: %(default)s)")
    p.add_argument("--lpips-weights", type=Path, help="TorchScript LPIPS module; LPIPS is n/a without it")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bars")
    return p


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; returns the exit status."""
    import models  # the model registry; imported here so `training.metrics` users never need it

    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    if args.model is None and args.weights is None:
        print("error: give --model NAME (shipped weights) and/or --weights PATH", file=sys.stderr)
        return 2
    device = torch.device(args.device)
    if args.threads is not None:
        torch.set_num_threads(max(1, args.threads))
    try:
        if args.weights is not None:
            model, manifest = models.load_checkpoint(args.weights, device)
            source = str(args.weights)
        else:
            model, manifest = models.load_pretrained(args.model, device)
            source = f"shipped ({models.WEIGHTS_DIR / (args.model + '.pt')})"
    except (models.CheckpointError, ValueError) as err:
        print(f"error: cannot load the model: {err}", file=sys.stderr)
        return 2
    if args.model is not None and manifest.get("model") != args.model:
        print(f"error: {args.weights} holds model {manifest.get('model')!r}, not {args.model!r}", file=sys.stderr)
        return 2
    label = args.model or manifest["model"]
    try:
        pairs = list_pairs(args.data)
        if args.limit is not None:
            pairs = pairs[: max(0, args.limit)]
        lpips = LPIPSScorer(args.lpips_weights, device) if args.lpips_weights is not None else None
        results = run_evaluation(
            model,
            pairs,
            label,
            out_dir=args.out,
            device=device,
            gamma=args.gamma,
            lpips=lpips,
            progress=not args.no_progress,
            meta={"data": str(args.data), "weights": source, "sha256": manifest.get("sha256")},
        )
    except (DataError, EvaluationError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(format_table(results))
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(_jsonable(results), indent=2) + "\n")
        logger.info("wrote %s", args.json)
    if args.out is not None:
        logger.info("wrote %d images to %s", len(pairs), args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
