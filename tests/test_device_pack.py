"""bench/device_pack.py: LOL split into carry-sized parts, pairs kept whole, nothing lost."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _load():
    spec = importlib.util.spec_from_file_location("device_pack", ROOT / "bench" / "device_pack.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _fake_lol(root: Path, sizes: dict[str, list[int]]) -> None:
    for subset, pair_sizes in sizes.items():
        for k, n in enumerate(pair_sizes):
            for side in ("low", "high"):
                f = root / "data" / "lol" / subset / side / f"{k}.png"
                f.parent.mkdir(parents=True, exist_ok=True)
                f.write_bytes(bytes([k % 256]) * n)


def test_parts_stay_under_the_limit_and_merge_back_to_the_whole(tmp_path):
    pack = _load().pack
    shared = tmp_path / "shared"
    _fake_lol(shared, {"eval15": [300, 200], "our485": [400, 100, 250, 350]})
    parts = pack(shared, tmp_path / "out", limit_bytes=1000)
    assert len(parts) == 4  # pairs of 600 + 400 | 800 + 200 | 500 | 700 bytes: greedy, in order
    for p in parts:
        files = [f for f in p.rglob("*") if f.is_file()]
        assert sum(f.stat().st_size for f in files) <= 1000
        for f in files:  # a pair's two images are always in the same part
            other = "high" if f.parent.name == "low" else "low"
            assert (f.parent.parent / other / f.name).is_file()
    merged = {f.relative_to(p).as_posix(): f.read_bytes() for p in parts for f in p.rglob("*") if f.is_file()}
    original = {f.relative_to(shared).as_posix(): f.read_bytes() for f in shared.rglob("*") if f.is_file()}
    assert merged == original


def test_a_pair_larger_than_a_part_or_a_missing_reference_is_a_clear_error(tmp_path):
    pack = _load().pack
    shared = tmp_path / "shared"
    _fake_lol(shared, {"eval15": [600], "our485": [10]})
    with pytest.raises(ValueError, match="larger than a part"):
        pack(shared, tmp_path / "out", limit_bytes=1000)
    (shared / "data" / "lol" / "eval15" / "high" / "0.png").unlink()
    with pytest.raises(FileNotFoundError, match="no reference"):
        pack(shared, tmp_path / "out", limit_bytes=5000)
