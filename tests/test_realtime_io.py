"""File mode end to end: frame count, timestamps and audio packets survive; damaged
inputs; image folders. Small synthetic clips (64x48), random-weight models."""
from __future__ import annotations

import hashlib
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
import torch

import models
from realtime import (
    ImageFolderSink,
    ImageSource,
    InferenceEngine,
    create_engine,
    NullSink,
    Pipeline,
    SourceError,
    VideoFileSink,
    VideoFileSource,
)
from realtime.frame import Frame
from realtime.synthetic import write_clip


def _sha(p: Path) -> str:
    return hashlib.sha256(Path(p).read_bytes()).hexdigest()


def _engine(name: str = "lite", strength: float = 0.8) -> InferenceEngine:
    torch.manual_seed(0)
    return create_engine(models.create_model(name).eval(), name, torch.device("cpu"), backend="cpu",
                           temporal_strength=strength)


def _enhance(src_path: Path, out_path: Path, name: str = "lite") -> tuple:
    with VideoFileSource(src_path) as src:
        sink = VideoFileSink(out_path, src.width, src.height, src.time_base, src.rate, copy_streams=src.copy_streams)
        result = Pipeline(src, _engine(name), sink).run()
    return result


def _video_times(path: Path) -> list[float]:
    with av.open(str(path)) as c:
        return [float(f.pts * f.time_base) for f in c.decode(video=0)]


def _packets(path: Path, kind: str) -> list[tuple[bytes, float | None]]:
    with av.open(str(path)) as c:
        st = [s for s in c.streams if s.type == kind][0]
        return [(bytes(p), float(p.pts * p.time_base) if p.pts is not None else None)
                for p in c.demux(st) if p.size]


@pytest.mark.parametrize("suffix,audio", [(".mp4", "aac"), (".mkv", "pcm_s16le"), (".mkv", "mp2")])
def test_file_mode_keeps_frames_timestamps_and_audio(tmp_path, suffix, audio):
    src = write_clip(tmp_path / f"in{suffix}", n_frames=12, audio=audio)
    before = _sha(src)
    out = tmp_path / f"out{suffix}"
    result = _enhance(src, out)
    assert _sha(src) == before  # input untouched
    assert result.frames_in == result.frames_out == 12 and result.dropped == 0
    t_in, t_out = _video_times(src), _video_times(out)
    assert len(t_out) == len(t_in) == 12
    assert np.allclose(t_out, t_in, atol=1e-3)
    a_in, a_out = _packets(src, "audio"), _packets(out, "audio")
    assert len(a_in) > 5
    # identical payloads packet for packet, at the same times
    assert [p for p, _ in a_out] == [p for p, _ in a_in]
    assert [t for _, t in a_out] == pytest.approx([t for _, t in a_in], abs=1e-3)
    # and the video was actually enhanced (brighter than the dark input)
    with av.open(str(src)) as a, av.open(str(out)) as b:
        fa = next(a.decode(video=0)).to_ndarray(format="rgb24").mean()
        fb = next(b.decode(video=0)).to_ndarray(format="rgb24").mean()
    assert fb > fa + 10


def test_variable_frame_rate_timestamps_kept(tmp_path):
    pts = [0, 40, 80, 200, 210, 300, 333, 400, 520, 530]
    src = write_clip(tmp_path / "vfr.mkv", n_frames=len(pts), pts=pts, time_base=Fraction(1, 1000), audio="pcm_s16le")
    out = tmp_path / "vfr_out.mkv"
    _enhance(src, out)
    assert _video_times(out) == pytest.approx([p / 1000 for p in pts], abs=1e-6)


@pytest.mark.parametrize("suffix", [".mkv", ".ts"])
def test_truncated_stream_enhanced_up_to_last_frame(tmp_path, caplog, suffix):
    full = write_clip(tmp_path / f"full{suffix}", n_frames=40, size=(64, 48))
    data = full.read_bytes()
    cut = tmp_path / f"cut{suffix}"
    cut.write_bytes(data[: int(len(data) * 0.6)])
    with av.open(str(cut)) as c:
        decodable = 0
        try:
            for _ in c.decode(video=0):
                decodable += 1
        except av.error.FFmpegError:
            pass
    out = tmp_path / f"cut_out{suffix}"
    with caplog.at_level("WARNING"):
        result = _enhance(cut, out)
    assert 0 < result.frames_out < 40
    assert result.frames_out >= decodable
    assert len(_video_times(out)) == result.frames_out
    assert any("truncated" in w and f"read {result.frames_out}" in w for w in result.warnings)


def test_mp4_without_index_is_a_clear_error(tmp_path):
    full = write_clip(tmp_path / "full.mp4", n_frames=20)
    cut = tmp_path / "cut.mp4"
    data = full.read_bytes()
    moov = data.find(b"moov")
    assert moov > data.find(b"mdat")  # PyAV writes the index at the end
    cut.write_bytes(data[: moov - 8])
    with pytest.raises(SourceError, match="moov"):
        VideoFileSource(cut)


