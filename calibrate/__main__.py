"""``python -m calibrate --resolution 1280x720 --fps 30 [--model NAME] -o profile.json``"""
from __future__ import annotations

import argparse
import json
import logging
import math
import sys
from pathlib import Path

from models.errors import LowlightError
from realtime.backends import BACKENDS


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m calibrate",
        description="Measure models and backends on this machine and write the fastest configuration "
        "that meets the frame-rate target and passes validation against eager FP32.",
    )
    p.add_argument("--resolution", required=True, help="stream resolution WIDTHxHEIGHT, e.g. 1920x1080")
    p.add_argument("--fps", type=float, default=30.0, help="target frame rate (default 30)")
    p.add_argument("--model", action="append", help="candidate model (repeatable); default: every shipped model")
    p.add_argument("--backend", action="append", choices=BACKENDS, help="restrict to these backends (repeatable)")
    p.add_argument("--device", default=None, help="cpu or cuda[:N] (default: cuda when available)")
    p.add_argument("--iters", type=int, default=None, help="timed calls per candidate (default 20)")
    p.add_argument("--warmup", type=int, default=None, help="untimed calls per candidate (default 3)")
    p.add_argument("--max-seconds", type=float, default=10.0, help="time budget per candidate (at least 3 calls)")
    p.add_argument("--cpu-compile", action="store_true", help="also measure torch.compile on CPU (slow to build)")
    p.add_argument("--lol-dir", default=None, help="folder of LOL eval15 low PNGs for validation")
    p.add_argument("-o", "--output", required=True, help="where to write the profile JSON")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar, warnings only")
    return p


def _fmt(v: float | None) -> str:
    return "-" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.1f}"


def _table(profile: dict) -> str:
    rows = [("candidate", "status", "median ms", "p99 ms", "fps", "PSNR dB", "target")]
    for r in profile["candidates"]:
        lat = r.get("latency_ms") or {}
        val = r.get("validation") or {}
        psnr = val.get("psnr_db")
        rows.append(
            (
                r["label"] + (" (untrained)" if r.get("untrained") else ""),
                r["status"],
                _fmt(lat.get("median")),
                _fmt(lat.get("p99")),
                _fmt(lat.get("fps")),
                "ref" if "skipped" in val else ("inf" if psnr == math.inf else _fmt(psnr)),
                ("yes" if r.get("meets_target") else "no") if r["status"] == "ok" else r.get("reason", "")[:60],
            )
        )
    widths = [max(len(str(row[i])) for row in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(str(c).ljust(wd) for c, wd in zip(row, widths)).rstrip() for row in rows)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING if args.quiet else logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    from .thresholds import DEFAULT_ITERS, DEFAULT_WARMUP
    from .tune import parse_resolution, tune

    try:
        resolution = parse_resolution(args.resolution)
        profile = tune(
            resolution,
            args.fps,
            args.model,
            args.device,
            args.backend,
            iters=args.iters if args.iters is not None else DEFAULT_ITERS,
            warmup=args.warmup if args.warmup is not None else DEFAULT_WARMUP,
            max_seconds=args.max_seconds,
            cpu_compile=args.cpu_compile,
            lol_dir=args.lol_dir,
            progress=not args.quiet,
        )
        out = Path(args.output)
        if out.parent and not out.parent.exists():
            out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_name(out.name + ".tmp")
        tmp.write_text(json.dumps(profile, indent=2, allow_nan=True) + "\n")
        tmp.replace(out)
    except LowlightError as err:
        print(f"error: {err}", file=sys.stderr)
        return err.exit_code
    except (ValueError, OSError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except RuntimeError as err:  # torch errors (out of memory, bad device string) end here
        print(f"error: {type(err).__name__}: {err}", file=sys.stderr)
        return 2
    print(_table(profile))
    chosen = f"{profile['model']} {profile['model_options'] or ''} on {profile['backend']}".replace("  ", " ")
    lat = profile["latency_ms"]
    print(f"chosen: {chosen}: {lat['median']:.1f} ms median, {lat['p99']:.1f} ms p99 ({lat['fps']:.1f} fps) -> {args.output}")
    if profile.get("untrained"):
        print("note: the chosen model has no shipped weights; latency is real, output quality is not (untrained)")
    if profile.get("warning"):
        print(f"WARNING: {profile['warning']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
