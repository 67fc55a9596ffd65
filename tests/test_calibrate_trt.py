"""TensorRT path: version handling, cache keys and graph readiness (all on CPU), plus
real engine builds that need torch_tensorrt and a GPU (skipped here with a reason)."""
from __future__ import annotations

import importlib.util

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import models
from calibrate import BackendUnavailable, build_backend
from realtime.backends.export import export_model, export_parts
from realtime.backends.tensorrt import engine_cache_dir, engine_cache_key, model_checksum, parse_version, trt_compile_settings
from realtime.backends.trt_ops import CONVERTED_OPS, TRT_OPS_VERSION, check_graph

HAVE_TRT = importlib.util.find_spec("torch_tensorrt") is not None
needs_trt = pytest.mark.skipif(not HAVE_TRT, reason="torch_tensorrt is not installed (TensorRT cannot be installed here)")


@pytest.mark.parametrize(
    "version, expected",
    [
        ("2.9.0", (2, 9, 0)),
        ("2.12.1+cu130", (2, 12, 1)),
        ("2.13.0.dev20260601+cu130", (2, 13, 0)),
        ("v2.14", (2, 14, 0)),
    ],
)
def test_parse_version(version, expected):
    assert parse_version(version) == expected


def test_parse_version_rejects_garbage():
    with pytest.raises(ValueError):
        parse_version("nightly")


@pytest.mark.parametrize("version", ["2.2.0", "2.5.1", "2.9.0"])
def test_fp16_settings_up_to_2_9_use_enabled_precisions(version):
    s = trt_compile_settings(version)
    assert s["enabled_precisions"] == {torch.float16}
    assert "use_explicit_typing" not in s


@pytest.mark.parametrize("version", ["2.10.0", "2.11.0+cu130", "2.12.1"])
def test_fp16_settings_2_10_to_2_12_turn_explicit_typing_off(version):
    s = trt_compile_settings(version)
    assert s["enabled_precisions"] == {torch.float16}
    assert s["use_explicit_typing"] is False


@pytest.mark.parametrize("version", ["2.13.0", "2.14.0.dev20260901+cu130", "3.0.0"])
def test_fp16_settings_from_2_13_rely_on_half_model(version):
    s = trt_compile_settings(version)
    assert "enabled_precisions" not in s and "use_explicit_typing" not in s


@pytest.mark.parametrize("version", ["1.4.0", "2.1.0", "not-a-version"])
def test_fp16_settings_refuse_old_or_unknown(version):
    with pytest.raises(BackendUnavailable):
        trt_compile_settings(version)


def test_engine_cache_dir_follows_env(monkeypatch, tmp_path):
    monkeypatch.setenv("LOWLIGHT_CACHE", str(tmp_path))
    assert engine_cache_dir() == tmp_path / "engines"
    monkeypatch.delenv("LOWLIGHT_CACHE")
    assert engine_cache_dir().parts[-3:] == (".cache", "lowlight-rt", "engines")


def test_engine_cache_key_changes_with_every_field():
    base = dict(
        checksum="abc", shape=(720, 1280), precision="fp16", gpu="NVIDIA H100", torch_version="2.14.0",
        trt_version="11.1.0", torch_tensorrt_version="2.14.0", part="estimate",
    )
    k0 = engine_cache_key(**base)
    assert engine_cache_key(**base) == k0
    changes = dict(
        checksum="abd", shape=(1080, 1920), precision="fp32", gpu="NVIDIA L4", torch_version="2.15.0",
        trt_version="11.2.0", torch_tensorrt_version="2.15.0", part="render",
    )
    for key, value in changes.items():
        assert engine_cache_key(**{**base, key: value}) != k0, key


def test_model_checksum_tracks_weights_and_config():
    m = models.create_model("sri", width=8, blocks=1)
    c = model_checksum(m)
    assert model_checksum(m) == c
    with torch.no_grad():
        m.head.bias.add_(1e-3)
    assert model_checksum(m) != c
    assert model_checksum(models.create_model("sri", width=8, blocks=2)) != c


def test_op_list_records_its_source_version():
    assert "8f1076616ffe" in TRT_OPS_VERSION
    for op in ("aten.convolution.default", "aten.upsample_bilinear2d.vec", "aten.replication_pad2d.default"):
        assert op in CONVERTED_OPS


@pytest.mark.parametrize("name", models.list_models())
@pytest.mark.parametrize("shape", [(64, 96), (50, 70)])  # (50, 70) needs internal padding and a crop
def test_every_model_exports_trt_ready(name, shape):
    model = models.create_model(name).eval()
    rep = check_graph(export_model(model, shape))
    assert rep.ok, f"{name} at {shape}: {rep.summary()}"
    assert "aten.convolution.default" in rep.ops


