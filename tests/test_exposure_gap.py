"""research/exposure_gap.py: its BLNet probes (the gate, the guide at any gamma) match the
model, and its post-processing levers: chroma blur keeps the luma, sharpening keeps the
chroma and adds contrast only at edges."""
from __future__ import annotations

import functools
import importlib.util
from pathlib import Path

import cv2
import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]


@functools.cache
def _module():
    spec = importlib.util.spec_from_file_location("exposure_gap", ROOT / "research" / "exposure_gap.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _ycc_filter():
    return _module()._ycc_filter


def _small_blnet(**kw):
    from models import create_model

    cfg = {"decom_widths": (8, 16, 16), "enhance_widths": (8, 16, 16), "enhance_global": False, "retinex_skip": False, "detail_gamma": 0.0}
    return create_model("blnet", {**cfg, **kw}).eval()


def test_decompose_gated_returns_the_models_decomposition_and_the_gate_it_mixed_with():
    """Its R and I are the model's ``decompose``'s exactly; its gate is sigmoid of the head's
    GATE_CHANNEL (shifting that bias by d shifts its logit by d, what --gate-offset relies
    on); without the skip the gate is None."""
    decompose_gated = _module().decompose_gated
    torch.manual_seed(1)
    m = _small_blnet(retinex_skip=True)
    s = torch.rand(1, 3, 16, 16)
    with torch.no_grad():
        r, i, gate = decompose_gated(m, s)
        r_m, i_m = m.decompose(s)
        assert torch.equal(r, r_m) and torch.equal(i, i_m) and gate.shape == (1, 1, 16, 16)
        m.decom.head.bias[m.GATE_CHANNEL] += 1.5
        _, _, shifted = decompose_gated(m, s)
        m.decom.head.bias[m.GATE_CHANNEL] = 30.0  # open: R is R0
        m.decom.head.weight[m.GATE_CHANNEL] = 0.0
        r_open, _, _ = decompose_gated(m, s)
    torch.testing.assert_close(torch.logit(shifted), torch.logit(gate) + 1.5, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(r_open, s / (s.amax(dim=1, keepdim=True) + m.cfg.retinex_eps))
    plain = _small_blnet()
    with torch.no_grad():
        r_p, i_p, none = decompose_gated(plain, s)
    assert none is None and torch.equal(r_p, plain.decompose(s)[0]) and torch.equal(i_p, plain.decompose(s)[1])


def test_detail_guide_at_the_models_gamma_is_the_models_guide():
    detail_guide = _module().detail_guide
    m = _small_blnet(detail_gamma=0.5)
    i = torch.rand(1, 1, 8, 8)
    assert torch.equal(detail_guide(m, i, 0.5), m.detail_guide(i))
    torch.testing.assert_close(detail_guide(m, i, 1.0), i + m.DETAIL_EPS)


def _luma(rgb: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(rgb, cv2.COLOR_RGB2YCrCb)[..., 0].astype(np.float32)


def test_chroma_blur_keeps_luma_and_flattens_colour_noise():
    rng = np.random.default_rng(0)
    img = np.full((48, 64, 3), 128, np.uint8)
    img[:, 32:] = (200, 60, 40)  # a colour edge
    noisy = np.clip(img.astype(np.int16) + rng.integers(-20, 21, img.shape), 0, 255).astype(np.uint8)
    out = _ycc_filter()(noisy, chroma_sigma=3.0)
    assert np.abs(_luma(out) - _luma(noisy)).mean() < 1.5  # only rounding and clipping
    chroma = lambda a: cv2.cvtColor(a, cv2.COLOR_RGB2YCrCb)[8:-8, 4:24, 1:].astype(np.float32)
    assert chroma(out).std() < 0.5 * chroma(noisy).std()


def test_sharpen_is_identity_on_flat_frames_and_steepens_edges():
    flat = np.full((32, 32, 3), (90, 120, 150), np.uint8)
    f = _ycc_filter()
    assert np.abs(f(flat, sharpen=(1.0, 0.6)).astype(int) - f(flat).astype(int)).max() <= 1
    step = np.zeros((32, 32, 3), np.uint8)
    step[:, 16:] = 200
    step = cv2.GaussianBlur(step, (0, 0), 1.5)
    y0, y1 = _luma(step), _luma(f(step, sharpen=(1.0, 0.6)))
    assert np.abs(np.diff(y1, axis=1)).max() > np.abs(np.diff(y0, axis=1)).max() + 2
