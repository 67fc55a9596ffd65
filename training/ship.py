"""Ship a trained run: evaluate its best checkpoint, write it to ``models/weights``.

    python -m training.ship --run runs/lite [--eval DIR] [--pictures docs/images] [--set FIELD=VALUE ...]

The checkpoint selected on the validation split (``RUN/best.pt``) is scored on the
validation split and on LOL eval15 (full table), and written with both results in its
manifest. It is never re-selected on eval15. A picture of input | output | reference for
two eval15 images goes to ``--pictures``.

Config fields that leave the weights as they are (e.g. blnet's ``detail_gamma``) can be
changed on the way: first those of the recipe's ``ship_config`` (recorded in the run's
manifest; recipe ``blnet_skip_full`` sets ``detail_gamma`` 0.5), then ``--set FIELD=VALUE``
on top (``--no-ship-config`` skips the recipe's). The shipped manifest records the change
as ``config_changed_at_ship``.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import cv2
import numpy as np
import torch

from models import WEIGHTS_DIR, load_checkpoint, save_checkpoint, with_config
from realtime.convert import to_tensor, to_uint8

from .data import default_lol_root, list_pairs, load_rgb, split_pairs
from .evaluate import evaluate_model, format_table, run_evaluation

PICTURE_IMAGES = ("1", "111")


def flops_at(model: torch.nn.Module, h: int = 720, w: int = 1280) -> int:
    """Floating-point operations of one forward pass at (h, w) (multiply-add = 2)."""
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with torch.inference_mode(), counter:
        model(torch.rand(1, 3, h, w))
    return int(counter.get_total_flops())


def picture(model: torch.nn.Module, pairs: dict[str, tuple[Path, Path]], names, path: Path, width: int = 360) -> None:
    """Rows of input | output | reference, each panel ``width`` pixels wide."""
    rows = []
    for n in names:
        lo, hi = load_rgb(pairs[n][0]), load_rgb(pairs[n][1])
        with torch.inference_mode():
            y = to_uint8(model(to_tensor(lo)))[0]
        h = round(lo.shape[0] * width / lo.shape[1])
        panels = [cv2.resize(im, (width, h), interpolation=cv2.INTER_AREA) for im in (lo, y, hi)]
        rows.append(np.concatenate([np.concatenate([p, np.full((h, 4, 3), 255, np.uint8)], 1) for p in panels], 1)[:, :-4])
    img = np.concatenate(rows, 0)
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), cv2.cvtColor(img, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 88])


def parse_settings(items: list[str]) -> dict[str, object]:
    """``["a=0.5", "b=[1, 2]"]`` -> ``{"a": 0.5, "b": [1, 2]}`` (values are JSON).

    Raises:
        ValueError: an item without ``=`` or with a value that is not JSON.
    """
    out: dict[str, object] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ValueError(f"--set takes FIELD=VALUE, got {item!r}")
        try:
            out[key] = json.loads(value)
        except json.JSONDecodeError as err:
            raise ValueError(f"--set {key}: {value!r} is not a JSON value") from err
    return out


def ship_changes(manifest: dict, settings: dict[str, object], use_recipe: bool = True) -> dict[str, object]:
    """The config changes to ship a run with: its recipe's ``ship_config`` (as the run's
    manifest recorded it; skipped with ``use_recipe=False``), then ``settings`` on top."""
    recipe = manifest.get("recipe") or {}
    from_recipe = (recipe.get("ship_config") or {}) if use_recipe else {}
    return {**from_recipe, **settings}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m training.ship", description=__doc__.splitlines()[0])
    ap.add_argument("--run", required=True, help="training run folder holding best.pt")
    ap.add_argument("--eval", default=None, help="evaluation pairs (default ../shared/data/lol/eval15)")
    ap.add_argument("--dest", default=str(WEIGHTS_DIR))
    ap.add_argument("--pictures", default="docs/images")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument(
        "--set", action="append", default=[], metavar="FIELD=VALUE",
        help="a config field to change before scoring, one that keeps the weights (VALUE is JSON, e.g. detail_gamma=0.5), "
             "on top of the recipe's ship_config; repeatable",
    )
    ap.add_argument("--no-ship-config", action="store_true", help="do not apply the recipe's ship_config (only --set)")
    args = ap.parse_args(argv)
    try:
        changes = parse_settings(args.set)
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if args.threads:
        torch.set_num_threads(args.threads)
    run = Path(args.run)
    model, manifest = load_checkpoint(run / "best.pt")
    name = manifest["model"]
    changes = ship_changes(manifest, changes, use_recipe=not args.no_ship_config)
    if changes:
        try:
            model = with_config(name, model, **changes)
        except ValueError as err:
            print(f"error: --set: {err}", file=sys.stderr)
            return 2
        manifest = {**manifest, "config_changed_at_ship": changes}
    eval_root = Path(args.eval or default_lol_root() / "eval15")
    _, val_pairs = split_pairs(list_pairs(default_lol_root() / "our485"))
    val_names = manifest.get("data", {}).get("validation")
    if val_names and [a.name for a, _ in val_pairs] != val_names:
        print("error: the validation split differs from the one used in training", file=sys.stderr)
        return 2
    val = evaluate_model(model, val_pairs, progress=False)
    eval_pairs = list_pairs(eval_root)
    table = run_evaluation(model, eval_pairs, name, progress=True)
    md = format_table(table)
    print(md)
    (run / "eval15.md").write_text(md + "\n")
    metrics = {
        "validation": {"pairs": len(val_pairs), **val["mean"]},
        "eval15": {"pairs": len(eval_pairs), **table["rows"]["model"]["mean"]},
        "eval15_references": {k: v["mean"] for k, v in table["rows"].items() if k != "model"},
        "protocol": "uint8 outputs, full 600x400, plain PSNR (no GT-mean rescaling); SSIM skimage gaussian sigma 1.5 on RGB; dE = mean CIE76",
        "flops_1280x720": flops_at(model),
    }
    keep = {k: v for k, v in manifest.items() if k not in ("format", "model", "config", "input_contract", "parameters", "weights_file", "sha256", "metrics")}
    save_checkpoint(model, name, Path(args.dest) / f"{name}.pt", **keep, metrics=metrics)
    by_name = {a.stem: (a, b) for a, b in eval_pairs}
    names = [n for n in PICTURE_IMAGES if n in by_name] or list(by_name)[:2]
    picture(model, by_name, names, Path(args.pictures) / f"{name}_eval15.jpg")
    print(json.dumps({k: metrics[k] for k in ("validation", "flops_1280x720")}, indent=2, default=float))
    return 0


if __name__ == "__main__":
    sys.exit(main())