@pytest.mark.parametrize("name", models.list_models())
def test_estimate_and_render_export_separately(name):
    model = models.create_model(name).eval()
    est, ren, est_args, ren_args, has_aux = export_parts(model, (32, 48))
    assert check_graph(est).ok and check_graph(ren).ok
    assert has_aux == (model.estimate(est_args[0])[0] is not None)
    assert has_aux  # every shipped design has one (sri: its detail term)
    x = est_args[0]
    out = est.module()(x)
    illum = out[1] if has_aux else out
    torch.testing.assert_close(illum, model.estimate(x)[1])


@pytest.mark.parametrize("shape", [(64, 96), (50, 70)])
def test_blnet_detail_transfer_renders_trt_ready(shape):
    """At these small test frames the default window pools cells of one pixel; a wide window
    exercises the coarse-grid path (pooling, replicate pad, bilinear) that real frames take."""
    model = models.create_model("blnet", decom_widths=(8, 16), enhance_widths=(8, 16), detail_window=0.5).eval()
    _, ren, _, _, has_aux = export_parts(model, shape)
    rep = check_graph(ren)
    assert has_aux and rep.ok, rep.summary()
    assert {"aten.avg_pool2d.default", "aten.upsample_bilinear2d.vec"} <= rep.ops


def test_grey_sri_exports_without_aux():
    model = models.create_model("sri", width=8, blocks=1, illum_channels=1, detail_box=0).eval()
    est, ren, _, ren_args, has_aux = export_parts(model, (32, 48))
    assert not has_aux and len(ren_args) == 2 and check_graph(est).ok and check_graph(ren).ok


def test_uint8_graph_only_leaves_the_final_cast_to_pytorch():
    model = models.create_model("sri", width=8, blocks=1).eval()
    ep = export_model(model, (32, 48), uint8=True, layout="nhwc")
    rep = check_graph(ep)
    assert not rep.ok and len(rep.problems) == 1 and "torch.uint8" in rep.problems[0]
    assert check_graph(ep, allow_uint8_cast=True).ok


class _CeilPool(nn.Module):
    def forward(self, x):
        return F.avg_pool2d(x, 3, ceil_mode=True)


class _Cumprod(nn.Module):
    def forward(self, x):
        return torch.cumprod(x, dim=1)


def test_checker_refuses_ceil_mode_pooling():
    ep = torch.export.export(_CeilPool(), (torch.rand(1, 3, 10, 10),))
    rep = check_graph(ep)
    assert not rep.ok and any("ceil_mode" in p for p in rep.problems)


def test_checker_reports_unconverted_ops():
    ep = torch.export.export(_Cumprod(), (torch.rand(1, 3, 4, 4),)).run_decompositions()
    rep = check_graph(ep)
    assert not rep.ok and rep.unconverted


@pytest.mark.skipif(HAVE_TRT, reason="torch_tensorrt is installed: this checks the message when it is missing")
def test_tensorrt_backend_says_why_it_is_unavailable():
    model = models.create_model("sri", width=8, blocks=1).eval()
    with pytest.raises(BackendUnavailable, match="torch_tensorrt"):
        build_backend(model, "sri", "tensorrt", torch.device("cpu"), (32, 48))


@needs_trt
@pytest.mark.needs_cuda
@pytest.mark.parametrize("name", ["lite", "sri"])
def test_tensorrt_engine_builds_validates_and_is_cached(name, tmp_path, caplog):
    from realtime.backends.frames import demo_frames
    from realtime.backends.validate import validate_backend

    model = models.create_model(name).eval()
    dev = torch.device("cuda")
    opts = {"cache_dir": str(tmp_path)}
    with caplog.at_level("INFO"):
        cm = build_backend(model, name, "tensorrt", dev, (72, 128), options=opts)
    assert "building TensorRT engine" in caplog.text
    assert cm.dtype == torch.float16 and cm.backend == "tensorrt"
    validate_backend(cm, model, demo_frames(2, (128, 72)))
    assert len(list(tmp_path.glob("*.ep"))) == 2
    caplog.clear()
    with caplog.at_level("INFO"):
        cm2 = build_backend(model, name, "tensorrt", dev, (72, 128), options=opts)
    assert "building TensorRT engine" not in caplog.text
    assert "from cache" in cm2.reason
    x = torch.rand(1, 3, 72, 128, device=dev, dtype=torch.float16)
    torch.testing.assert_close(cm(x), cm2(x))