def test_image_folder_keeps_names_and_resets_per_image(tmp_path):
    import cv2

    folder = tmp_path / "imgs"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for name, (h, w) in {"a.png": (48, 64), "b.jpg": (40, 56), "c.bmp": (48, 64)}.items():
        cv2.imwrite(str(folder / name), rng.integers(0, 40, (h, w, 3), dtype=np.uint8))
    (folder / "notes.txt").write_text("not an image")
    src = ImageSource(folder)
    out = tmp_path / "out"
    out.mkdir()
    result = Pipeline(src, _engine(), ImageFolderSink(folder=out)).run()
    assert result.frames_out == 3
    assert sorted(p.name for p in out.iterdir()) == ["a.png", "b.jpg", "c.bmp"]
    a = cv2.imread(str(out / "b.jpg"))
    assert a.shape == (40, 56, 3) and a.mean() > 40


def test_null_sink_profile_report_has_stages(tmp_path):
    src = write_clip(tmp_path / "in.mp4", n_frames=6)
    with VideoFileSource(src) as s:
        pipe = Pipeline(s, _engine(), NullSink())
        result = pipe.run()
    r = result.report
    assert r["frames"] == 6 and r["dropped_frames"] == 0
    for stage in ("decode", "infer", "render", "encode"):
        assert r["stages"][stage]["count"] == 6
        assert r["stages"][stage]["p99_ms"] >= r["stages"][stage]["p50_ms"] >= 0
    assert r["fps"] > 0 and r["latency"]["count"] == 6 and r["peak_host_memory_mb"] > 0
    png = pipe.profiler.write_chart(tmp_path / "p.png", r)
    assert png.read_bytes()[:4] == b"\x89PNG"
    assert "stage" in pipe.profiler.table(r)


def test_source_can_hand_on_i420_planes(tmp_path):
    src = write_clip(tmp_path / "in.mp4", n_frames=3)
    with VideoFileSource(src, pixel_format="yuv420p") as s:
        frames = [f for f in s.frames() if hasattr(f, "image")]
    assert [f.color for f in frames] == ["yuv420p"] * 3
    assert frames[0].image.shape == (72, 64) and frames[0].size == (48, 64)
    assert frames[0].image_rgb().shape == (48, 64, 3)


def test_live_source_through_opencv_drops_and_counts(tmp_path):
    """A file opened as a "camera" (OpenCV accepts paths): live mode end to end, BGR frames."""
    import time as _time

    from realtime import WebcamSource

    clip = write_clip(tmp_path / "cam.mp4", n_frames=30)
    cam = WebcamSource(str(clip))
    eng = _engine()
    slow = eng.process

    def process(f):
        _time.sleep(0.01)  # a slow model: the camera outruns it
        return slow(f)

    eng.process = process
    out = tmp_path / "live.mkv"
    sink = VideoFileSink(out, cam.width, cam.height, cam.time_base, cam.rate, tune="zerolatency")
    with cam:
        result = Pipeline(cam, eng, sink).run()
    assert result.frames_in == 30 and result.dropped > 0
    assert result.frames_out + result.dropped == 30
    times = _video_times(out)
    assert len(times) == result.frames_out and times == sorted(set(times))


def test_file_sink_keeps_a_still_picture_still(tmp_path):
    # x264's fastest presets turn macroblock-tree rate control off: their P-frames kept
    # re-coding a perfectly still picture, which "breathed" by half a level (std over
    # frames); the sink turns the tree back on (with a short lookahead)
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:120, 0:160].astype(np.float32)
    img = 90 + 40 * np.sin(xx / 7.0)[..., None] * np.cos(yy / 5.0)[..., None] + rng.normal(0, 6, (120, 160, 3))
    img = np.clip(img, 0, 255).astype(np.uint8)
    out = tmp_path / "still.mp4"
    sink = VideoFileSink(out, 160, 120, Fraction(1, 24), 24)
    for i in range(20):
        f = Frame(image=img, index=i, pts=i)
        f.result = img
        sink.write(f)
    sink.close(commit=True)
    with av.open(str(out)) as c:
        frames = np.stack([fr.to_ndarray(format="rgb24") for fr in c.decode(video=0)]).astype(np.float32)
    assert len(frames) == 20
    assert frames[2:].std(axis=0).mean() < 0.1, frames[2:].std(axis=0).mean()


def test_encoder_options_keep_a_low_latency_tune():
    from realtime.sinks import encoder_options

    assert encoder_options("libx264", 23, "superfast")["x264-params"] == "mbtree=1:rc-lookahead=10"
    assert encoder_options("libx264", 23, "ultrafast")["x264-params"].startswith("mbtree=1:rc-lookahead=10:")
    assert "x264-params" not in encoder_options("libx264", 23, "ultrafast", tune="zerolatency")
    assert "x264-params" not in encoder_options("libx264", 23, "veryfast")  # has the tree already
    assert encoder_options("mpeg4", 23, "ultrafast") == {}
