"""Numba kernels against the torch reference of the lite model."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import models
from models import lite_coefficients, pad_to_multiple
from realtime import kernels as K


def _to_tensor(frame: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(frame)).permute(2, 0, 1)[None].float().div(255.0)


def _to_u8(x: torch.Tensor) -> np.ndarray:
    return (x[0].permute(1, 2, 0) * 255.0).round().clamp(0, 255).to(torch.uint8).numpy()


@pytest.fixture(scope="module")
def lite():
    torch.manual_seed(0)
    return models.create_model("lite").eval()


def _random_coefs(model, x):
    """Estimate, then make the grid far from flat so interpolation errors would show."""
    with torch.no_grad():
        aux, gain = model.estimate(x)
        gain = gain * torch.exp(torch.randn_like(gain))
        aux = aux.clone()
        aux[:, :1] = torch.rand_like(aux[:, :1])
    return aux, gain


@pytest.mark.parametrize("hw", [(37, 53), (64, 96), (5, 3)])
def test_lite_render_matches_torch(lite, hw):
    rng = np.random.default_rng(1)
    frame = rng.integers(0, 256, (*hw, 3), dtype=np.uint8)
    x = _to_tensor(frame)
    aux, gain = _random_coefs(lite, x)
    with torch.no_grad():
        ref = _to_u8(lite.render(x, aux, gain))
    coef = lite_coefficients(aux, gain)[0].numpy()
    out = np.full_like(frame, 7)
    got = K.lite_render_u8(frame, coef, lite.cfg.scale, out=out)
    assert got is out
    assert np.abs(got.astype(int) - ref.astype(int)).max() <= 1
    assert (got != ref).mean() < 0.01  # off-by-one only at rounding ties
    # Reversed-channel views and a (1, 6, h, w) grid are accepted.
    bgr = np.ascontiguousarray(frame[..., ::-1])
    np.testing.assert_array_equal(K.lite_render_u8(bgr[..., ::-1], coef[None], lite.cfg.scale), got)


@pytest.mark.parametrize("scale", [1, 3, 4, 8])
def test_lite_render_bilinear_matches_interpolate(scale):
    rng = np.random.default_rng(scale)
    h, w = 5, 7
    coef = rng.uniform(-0.5, 2.0, (6, h, w)).astype(np.float32)
    H, W = h * scale - (scale > 1), w * scale - 2 * (scale > 1)
    frame = rng.integers(0, 256, (H, W, 3), dtype=np.uint8)
    up = F.interpolate(torch.from_numpy(coef)[None], size=(h * scale, w * scale), mode="bilinear", align_corners=False)
    up = up[..., :H, :W]
    ref = _to_u8((up[:, :3] * _to_tensor(frame) + up[:, 3:]).clamp(0, 1))
    got = K.lite_render_u8(frame, coef, scale)
    assert np.abs(got.astype(int) - ref.astype(int)).max() <= 1


def test_lite_render_in_place_and_row_padded_buffers():
    rng = np.random.default_rng(2)
    coef = rng.uniform(0.0, 1.5, (6, 4, 5)).astype(np.float32)
    big = rng.integers(0, 256, (16, 30, 3), dtype=np.uint8)
    frame = big[:, :20]  # a crop: rows padded in memory
    ref = K.lite_render_u8(np.ascontiguousarray(frame), coef, 4)
    np.testing.assert_array_equal(K.lite_render_u8(frame, coef, 4), ref)
    K.lite_render_u8(frame, coef, 4, out=frame)  # in place
    np.testing.assert_array_equal(frame, ref)


def test_lite_render_rejects_bad_input():
    frame = np.zeros((16, 16, 3), np.uint8)
    coef = np.zeros((6, 4, 4), np.float32)
    with pytest.raises(ValueError):
        K.lite_render_u8(frame.astype(np.float64), coef, 4)
    with pytest.raises(ValueError):
        K.lite_render_u8(frame, coef[:5], 4)
    with pytest.raises(ValueError):
        K.lite_render_u8(frame, coef, 2)  # grid too small
    with pytest.raises(ValueError):
        K.lite_render_u8(frame, coef, 4, out=np.zeros((16, 15, 3), np.uint8))
    with pytest.raises(TypeError):
        K.lite_render_u8(torch.zeros(16, 16, 3, dtype=torch.uint8), coef, 4)


@pytest.mark.parametrize("hw", [(37, 53), (64, 96)])
def test_box_stats_matches_model(lite, hw):
    rng = np.random.default_rng(3)
    frame = rng.integers(0, 256, (*hw, 3), dtype=np.uint8)
    with torch.no_grad():
        xp, _, _ = pad_to_multiple(_to_tensor(frame), lite.pad_multiple)
        ref = lite.box_stats(xp)
    bufs = tuple(np.empty(r.shape, np.float32) for r in ref)
    got = K.box_stats_u8(frame, lite.cfg.scale, lite.pad_multiple, out=bufs)
    for g, b, r in zip(got, bufs, ref):
        assert g is b
        np.testing.assert_allclose(g, r.numpy(), atol=1e-5, rtol=0)
    # Feeding the kernel's statistics reproduces the model's estimate.
    with torch.no_grad():
        aux_ref, gain_ref = lite.estimate(_to_tensor(frame))
        aux, gain = lite.estimate_from_stats(*(torch.from_numpy(g) for g in got))
    torch.testing.assert_close(gain, gain_ref, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(aux, aux_ref, rtol=1e-4, atol=1e-5)


def test_box_stats_rejects_bad_grid():
    frame = np.zeros((8, 8, 3), np.uint8)
    with pytest.raises(ValueError):
        K.box_stats_u8(frame, 4, 6)
    with pytest.raises(ValueError):
        K.box_stats_u8(frame, 4, 8, out=(np.zeros((1, 3, 2, 2), np.float32),) * 3)


def test_float_conversions_roundtrip_and_channels_last():
    rng = np.random.default_rng(4)
    frame = rng.integers(0, 256, (9, 13, 3), dtype=np.uint8)
    chw = K.u8_to_float_chw(frame)
    np.testing.assert_allclose(chw, frame.transpose(2, 0, 1) / 255.0, atol=1e-7)
    t = torch.empty(1, 3, 9, 13).contiguous(memory_format=torch.channels_last)
    K.u8_to_float_chw(frame, t.numpy())
    np.testing.assert_array_equal(t[0].numpy(), chw)
    np.testing.assert_array_equal(K.float_chw_to_u8(chw), frame)
    np.testing.assert_array_equal(K.float_chw_to_u8(t.numpy()), frame)
    out = np.empty_like(frame)
    wild = np.array([[[-1.0, 0.5, 2.0]]], np.float32).transpose(2, 0, 1)
    assert K.float_chw_to_u8(wild).tolist() == [[[0, 128, 255]]]
    assert K.float_chw_to_u8(chw, out) is out


def test_warmup_compiles_every_kernel():
    from numba.core.registry import CPUDispatcher

    K.warmup()
    # entry points the public functions launch (helpers like _hup_row compile into them)
    kernels = {n: v for n, v in vars(K).items() if isinstance(v, CPUDispatcher) and n.endswith("_kernel")}
    assert len(kernels) == 6
    uncompiled = [n for n, k in kernels.items() if not k.signatures]
    assert not uncompiled, f"warmup left {uncompiled} to compile on the first frame"
