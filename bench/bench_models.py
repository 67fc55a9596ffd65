"""Model-only latency per model, resolution and backend (median / p99 / fps).

    python bench/bench_models.py --resolutions 1280x720 1920x1080 --iters 20

Timed as ``calibrate.tune.candidate_latency`` does: on CUDA, ``estimate`` + ``render`` on a
tensor already on the device (synchronised; no decode, transfer or encode); on CPU, one
uint8 frame in and out through ``realtime.create_engine``, which is how the pipeline runs
it there (for ``lite``: numba box statistics, the network, the fused up-sample-and-apply
kernel). Models without shipped weights are measured randomly initialised (latency does not
depend on the weights' values). On a CPU machine only the "cpu" backend runs; on a GPU every
available backend is tried.
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import models  # noqa: E402
from realtime.backends import BACKENDS, BackendUnavailable, build_backend  # noqa: E402
from calibrate.tune import base_models, candidate_latency, parse_resolution  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--resolutions", nargs="+", default=["1280x720"], help="WIDTHxHEIGHT ...")
    p.add_argument("--models", nargs="+", default=None, help="default: every registered model")
    p.add_argument("--backends", nargs="+", choices=BACKENDS, default=None, help="default: all that can run here")
    p.add_argument("--lite-scales", nargs="+", type=int, default=[4, 8], help="lite grid scales to measure")
    p.add_argument("--iters", type=int, default=20)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--max-seconds", type=float, default=8.0, help="time budget per row (at least 3 calls)")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    p.add_argument("--json", default=None, help="also write the rows as JSON here")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    backends = args.backends or [b for b in BACKENDS if device.type == "cuda" or b == "cpu"]
    rows = []
    print(f"device: {torch.cuda.get_device_name(device) if device.type == 'cuda' else 'cpu'}, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads")
    print("| model | options | trained | resolution | backend | median ms | p99 ms | fps | calls |")
    print("|---|---|---|---|---|---|---|---|---|")
    for name, base, manifest in base_models(args.models or models.list_models()):
        variants = [{"scale": s} for s in args.lite_scales] if name == "lite" else [{}]
        for opts in variants:
            model = models.with_config(name, base, **opts)
            for res in args.resolutions:
                w, h = parse_resolution(res)
                for backend in backends:
                    try:
                        cm = build_backend(model, name, backend, device, (h, w))
                    except BackendUnavailable as err:
                        print(f"| {name} | {opts or ''} | | {w}x{h} | {backend} | unavailable: {err} | | | |")
                        continue
                    frame = np.random.default_rng(0).integers(0, 64, (h, w, 3), dtype=np.uint8)  # a dark frame
                    lat, timed = candidate_latency(cm, frame, args.iters, args.warmup, args.max_seconds)
                    row = {"model": name, "options": opts, "trained": manifest is not None, "resolution": [w, h],
                           "backend": backend, "timed": timed, **{k: lat[k] for k in ("median", "p99", "fps", "iters")}}
                    rows.append(row)
                    print(f"| {name} | {opts or ''} | {'yes' if manifest else 'no'} | {w}x{h} | {backend} | "
                          f"{lat['median']:.1f} | {lat['p99']:.1f} | {lat['fps']:.1f} | {lat['iters']} |", flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
