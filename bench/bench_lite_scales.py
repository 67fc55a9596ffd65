"""How ``lite``'s grid scale trades quality for speed.

For each scale: LOL eval15 PSNR / SSIM of the shipped weights evaluated at that scale
(uint8 outputs, full resolution), and the network's latency on a 1280x720 frame
(box statistics excluded) with 1 and 2 torch threads, and the GFLOP of a whole
1280x720 forward pass (network and full-resolution affine map).

    python bench/bench_lite_scales.py [--scales 3 4 5 6 7 8] [--data ../shared/data/lol/eval15]
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from models import load_pretrained, with_config  # noqa: E402
from realtime import kernels  # noqa: E402
from realtime.paths import lol_root  # noqa: E402
from training.data import list_pairs  # noqa: E402
from training.evaluate import evaluate_model  # noqa: E402
from training.ship import flops_at  # noqa: E402


def network_ms(model, frame: np.ndarray, iters: int = 15) -> float:
    mean, m1, m2 = (torch.from_numpy(a) for a in kernels.box_stats_u8(frame, model.cfg.scale, model.pad_multiple))
    mean = mean.contiguous(memory_format=torch.channels_last)
    with torch.inference_mode():
        for _ in range(3):
            model.estimate_from_stats(mean, m1, m2)
        t = time.perf_counter()
        for _ in range(iters):
            model.estimate_from_stats(mean, m1, m2)
    return (time.perf_counter() - t) / iters * 1e3


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scales", type=int, nargs="+", default=[3, 4, 5, 6, 7, 8])
    ap.add_argument("--data", default=None, help="eval pairs (default ../shared/data/lol/eval15)")
    args = ap.parse_args(argv)
    base, _ = load_pretrained("lite")
    pairs = list_pairs(Path(args.data) if args.data else lol_root() / "eval15")
    frame = np.random.default_rng(0).integers(0, 60, (720, 1280, 3), dtype=np.uint8)
    print("| scale | eval15 PSNR | eval15 SSIM | 720p network ms, 1 thread | 2 threads | GFLOP at 720p |")
    print("|---:|---:|---:|---:|---:|---:|")
    for s in args.scales:
        m = with_config("lite", base, scale=s)
        torch.set_num_threads(2)
        q = evaluate_model(m, pairs, metrics=("psnr", "ssim"), progress=False)["mean"]
        m = m.to(memory_format=torch.channels_last)
        times = []
        for threads in (1, 2):
            torch.set_num_threads(threads)
            times.append(network_ms(m, frame))
        gflop = flops_at(m) / 1e9
        print(f"| {s} | {q['psnr']:.2f} | {q['ssim']:.4f} | {times[0]:.1f} | {times[1]:.1f} | {gflop:.2f} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
