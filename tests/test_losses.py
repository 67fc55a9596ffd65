"""Every loss term against a value computed by hand on a tiny tensor."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from models import NCBCFeatures
from training import losses as L
from training.data import SyntheticConfig, synthesize_dark


def full(v, c=3, h=2, w=2):
    return torch.full((1, c, h, w), float(v))


def test_recon_loss_by_hand():
    r_low, i_low, s_low = full(0.5), full(0.4, 1), full(0.1)
    r_high, i_high, s_high = full(1.0), full(0.8, 1), full(0.9)
    # |0.5*0.4-0.1| + |1*0.8-0.9| + 0.001*|1*0.4-0.1| + 0.001*|0.5*0.8-0.9|
    expected = 0.1 + 0.1 + 0.001 * 0.3 + 0.001 * 0.5
    assert L.recon_loss(r_low, i_low, r_high, i_high, s_low, s_high).item() == pytest.approx(expected, abs=1e-6)


def test_smooth_loss_by_hand():
    i = torch.tensor([[[[0.0, 1.0], [0.0, 1.0]]]])
    r_flat = full(0.5)
    assert L.smooth_loss(i, r_flat).item() == pytest.approx(1.0)  # |grad_h I| = 1, weight exp(0)
    r_edge = torch.tensor([[0.2, 0.3], [0.2, 0.3]]).expand(1, 3, 2, 2)  # gray R, |grad_h R| = 0.1
    assert L.smooth_loss(i, r_edge).item() == pytest.approx(math.exp(-1.0), rel=1e-5)
    i_v = torch.tensor([[[[0.0, 0.0], [0.5, 0.5]]]])
    assert L.smooth_loss(i_v, r_flat).item() == pytest.approx(0.5)


def test_decom_loss_combines_with_paper_weights():
    r_low, i_low, s_low = full(0.5), full(0.4, 1), full(0.1)
    r_high, i_high, s_high = full(1.0), full(0.8, 1), full(0.9)
    d = L.decom_loss(r_low, i_low, r_high, i_high, s_low, s_high)
    assert d["smooth"].item() == pytest.approx(0.0)
    assert d["equal"].item() == pytest.approx(0.5)
    assert d["total"].item() == pytest.approx(d["rc"].item() + 0.1 * 0.0 + 0.01 * 0.5, abs=1e-6)


def _phi_numpy(r: np.ndarray) -> np.ndarray:
    """Independent phi: YCbCr rows, then a [1,2,1]x[1,2,1]/16 blur with edge padding."""
    m = np.array([[0.299, 0.587, 0.114], [-0.169, -0.331, 0.5], [0.5, -0.419, -0.081]])
    y = np.einsum("oc,chw->ohw", m, r)
    k = np.array([1.0, 2.0, 1.0]) / 4
    p = np.pad(y, ((0, 0), (1, 1), (1, 1)), mode="edge")
    h = k[0] * p[:, :, :-2] + k[1] * p[:, :, 1:-1] + k[2] * p[:, :, 2:]
    return k[0] * h[:, :-2] + k[1] * h[:, 1:-1] + k[2] * h[:, 2:]


def test_ncbc_loss_by_hand_on_constant_grey():
    phi = NCBCFeatures()
    c = L.ncbc_loss(phi, full(0.2), full(0.5))
    # phi(grey a) = (a, 0, 0): TV 0; L_noise = (0.2-0.5)^2; L_color = |0.2-0.5| / 3
    assert c["tv"].item() == pytest.approx(0.0, abs=1e-7)
    assert c["noise"].item() == pytest.approx(0.09, abs=1e-6)
    assert c["color"].item() == pytest.approx(0.1, abs=1e-6)
    assert c["total"].item() == pytest.approx(0.2 * 0.09 + 0.1 * 0.1, abs=1e-6)


def test_ncbc_tv_matches_independent_phi():
    g = torch.Generator().manual_seed(3)
    r = torch.rand(1, 3, 5, 6, generator=g)
    f = _phi_numpy(r[0].double().numpy())
    tv = np.mean(np.diff(f, axis=2) ** 2) + np.mean(np.diff(f, axis=1) ** 2)
    c = L.ncbc_loss(NCBCFeatures(), r, r)
    assert c["tv"].item() == pytest.approx(tv, rel=1e-4)
    assert c["color"].item() == pytest.approx(0.0)
    assert c["noise"].item() == pytest.approx(0.05 * tv, rel=1e-4)


def test_phi_has_no_parameters():
    assert list(NCBCFeatures().parameters()) == []


def test_enhance_loss_by_hand():
    r_low, l_out, s_high, i_high = full(0.5), full(0.6, 1), full(0.4), full(0.8, 1)
    e = L.enhance_loss(r_low, l_out, s_high, i_high, perceptual=None, w=L.EnhanceWeights(per=0.0))
    assert e["rc"].item() == pytest.approx(0.1, abs=1e-6)
    assert e["bri"].item() == pytest.approx(0.2, abs=1e-6)
    assert e["grad"].item() == pytest.approx(0.0)
    assert e["total"].item() == pytest.approx(0.3, abs=1e-6)
    s_ramp = torch.tensor([[0.0, 0.2], [0.0, 0.2]]).expand(1, 3, 2, 2)
    e2 = L.enhance_loss(r_low, l_out, s_ramp, i_high, w=L.EnhanceWeights(per=0.0))
    assert e2["grad"].item() == pytest.approx(0.2, abs=1e-6)  # |0 - 0.2| horizontally, 0 vertically


def test_enhance_loss_ssim_term_is_off_by_default_and_adds_its_weight():
    g = torch.Generator().manual_seed(5)
    r_low, s_high = torch.rand(1, 3, 16, 16, generator=g), torch.rand(1, 3, 16, 16, generator=g)
    l_out, i_high = full(0.8, 1, h=16, w=16), full(0.8, 1, h=16, w=16)
    plain = L.enhance_loss(r_low, l_out, s_high, i_high, w=L.EnhanceWeights(per=0.0))
    assert plain["ssim"].item() == 0.0
    with_ssim = L.enhance_loss(r_low, l_out, s_high, i_high, w=L.EnhanceWeights(per=0.0, ssim=0.5))
    expected = 1.0 - L.ssim(r_low * 0.8, s_high).item()
    assert with_ssim["ssim"].item() == pytest.approx(expected, rel=1e-6)
    assert with_ssim["total"].item() == pytest.approx(plain["total"].item() + 0.5 * expected, rel=1e-6)
    same = L.enhance_loss(s_high, full(1.0, 1, h=16, w=16), s_high, i_high, w=L.EnhanceWeights(per=0.0, ssim=0.5))
    assert same["ssim"].item() == pytest.approx(0.0, abs=1e-5)


def test_enhance_loss_refuses_missing_vgg():
    with pytest.raises(L.PerceptualWeightsMissing, match="VGG16"):
        L.enhance_loss(full(0.5), full(0.6, 1), full(0.4), full(0.8, 1), perceptual=None)


def test_perceptual_loss_loads_torchvision_format(tmp_path):
    ref = L.VGG16Features()
    state = {k: v for k, v in ref.state_dict().items() if k.startswith("features.")}
    state["classifier.0.weight"] = torch.zeros(2, 2)  # ignored
    torch.save(state, tmp_path / "vgg16.pth")
    vgg = L.VGG16Features.from_file(tmp_path / "vgg16.pth")
    assert not any(p.requires_grad for p in vgg.parameters())
    per = L.PerceptualLoss(vgg)
    a = torch.rand(1, 3, 16, 16)
    assert per(a, a).item() == 0.0
    assert per(a, 1 - a).item() > 0.0
    with pytest.raises(FileNotFoundError):
        L.VGG16Features.from_file(tmp_path / "missing.pth")


def test_ssim_and_lite_loss():
    a = torch.rand(1, 3, 16, 16)
    assert L.ssim(a, a).item() == pytest.approx(1.0, abs=1e-5)
    assert L.ssim(a, torch.rand(1, 3, 16, 16)).item() < 0.5
    t = L.lite_loss(a, a)
    assert t["total"].item() == pytest.approx(0.0, abs=1e-5)
    t2 = L.lite_loss(full(0.5, h=16, w=16), full(0.7, h=16, w=16))
    assert t2["rc"].item() == pytest.approx(0.2, abs=1e-6)


def test_synthetic_pairs_recover_the_bright_image_without_noise():
    g = torch.Generator().manual_seed(0)
    high = torch.rand(2, 3, 24, 32, generator=g) * 0.8 + 0.1
    cfg = SyntheticConfig(shot=(0.0, 0.0), read=(0.0, 0.0))
    dark, illum = synthesize_dark(high, cfg, g)
    assert dark.mean() < high.mean()
    torch.testing.assert_close(dark / illum, high, atol=2e-3, rtol=1e-3)


def test_synthetic_noise_is_signal_dependent():
    g = torch.Generator().manual_seed(0)
    high = torch.full((1, 3, 64, 64), 0.5)
    cfg = SyntheticConfig(level=(0.2, 0.2), field_spread=0.0, shot=(4e-3, 4e-3), read=(1e-3, 1e-3))
    dark, _ = synthesize_dark(high, cfg, g)
    assert dark.std() > 0.005


def test_synthetic_light_colour_gives_a_three_channel_illumination():
    g = torch.Generator().manual_seed(0)
    high = torch.rand(2, 3, 24, 32, generator=g) * 0.8 + 0.1
    grey = SyntheticConfig(shot=(0.0, 0.0), read=(0.0, 0.0))
    coloured = SyntheticConfig(shot=(0.0, 0.0), read=(0.0, 0.0), level=(0.05, 0.1), cast_spread=0.3)
    assert synthesize_dark(high, grey, g)[1].shape == (2, 1, 24, 32)
    dark, illum = synthesize_dark(high, coloured, g)
    assert illum.shape == (2, 3, 24, 32)
    torch.testing.assert_close(dark / illum, high, atol=2e-3, rtol=1e-3)
    ratio = illum / illum[:, :1]  # the light's colour is one per frame, not per pixel
    torch.testing.assert_close(ratio, ratio[..., :1, :1].expand_as(ratio), atol=0, rtol=1e-4)
    assert (ratio[:, 1:, 0, 0] - 1).abs().max() > 0.01
