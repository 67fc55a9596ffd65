"""Full-reference and no-reference image-quality metrics for the enhancement tables.

Every metric takes two uint8 ``(H, W, 3)`` RGB arrays ``(out, ref)`` -- the enhanced
image exactly as written to PNG and its ground truth -- at full resolution. The
no-reference entropies accept ``ref`` for a uniform signature and ignore it.

Protocol (see docs/papers.md section 6):

* **PSNR** -- ``skimage.metrics.peak_signal_noise_ratio``, ``data_range=255``, on
  RGB, plain (no rescaling of the output to the ground-truth mean). ``inf`` for
  identical images.
* **SSIM** -- ``skimage.metrics.structural_similarity`` on RGB with
  ``channel_axis=2, data_range=255, gaussian_weights=True, sigma=1.5,
  use_sample_covariance=False`` (the Wang et al. 2004 setting: 11x11 Gaussian window,
  K1=0.01, K2=0.03), averaged over the three channels.
* **FSIM / FSIMc** -- Zhang et al., IEEE TIP 2011: phase congruency (log-Gabor filters,
  4 scales x 4 orientations, Kovesi-style noise compensation) and Scharr gradient
  magnitude on the luma (YIQ ``Y``), pooled with ``max(PC1, PC2)``; FSIMc also uses the
  ``I``/``Q`` chroma similarity. Like the authors' reference code the images are first
  box-filtered and down-sampled by ``F = max(1, round(min(H, W) / 256))``.
* **UQI** -- Wang & Bovik, IEEE SPL 2002: ``Q`` in every 8x8 window (stride 1), averaged
  over windows, per channel, then averaged over R, G, B.
* **Angular error** -- per-pixel angle (degrees) between the output and reference RGB
  vectors, averaged over pixels; pixels where either vector is (near) zero are skipped.
* **Delta E** -- mean CIE76 colour difference (Euclidean distance in CIELAB, D65),
  ``skimage.color.deltaE_cie76`` on ``skimage.color.rgb2lab`` of sRGB inputs.
* **Gray entropy** -- Shannon entropy (bits) of the 256-bin histogram of the output's
  grey image ``round(0.299 R + 0.587 G + 0.114 B)`` (as MATLAB ``rgb2gray``).
* **Colour entropy** -- the mean over R, G, B of each channel's 256-bin entropy (bits).

This module depends on numpy, scipy and scikit-image only (no torch).
"""
from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from functools import lru_cache

import numpy as np
from scipy import ndimage, signal
from skimage.color import deltaE_cie76, rgb2lab
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from models.errors import LowlightError

__all__ = [
    "MetricInputError",
    "METRICS",
    "ALL_METRICS",
    "HIGHER_IS_BETTER",
    "psnr",
    "ssim",
    "fsim",
    "fsim_fsimc",
    "fsimc",
    "uqi",
    "angular_error",
    "delta_e",
    "gray_entropy",
    "color_entropy",
    "phase_congruency",
    "compute_all",
]

#: SSIM settings (Wang et al. 2004), passed to ``skimage.metrics.structural_similarity``.
SSIM_SETTINGS = {"gaussian_weights": True, "sigma": 1.5, "use_sample_covariance": False, "data_range": 255}
#: UQI window side (Wang & Bovik 2002).
UQI_BLOCK = 8
#: pixels whose RGB vector is shorter than this (in 0..255 units) are skipped by the angular error.
ANGULAR_EPS = 1e-6


class MetricInputError(LowlightError, ValueError):
    """The arrays given to a metric are not uint8 (H, W, 3) images of the same shape."""


def _check_image(img: np.ndarray, what: str) -> None:
    if not isinstance(img, np.ndarray):
        raise MetricInputError(f"{what} must be a numpy array, got {type(img).__name__}")
    if img.dtype != np.uint8:
        raise MetricInputError(f"{what} must be uint8 (as written to PNG), got {img.dtype}")
    if img.ndim != 3 or img.shape[2] != 3:
        raise MetricInputError(f"{what} must be an (H, W, 3) RGB array, got shape {img.shape}")


def _check_pair(out: np.ndarray, ref: np.ndarray) -> None:
    _check_image(out, "out")
    _check_image(ref, "ref")
    if out.shape != ref.shape:
        raise MetricInputError(f"out {out.shape} and ref {ref.shape} differ in shape")


# --------------------------------------------------------------------------- library-backed


