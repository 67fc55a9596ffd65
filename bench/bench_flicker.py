"""Flicker, cut response and temporal noise of each model, with and without temporal smoothing.

Builds a synthetic dark clip from scikit-image sample images (nothing is downloaded):

* linear-light scene darkened so the gamma-encoded frame has a mean of ``--dark-mean``;
* a static scene A (``--static`` frames) with a random per-frame exposure factor in [1 - j, 1 + j]
  (``--jitter``, default 0.15), then a hard cut to scene B (same jitter);
* Poisson-Gaussian sensor noise drawn fresh for every frame (``--full-well``
  electrons at linear 1.0, ``--read-noise`` in the same units), gamma 1/2.2, uint8.

A second clip with the same scenes and noise but no exposure jitter isolates the
smoother's lag after the cut and the frame-to-frame *noise* of a static scene.

For each model (shipped weights if present, else an untrained ``create_model`` and the
output says so) every frame is run as ``estimate -> [TemporalSmoother] -> render`` and
the script prints, from luma Y on the [0, 255] scale:

* flicker: mean over t of |mean(Y_t) - mean(Y_{t-1})| / mean(Y) on the static part;
* cut: frames after the cut until the output stays within 5 % of the new scene's
  settled brightness (0 = already on the first frame of the new scene);
* noise: mean |Y_t - Y_{t-1}| on the static part, absolute and relative to mean(Y).

Acceptance (issue 3): smoothed flicker <= half the input's, cut settled within 3 frames.

    python bench/bench_flicker.py                      # all models: ~30 s on the busy 2-core machine
    python bench/bench_flicker.py --models lite --size 320x240
"""
from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch
from skimage import data as skdata

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import models  # noqa: E402
from models import CheckpointError  # noqa: E402
from models._layers import luminance  # noqa: E402
from realtime.convert import to_tensor  # noqa: E402
from realtime.smoothing import TemporalSmoother  # noqa: E402

LUMA = np.array([0.299, 0.587, 0.114], np.float32)


@dataclass(frozen=True)
class Clip:
    frames: list[np.ndarray]  # HxWx3 uint8 RGB
    cut: int  # index of the first frame of scene B


def _scene(name: str, size: tuple[int, int], dark_mean: float) -> np.ndarray:
    img = getattr(skdata, name)()
    if img.ndim == 2:
        img = np.repeat(img[..., None], 3, axis=2)
    img = cv2.resize(img[..., :3], size, interpolation=cv2.INTER_AREA).astype(np.float32) / 255.0
    lin = img**2.2
    # Find the linear scale whose gamma-encoded mean is dark_mean (noise-free).
    lo, hi = 1e-4, 1.0
    for _ in range(40):
        mid = (lo * hi) ** 0.5
        if np.mean((lin * mid) ** (1 / 2.2)) > dark_mean:
            hi = mid
        else:
            lo = mid
    return lin * lo


def _capture(lin: np.ndarray, k: float, rng: np.random.Generator, full_well: float, read_noise: float) -> np.ndarray:
    electrons = rng.poisson(np.clip(lin * k, 0, 1) * full_well).astype(np.float32)
    sig = electrons / full_well + rng.normal(0.0, read_noise, lin.shape).astype(np.float32)
    enc = np.clip(sig, 0.0, 1.0) ** (1 / 2.2)
    return np.round(enc * 255.0).astype(np.uint8)


def build_clip(args: argparse.Namespace, size: tuple[int, int], jitter: float, seed: int) -> Clip:
    rng = np.random.default_rng(seed)
    a, b = (_scene(n, size, args.dark_mean) for n in args.scenes)
    frames = []
    for t in range(args.static + args.after):
        k = 1.0 + rng.uniform(-jitter, jitter)
        frames.append(_capture(a if t < args.static else b, k, rng, args.full_well, args.read_noise))
    return Clip(frames, args.static)


def _luma(img: np.ndarray) -> np.ndarray:
    return img.astype(np.float32) @ LUMA


def flicker(means: np.ndarray) -> float:
    return float(np.mean(np.abs(np.diff(means))) / np.mean(means))


def settle_frames(means: np.ndarray, cut: int, tol: float = 0.05, tail: int = 4) -> int:
    """Frames after ``cut`` until brightness stays within ``tol`` of the settled value."""
    after = means[cut:]
    settled = float(np.mean(after[-tail:]))
    ok = np.abs(after - settled) <= tol * settled
    bad = np.nonzero(~ok)[0]
    return 0 if bad.size == 0 else int(bad[-1]) + 1


def temporal_noise(lumas: list[np.ndarray], cut: int) -> tuple[float, float]:
    pairs = [(lumas[t], lumas[t - 1]) for t in range(1, len(lumas)) if t != cut]
    d = float(np.mean([np.mean(np.abs(p - q)) for p, q in pairs]))
    return d, d / float(np.mean([np.mean(y) for y in lumas]))


def run(model: torch.nn.Module, clip: Clip, smoother: TemporalSmoother) -> dict[str, list[np.ndarray]]:
    smoother.reset()
    lumas: dict[str, list[np.ndarray]] = {"input": [], "raw": [], "smoothed": []}
    with torch.inference_mode():
        for frame in clip.frames:
            x = to_tensor(frame)
            aux, illum = model.estimate(x)
            expo = luminance(x).mean()
            raw = model.render(x, aux, illum)
            smooth = model.render(x, aux, smoother(illum, expo))
            lumas["input"].append(_luma(frame))
            for key, out in (("raw", raw), ("smoothed", smooth)):
                lumas[key].append(_luma((out[0].permute(1, 2, 0).numpy() * 255.0)))
    return lumas


