"""Per-stage timings, end-to-end fps, latency, drops and peak memory of a run.

The report is JSON (``write_json``) with a bar chart of the stage times next to it
(``write_chart``, matplotlib Agg), and a short text table (``table``).
"""
from __future__ import annotations

import json
import os
import resource
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from .frame import Frame

__all__ = ["Profiler", "STAGE_ORDER"]

#: Display order; stages a run does not have are left out.
STAGE_ORDER = ("decode", "denoise", "prep", "upload", "infer", "smooth", "render", "download", "encode")


def _peak_rss_mb() -> float:
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / (1024 * 1024) if sys.platform == "darwin" else rss / 1024  # bytes on macOS, KiB on Linux


class Profiler:
    """Collects the timings that frames carry (``Frame.timings``, seconds)."""

    def __init__(self) -> None:
        self.stages: dict[str, list[float]] = {}
        self.latency: list[float] = []
        self.t_start = time.perf_counter()
        self.t_end: float | None = None
        self.frames = 0
        self.dropped = 0
        self.meta: dict[str, Any] = {}

    def start(self) -> None:
        self.t_start = time.perf_counter()
        self.t_end = None

    def stop(self) -> None:
        self.t_end = time.perf_counter()

    def add(self, frame: Frame, t_done: float) -> None:
        for name, sec in frame.timings.items():
            self.stages.setdefault(name, []).append(sec * 1e3)
        if frame.t_capture:
            self.latency.append((t_done - frame.t_capture) * 1e3)
        self.frames += 1

    @property
    def elapsed(self) -> float:
        return (self.t_end or time.perf_counter()) - self.t_start

    @staticmethod
    def _summary(values: list[float]) -> dict[str, float]:
        a = np.asarray(values, dtype=np.float64)
        if a.size == 0:
            return {"mean_ms": 0.0, "p50_ms": 0.0, "p99_ms": 0.0, "count": 0}
        return {
            "mean_ms": round(float(a.mean()), 3),
            "p50_ms": round(float(np.percentile(a, 50)), 3),
            "p99_ms": round(float(np.percentile(a, 99)), 3),
            "count": int(a.size),
        }

    def report(self) -> dict[str, Any]:
        names = [s for s in STAGE_ORDER if s in self.stages] + sorted(set(self.stages) - set(STAGE_ORDER))
        gpu = None
        try:
            import torch

            if torch.cuda.is_available() and torch.cuda.is_initialized():
                gpu = round(torch.cuda.max_memory_allocated() / 2**20, 1)
        except ImportError:
            gpu = None
        elapsed = self.elapsed
        return {
            "stages": {n: self._summary(self.stages[n]) for n in names},
            "frames": self.frames,
            "elapsed_s": round(elapsed, 3),
            "fps": round(self.frames / elapsed, 2) if elapsed > 0 else 0.0,
            "latency": self._summary(self.latency),
            "dropped_frames": self.dropped,
            "peak_host_memory_mb": round(_peak_rss_mb(), 1),
            "peak_gpu_memory_mb": gpu,
            **self.meta,
        }

    def table(self, report: dict[str, Any] | None = None) -> str:
        r = report or self.report()
        lines = [f"{'stage':<10}{'mean ms':>10}{'p50 ms':>10}{'p99 ms':>10}"]
        for name, s in r["stages"].items():
            lines.append(f"{name:<10}{s['mean_ms']:>10.2f}{s['p50_ms']:>10.2f}{s['p99_ms']:>10.2f}")
        lat = r["latency"]
        lines.append(
            f"{r['frames']} frames in {r['elapsed_s']:.2f} s = {r['fps']:.1f} fps end to end; "
            f"latency mean {lat['mean_ms']:.0f} ms, p99 {lat['p99_ms']:.0f} ms; dropped {r['dropped_frames']}; "
            f"peak host {r['peak_host_memory_mb']:.0f} MB"
            + (f", GPU {r['peak_gpu_memory_mb']:.0f} MB" if r.get("peak_gpu_memory_mb") is not None else "")
        )
        return "\n".join(lines)

    def write_json(self, path: str | os.PathLike, report: dict[str, Any] | None = None) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(report or self.report(), indent=2) + "\n")
        return path

    def write_chart(self, path: str | os.PathLike, report: dict[str, Any] | None = None) -> Path:
        """Bar chart of mean and p99 time per stage (PNG)."""
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        r = report or self.report()
        names = list(r["stages"])
        mean = [r["stages"][n]["mean_ms"] for n in names]
        p99 = [r["stages"][n]["p99_ms"] for n in names]
        fig, ax = plt.subplots(figsize=(7, 0.5 * len(names) + 1.6))
        y = np.arange(len(names))
        ax.barh(y + 0.2, mean, height=0.4, label="mean")
        ax.barh(y - 0.2, p99, height=0.4, label="p99")
        ax.set_yticks(y, names)
        ax.invert_yaxis()
        ax.set_xlabel("ms per frame")
        if r["fps"]:
            ax.axvline(1000.0 / r["fps"], color="k", ls="--", lw=1, label=f"1/fps = {1000.0 / r['fps']:.1f} ms")
        ax.set_title(f"stage times: {r['frames']} frames, {r['fps']:.1f} fps end to end")
        ax.legend(loc="lower right")
        fig.tight_layout()
        path = Path(path)
        fig.savefig(path, dpi=100)
        plt.close(fig)
        return path