def psnr(out: np.ndarray, ref: np.ndarray) -> float:
    """Plain PSNR in dB over all pixels and channels (``data_range=255``).

    Raises:
        MetricInputError: the arrays are not same-shaped uint8 RGB images.
    """
    _check_pair(out, ref)
    if np.array_equal(out, ref):
        return math.inf
    return float(peak_signal_noise_ratio(ref, out, data_range=255))


def ssim(out: np.ndarray, ref: np.ndarray) -> float:
    """Mean SSIM over R, G, B with the Wang et al. settings (see ``SSIM_SETTINGS``).

    Raises:
        MetricInputError: not same-shaped uint8 RGB images, or smaller than the 11x11 window.
    """
    _check_pair(out, ref)
    if min(out.shape[:2]) < 11:
        raise MetricInputError(f"SSIM needs images of at least 11x11 pixels, got {out.shape[:2]}")
    return float(structural_similarity(ref, out, channel_axis=2, **SSIM_SETTINGS))


def delta_e(out: np.ndarray, ref: np.ndarray) -> float:
    """Mean CIE76 colour difference (L*a*b*, D65) between two sRGB images.

    Raises:
        MetricInputError: the arrays are not same-shaped uint8 RGB images.
    """
    _check_pair(out, ref)
    return float(np.mean(deltaE_cie76(rgb2lab(out), rgb2lab(ref))))


# --------------------------------------------------------------------------- no-reference


def _entropy_bits(values: np.ndarray) -> float:
    counts = np.bincount(values.ravel(), minlength=256).astype(np.float64)
    p = counts[counts > 0] / counts.sum()
    return float(-(p * np.log2(p)).sum())


def _gray(img: np.ndarray) -> np.ndarray:
    rgb = img.astype(np.float64)
    y = 0.299 * rgb[..., 0] + 0.587 * rgb[..., 1] + 0.114 * rgb[..., 2]
    return np.clip(np.rint(y), 0, 255).astype(np.uint8)


def gray_entropy(out: np.ndarray, ref: np.ndarray | None = None) -> float:
    """Shannon entropy (bits) of the 256-bin grey-level histogram of ``out``; ``ref`` is ignored.

    Raises:
        MetricInputError: ``out`` is not a uint8 RGB image.
    """
    _check_image(out, "out")
    return _entropy_bits(_gray(out))


def color_entropy(out: np.ndarray, ref: np.ndarray | None = None) -> float:
    """Mean over R, G, B of the per-channel 256-bin Shannon entropy (bits); ``ref`` is ignored.

    Raises:
        MetricInputError: ``out`` is not a uint8 RGB image.
    """
    _check_image(out, "out")
    return float(np.mean([_entropy_bits(out[..., c]) for c in range(3)]))


# --------------------------------------------------------------------------- hand-written


def angular_error(out: np.ndarray, ref: np.ndarray) -> float:
    """Mean per-pixel angle (degrees) between the RGB vectors of ``out`` and ``ref``.

    Pixels where either vector has norm below ``ANGULAR_EPS`` (black) carry no hue and
    are skipped. Returns ``nan`` when no pixel is left.

    Raises:
        MetricInputError: the arrays are not same-shaped uint8 RGB images.
    """
    _check_pair(out, ref)
    a = out.reshape(-1, 3).astype(np.float64)
    b = ref.reshape(-1, 3).astype(np.float64)
    na = np.linalg.norm(a, axis=1)
    nb = np.linalg.norm(b, axis=1)
    keep = (na > ANGULAR_EPS) & (nb > ANGULAR_EPS)
    if not keep.any():
        return math.nan
    cos = np.einsum("ij,ij->i", a[keep], b[keep]) / (na[keep] * nb[keep])
    return float(np.degrees(np.arccos(np.clip(cos, -1.0, 1.0))).mean())


def _window_sums(x: np.ndarray, k: int) -> np.ndarray:
    """Sums of ``x`` over every k x k window (stride 1, 'valid'), via an integral image."""
    c = np.zeros((x.shape[0] + 1, x.shape[1] + 1), dtype=np.float64)
    np.cumsum(np.cumsum(x, axis=0), axis=1, out=c[1:, 1:])
    return c[k:, k:] - c[:-k, k:] - c[k:, :-k] + c[:-k, :-k]


