"""How predictable LOL's reference exposure is from the dark frame alone.

Plain PSNR on LOL is dominated by the brightness a model picks, and the references'
brightness varies from scene to scene far more than the dark inputs' does. This script
fits a ridge regression from simple statistics of the dark frame (log mean and spread
of luma, luma percentiles, channel means, a noise estimate) to the log mean of the
reference, on the training pairs, and reports its error on the held-out validation split
and on eval15 next to a constant predictor (the training mean). An error of e in log
brightness costs about 20*log10(exp(e)) dB on a mid-grey image.

    python research/exposure_predictability.py [--data ROOT]
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from training.data import default_lol_root, list_pairs, load_rgb, split_pairs  # noqa: E402


def features(low: np.ndarray) -> np.ndarray:
    x = low.astype(np.float32) / 255
    y = x.mean(axis=2)
    noise = y - cv2.GaussianBlur(y, (0, 0), 2)
    f = [np.log(y.mean() + 1e-3), np.log(y.std() + 1e-3)]
    f += list(np.log(np.percentile(y, [1, 10, 50, 90, 99]) + 1e-3))
    f += list(np.log(x.reshape(-1, 3).mean(axis=0) + 1e-3))
    f.append(np.log(noise.std() + 1e-4))
    return np.asarray(f)


def table(pairs: list[tuple[Path, Path]]) -> tuple[np.ndarray, np.ndarray]:
    feats, targets = [], []
    for low_p, high_p in pairs:
        feats.append(features(load_rgb(low_p)))
        targets.append(np.log(load_rgb(high_p).mean() / 255))
    return np.asarray(feats), np.asarray(targets)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=None, help="LOL root with our485/ and eval15/ (default ../shared/data/lol)")
    ap.add_argument("--ridge", type=float, default=1.0)
    args = ap.parse_args(argv)
    root = Path(args.data) if args.data else default_lol_root()
    train, val = split_pairs(list_pairs(root / "our485"))
    x_tr, t_tr = table(train)
    mu, sd = x_tr.mean(axis=0), x_tr.std(axis=0) + 1e-6

    def design(x: np.ndarray) -> np.ndarray:
        return np.c_[(x - mu) / sd, np.ones(len(x))]

    a = design(x_tr)
    w = np.linalg.solve(a.T @ a + args.ridge * np.eye(a.shape[1]), a.T @ t_tr)
    print(f"reference mean brightness (training pairs): {np.exp(t_tr.mean()):.3f}, spread of its log: {t_tr.std():.3f}")
    print("| split | pairs | RMSE of log brightness, regression | constant |")
    print("|---|---:|---:|---:|")
    for name, pairs in (("validation", val), ("eval15", list_pairs(root / "eval15"))):
        x, t = table(pairs)
        rmse = np.sqrt(np.mean((design(x) @ w - t) ** 2))
        const = np.sqrt(np.mean((t_tr.mean() - t) ** 2))
        print(f"| {name} | {len(pairs)} | {rmse:.3f} | {const:.3f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