class FixedGain(torch.nn.Module):
    """Reference "network" that ignores exposure: a constant gain (e = +1), so all of the
    input's exposure flicker reaches its output. Shows the smoother's effect when
    untrained models (which may normalise exposure by construction) show none."""

    illum_exposure = 1

    def __init__(self, gain: float = 3.5):
        super().__init__()
        self.gain = gain

    def estimate(self, x: torch.Tensor) -> tuple[None, torch.Tensor]:
        return None, torch.full((x.shape[0], 3, 1, 1), self.gain)

    def render(self, x: torch.Tensor, aux: None, illum: torch.Tensor) -> torch.Tensor:
        return (x * illum).clamp(0.0, 1.0)


def _load(name: str) -> tuple[torch.nn.Module, str]:
    if name == "fixed-gain":
        return FixedGain(), "reference, no network"
    try:
        model, _ = models.load_pretrained(name, "cpu")
        return model, "trained"
    except CheckpointError:
        return models.create_model(name), "untrained"


def _size(text: str) -> tuple[int, int]:
    w, h = text.lower().split("x")
    return int(w), int(h)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--models", nargs="+", default=["fixed-gain", "lite", "sri", "blnet"],
                   help="model names, or fixed-gain (built-in exposure-blind reference)")
    p.add_argument("--size", type=_size, default=(320, 240), help="WxH for lite")
    p.add_argument("--heavy-size", type=_size, default=(160, 120), help="WxH for sri and blnet (slow on CPU)")
    p.add_argument("--static", type=int, default=16, help="frames of scene A")
    p.add_argument("--after", type=int, default=8, help="frames of scene B after the cut")
    p.add_argument("--jitter", type=float, default=0.15)
    p.add_argument("--dark-mean", type=float, default=0.12, help="mean of the gamma-encoded dark frame")
    p.add_argument("--full-well", type=float, default=2000.0)
    p.add_argument("--read-noise", type=float, default=0.002)
    p.add_argument("--scenes", nargs=2, default=["astronaut", "coffee"])
    p.add_argument("--strength", type=float, default=0.8)
    p.add_argument("--threads", type=int, default=1, help="torch threads (1 is fastest on a busy 2-core machine)")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)

    print(
        f"clip: scenes {args.scenes[0]} -> {args.scenes[1]}, {args.static}+{args.after} frames, "
        f"exposure jitter +-{args.jitter:.0%}, dark mean {args.dark_mean}, full well {args.full_well:g} e-, "
        f"read noise {args.read_noise}; smoothing strength {args.strength}"
    )
    ok_all = True
    for name in args.models:
        t0 = time.perf_counter()
        model, tag = _load(name)
        model.eval()
        size = args.heavy_size if name in ("sri", "blnet") else args.size
        jit = build_clip(args, size, args.jitter, args.seed)
        steady = build_clip(args, size, 0.0, args.seed + 1)
        smoother = TemporalSmoother(args.strength, exposure_exponent=model.illum_exposure)
        lj = run(model, jit, smoother)
        ls = run(model, steady, smoother)
        print(f"\n== {name} ({tag}, {size[0]}x{size[1]}, e={model.illum_exposure}) ==")
        print(f"{'':10s} {'flicker':>8s} {'cut(j)':>7s} {'cut':>4s} {'noise':>7s} {'noise/Y':>8s} {'mean Y':>7s}")
        res = {}
        for key in ("input", "raw", "smoothed"):
            mj = np.array([y.mean() for y in lj[key]])
            ms = np.array([y.mean() for y in ls[key]])
            fl = flicker(mj[: jit.cut])
            cut_j = settle_frames(mj, jit.cut)
            cut_s = settle_frames(ms, steady.cut)
            nz, nz_rel = temporal_noise(ls[key], steady.cut)
            res[key] = (fl, cut_s, nz, nz_rel)
            print(f"{key:10s} {fl:8.4f} {cut_j:7d} {cut_s:4d} {nz:7.2f} {nz_rel:8.4f} {mj[: jit.cut].mean():7.1f}")
        fl_ratio = res["smoothed"][0] / res["input"][0]
        ok = fl_ratio <= 0.5 and res["smoothed"][1] < 3
        ok_all &= ok
        print(
            f"flicker smoothed/input = {fl_ratio:.2f} (raw/input = {res['raw'][0] / res['input'][0]:.2f}); "
            f"noise/Y smoothed/raw = {res['smoothed'][3] / res['raw'][3]:.2f}; "
            f"cut settled after {res['smoothed'][1]} frame(s) -> {'PASS' if ok else 'FAIL'} "
            f"[{time.perf_counter() - t0:.1f} s]"
        )
    print("\ncolumns: flicker = mean |dmean(Y)|/mean(Y) on the jittered static part; cut(j)/cut = frames after the cut")
    print("until within 5% of the settled brightness (jittered / jitter-free clip); noise = mean |Y_t - Y_t-1| (0-255)")
    print("on the jitter-free static parts, noise/Y = relative to mean brightness.")
    return 0 if ok_all else 1


if __name__ == "__main__":
    raise SystemExit(main())