def _uqi_channel(x: np.ndarray, y: np.ndarray, k: int) -> float:
    x = x.astype(np.float64)
    y = y.astype(np.float64)
    n = float(k * k)
    sx, sy = _window_sums(x, k), _window_sums(y, k)
    sxx, syy, sxy = _window_sums(x * x, k), _window_sums(y * y, k), _window_sums(x * y, k)
    # All of these are integers below 2**53 for uint8 input, so the zero tests are exact.
    mean_term = sx * sx + sy * sy  # ~ n^2 (mu_x^2 + mu_y^2)
    var_term = n * (sxx + syy) - mean_term  # ~ n^2 (sigma_x^2 + sigma_y^2)
    cov_term = n * sxy - sx * sy  # ~ n^2 sigma_xy
    q = np.ones_like(mean_term)  # both windows black: identical
    flat = (var_term == 0) & (mean_term != 0)  # both windows flat: luminance term only
    q[flat] = 2.0 * sx[flat] * sy[flat] / mean_term[flat]
    den = var_term * mean_term
    ok = den != 0
    q[ok] = 4.0 * cov_term[ok] * sx[ok] * sy[ok] / den[ok]
    return float(q.mean())


def uqi(out: np.ndarray, ref: np.ndarray, block: int = UQI_BLOCK) -> float:
    """Universal Quality Index (Wang & Bovik 2002), mean over R, G, B.

    ``Q = 4 s_xy m_x m_y / ((s_x^2 + s_y^2)(m_x^2 + m_y^2))`` in every ``block`` x
    ``block`` window (stride 1), averaged. Windows where both images are flat get the
    luminance term ``2 m_x m_y / (m_x^2 + m_y^2)``; windows black in both get 1.

    Raises:
        MetricInputError: not same-shaped uint8 RGB images, or smaller than one window.
    """
    _check_pair(out, ref)
    if min(out.shape[:2]) < block:
        raise MetricInputError(f"UQI needs images of at least {block}x{block} pixels, got {out.shape[:2]}")
    return float(np.mean([_uqi_channel(out[..., c], ref[..., c], block) for c in range(3)]))


# ----- FSIM


def _freq_grid(n: int) -> np.ndarray:
    """Frequencies in [-0.5, 0.5] in FFT order, normalised like the reference code (odd n: by n - 1)."""
    f = np.fft.fftfreq(n) * n
    return f / (n if n % 2 == 0 else n - 1)


