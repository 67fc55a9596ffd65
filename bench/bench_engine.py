"""The inference stage alone: ms per frame of ``engine.process`` with the shipped ``lite``
and every default on, no decoding, encoding or queues.

    python bench/bench_engine.py [--width 1280 --height 720] [--frames 150] [--repo DIR]
    python bench/bench_engine.py --denoise-only --numba-threads 1 --width 1920 --height 1080

``--denoise-only`` times the CPU temporal denoiser (``realtime.denoise.TemporalDenoiser``)
alone, the engine's first step.

``--repo`` imports ``models`` and ``realtime`` from another checkout (an older commit), so
the same loop times before and after a change (engines built with ``create_engine``, or
``InferenceEngine`` in checkouts older than it).
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--width", type=int, default=1280)
    p.add_argument("--height", type=int, default=720)
    p.add_argument("--frames", type=int, default=150, help="timed frames (after 10 warm-up frames)")
    p.add_argument("--threads", type=int, default=1, help="torch threads")
    p.add_argument("--repo", default=str(Path(__file__).resolve().parents[1]), help="checkout to import from")
    p.add_argument("--denoise-only", action="store_true", help="time the temporal denoiser alone")
    p.add_argument("--numba-threads", type=int, default=None, help="numba threads (default: numba's)")
    args = p.parse_args(argv)
    sys.path.insert(0, args.repo)
    import torch

    import models
    import realtime

    torch.set_num_threads(args.threads)
    if args.numba_threads:
        import numba

        numba.set_num_threads(args.numba_threads)
    if args.denoise_only:
        from realtime.denoise import TemporalDenoiser

        den, what = TemporalDenoiser(), "denoiser"

        def run(img, i):
            den(img)
    else:
        model, _ = models.load_pretrained("lite", "cpu")
        make = getattr(realtime, "create_engine", None) or realtime.InferenceEngine
        eng, what = make(model, "lite", torch.device("cpu")), "engine"

        def run(img, i):
            eng.process(realtime.Frame(img, i))
    rng = np.random.default_rng(0)
    frames = [np.clip(rng.normal(20, 6, (args.height, args.width, 3)), 0, 255).astype(np.uint8) for _ in range(8)]
    for i in range(10):
        run(frames[i % 8], i)
    t0, c0 = time.perf_counter(), time.process_time()
    for i in range(args.frames):
        run(frames[i % 8], i)
    wall, cpu = (time.perf_counter() - t0) / args.frames, (time.process_time() - c0) / args.frames
    numba_threads = args.numba_threads or "numba's default"
    print(f"{args.repo}: {what} {args.width}x{args.height}: {1e3 * wall:.2f} ms wall, {1e3 * cpu:.2f} ms CPU per frame "
          f"({args.threads} torch thread(s), {numba_threads} numba thread(s))")
    return 0


if __name__ == "__main__":
    sys.exit(main())
