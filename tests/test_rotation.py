"""Phone rotation (issue 15 item 7): a video's display matrix survives run_stream."""
from __future__ import annotations

import av
import numpy as np
import pytest

import run_stream
from realtime import VideoFileSource
from realtime.synthetic import dark_frames


def _rotated_clip(path, rotation: int, n: int = 6, size=(64, 48)):
    w, h = size
    with av.open(str(path), "w") as out:
        vs = out.add_stream("libx264", rate=24)
        vs.width, vs.height, vs.pix_fmt = w, h, "yuv420p"
        vs.options = {"preset": "ultrafast"}
        if rotation:
            vs.set_display_rotation(rotation)
        for img in dark_frames(n, w, h):
            for pkt in vs.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                out.mux(pkt)
        for pkt in vs.encode(None):
            out.mux(pkt)
    return path


def _probe(path) -> tuple[int, tuple[int, int], int]:
    with av.open(str(path)) as c:
        frames = list(c.decode(video=0))
    return frames[0].rotation % 360, (frames[0].width, frames[0].height), len(frames)


@pytest.mark.parametrize("rotation", [90, 270, 180, 0])
def test_source_reads_rotation(tmp_path, rotation):
    p = _rotated_clip(tmp_path / "in.mp4", rotation)
    with VideoFileSource(p) as src:
        assert src.rotation == rotation
        assert (src.width, src.height) == (64, 48)  # stored frames, unrotated
        assert sum(1 for _ in src.frames()) == 6  # the probe did not consume frames


@pytest.mark.parametrize("suffix", [".mp4", ".mkv"])
def test_run_stream_keeps_rotation(tmp_path, suffix):
    src = _rotated_clip(tmp_path / f"in{suffix}", 90)
    out = tmp_path / f"out{suffix}"
    assert run_stream.main([str(src), "-o", str(out), "--model", "lite", "--quiet"]) == 0
    rot, size, n = _probe(out)
    assert rot == 90 and size == (64, 48) and n == 6


def test_unrotated_stays_unrotated(tmp_path):
    src = _rotated_clip(tmp_path / "in.mp4", 0)
    out = tmp_path / "out.mp4"
    assert run_stream.main([str(src), "-o", str(out), "--model", "lite", "--quiet"]) == 0
    assert _probe(out)[0] == 0
