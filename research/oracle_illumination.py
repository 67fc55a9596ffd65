"""Upper bounds of an S / I enhancer (the ``sri`` output form) on LOL eval15.

With the reference known, the best one-channel gain per pixel (least squares over RGB),
the same gain smoothed with a Gaussian (a low-frequency illumination), and one global
gain per image: PSNR of ``clip(low * gain)`` against the reference.

    python research/oracle_illumination.py [--data ../shared/data/lol/eval15] [--sigma 8]
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
import numpy as np
from skimage.metrics import peak_signal_noise_ratio

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from training.data import default_lol_root, list_pairs, load_rgb  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=None)
    ap.add_argument("--sigma", type=float, default=8.0, help="Gaussian sigma (px) of the smooth oracle")
    args = ap.parse_args(argv)
    rows: dict[str, list[float]] = {"per-pixel gain": [], f"smooth gain (sigma {args.sigma:g})": [], "global gain": []}
    for low_p, high_p in list_pairs(Path(args.data) if args.data else default_lol_root() / "eval15"):
        x = load_rgb(low_p).astype(np.float64) / 255
        y = load_rgb(high_p).astype(np.float64) / 255
        xy, xx = (x * y).sum(2), (x * x).sum(2)
        gains = [
            xy / (xx + 1e-9),
            cv2.GaussianBlur(xy, (0, 0), args.sigma) / (cv2.GaussianBlur(xx, (0, 0), args.sigma) + 1e-9),
            np.full(xx.shape, xy.sum() / xx.sum()),
        ]
        for key, g in zip(rows, gains):
            rows[key].append(peak_signal_noise_ratio(y, np.clip(x * g[..., None], 0, 1), data_range=1))
    print("| oracle | eval15 PSNR |")
    print("|---|---:|")
    for key, v in rows.items():
        print(f"| {key} | {np.mean(v):.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
