"""run_stream CLI: success paths, exit codes, one-line errors, inputs never modified."""
from __future__ import annotations

import functools
import hashlib
import json
import subprocess
import sys
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

import models
import run_stream
from realtime.synthetic import write_clip

ROOT = Path(__file__).resolve().parents[1]


def _sha(p: Path) -> str:
    return hashlib.sha256(Path(p).read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    return write_clip(tmp_path_factory.mktemp("clip") / "in.mkv", n_frames=10, audio="pcm_s16le")


def _run(capsys, *argv) -> tuple[int, str, str]:
    code = run_stream.main([str(a) for a in argv])
    cap = capsys.readouterr()
    return code, cap.out, cap.err


def _one_line_error(err: str) -> str:
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    assert lines[0].startswith("error: ")
    return lines[0]


def _frame_count(p: Path) -> int:
    with av.open(str(p)) as c:
        return sum(1 for _ in c.decode(video=0))


def test_video_file_to_file_with_profile(tmp_path, capsys, clip, weights):
    before = _sha(clip)
    out, prof = tmp_path / "out.mkv", tmp_path / "prof.json"
    code, _, err = _run(capsys, clip, "-o", out, "--weights", weights, "--profile", prof, "--threads", "1")
    assert code == 0, err
    assert _sha(clip) == before and _frame_count(out) == 10
    rep = json.loads(prof.read_text())
    assert rep["frames"] == 10 and rep["engine"]["model"] == "lite" and "decode" in rep["stages"]
    assert prof.with_suffix(".png").read_bytes()[:4] == b"\x89PNG"
    assert "fps end to end" in err  # the table is printed at the end of every run
    # a second run without --overwrite refuses and leaves the output as it was
    kept = _sha(out)
    code, _, err = _run(capsys, clip, "-o", out, "--weights", weights)
    assert code == 2 and "already exists" in _one_line_error(err) and _sha(out) == kept
    code, _, err = _run(capsys, clip, "-o", out, "--weights", weights, "--overwrite", "--quiet")
    assert code == 0 and _frame_count(out) == 10


def test_images_and_folders(tmp_path, capsys, weights):
    folder = tmp_path / "imgs"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for name in ("x.png", "y.jpg"):
        cv2.imwrite(str(folder / name), rng.integers(0, 40, (30, 40, 3), dtype=np.uint8))
    hashes = {p.name: _sha(p) for p in folder.iterdir()}
    code, _, err = _run(capsys, folder, "-o", tmp_path / "out", "--weights", weights, "--quiet")
    assert code == 0, err
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["x.png", "y.jpg"]
    code, _, err = _run(capsys, folder / "x.png", "-o", tmp_path / "single", "--weights", weights, "--quiet")
    assert code == 0 and (tmp_path / "single" / "x.png").exists()
    code, _, err = _run(capsys, folder / "x.png", "-o", tmp_path / "named.png", "--weights", weights, "--quiet")
    assert code == 0 and cv2.imread(str(tmp_path / "named.png")).shape == (30, 40, 3)
    assert {p.name: _sha(p) for p in folder.iterdir()} == hashes
    # the input folder as output folder would overwrite the inputs
    code, _, err = _run(capsys, folder, "-o", folder, "--weights", weights, "--overwrite")
    assert code == 2 and "input" in _one_line_error(err)
    assert {p.name: _sha(p) for p in folder.iterdir()} == hashes


def _bad_inputs(tmp: Path, clip: Path) -> dict[str, tuple[list, str]]:
    text = tmp / "notes.mp4"
    text.write_text("this is not a video\n" * 20)
    empty = tmp / "empty.mp4"
    empty.write_bytes(b"")
    gif = tmp / "anim.gif"
    gif.write_bytes(b"GIF89a" + b"\0" * 32)
    broken_png = tmp / "broken.png"
    broken_png.write_bytes(b"\x89PNG\r\n\x1a\n" + b"garbage" * 10)
    full = write_clip(tmp / "full.mp4", n_frames=8)
    data = full.read_bytes()
    nomoov = tmp / "nomoov.mp4"
    nomoov.write_bytes(data[: data.find(b"moov") - 8])
    blocker = tmp / "blocker"
    blocker.write_text("a file where a folder should be")
    existing = tmp / "exists.mkv"
    existing.write_bytes(b"precious")
    return {
        "missing": ([tmp / "nope.mp4", "-o", tmp / "o1.mp4"], "does not exist"),
        "text_as_mp4": ([text, "-o", tmp / "o2.mp4"], "notes.mp4"),
        "zero_bytes": ([empty, "-o", tmp / "o3.mp4"], "empty"),
        "unwritable_out": ([clip, "-o", blocker / "sub" / "o.mkv"], "output folder"),
        "out_is_in": ([clip, "-o", clip, "--overwrite"], "is the input"),
        "exists": ([clip, "-o", existing], "already exists"),
        "gif": ([gif, "-o", tmp / "o5"], "unsupported image"),
        "broken_png": ([broken_png, "-o", tmp / "o6"], "cannot decode image"),
        "no_moov": ([nomoov, "-o", tmp / "o7.mp4"], "moov"),
        "no_camera": (["--webcam", "97", "-o", tmp / "o8.mp4"], "no camera"),
        "no_input": (["-o", tmp / "o9.mp4"], "INPUT"),
        "bad_strength": ([clip, "-o", tmp / "o10.mkv", "--temporal-strength", "1.5"], "temporal-strength"),
    }


@pytest.mark.parametrize("case", [
    "missing", "text_as_mp4", "zero_bytes", "unwritable_out", "out_is_in", "exists", "gif", "broken_png",
    "no_moov", "no_camera", "no_input", "bad_strength",
])
def test_bad_input_one_line_exit_2_nothing_lost(tmp_path, capsys, clip, weights, case):
    argv, needle = _bad_inputs(tmp_path, clip)[case]
    files = {p: _sha(p) for p in list(tmp_path.rglob("*")) + [clip] if p.is_file()}
    code, out, err = _run(capsys, *argv, "--weights", weights)
    assert code == 2, err
    line = _one_line_error(err)
    assert needle in line, line
    after = {p: _sha(p) for p in list(tmp_path.rglob("*")) + [clip] if p.is_file()}
    assert after == files  # inputs (and existing outputs) untouched, nothing new written


def test_missing_shipped_weights_names_the_model(tmp_path, capsys, clip, monkeypatch):
    monkeypatch.setattr(models.checkpoint, "WEIGHTS_DIR", tmp_path / "empty")
    code, _, err = _run(capsys, clip, "-o", tmp_path / "o.mkv", "--model", "lite", "--device", "cpu")
    assert code == 2
    line = _one_line_error(err)
    assert "'lite'" in line and "available" in line
    assert not (tmp_path / "o.mkv").exists()


def test_ctrl_c_exits_130_with_a_playable_file(tmp_path, capsys, weights, monkeypatch):
    src = write_clip(tmp_path / "long.mkv", n_frames=200)
    ticks = []

    def tick(self, pipe):
        ticks.append(1)
        if len(ticks) == 2:
            raise KeyboardInterrupt

    monkeypatch.setattr(run_stream._Progress, "__call__", tick)
    out = tmp_path / "o.mkv"
    code, _, err = _run(capsys, src, "-o", out, "--weights", weights, "--threads", "1")
    assert code == 130, err
    n = _frame_count(out)
    assert 0 < n <= 200 and "interrupted" in err


def test_demo_runs_without_data(tmp_path, capsys, weights, monkeypatch):
    import realtime.demo

    small = functools.partial(realtime.demo.make_demo_clip, seconds=0.5, size=(96, 64))
    monkeypatch.setattr(realtime.demo, "make_demo_clip", lambda p: small(p))
    out = tmp_path / "demo_out.mp4"
    code, stdout, err = _run(capsys, "--demo", "-o", out, "--weights", weights, "--quiet")
    assert code == 0, err
    assert f"output {out.resolve()}" in stdout and "demo_in.mp4" in stdout
    assert _frame_count(out) == _frame_count(tmp_path / "demo_in.mp4") == 12
    with av.open(str(out)) as c:
        assert len(c.streams.audio) == 1  # the demo's tone was copied


def test_real_process_exit_code_and_single_line(tmp_path):
    proc = subprocess.run([sys.executable, str(ROOT / "run_stream.py"), str(tmp_path / "missing.mkv"), "-o",
                           str(tmp_path / "o.mkv")], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert _one_line_error(proc.stderr).endswith("does not exist")


def test_preview_without_display_is_a_usage_error(tmp_path, capsys, clip, weights, monkeypatch):
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    monkeypatch.setattr(sys, "platform", "linux")
    code, _, err = _run(capsys, clip, "--preview", "--weights", weights)
    assert code == 2 and "display" in _one_line_error(err)


def test_unavailable_backend_is_a_usage_error(tmp_path, capsys, clip, weights):
    out = tmp_path / "o.mkv"
    code, _, err = _run(capsys, clip, "-o", out, "--weights", weights, "--backend", "tensorrt", "--device", "cpu")
    assert code == 2 and "tensorrt" in _one_line_error(err)
    assert not out.exists() and not list(tmp_path.glob(".*"))


@pytest.mark.parametrize("signum", ["SIGINT", "SIGTERM"])
def test_sigint_or_sigterm_in_a_real_process_finishes_the_file(tmp_path, weights, signum):
    import signal
    import time

    src = write_clip(tmp_path / "long.mkv", n_frames=6000, fps=30)
    out = tmp_path / "o.mkv"
    proc = subprocess.Popen([sys.executable, str(ROOT / "run_stream.py"), str(src), "-o", str(out), "--weights",
                             str(weights), "--threads", "1"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 60

    def muxed() -> int:  # bytes in the partial output: grows once frames are encoded
        return sum(p.stat().st_size for p in tmp_path.glob(".o.partial-*"))

    # interrupt once frames are being encoded (past the container header); the long clip
    # keeps the run going well beyond that point
    while muxed() < 20_000 and time.time() < deadline and proc.poll() is None:
        time.sleep(0.02)
    proc.send_signal(getattr(signal, signum))  # SIGTERM (kill, systemd, docker stop) stops like Ctrl-C
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    n = _frame_count(out)
    assert 0 < n < 6000
    assert not list(tmp_path.glob(".*"))  # no hidden .o.partial-PID.mkv left behind


def test_bad_calibration_file_is_a_usage_error(tmp_path, capsys, clip, weights):
    prof = tmp_path / "profile.json"
    prof.write_text("{not json")
    code, _, err = _run(capsys, clip, "-o", tmp_path / "o.mkv", "--weights", weights, "--calibration", prof)
    assert code == 2 and "calibration" in _one_line_error(err)


def test_webcam_mode_live_status_and_output(tmp_path, capsys, clip, weights):
    out = tmp_path / "cam.mkv"
    code, _, err = _run(capsys, "--webcam", clip, "-o", out, "--weights", weights)  # OpenCV opens files as cameras
    assert code == 0, err
    assert "fps end to end" in err and "dropped" in err
    assert 0 < _frame_count(out) <= 10


def test_strength_out_of_range_is_a_usage_error(tmp_path, capsys, clip, weights):
    code, _, err = _run(capsys, clip, "-o", tmp_path / "o.mkv", "--weights", weights, "--strength", "1.5")
    assert code == 2 and "--strength" in _one_line_error(err)
    assert not (tmp_path / "o.mkv").exists()


def test_folder_with_a_corrupt_image_writes_the_others_and_exits_1(tmp_path, capfd, weights):
    folder = tmp_path / "imgs"
    folder.mkdir()
    rng = np.random.default_rng(0)
    (folder / "a_broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"garbage" * 10)  # sorted first
    for name in ("b.png", "c.jpg"):
        cv2.imwrite(str(folder / name), rng.integers(0, 40, (30, 40, 3), dtype=np.uint8))
    code = run_stream.main([str(folder), "-o", str(tmp_path / "out"), "--weights", str(weights), "--quiet"])
    err = capfd.readouterr().err
    assert code == 1, err
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["b.png", "c.jpg"]
    errors = [ln for ln in err.splitlines() if ln.startswith("error: ")]
    assert len(errors) == 1 and "a_broken.png" in errors[0] and "Traceback" not in err
    assert "unsupported key" not in err  # OpenCV's imencode warning for a JPEG option given to PNG


def test_crf_out_of_range_is_a_usage_error(tmp_path, capsys, clip, weights):
    code, _, err = _run(capsys, clip, "-o", tmp_path / "o.mkv", "--weights", weights, "--crf", "99")
    assert code == 2 and "--crf" in _one_line_error(err)
    assert not (tmp_path / "o.mkv").exists()


def _limited_file_size(limit: int):
    def apply() -> None:
        import resource
        import signal

        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # writes past the limit fail with EFBIG, like a full disk
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    return apply


@pytest.mark.parametrize("kind", ["video", "images"])
def test_a_write_failing_mid_run_exits_1_for_videos_and_images(tmp_path, weights, kind):
    if kind == "video":
        src = write_clip(tmp_path / "in.mkv", n_frames=120, size=(320, 240))
        out = tmp_path / "o.mkv"
    else:
        src = tmp_path / "imgs"
        src.mkdir()
        big = np.random.default_rng(0).integers(0, 255, (600, 800, 3), dtype=np.uint8)  # PNG > 1 MB
        cv2.imwrite(str(src / "a.png"), big)
        out = tmp_path / "out"
    proc = subprocess.run([sys.executable, str(ROOT / "run_stream.py"), str(src), "-o", str(out), "--weights",
                           str(weights), "--quiet"], capture_output=True, text=True, timeout=120,
                          preexec_fn=_limited_file_size(200_000))
    assert proc.returncode == 1, proc.stderr
    assert "cannot" in _one_line_error(proc.stderr)
    leftovers = [p for p in tmp_path.rglob(".*")]
    assert not leftovers, leftovers
