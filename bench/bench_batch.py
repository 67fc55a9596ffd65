"""Throughput of `run-stream batch` on this machine: many clips, and one long clip split.

Writes synthetic dark, noisy 1280x720 30 fps H.264 clips with AAC audio
(``realtime.synthetic.write_clip``) into a temp folder, then times, each as a fresh
process as a user would run it:

* ``loop``: one ``run-stream CLIP -o OUT`` per clip, one after the other (the shell loop
  users write today: one pipeline, the model loaded once per clip),
* ``batch --jobs 1`` and ``batch --jobs 2`` over the same clips,
* one long clip: a single ``run-stream`` run, ``batch --jobs 2`` (no split: one file is
  one worker) and ``batch --jobs 2 --split``.

fps = frames enhanced / wall time of the command (process start, model load, decode,
enhance, encode, join); also the CPU time per frame of the command and its workers (less
sensitive than fps to other load on a shared machine) and the 1-minute load average
after each command. Prints a table and optionally writes JSON.

    python bench/bench_batch.py                       # 8 x 10 s and 1 x 60 s, 720p
    python bench/bench_batch.py --clips 2 --seconds 2 --long-seconds 6 --size 320x180   # smoke
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from realtime.synthetic import write_clip  # noqa: E402


def _cli(*argv: str) -> list[str]:
    return [sys.executable, str(ROOT / "run_stream.py"), *argv]


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)  # the commands and their worker processes
    return r.ru_utime + r.ru_stime


def _timed(cmd: list[str]) -> tuple[float, float]:
    """(wall seconds, CPU seconds of the command and its children)."""
    c0, t0 = _cpu(), time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"failed ({proc.returncode}): {' '.join(cmd)}\n{proc.stderr[-2000:]}")
    return wall, _cpu() - c0


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--clips", type=int, default=8)
    p.add_argument("--seconds", type=float, default=10.0, help="length of each batch clip")
    p.add_argument("--long-seconds", type=float, default=60.0, help="length of the clip for --split (0: skip)")
    p.add_argument("--size", default="1280x720")
    p.add_argument("--fps", type=int, default=30)
    p.add_argument("--model", default="lite")
    p.add_argument("--no-loop", action="store_true", help="skip the one-run-per-clip loop")
    p.add_argument("--json", metavar="FILE")
    args = p.parse_args()
    w, h = (int(v) for v in args.size.split("x"))
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench_batch_") as tmp:
        tmp = Path(tmp)
        clips = tmp / "clips"
        clips.mkdir()
        n = round(args.seconds * args.fps)
        t0 = time.perf_counter()
        for i in range(args.clips):
            write_clip(clips / f"clip{i}.mp4", n_frames=n, size=(w, h), fps=args.fps, audio="aac", seed=i)
        print(f"wrote {args.clips} clips of {n} frames in {time.perf_counter() - t0:.0f} s", file=sys.stderr)
        total = n * args.clips
        common = ["--model", args.model, "--quiet"]

        def record(name: str, frames: int, timed: tuple[float, float]) -> None:
            wall, cpu = timed
            load = os.getloadavg()[0]
            rows.append({"run": name, "frames": frames, "seconds": round(wall, 1), "fps": round(frames / wall, 1),
                         "cpu_s_per_frame_ms": round(1000 * cpu / frames, 1), "load1_after": round(load, 1)})
            print(f"{name:36s} {frames:6d} frames {wall:7.1f} s {frames / wall:7.1f} fps  "
                  f"cpu {1000 * cpu / frames:5.1f} ms/frame  load {load:.1f}", file=sys.stderr)

        if not args.no_loop:
            out = tmp / "loop"
            out.mkdir()
            wall = cpu = 0.0
            for c in sorted(clips.iterdir()):
                w_, c_ = _timed(_cli(str(c), "-o", str(out / c.name), *common))
                wall, cpu = wall + w_, cpu + c_
            record(f"loop of {args.clips} single runs", total, (wall, cpu))
        for jobs in (1, 2):
            record(f"batch --jobs {jobs}", total, _timed(_cli("batch", str(clips), "-o", str(tmp / f"b{jobs}"),
                                                               "--jobs", str(jobs), *common)))
        if args.long_seconds:
            long = tmp / "long" / "long.mp4"
            long.parent.mkdir()
            n_long = round(args.long_seconds * args.fps)
            t0 = time.perf_counter()
            write_clip(long, n_frames=n_long, size=(w, h), fps=args.fps, audio="aac", seed=99)
            print(f"wrote the long clip ({n_long} frames) in {time.perf_counter() - t0:.0f} s", file=sys.stderr)
            record("long: single run", n_long, _timed(_cli(str(long), "-o", str(tmp / "single.mp4"), *common)))
            record("long: batch --jobs 2 (no split)", n_long,
                   _timed(_cli("batch", str(long), "-o", str(tmp / "ns"), "--jobs", "2", *common)))
            record("long: batch --jobs 2 --split", n_long,
                   _timed(_cli("batch", str(long), "-o", str(tmp / "sp"), "--jobs", "2", "--split", *common)))
    import torch

    info = {"machine": f"{os.cpu_count()}-core CPU, {platform.processor() or platform.machine()}, "
                       f"torch {torch.__version__}, cuda {torch.cuda.is_available()}",
            "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "size": args.size, "fps": args.fps,
            "model": args.model, "rows": rows}
    print(json.dumps(info, indent=1))
    if args.json:
        Path(args.json).write_text(json.dumps(info, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
