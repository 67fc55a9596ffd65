"""training.evaluate on a tiny synthetic low/high dataset with an untrained ``lite`` checkpoint."""
from __future__ import annotations

import json
import math
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

import models
from realtime.convert import to_tensor, to_uint8
from training import evaluate as E
from training import metrics as M

NAMES = ["1.png", "2.png", "10.png"]
H, W = 40, 56


def _write(path: Path, rgb: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))


def _read(path: Path) -> np.ndarray:
    return cv2.cvtColor(cv2.imread(str(path), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)


@pytest.fixture
def dataset(tmp_path: Path) -> Path:
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:H, 0:W]
    for i, name in enumerate(NAMES):
        base = 60 + 100 * xx / W + 40 * np.sin((yy + 3 * i) / 4.0)
        high = np.stack([base, 0.9 * base + 10, 1.1 * base - 20], axis=2) + rng.normal(0, 6, (H, W, 3))
        high = np.clip(np.rint(high), 0, 255).astype(np.uint8)
        low = np.clip(np.rint(high * 0.12 + rng.normal(0, 1.5, high.shape)), 0, 255).astype(np.uint8)
        _write(tmp_path / "data" / "low" / name, low)
        _write(tmp_path / "data" / "high" / name, high)
    return tmp_path / "data"


@pytest.fixture
def checkpoint(tmp_path: Path) -> Path:
    model = models.create_model("lite")
    models.save_checkpoint(model, "lite", tmp_path / "ckpt" / "lite_test.pt", note="untrained, test only")
    return tmp_path / "ckpt" / "lite_test.pt"


def _pairs(data: Path) -> list[tuple[Path, Path]]:
    return [(data / "low" / n, data / "high" / n) for n in NAMES]


def test_cli_writes_pngs_json_and_table(dataset, checkpoint, tmp_path, capsys):
    out_dir, js = tmp_path / "out", tmp_path / "res" / "eval.json"
    rc = E.main(["--model", "lite", "--weights", str(checkpoint), "--data", str(dataset),
                 "--out", str(out_dir), "--json", str(js), "--no-progress"])
    assert rc == 0
    assert sorted(p.name for p in out_dir.iterdir()) == sorted(NAMES)
    res = json.loads(js.read_text())
    assert set(res["rows"]) == {"input", "gamma", "model"}
    for row in res["rows"].values():
        assert set(row["per_image"]) == set(NAMES)
        assert set(M.ALL_METRICS) <= set(row["mean"])
        assert "lpips" not in row["mean"]
    assert "time_ms" in res["rows"]["model"]["mean"] and "time_ms" not in res["rows"]["input"]["mean"]
    assert res["meta"]["gamma"] == E.GAMMA_REFERENCE and res["meta"]["n_images"] == 3
    # the PNGs on disk are exactly what was scored (uint8, full resolution)
    for name in NAMES:
        written = _read(out_dir / name)
        assert written.shape == (H, W, 3)
        high = _read(dataset / "high" / name)
        assert M.psnr(written, high) == pytest.approx(res["rows"]["model"]["per_image"][name]["psnr"], abs=1e-9)
        assert M.fsim(written, high) == pytest.approx(res["rows"]["model"]["per_image"][name]["fsim"], abs=1e-9)
    # the input row scores the low image itself; means are means over images
    low1, high1 = _read(dataset / "low" / "1.png"), _read(dataset / "high" / "1.png")
    assert res["rows"]["input"]["per_image"]["1.png"]["ssim"] == pytest.approx(M.ssim(low1, high1))
    gam = res["rows"]["gamma"]
    assert gam["mean"]["psnr"] == pytest.approx(np.mean([gam["per_image"][n]["psnr"] for n in NAMES]))
    table = capsys.readouterr().out
    rows = [line for line in table.splitlines() if line.startswith("| ")]
    assert [r.split("|")[1].strip() for r in rows] == ["method", "input (low)", f"gamma {E.GAMMA_REFERENCE:g}", "lite"]
    assert all(r.count("|") == rows[0].count("|") for r in rows)
    assert "n/a (no weights given)" in table


