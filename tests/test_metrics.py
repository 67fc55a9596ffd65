"""training.metrics agrees with known values and behaves monotonically where it should."""
from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import ndimage
from skimage.color import deltaE_cie76, rgb2lab

from training import metrics as M


def _structured(h: int = 96, w: int = 128, seed: int = 0) -> np.ndarray:
    """A deterministic RGB test image with edges, lines, a ramp and some texture."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    base = 60 + 80 * (xx / w) + 30 * np.sin(xx / 5.0) * (yy > h / 2)
    base[h // 5 : h // 2, w // 6 : w // 2] += 70  # a bright rectangle
    base[:, (w * 3) // 4 :: 9] -= 40  # thin dark lines
    base += ndimage.gaussian_filter(rng.normal(0, 25, (h, w)), 1.5)
    img = np.stack([base, 0.8 * base + 20 * np.cos(yy / 7.0), 1.1 * base - 15], axis=2)
    return np.clip(np.rint(img), 0, 255).astype(np.uint8)


def _add_noise(img: np.ndarray, sigma: float, seed: int = 1) -> np.ndarray:
    noise = np.random.default_rng(seed).normal(0, 1, img.shape)  # same pattern, scaled
    return np.clip(np.rint(img + sigma * noise), 0, 255).astype(np.uint8)


def _blur(img: np.ndarray, sigma: float) -> np.ndarray:
    if sigma == 0:
        return img
    out = ndimage.gaussian_filter(img.astype(np.float64), sigma=(sigma, sigma, 0), mode="reflect")
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


# --------------------------------------------------------------------------- PSNR / SSIM


def test_psnr_of_constant_offset_is_analytic():
    ref = np.random.default_rng(0).integers(20, 200, (24, 32, 3)).astype(np.uint8)
    out = ref + np.uint8(10)
    assert M.psnr(out, ref) == pytest.approx(20 * math.log10(255 / 10), abs=1e-9)


def test_psnr_identical_is_inf():
    img = _structured(32, 32)
    assert M.psnr(img, img) == math.inf


def test_ssim_identical_is_one_and_drops_with_noise():
    img = _structured()
    assert M.ssim(img, img) == pytest.approx(1.0, abs=1e-12)
    assert M.ssim(_add_noise(img, 20), img) < M.ssim(_add_noise(img, 5), img) < 1.0


def test_ssim_rejects_images_smaller_than_the_window():
    img = np.zeros((8, 20, 3), np.uint8)
    with pytest.raises(M.MetricInputError):
        M.ssim(img, img)


# --------------------------------------------------------------------------- UQI


def _uqi_by_definition(x: np.ndarray, y: np.ndarray, k: int = 8) -> float:
    qs = []
    for i in range(x.shape[0] - k + 1):
        for j in range(x.shape[1] - k + 1):
            a = x[i : i + k, j : j + k].astype(np.float64).ravel()
            b = y[i : i + k, j : j + k].astype(np.float64).ravel()
            cov = np.mean((a - a.mean()) * (b - b.mean()))
            qs.append(4 * cov * a.mean() * b.mean() / ((a.var() + b.var()) * (a.mean() ** 2 + b.mean() ** 2)))
    return float(np.mean(qs))


def test_uqi_identical_is_one():
    img = _structured(40, 48)
    assert M.uqi(img, img) == pytest.approx(1.0, abs=1e-12)


def test_uqi_constant_shift_single_window_matches_hand_formula():
    rng = np.random.default_rng(3)
    x = rng.integers(30, 120, (8, 8, 3)).astype(np.uint8)
    c = 40
    y = x + np.uint8(c)
    # shift: sigma_xy = sigma_x^2 = sigma_y^2, so Q = 2 mx my / (mx^2 + my^2) per channel
    expected = []
    for ch in range(3):
        mx = x[..., ch].astype(np.float64).mean()
        my = mx + c
        expected.append(2 * mx * my / (mx**2 + my**2))
    assert M.uqi(y, x) == pytest.approx(np.mean(expected), rel=1e-12)


def test_uqi_sliding_windows_match_definition():
    rng = np.random.default_rng(4)
    x = rng.integers(0, 256, (11, 13, 3)).astype(np.uint8)
    y = np.clip(x.astype(int) // 2 + rng.integers(0, 60, x.shape), 0, 255).astype(np.uint8)
    expected = np.mean([_uqi_by_definition(x[..., c], y[..., c]) for c in range(3)])
    assert M.uqi(x, y) == pytest.approx(expected, rel=1e-10)


def test_uqi_flat_windows_use_the_luminance_term():
    a = np.full((10, 10, 3), 50, np.uint8)
    b = np.full((10, 10, 3), 100, np.uint8)
    assert M.uqi(a, b) == pytest.approx(2 * 50 * 100 / (50**2 + 100**2), rel=1e-12)
    assert M.uqi(np.zeros_like(a), np.zeros_like(a)) == 1.0


# --------------------------------------------------------------------------- angular error


def test_angular_error_of_known_hue_rotation():
    out = np.zeros((6, 7, 3), np.uint8)
    out[..., 0] = 200
    ref = np.zeros_like(out)
    ref[..., :2] = 90
    assert M.angular_error(out, ref) == pytest.approx(45.0, abs=1e-9)
    assert M.angular_error(ref, ref) == pytest.approx(0.0, abs=1e-6)
    # pure red vs pure green: orthogonal
    green = np.zeros_like(out)
    green[..., 1] = 255
    assert M.angular_error(out, green) == pytest.approx(90.0, abs=1e-9)


def test_angular_error_skips_black_pixels():
    out = np.zeros((4, 4, 3), np.uint8)
    out[..., 0] = 255
    ref = np.zeros_like(out)
    ref[..., :2] = 255
    out[:2] = 0  # half the pixels black in out: skipped, not counted as 0 or 90 degrees
    ref[3, 3] = 0
    assert M.angular_error(out, ref) == pytest.approx(45.0, abs=1e-9)
    assert math.isnan(M.angular_error(np.zeros_like(out), ref))


# --------------------------------------------------------------------------- entropies


def test_entropy_of_two_level_image_is_one_bit():
    img = np.zeros((16, 16, 3), np.uint8)
    img[:8] = 255
    assert M.gray_entropy(img) == pytest.approx(1.0)
    assert M.color_entropy(img) == pytest.approx(1.0)


def test_entropy_of_uniform_256_levels_is_eight_bits():
    levels = np.arange(256, dtype=np.uint8).reshape(16, 16)
    img = np.repeat(levels[..., None], 3, axis=2)
    assert M.gray_entropy(img) == pytest.approx(8.0)
    assert M.color_entropy(img) == pytest.approx(8.0)


def test_color_entropy_is_mean_of_channel_entropies():
    img = np.zeros((16, 16, 3), np.uint8)
    img[..., 0] = np.arange(256, dtype=np.uint8).reshape(16, 16)  # 8 bits
    img[8:, :, 1] = 7  # 1 bit
    img[..., 2] = 99  # 0 bits
    assert M.color_entropy(img) == pytest.approx((8 + 1 + 0) / 3)
    # and the reference image is ignored
    assert M.gray_entropy(img, np.zeros_like(img)) == M.gray_entropy(img)


# --------------------------------------------------------------------------- delta E


def test_delta_e_identical_is_zero():
    img = _structured(20, 24)
    assert M.delta_e(img, img) == pytest.approx(0.0, abs=1e-12)


def test_delta_e_of_two_known_colours_matches_skimage():
    red = np.zeros((3, 5, 3), np.uint8)
    red[..., 0] = 255
    blue = np.zeros_like(red)
    blue[..., 2] = 255
    expected = float(deltaE_cie76(rgb2lab(red[:1, :1]), rgb2lab(blue[:1, :1]))[0, 0])
    assert M.delta_e(red, blue) == pytest.approx(expected, rel=1e-12)
    assert expected == pytest.approx(176.3, abs=0.5)  # sRGB red vs blue in CIELAB (D65)


# --------------------------------------------------------------------------- FSIM


def test_fsim_identical_is_one():
    img = _structured()
    f, fc = M.fsim_fsimc(img, img)
    assert f == pytest.approx(1.0, abs=1e-12)
    assert fc == pytest.approx(1.0, abs=1e-12)


def test_fsim_decreases_monotonically_with_noise():
    img = _structured()
    scores = [M.fsim_fsimc(_add_noise(img, s), img) for s in (0, 4, 10, 25, 50)]
    for (f_a, fc_a), (f_b, fc_b) in zip(scores, scores[1:]):
        assert f_b < f_a
        assert fc_b < fc_a
    assert scores[-1][0] < 0.95


def test_fsim_decreases_monotonically_with_blur():
    img = _structured()
    scores = [M.fsim(_blur(img, s), img) for s in (0, 0.7, 1.5, 3.0)]
    assert all(b < a for a, b in zip(scores, scores[1:])), scores


def test_fsim_downsamples_large_images():
    # min side 400 -> F = 2 (exercises the down-sampling path); identical still scores 1
    img = _structured(400, 420, seed=2)
    assert M.fsim(img, img) == pytest.approx(1.0, abs=1e-12)
    assert M.fsim(_add_noise(img, 20), img) < 1.0


def test_downsample_is_block_mean_for_f2():
    x = np.arange(24, dtype=np.float64).reshape(4, 6)
    expected = x.reshape(2, 2, 3, 2).mean(axis=(1, 3))
    np.testing.assert_allclose(M._downsample(x, 2), expected)


def test_phase_congruency_marks_edges_not_flat_regions():
    # PC is amplitude-normalised: a little noise lets the noise threshold silence flat areas
    img = np.zeros((64, 128))
    img[:, 64:] = 200.0
    img += np.random.default_rng(0).normal(0, 2, img.shape)
    pc = M.phase_congruency(img)
    assert pc.shape == img.shape
    assert pc.min() >= 0.0 and pc.max() <= 1.0
    assert pc[:, 63:65].mean() > 0.6
    assert pc[:, 20:44].mean() < 0.05
    assert not M.phase_congruency(np.full((32, 32), 77.0)).any()


# --------------------------------------------------------------------------- API


def test_compute_all_returns_every_metric_in_order():
    img = _structured(48, 64)
    out = _add_noise(img, 8)
    res = M.compute_all(out, img)
    assert list(res) == list(M.ALL_METRICS)
    assert res["fsim"] == M.fsim(out, img)
    assert res["uqi"] == M.uqi(out, img)
    assert all(isinstance(v, float) for v in res.values())


def test_compute_all_subset_and_unknown_name():
    img = _structured(32, 32)
    assert list(M.compute_all(img, img, ("ssim", "psnr"))) == ["ssim", "psnr"]
    with pytest.raises(KeyError):
        M.compute_all(img, img, ("psnr", "nope"))


@pytest.mark.parametrize(
    "out, ref",
    [
        (np.zeros((16, 16, 3), np.float32), np.zeros((16, 16, 3), np.uint8)),  # not uint8
        (np.zeros((16, 16), np.uint8), np.zeros((16, 16), np.uint8)),  # not RGB
        (np.zeros((16, 16, 3), np.uint8), np.zeros((16, 17, 3), np.uint8)),  # shapes differ
    ],
)
def test_bad_inputs_raise_typed_error(out, ref):
    with pytest.raises(M.MetricInputError) as info:
        M.compute_all(out, ref)
    assert isinstance(info.value, ValueError)
