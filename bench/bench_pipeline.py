"""End-to-end throughput of the file pipeline on CPU: decode -> lite -> encode.

Generates a synthetic dark, noisy 1280x720 30 fps H.264 clip (10 s by default) in a
temp folder, then measures with the same threads and queues as run_stream:

* ``decode+encode``: the pipeline with an identity engine (the I/O ceiling),
* ``lite``: the full pipeline with the default CPU model (shipped weights when present,
  random weights otherwise: same speed), temporal smoothing on,

and prints one table with fps and per-stage times.

    python bench/bench_pipeline.py                 # 720p, 10 s
    python bench/bench_pipeline.py --seconds 4 --json bench.json
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import models  # noqa: E402
from realtime import NullSink, create_engine, Pipeline, VideoFileSink, VideoFileSource  # noqa: E402
from realtime.sinks import CPU_PRESET  # noqa: E402
from realtime.synthetic import write_clip  # noqa: E402


class IdentityEngine:
    def process(self, f):
        f.result = f.image
        return [f]

    def flush(self):
        return []

    def reserve_outputs(self, n):
        pass  # returns the input frames themselves: no buffers to keep


def make_clip(folder: Path, width: int, height: int, fps: int, seconds: float) -> Path:
    path = folder / f"bench_{width}x{height}_{fps}fps_{seconds:g}s.mp4"
    if not path.exists():
        t0 = time.perf_counter()
        tmp = path.with_name(".tmp-" + path.name)
        write_clip(tmp, n_frames=round(fps * seconds), size=(width, height), fps=fps, audio="aac",
                   options={"preset": "veryfast", "crf": "20"})
        os.replace(tmp, path)
        print(f"generated {path} in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
    return path


class ThreadCPU:
    """Wraps an engine and sums the CPU time of the inference thread (numba's worker
    threads not included) -- a contention-free view of the critical stage."""

    def __init__(self, engine):
        self.engine, self.cpu = engine, 0.0

    def process(self, f):
        t0 = time.thread_time()
        out = self.engine.process(f)
        self.cpu += time.thread_time() - t0
        return out

    def flush(self):
        return self.engine.flush()

    def reserve_outputs(self, n):
        self.engine.reserve_outputs(n)


def _cpu_seconds() -> float:
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


def run_once(clip: Path, out_dir: Path, engine, preset: str, null: bool) -> dict:
    timed = ThreadCPU(engine)
    with VideoFileSource(clip) as src:
        sink = NullSink() if null else VideoFileSink(
            out_dir / "out.mp4", src.width, src.height, src.time_base, src.rate, preset=preset,
            copy_streams=src.copy_streams)
        cpu0 = _cpu_seconds()
        result = Pipeline(src, timed, sink).run()
        cpu = _cpu_seconds() - cpu0
    r = result.report
    assert result.frames_out == result.frames_in, "file mode must not drop frames"
    r["process_cpu_ms_per_frame"] = round(cpu / r["frames"] * 1e3, 2)
    r["infer_thread_cpu_ms_per_frame"] = round(timed.cpu / r["frames"] * 1e3, 2)
    return r


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--width", type=int, default=1280)
    p.add_argument("--height", type=int, default=720)
    p.add_argument("--fps", type=int, default=30)
    p.add_argument("--seconds", type=float, default=10.0)
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: as run_stream)")
    p.add_argument("--preset", default=CPU_PRESET, help=f"x264 preset (default {CPU_PRESET}, run_stream's on CPU)")
    p.add_argument("--strength", type=float, default=0.8, help="temporal smoothing strength")
    p.add_argument("--clip-dir", default=os.path.join(tempfile.gettempdir(), "lowlight_bench"))
    p.add_argument("--json", help="write the results here")
    args = p.parse_args(argv)

    threads = args.threads or max(1, (os.cpu_count() or 2) // 2)
    torch.set_num_threads(threads)
    folder = Path(args.clip_dir)
    folder.mkdir(parents=True, exist_ok=True)
    clip = make_clip(folder, args.width, args.height, args.fps, args.seconds)
    try:
        model, _ = models.load_pretrained("lite", "cpu")
        weights = "shipped"
    except models.CheckpointError:
        model, weights = models.create_model("lite").eval(), "random (no shipped weights)"

    rows = {}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        rows["decode only"] = run_once(clip, tmp, IdentityEngine(), args.preset, null=True)
        rows["decode+encode"] = run_once(clip, tmp, IdentityEngine(), args.preset, null=False)
        eng = create_engine(model, "lite", torch.device("cpu"), backend="cpu", temporal_strength=args.strength)
        rows["lite end to end"] = run_once(clip, tmp, eng, args.preset, null=False)

    stages = ["decode", "denoise", "prep", "infer", "smooth", "render", "encode"]
    print(f"\nclip {clip.name}: {args.width}x{args.height} {args.fps} fps, {round(args.fps * args.seconds)} frames; "
          f"cores {os.cpu_count()}, torch threads {threads}, x264 preset {args.preset}, lite weights {weights}; "
          f"load avg {os.getloadavg()[0]:.1f}")
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    head = f"{'run':<17}{'fps':>7}{'lat p50':>9}" + "".join(f"{s:>9}" for s in stages) + f"{'cpu/fr':>9}{'idle-fps':>9}"
    print(head + "\n" + "-" * len(head))
    for name, r in rows.items():
        cells = "".join(f"{r['stages'][s]['mean_ms']:>9.2f}" if s in r["stages"] else f"{'-':>9}" for s in stages)
        cpu = r["process_cpu_ms_per_frame"]
        crit = max(r["infer_thread_cpu_ms_per_frame"], 1e-6)
        # throughput this work would allow on idle cores: all CPU shared by the cores,
        # and the inference thread's own CPU time as the serial critical path
        r["idle_core_fps_bound"] = round(min(1000.0 * cores / cpu, 1000.0 / crit), 1)
        print(f"{name:<17}{r['fps']:>7.1f}{r['latency']['p50_ms']:>9.0f}{cells}{cpu:>9.1f}{r['idle_core_fps_bound']:>9.1f}")
    print("stage columns: wall-clock mean ms per frame (stages overlap on separate threads, and wall time\n"
          "includes waiting for a CPU when the machine is shared); cpu/fr: process CPU ms per frame;\n"
          f"idle-fps: min({cores} cores * 1000 / cpu/fr, 1000 / inference-thread CPU ms), the rate the same\n"
          "work would allow on otherwise idle cores (an estimate, not a measurement)")
    if args.json:
        Path(args.json).write_text(json.dumps({"clip": str(clip), "threads": threads, "runs": rows}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
