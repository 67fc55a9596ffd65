"""run-stream batch: discovery, bad files reported, resume after a kill, worker death,
Ray, and --split equal to the unsplit run (frames, timestamps, audio, seams)."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

import run_stream
from realtime import batch
from realtime.synthetic import write_clip

ROOT = Path(__file__).resolve().parents[1]


def _frames(p: Path) -> int:
    with av.open(str(p)) as c:
        return sum(1 for _ in c.decode(video=0))


def _report(p: Path) -> dict[str, dict]:
    rows = [json.loads(line) for line in p.read_text().splitlines() if line.strip()]
    return {Path(r["input"]).name: r for r in rows}


def _hidden(folder: Path) -> list[Path]:
    return [p for p in folder.rglob(".*")]


def _batch(capsys, *argv) -> tuple[int, str]:
    code = run_stream.main(["batch", *[str(a) for a in argv]])
    return code, capsys.readouterr().err


def test_discover_keeps_names_and_relative_folders(tmp_path):
    (tmp_path / "in" / "sub").mkdir(parents=True)
    for rel in ("a.mp4", "sub/b.mkv", "sub/c.png", "notes.txt", ".hidden.mp4"):
        (tmp_path / "in" / rel).write_bytes(b"x")
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "d.mov").write_bytes(b"x")
    out = tmp_path / "out"
    jobs = batch.discover([str(tmp_path / "in"), str(tmp_path / "other" / "*.mov")], out)
    got = {j.output.relative_to(out).as_posix(): (j.input.relative_to(tmp_path).as_posix(), j.kind) for j in jobs}
    assert got == {"a.mp4": ("in/a.mp4", "video"), "sub/b.mkv": ("in/sub/b.mkv", "video"),
                   "sub/c.png": ("in/sub/c.png", "image"), "d.mov": ("other/d.mov", "video")}
    (tmp_path / "in" / "sub" / "a.mp4").write_bytes(b"x")
    with pytest.raises(batch.BatchError, match="both be written"):
        batch.discover([str(tmp_path / "in" / "a.mp4"), str(tmp_path / "in" / "sub" / "a.mp4")], out)
    with pytest.raises(batch.BatchError, match="does not exist"):
        batch.discover([str(tmp_path / "missing.mp4")], out)
    with pytest.raises(batch.BatchError, match="is the input"):
        batch.discover([str(tmp_path / "in" / "a.mp4")], tmp_path / "in")


def test_bad_files_are_reported_and_the_good_ones_finished(tmp_path, capsys, weights):
    src = tmp_path / "in"
    (src / "sub").mkdir(parents=True)
    write_clip(src / "a.mp4", n_frames=12, audio="aac")
    write_clip(src / "sub" / "b.mkv", n_frames=9, audio="pcm_s16le", seed=1)
    (src / "zero.mp4").write_bytes(b"")
    data = write_clip(tmp_path / "full.mp4", n_frames=8).read_bytes()
    (src / "corrupt.mp4").write_bytes(data[: data.find(b"moov") - 8])  # no index
    cv2.imwrite(str(src / "x.png"), np.random.default_rng(0).integers(0, 40, (30, 40, 3), dtype=np.uint8))
    out, rep = tmp_path / "out", tmp_path / "r.jsonl"
    code, err = _batch(capsys, src, "-o", out, "--jobs", "2", "--weights", weights, "--report", rep)
    assert code == 1, err
    assert _frames(out / "a.mp4") == 12 and _frames(out / "sub" / "b.mkv") == 9
    assert cv2.imread(str(out / "x.png")).shape == (30, 40, 3)
    with av.open(str(out / "sub" / "b.mkv")) as c:
        assert len(c.streams.audio) == 1
    r = _report(rep)
    assert {k: v["status"] for k, v in r.items()} == {
        "a.mp4": "ok", "b.mkv": "ok", "x.png": "ok", "zero.mp4": "failed", "corrupt.mp4": "failed"}
    assert "empty" in r["zero.mp4"]["error"] and "moov" in r["corrupt.mp4"]["error"]
    assert r["a.mp4"]["frames"] == 12 and r["a.mp4"]["fps"] > 0 and r["a.mp4"]["error"] is None
    assert not (out / "zero.mp4").exists() and not (out / "corrupt.mp4").exists() and not _hidden(out)
    errors = [ln for ln in err.splitlines() if ln.startswith("error: ")]
    assert len(errors) == 2 and "Traceback" not in err and "2 failed" in err
    # nothing left to do but the bad ones: the good outputs are skipped, not redone
    before = {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file()}
    code, err = _batch(capsys, src, "-o", out, "--weights", weights, "--report", rep, "--quiet")
    assert code == 1
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file()} == before
    statuses = [json.loads(ln)["status"] for ln in rep.read_text().splitlines()[5:]]
    assert sorted(statuses) == ["failed", "failed", "skipped", "skipped", "skipped"]


def test_options_of_a_single_run_apply_to_batch(tmp_path, capsys, weights):
    single = {a.dest for a in run_stream.build_parser()._actions} - set(run_stream.SINGLE_ONLY)
    assert single <= {a.dest for a in run_stream.build_parser(batch=True)._actions}
    write_clip(tmp_path / "a.mkv", n_frames=4)
    code, err = _batch(capsys, tmp_path / "a.mkv", "-o", tmp_path / "o", "--crf", "99", "--weights", weights)
    assert code == 2 and "--crf" in err and not (tmp_path / "o").exists()
    code, err = _batch(capsys, tmp_path / "nope.mkv", "-o", tmp_path / "o", "--weights", weights)
    assert code == 2 and "does not exist" in err


def test_ray_missing_says_how_to_install(tmp_path, capsys, weights, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray -> ImportError
    write_clip(tmp_path / "a.mkv", n_frames=4)
    code, err = _batch(capsys, tmp_path / "a.mkv", "-o", tmp_path / "o", "--ray", "--weights", weights)
    assert code == 2 and 'pip install -e ".[ray]"' in err and not (tmp_path / "o").exists()


def test_sigterm_midway_then_resume_finishes_only_what_was_left(tmp_path, weights):
    src = tmp_path / "in"
    src.mkdir()
    for i in range(5):
        write_clip(src / f"c{i}.mkv", n_frames=150, size=(160, 120), seed=i, audio="pcm_s16le")
    out, rep = tmp_path / "out", tmp_path / "r.jsonl"
    cmd = [sys.executable, str(ROOT / "run_stream.py"), "batch", str(src), "-o", str(out), "--jobs", "1",
           "--weights", str(weights), "--quiet"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None and not any(p.suffix == ".mkv" for p in out.glob("c*.mkv")):
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    assert not _hidden(out), _hidden(out)
    done = {p.name: p.stat().st_mtime_ns for p in out.glob("*.mkv")}
    time.sleep(3)  # no worker outlived the batch: nothing more appears
    assert {p.name: p.stat().st_mtime_ns for p in out.rglob("*")} == done
    assert 1 <= len(done) < 5, done
    assert all(_frames(out / n) == 150 for n in done)  # what is there under a final name is complete
    proc = subprocess.run(cmd + ["--report", str(rep)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    r = _report(rep)
    assert {n for n, v in r.items() if v["status"] == "skipped"} == set(done)
    assert {n for n, v in r.items() if v["status"] == "ok"} == {f"c{i}.mkv" for i in range(5)} - set(done)
    assert {n: (out / n).stat().st_mtime_ns for n in done} == done  # not redone
    assert all(_frames(out / f"c{i}.mkv") == 150 for i in range(5)) and not _hidden(out)


class _FlakyWorker:
    """A picklable worker factory for run_local: 'die' kills its process once, 'doom'
    every time, 'bad' raises; the others write their name into the output."""

    def __init__(self, marker: str):
        self.marker = Path(marker)

    def __call__(self):
        return self.run

    def run(self, job, on_frames):
        name = job.input.stem
        if name == "die" and not self.marker.exists():
            self.marker.write_text("died once")
            os._exit(3)
        if name == "doom":
            os._exit(4)
        if name == "bad":
            raise batch.SourceError(f"cannot read {job.input}: corrupt")
        job.output.write_text(name)
        on_frames(1)
        return {"frames": 1}


def test_a_dying_worker_is_replaced_and_its_file_retried_once(tmp_path):
    jobs = []
    for name in ("a", "die", "b", "bad", "doom", "c"):
        (tmp_path / f"{name}.mp4").write_text(name)
        jobs.append(batch.Job(tmp_path / f"{name}.mp4", tmp_path / f"{name}.out", "video"))
    results, frames = [], []
    batch.run_local(jobs, _FlakyWorker(str(tmp_path / "marker")), 2, results.append, frames.append)
    status = {Path(r.input).stem: (r.status, r.error) for r in results}
    assert {k: v[0] for k, v in status.items()} == {"a": "ok", "die": "ok", "b": "ok", "c": "ok", "bad": "failed",
                                                   "doom": "failed"}
    assert "corrupt" in status["bad"][1] and "died twice" in status["doom"][1]
    assert (tmp_path / "die.out").read_text() == "die" and sum(frames) == 4


class _DeadOnArrival:
    """A worker factory whose process dies while loading (e.g. out of memory)."""

    def __call__(self):
        os._exit(5)


def test_workers_dying_at_start_fail_the_files_instead_of_looping(tmp_path):
    jobs = [batch.Job(tmp_path / f"{n}.mp4", tmp_path / f"{n}.out", "video") for n in "ab"]
    results = []
    batch.run_local(jobs, _DeadOnArrival(), 2, results.append, lambda n: None)
    assert sorted(r.status for r in results) == ["failed", "failed"]
    assert all("before taking a file" in r.error for r in results)


def _video_info(p: Path):
    with av.open(str(p)) as c:
        v = c.streams.video[0]
        frames = [(f.pts, float(f.to_ndarray(format="gray").mean())) for f in c.decode(v)]
        tb = v.time_base
    with av.open(str(p)) as c:
        audio = [(pk.pts, pk.dts, bytes(pk)) for pk in c.demux(c.streams.audio[0]) if pk.size]
    return frames, tb, audio


def test_split_equals_the_unsplit_run(tmp_path, capsys, weights):
    src = tmp_path / "in"
    src.mkdir()
    clip = write_clip(src / "long.mp4", n_frames=240, size=(96, 64), audio="aac",
                      options={"preset": "ultrafast", "g": "24"})
    one, split, rep = tmp_path / "one", tmp_path / "split", tmp_path / "r.jsonl"
    code, err = _batch(capsys, src, "-o", one, "--jobs", "1", "--weights", weights, "--quiet")
    assert code == 0, err
    code, err = _batch(capsys, src, "-o", split, "--jobs", "2", "--split", "3", "--weights", weights, "--quiet",
                       "--report", rep)
    assert code == 0, err
    assert _report(rep)["long.mp4"]["segments"] == 3 and _report(rep)["long.mp4"]["frames"] == 240
    assert not _hidden(split)
    f1, tb1, a1 = _video_info(one / "long.mp4")
    f2, tb2, a2 = _video_info(split / "long.mp4")
    assert len(f1) == len(f2) == 240
    assert [float(p * tb1) for p, _ in f1] == [float(p * tb2) for p, _ in f2]
    assert a1 == a2 and len(a1) > 100  # the audio packets, byte for byte, with their timestamps
    cuts = [j.segment.start for j in batch.plan_segments(batch.Job(clip, split / "long.mp4", "video"), 3)[1:]]
    with av.open(str(clip)) as c:
        src_tb = c.streams.video[0].time_base
    times = [float(p * tb1) for p, _ in f1]
    for cut in cuts:
        i = times.index(float(cut * src_tb))
        assert 0 < i < 239
        for k in (i - 1, i, i + 1):  # the last frame before the seam and the first two after it
            assert abs(f1[k][1] - f2[k][1]) < 1.0, (cut, k, f1[k][1], f2[k][1])


def test_ray_runs_the_same_batch(tmp_path, capsys, weights):
    ray = pytest.importorskip("ray", reason="Ray is not installed (pip install -e '.[ray]')")
    src = tmp_path / "in"
    src.mkdir()
    write_clip(src / "a.mp4", n_frames=10, audio="aac")
    write_clip(src / "b.mkv", n_frames=7, seed=1)
    (src / "zero.mp4").write_bytes(b"")
    out, rep = tmp_path / "out", tmp_path / "r.jsonl"
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        code, err = _batch(capsys, src, "-o", out, "--ray", "--weights", weights, "--report", rep, "--quiet")
    finally:
        ray.shutdown()
    assert code == 1, err
    assert {k: v["status"] for k, v in _report(rep).items()} == {"a.mp4": "ok", "b.mkv": "ok", "zero.mp4": "failed"}
    assert _frames(out / "a.mp4") == 10 and _frames(out / "b.mkv") == 7 and not _hidden(out)
