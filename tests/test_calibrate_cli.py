"""`python -m calibrate` writes a profile and `run_stream.py --calibration` runs with it."""
from __future__ import annotations

import json

import models
import run_stream
from calibrate.__main__ import main as calibrate_main
from realtime.synthetic import write_clip


def test_profile_written_by_calibrate_drives_run_stream(tmp_path, capsys):
    prof = tmp_path / "profile.json"
    code = calibrate_main(
        ["--resolution", "128x64", "--fps", "1", "--model", "lite", "--device", "cpu", "--iters", "2", "--warmup", "1", "-q", "-o", str(prof)]
    )
    assert code == 0
    profile = json.loads(prof.read_text())
    assert profile["model"] == "lite" and profile["backend"] == "cpu"
    scales = sorted(c["model_options"]["scale"] for c in profile["candidates"])
    assert scales == [1, 4, 8]  # the resolution-matched grid scale and the fixed ones that fit 128x64
    chosen = profile["model_options"]["scale"]
    for c in profile["candidates"]:
        assert c["latency_ms"]["median"] > 0 and c["latency_ms"]["p99"] >= c["latency_ms"]["median"]

    clip = write_clip(tmp_path / "in.mkv", n_frames=4, size=(128, 64))
    weights = tmp_path / "lite.pt"
    models.save_checkpoint(models.create_model("lite"), "lite", weights)
    report = tmp_path / "report.json"
    code = run_stream.main(
        [str(clip), "-o", str(tmp_path / "out.mkv"), "--weights", str(weights), "--calibration", str(prof), "--profile", str(report), "--quiet"]
    )
    capsys.readouterr()
    assert code == 0
    engine = json.loads(report.read_text())["engine"]
    assert engine["backend"] == "cpu"
    assert engine["model_config"]["scale"] == chosen