def test_limit_takes_the_first_pairs_in_natural_order(dataset, checkpoint, tmp_path):
    js = tmp_path / "e.json"
    assert E.main(["--weights", str(checkpoint), "--data", str(dataset), "--limit", "2", "--json", str(js), "--no-progress"]) == 0
    res = json.loads(js.read_text())
    assert sorted(res["rows"]["model"]["per_image"]) == ["1.png", "2.png"]
    assert res["meta"]["model"] == "lite"


def test_cli_errors_are_reported_not_raised(dataset, checkpoint, tmp_path, capsys):
    assert E.main(["--model", "sri", "--weights", str(checkpoint), "--data", str(dataset), "--no-progress"]) == 2
    assert "not 'sri'" in capsys.readouterr().err
    assert E.main(["--weights", str(checkpoint), "--data", str(tmp_path / "nowhere"), "--no-progress"]) == 1
    assert "low/ and high/" in capsys.readouterr().err


def test_evaluate_model_fast_subset_restores_training_mode(dataset):
    model = models.create_model("lite").train()
    res = E.evaluate_model(model, _pairs(dataset), metrics=("psnr", "ssim"), progress=False)
    assert model.training
    assert res["n_images"] == 3
    assert set(res["mean"]) == {"psnr", "ssim", "time_ms"}
    assert all(set(r) == {"psnr", "ssim", "time_ms"} for r in res["per_image"].values())
    with torch.inference_mode():
        x = to_tensor(_read(dataset / "low" / "2.png"))
        y = to_uint8(model.eval()(x))[0]
    assert res["per_image"]["2.png"]["psnr"] == pytest.approx(M.psnr(y, _read(dataset / "high" / "2.png")))
    with pytest.raises(KeyError):
        E.evaluate_model(model, _pairs(dataset), metrics=("psnr", "bogus"), progress=False)


def test_mismatched_pair_is_a_typed_error(dataset):
    _write(dataset / "high" / "2.png", np.zeros((H + 2, W, 3), np.uint8))
    with pytest.raises(E.EvalDataError, match="2.png") as info:
        E.evaluate_references(_pairs(dataset), progress=False)
    assert isinstance(info.value, ValueError)


def test_gamma_curve_values():
    x = np.array([[[0, 64, 255]]], np.uint8)
    g = E.gamma_curve(x, 0.4)
    assert g.dtype == np.uint8
    assert g.tolist() == [[[0, round(255 * (64 / 255) ** 0.4), 255]]]


class _MeanAbs(torch.nn.Module):
    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return (a - b).abs().mean(dim=(1, 2, 3))


def _check_lpips_scorer(scorer: E.LPIPSScorer, dataset: Path) -> None:
    res = E.evaluate_references(_pairs(dataset)[:2], lpips=scorer, progress=False)
    low, high = _read(dataset / "low" / "1.png"), _read(dataset / "high" / "1.png")
    expected = np.abs(low.astype(np.float64) - high).mean() * 2 / 255  # inputs scaled to [-1, 1]
    assert res["input"]["per_image"]["1.png"]["lpips"] == pytest.approx(expected, rel=1e-5)
    assert not math.isnan(res["gamma"]["mean"]["lpips"])


@pytest.mark.filterwarnings("ignore:`torch.jit:DeprecationWarning")
def test_lpips_column_from_a_torchscript_file(dataset, tmp_path):
    path = tmp_path / "lpips_stub.pt"
    torch.jit.script(_MeanAbs()).save(str(path))
    _check_lpips_scorer(E.LPIPSScorer(path), dataset)


def test_lpips_column_from_an_exported_program(dataset, tmp_path):
    path = tmp_path / "lpips_stub.pt2"
    h, w = torch.export.Dim("h", min=8, max=4096), torch.export.Dim("w", min=8, max=4096)
    example = (torch.rand(1, 3, 16, 24), torch.rand(1, 3, 16, 24))
    torch.export.save(torch.export.export(_MeanAbs(), example, dynamic_shapes=({2: h, 3: w}, {2: h, 3: w})), str(path))
    _check_lpips_scorer(E.LPIPSScorer(path), dataset)


def test_lpips_missing_or_bad_file_is_a_typed_error(tmp_path):
    with pytest.raises(E.EvalIOError):
        E.LPIPSScorer(tmp_path / "missing.pt")
    bad = tmp_path / "bad.pt2"
    bad.write_bytes(b"not a model")
    with pytest.raises(E.EvalIOError) as info:
        E.LPIPSScorer(bad)
    assert isinstance(info.value, OSError)