@lru_cache(maxsize=8)
def _pc_filters(rows: int, cols: int, nscale: int, norient: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Log-Gabor filter bank (norient, nscale, rows, cols), per-orientation EM_n, and noise sums.

    The third array holds, per orientation, ``sum(sum_s f_s^2)`` and ``sum(sum_{i<j} f_i f_j)``
    of the spatial filters (used to turn the noise power into an energy threshold).
    """
    min_wavelength, mult, sigma_on_f, d_theta_on_sigma = 6.0, 2.0, 0.55, 1.2
    theta_sigma = np.pi / norient / d_theta_on_sigma
    x = _freq_grid(cols)[None, :]
    y = _freq_grid(rows)[:, None]
    radius = np.sqrt(x * x + y * y)
    radius[0, 0] = 1.0  # avoid log(0); the DC term of every filter is zeroed below
    theta = np.arctan2(-y, x)
    sin_t, cos_t = np.sin(theta), np.cos(theta)
    lowpass = 1.0 / (1.0 + (radius / 0.45) ** (2 * 15))  # Butterworth, cut-off 0.45, order 15
    radial = []
    for s in range(nscale):
        fo = 1.0 / (min_wavelength * mult**s)
        g = np.exp(-(np.log(radius / fo) ** 2) / (2 * math.log(sigma_on_f) ** 2)) * lowpass
        g[0, 0] = 0.0
        radial.append(g)
    bank = np.empty((norient, nscale, rows, cols))
    em_n = np.empty(norient)
    noise_sums = np.empty((norient, 2))
    for o in range(norient):
        angle = o * np.pi / norient
        ds = sin_t * math.cos(angle) - cos_t * math.sin(angle)
        dc = cos_t * math.cos(angle) + sin_t * math.sin(angle)
        spread = np.exp(-(np.arctan2(ds, dc) ** 2) / (2 * theta_sigma**2))
        for s in range(nscale):
            bank[o, s] = radial[s] * spread
        em_n[o] = float((bank[o, 0] ** 2).sum())
        spatial = np.fft.ifft2(bank[o]).real * math.sqrt(rows * cols)
        sum_sq = float((spatial**2).sum())
        total = spatial.sum(axis=0)
        cross = 0.5 * (float((total**2).sum()) - sum_sq)  # sum over i < j of f_i * f_j
        noise_sums[o] = (sum_sq, cross)
    for arr in (bank, em_n, noise_sums):
        arr.setflags(write=False)
    return bank, em_n, noise_sums


def phase_congruency(img: np.ndarray, nscale: int = 4, norient: int = 4) -> np.ndarray:
    """Phase congruency map (Kovesi 1999/2003) of a grey image, as used by FSIM.

    Log-Gabor filters (smallest wavelength 6 px, scale factor 2, sigma_on_f 0.55, angular
    spread pi / norient / 1.2) are applied in the frequency domain; the noise threshold per
    orientation is estimated from the median response at the smallest scale (k = 2, divided
    by 1.7 as in the FSIM reference code).

    Args:
        img: 2-D float array.
        nscale: number of filter scales.
        norient: number of filter orientations.

    Returns:
        Array of ``img``'s shape, values in [0, 1] (0 where there is no filter response).

    Raises:
        ValueError: ``img`` is not 2-D.
    """
    if img.ndim != 2:
        raise ValueError(f"phase_congruency needs a 2-D image, got shape {img.shape}")
    rows, cols = img.shape
    bank, em_n, noise_sums = _pc_filters(rows, cols, nscale, norient)
    spectrum = np.fft.fft2(img.astype(np.float64))
    k, epsilon = 2.0, 1e-4
    energy_all = np.zeros((rows, cols))
    an_all = np.zeros((rows, cols))
    for o in range(norient):
        eo = np.fft.ifft2(spectrum[None] * bank[o], axes=(-2, -1))  # (nscale, rows, cols)
        even, odd = eo.real, eo.imag
        amp = np.abs(eo)
        sum_e, sum_o = even.sum(axis=0), odd.sum(axis=0)
        x_energy = np.sqrt(sum_e**2 + sum_o**2) + epsilon
        mean_e, mean_o = sum_e / x_energy, sum_o / x_energy
        energy = (even * mean_e + odd * mean_o - np.abs(even * mean_o - odd * mean_e)).sum(axis=0)
        # Noise: the smallest scale's squared amplitude is Rayleigh-distributed in pure noise.
        mean_e2n = -float(np.median(amp[0] ** 2)) / math.log(0.5)
        noise_power = mean_e2n / em_n[o]
        est_energy2 = 2 * noise_power * noise_sums[o, 0] + 4 * noise_power * noise_sums[o, 1]
        tau = math.sqrt(est_energy2 / 2)
        threshold = (tau * math.sqrt(math.pi / 2) + k * math.sqrt((2 - math.pi / 2) * tau**2)) / 1.7
        energy_all += np.maximum(energy - threshold, 0.0)
        an_all += amp.sum(axis=0)
    pc = np.zeros_like(energy_all)
    np.divide(energy_all, an_all, out=pc, where=an_all > 0)
    return pc


def _downsample(ch: np.ndarray, f: int) -> np.ndarray:
    """F x F box filter (zero-padded, MATLAB ``conv2(..., 'same')`` alignment), then every F-th pixel."""
    if f == 1:
        return ch
    full = signal.convolve2d(ch, np.full((f, f), 1.0 / (f * f)), mode="full")
    c = f // 2
    same = full[c : c + ch.shape[0], c : c + ch.shape[1]]
    return same[::f, ::f]


_SCHARR_X = np.array([[3, 0, -3], [10, 0, -10], [3, 0, -3]], dtype=np.float64) / 16.0
_SCHARR_Y = _SCHARR_X.T.copy()


def _gradient_magnitude(y: np.ndarray) -> np.ndarray:
    gx = ndimage.convolve(y, _SCHARR_X, mode="constant", cval=0.0)
    gy = ndimage.convolve(y, _SCHARR_Y, mode="constant", cval=0.0)
    return np.sqrt(gx * gx + gy * gy)


def _yiq(img: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    r, g, b = (img[..., c].astype(np.float64) for c in range(3))
    y = 0.299 * r + 0.587 * g + 0.114 * b
    i = 0.596 * r - 0.274 * g - 0.322 * b
    q = 0.211 * r - 0.523 * g + 0.312 * b
    return y, i, q


def fsim_fsimc(out: np.ndarray, ref: np.ndarray) -> tuple[float, float]:
    """FSIM and FSIMc (Zhang, Zhang, Mou & Zhang, IEEE TIP 2011) of ``out`` against ``ref``.

    Both images are converted to YIQ, box-filtered and down-sampled by
    ``F = max(1, round(min(H, W) / 256))``; phase congruency and Scharr gradient magnitude
    of Y are compared with ``T1 = 0.85``, ``T2 = 160``, chroma with ``T3 = T4 = 200`` and
    ``lambda = 0.03``, and the similarity map is pooled with weights ``max(PC1, PC2)``.
    If neither image has any phase-congruent structure (all weights zero) the map is
    averaged with uniform weights instead.

    Raises:
        MetricInputError: the arrays are not same-shaped uint8 RGB images.
    """
    _check_pair(out, ref)
    f = max(1, round(min(out.shape[:2]) / 256))
    y1, i1, q1 = (_downsample(c, f) for c in _yiq(ref))
    y2, i2, q2 = (_downsample(c, f) for c in _yiq(out))
    pc1, pc2 = phase_congruency(y1), phase_congruency(y2)
    g1, g2 = _gradient_magnitude(y1), _gradient_magnitude(y2)
    t1, t2, t3, t4, lam = 0.85, 160.0, 200.0, 200.0, 0.03
    s_pc = (2 * pc1 * pc2 + t1) / (pc1**2 + pc2**2 + t1)
    s_g = (2 * g1 * g2 + t2) / (g1**2 + g2**2 + t2)
    s_i = (2 * i1 * i2 + t3) / (i1**2 + i2**2 + t3)
    s_q = (2 * q1 * q2 + t4) / (q1**2 + q2**2 + t4)
    # The reference code takes real((S_I S_Q)^lambda): a negative base gives a complex power.
    chroma = np.real(np.power((s_i * s_q).astype(np.complex128), lam))
    weight = np.maximum(pc1, pc2)
    if weight.sum() <= 0:
        weight = np.ones_like(weight)
    s_l = s_pc * s_g
    return float((s_l * weight).sum() / weight.sum()), float((s_l * chroma * weight).sum() / weight.sum())


def fsim(out: np.ndarray, ref: np.ndarray) -> float:
    """FSIM (luma only); see :func:`fsim_fsimc`.

    Raises:
        MetricInputError: the arrays are not same-shaped uint8 RGB images.
    """
    return fsim_fsimc(out, ref)[0]


def fsimc(out: np.ndarray, ref: np.ndarray) -> float:
    """FSIMc (luma + YIQ chroma); see :func:`fsim_fsimc`.

    Raises:
        MetricInputError: the arrays are not same-shaped uint8 RGB images.
    """
    return fsim_fsimc(out, ref)[1]


# --------------------------------------------------------------------------- registry

#: name -> function(out, ref) -> float, in table order.
METRICS: dict[str, Callable[[np.ndarray, np.ndarray], float]] = {
    "psnr": psnr,
    "ssim": ssim,
    "fsim": fsim,
    "fsimc": fsimc,
    "uqi": uqi,
    "angular_error": angular_error,
    "delta_e": delta_e,
    "gray_entropy": gray_entropy,
    "color_entropy": color_entropy,
}
ALL_METRICS: tuple[str, ...] = tuple(METRICS)
#: direction of each metric (None: no-reference, neither direction is "better").
HIGHER_IS_BETTER: dict[str, bool | None] = {
    "psnr": True,
    "ssim": True,
    "fsim": True,
    "fsimc": True,
    "uqi": True,
    "angular_error": False,
    "delta_e": False,
    "gray_entropy": None,
    "color_entropy": None,
    "lpips": False,
}


def compute_all(out: np.ndarray, ref: np.ndarray, names: Iterable[str] | None = None) -> dict[str, float]:
    """Compute several metrics of ``out`` against ``ref``.

    Args:
        out: enhanced image, uint8 (H, W, 3) RGB.
        ref: ground truth, same shape and dtype.
        names: metric names (keys of ``METRICS``); all of them when None. FSIM and FSIMc
            share one computation when both are asked for.

    Returns:
        ``{name: value}`` in the order given.

    Raises:
        MetricInputError: bad arrays.
        KeyError: an unknown metric name.
    """
    _check_pair(out, ref)
    wanted = list(ALL_METRICS if names is None else names)
    unknown = [n for n in wanted if n not in METRICS]
    if unknown:
        raise KeyError(f"unknown metric(s) {unknown}; known: {', '.join(METRICS)}")
    result: dict[str, float] = {}
    if "fsim" in wanted and "fsimc" in wanted:
        result["fsim"], result["fsimc"] = fsim_fsimc(out, ref)
    for name in wanted:
        if name not in result:
            result[name] = METRICS[name](out, ref)
    return {name: result[name] for name in wanted}
