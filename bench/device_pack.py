"""Copy the LOL data a GPU session needs into carry-sized parts inside the repo.

The device machine gets only the repository (at most 64 MiB a call, beside the tracked
tree) and keeps ignored files between calls while it is warm. This splits LOL (eval15 and
the training pairs, each pair kept whole) into parts under ``--limit-mib`` each, as
``.data/partK/data/lol/{eval15,our485}/{low,high}/`` (``.data/`` is ignored by git), and
prints the ``carry`` of each call. ``bench/gpu_session.sh`` merges the parts it finds
into ``.data/shared`` and points ``LOWLIGHT_SHARED`` there.

    python bench/device_pack.py [--shared ../shared] [--limit-mib 52]
"""
from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def pack(shared: Path, dest: Path, limit_bytes: int, subsets: tuple[str, ...] = ("eval15", "our485")) -> list[Path]:
    """Copy every low/high pair of ``shared/data/lol/<subset>`` into parts ``dest/partK`` of at
    most ``limit_bytes`` each (a pair is never split); returns the parts in order.

    Raises FileNotFoundError when a subset is missing and ValueError when one pair alone is
    larger than the limit.
    """
    pairs: list[tuple[str, Path, Path, int]] = []
    for subset in subsets:
        low_dir = shared / "data" / "lol" / subset / "low"
        if not low_dir.is_dir():
            raise FileNotFoundError(f"no LOL pairs at {low_dir}")
        for low in sorted(low_dir.iterdir()):
            high = low.parent.parent / "high" / low.name
            if not high.is_file():
                raise FileNotFoundError(f"{low} has no reference {high}")
            size = low.stat().st_size + high.stat().st_size
            if size > limit_bytes:
                raise ValueError(f"the pair {low.name} ({size} bytes) is larger than a part ({limit_bytes} bytes)")
            pairs.append((subset, low, high, size))
    if dest.exists():
        shutil.rmtree(dest)
    parts: list[Path] = []
    used = limit_bytes  # start a new part at the first pair
    for subset, low, high, size in pairs:
        if used + size > limit_bytes:
            parts.append(dest / f"part{len(parts) + 1}")
            used = 0
        for src in (low, high):
            out = parts[-1] / "data" / "lol" / subset / src.parent.name / src.name
            out.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src, out)
        used += size
    return parts


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shared", type=Path, default=ROOT.parent / "shared", help="the shared folder (default ../shared)")
    ap.add_argument("--dest", type=Path, default=ROOT / ".data", help="where the parts go (default .data, ignored by git)")
    ap.add_argument("--limit-mib", type=float, default=52.0, help="size of a part; the tree itself also travels (default 52)")
    args = ap.parse_args(argv)
    try:
        parts = pack(args.shared, args.dest, int(args.limit_mib * 2**20))
    except (FileNotFoundError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    for p in parts:
        mib = sum(f.stat().st_size for f in p.rglob("*") if f.is_file()) / 2**20
        name = p.relative_to(ROOT) if p.is_relative_to(ROOT) else p
        print(f'{name}: {mib:.1f} MiB  (carry: ["{name}"])')
    print(f"{len(parts)} parts: one device call each, while the machine stays warm; the last runs bench/gpu_session.sh")
    return 0


if __name__ == "__main__":
    sys.exit(main())
