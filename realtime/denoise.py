"""Real-time temporal denoising of dark video (CPU and torch/CUDA paths).

Dark video carries fresh sensor noise in every frame; any gain that brightens the
picture multiplies it. Averaging a static scene over time removes it without
touching detail, so the engine denoises the input *before* the enhancement, keeping
the running average in float (the average of many 8-bit frames has sub-level
precision: rounding it back to 8 bits and then multiplying by the gain would draw the
quantisation steps as posterised bands).

The filter is a motion-adaptive recursive average, per pixel, on all three channels
(so luma and chroma alike)::

    S_t = S_{t-1} + k * (X_t - S_{t-1})

* Where the scene is static, ``k`` is the running mean's ``1 / (n + 1)``, ``n`` the
  frames the state holds (counted per pixel), until it reaches
  ``k_min = 1 / (1 + 31 * strength)`` (about ``1 / k_min`` frames averaged: 16.5 at the
  default 0.5); where it moves, ``k`` rises to 1 and ``n`` restarts at ``1 / k``, so a
  moving object replaces the average at once, leaves no ghost, and is averaged again
  from there like a fresh start (a recursive average would still hold much of its
  first frame after a dozen frames).
* Motion is the luma difference ``d = Y(X_t) - Y(S_{t-1})`` measured against the noise
  expected at that brightness: the 5x5 box mean of ``d`` (noise averages down, a moving
  edge does not) and ``d`` itself (a small bright object), each in units of the noise.
* The noise is signal dependent (shot noise grows with brightness): each frame the
  filter measures the median ``|d|`` per brightness band (16 bands), fits
  ``var = a + b * brightness`` and uses it on the next frame, so it needs no calibration
  and follows gain changes of the camera. Motion over most of the frame (a pan) would
  read as noise and let low-contrast detail smear along it: the estimate is capped at
  twice the same fit on the frame's own luma through a 3x3 second-difference mask
  (blind to motion, and to flat areas and ramps, so texture inflates it little), and it
  rises slower than it falls. Codec noise comes in blocks, which a box mean
  does not average down as much as white noise: the measured ratio of the mean ``|d|``
  and of its box mean's replaces the white-noise factor.
* A codec keeps most blocks of a static scene from frame to frame and re-codes a few,
  moving a fifth of their pixels by a level or two: the measured noise then sits at the
  quantisation step, and every re-coded pixel would read as motion and flicker through
  at full gain. The motion test assumes at least ``motion_floor`` (1.5 levels) of noise.

:class:`TemporalDenoiser` works on uint8 HxWx3 frames with numba kernels and OpenCV's
box filter (about 5 ms per 1280x720 frame on one idle core; 10.5 ms of wall time in the
pipeline beside decode and encode, docs/BENCHMARKS.md §9); :class:`TorchTemporalDenoiser`
does the same with tensor ops on (1, 3, H, W) float frames, for the CUDA path (per-band
noise without the line fit, with the same spatial cap, block-noise ratio and motion floor;
tested on CPU tensors only).
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from numba import njit, prange
from torch import Tensor

from .kernels import _KR, _KG, _KB, _check_frame, _frame_rows, _rows  # Rec.601, as models.luminance

__all__ = ["DenoiseConfig", "TemporalDenoiser", "TorchTemporalDenoiser", "noise_model"]

#: Brightness bands of the noise level function (luma 0..255 in bands of 16).
BANDS = 16
#: |d| histogram bins per band: 0.25 levels wide, up to 32 levels.
BINS = 128
_BIN_W = 0.25
#: the noise histogram samples every _HIST_STEP-th row and pixel of large frames, and
#: more sparsely above ~540 rows (about the same number of samples at every size).
_HIST_STEP = 3


def _sample_step(h: int, w: int, base: int, rows: int) -> int:
    """Every ``base``-th row and pixel, every ``min(h, w) // rows``-th on larger frames
    (1 on frames too small to sample)."""
    return 1 if min(h, w) < 64 * base else max(base, min(h, w) // rows)


@dataclass(frozen=True)
class DenoiseConfig:
    #: 0 = off; 1 = strongest (32 frames averaged on a static scene; 16.5 at 0.5).
    strength: float = 0.5
    #: box window (pixels) over which the luma difference is averaged to detect motion.
    window: int = 5
    #: motion ramp of the window mean, in noise units of the mean: k rises from k_min at
    #: ``motion_low`` to 1 at ``motion_high``.
    motion_low: float = 1.0
    motion_high: float = 2.5
    #: the same ramp for a single pixel's difference, in noise units.
    pixel_low: float = 2.5
    pixel_high: float = 4.0
    #: smallest noise std assumed (8-bit levels): the quantisation step.
    min_sigma: float = 0.5
    #: smallest noise std the motion test assumes (8-bit levels). A codec keeps most
    #: blocks of a static scene from frame to frame and re-codes the others with a new
    #: draw of the noise, moving them by a level or two: the frame differences' median is
    #: then 0 and the measured noise sits at ``min_sigma``, so every re-coded block would
    #: read as motion and flicker through at full gain. (With 1.0 the re-coded blocks
    #: still restarted their frame count: on the benchmark's static clips at 40/255 the
    #: denoiser alone kept 0.61 of the input's temporal std, 0.51 with 1.5; §15.)
    motion_floor: float = 1.5

    def __post_init__(self):
        if not 0.0 <= self.strength <= 1.0:
            raise ValueError(f"denoise strength must be in [0, 1], got {self.strength}")
        if self.window < 1 or self.window % 2 == 0:
            raise ValueError(f"denoise window must be a positive odd number, got {self.window}")
        if self.motion_floor < 0.0:
            raise ValueError(f"denoise motion_floor must be >= 0, got {self.motion_floor}")

    @property
    def k_min(self) -> float:
        return 1.0 / (1.0 + 31.0 * self.strength)


# --------------------------------------------------------------------------- kernels


@njit(parallel=True, cache=True, fastmath=True)
def _diff_kernel(frame, state, d):  # pragma: no cover - compiled
    # frame (H, 3W) uint8 rows, state (H, 3W) float32 -> d (H, W) float32: luma difference.
    H = frame.shape[0]
    W = d.shape[1]
    kr, kg, kb = np.float32(_KR), np.float32(_KG), np.float32(_KB)
    for y in prange(H):
        f = frame[y]
        s = state[y]
        dr = d[y]
        t = np.empty(3 * W, np.float32)
        for i in range(3 * W):  # contiguous: vectorises
            t[i] = np.float32(f[i]) - s[i]
        for x in range(W):
            dr[x] = kr * t[3 * x] + kg * t[3 * x + 1] + kb * t[3 * x + 2]


@njit(cache=True, fastmath=True)
def _luma_u8(f, x, kr, kg, kb):  # pragma: no cover - compiled
    return kr * np.float32(f[3 * x]) + kg * np.float32(f[3 * x + 1]) + kb * np.float32(f[3 * x + 2])


@njit(cache=True, fastmath=True)
def _hist_kernel(frame, state, d, hist, hist_s, step):  # pragma: no cover - compiled
    # |d| histogram per brightness band of the state, on every ``step``-th row and pixel
    # (tens of thousands of samples: plenty for a median, a fraction of the cost); and
    # (``hist_s``: spatial, blind to motion) the same for the frame's luma through the
    # 3x3 mask [1 -2 1; -2 4 -2; 1 -2 1], which cancels flat areas and linear ramps, so
    # texture and edges add little: its variance is 36 sigma^2 for white noise, scaled
    # here to 2 sigma^2, what ``d`` holds (a frame's noise and the average's).
    hist[:, :] = 0
    hist_s[:, :] = 0
    kr, kg, kb = np.float32(_KR), np.float32(_KG), np.float32(_KB)
    inv_w = np.float32(1.0 / _BIN_W)
    lap_scale = np.float32(1.0 / np.sqrt(18.0))
    H, W = d.shape
    for y in range(0, H, step):
        s = state[y]
        dr = d[y]
        for x in range(0, W, step):
            ys = kr * s[3 * x] + kg * s[3 * x + 1] + kb * s[3 * x + 2]
            band = min(max(int(ys) >> 4, 0), BANDS - 1)
            b = min(int(abs(dr[x]) * inv_w), BINS - 1)
            hist[band, b] += 1
            if 0 < y < H - 1 and 0 < x < W - 1:
                f0, f1, f2 = frame[y - 1], frame[y], frame[y + 1]
                lap = (_luma_u8(f0, x - 1, kr, kg, kb) + _luma_u8(f0, x + 1, kr, kg, kb)
                       + _luma_u8(f2, x - 1, kr, kg, kb) + _luma_u8(f2, x + 1, kr, kg, kb)
                       - 2.0 * (_luma_u8(f0, x, kr, kg, kb) + _luma_u8(f2, x, kr, kg, kb)
                                + _luma_u8(f1, x - 1, kr, kg, kb) + _luma_u8(f1, x + 1, kr, kg, kb))
                       + 4.0 * _luma_u8(f1, x, kr, kg, kb))
                b = min(int(abs(lap) * lap_scale * inv_w), BINS - 1)
                hist_s[band, b] += 1


@njit(parallel=True, cache=True, fastmath=True)
def _update_kernel(frame, state, count, d, dbox, noise_a, noise_b, k_min, box_scale, m_lo, m_hi, p_lo, p_hi):  # pragma: no cover
    # state += k * (frame - state), k from the window mean and the pixel difference of
    # the luma in units of the noise at the state's brightness v: std = sqrt(a + b v);
    # where static, k is the running mean's 1 / (count + 1), at least k_min; count, the
    # frames the state holds, becomes 1 / k.
    H = frame.shape[0]
    W = d.shape[1]
    kr, kg, kb = np.float32(_KR), np.float32(_KG), np.float32(_KB)
    one = np.float32(1.0)
    zero = np.float32(0.0)
    inv_m = one / np.float32(m_hi - m_lo)
    inv_p = one / np.float32(p_hi - p_lo)
    a = np.float32(noise_a)
    b = np.float32(noise_b)
    for y in prange(H):
        f = frame[y]
        s = state[y]
        dr = d[y]
        br = dbox[y]
        cr = count[y]
        k3 = np.empty(3 * W, np.float32)
        for x in range(W):
            ys = kr * s[3 * x] + kg * s[3 * x + 1] + kb * s[3 * x + 2]
            isig = one / np.sqrt(a + b * max(ys, zero))
            m = min(max((abs(br[x]) * box_scale * isig - m_lo) * inv_m, zero), one)
            mp = min(max((abs(dr[x]) * isig - p_lo) * inv_p, zero), one)
            kf = max(one / (cr[x] + one), k_min)
            k = kf + (one - kf) * max(m, mp)
            cr[x] = one / k
            k3[3 * x] = k
            k3[3 * x + 1] = k
            k3[3 * x + 2] = k
        for i in range(3 * W):  # contiguous: vectorises
            s[i] += k3[i] * (np.float32(f[i]) - s[i])


@njit(parallel=True, cache=True)
def _copy_u8_to_f32(frame, state):  # pragma: no cover - compiled
    for y in prange(frame.shape[0]):
        f = frame[y]
        s = state[y]
        for i in range(f.shape[0]):
            s[i] = np.float32(f[i])


# --------------------------------------------------------------------------- noise model


#: the temporal noise variance is at most this many times the variance measured within
#: the frame (which camera processing and the codec correlate, so lower).
SPATIAL_CAP = 2.0
#: the 3x3 mask of the spatial noise estimate (Immerkaer's): zero on flat areas and linear
#: ramps, 36 sigma^2 of variance on white noise.
_LAPLACE = [[1.0, -2.0, 1.0], [-2.0, 4.0, -2.0], [1.0, -2.0, 1.0]]


def noise_model(hist: np.ndarray, min_sigma: float, min_count: int = 256) -> tuple[float, float] | None:
    """Fit the noise of the luma difference as ``var(v) = a + b * v`` (v: brightness 0..255).

    ``hist``: (BANDS, BINS) counts of ``|d|`` per brightness band. Each band's std is
    ``1.4826 * median |d|`` (robust to the few moving pixels; motion over most of the
    frame is bounded by :data:`SPATIAL_CAP` in :class:`TemporalDenoiser`); the line is fitted to the
    bands' variances weighted by their counts (shot noise grows linearly with the signal,
    read noise is the constant). Returns ``(a, b)`` with ``a >= min_sigma**2`` and
    ``b >= 0``, or None when no band has ``min_count`` samples.
    """
    counts = hist.sum(axis=1).astype(np.float64)
    cum = np.cumsum(hist, axis=1)
    v, var, wt = [], [], []
    for band in range(BANDS):
        if counts[band] >= min_count:
            j = int(np.searchsorted(cum[band], counts[band] / 2.0))
            v.append(band * 16 + 8)
            var.append((1.4826 * (j + 0.5) * _BIN_W) ** 2)
            wt.append(counts[band])
    if not v:
        return None
    v_, var_, w_ = np.asarray(v, np.float64), np.asarray(var), np.asarray(wt)
    if len(v) == 1:
        a, b = var_[0], 0.0
    else:
        vm = np.average(v_, weights=w_)
        cov = np.average((v_ - vm) * (var_ - np.average(var_, weights=w_)), weights=w_)
        b = max(cov / max(np.average((v_ - vm) ** 2, weights=w_), 1e-9), 0.0)
        a = np.average(var_, weights=w_) - b * vm
    return float(max(a, min_sigma**2)), float(b)


# --------------------------------------------------------------------------- CPU


class TemporalDenoiser:
    """Motion-adaptive temporal denoiser for uint8 RGB frames (numba, CPU).

    Usage::

        den = TemporalDenoiser(DenoiseConfig(strength=0.7))
        for frame in frames:               # (H, W, 3) uint8
            clean = den(frame)             # (H, W, 3) float32 in 0..255, owned by den

    The returned array is the filter's state: valid until the next call, read-only
    for the caller. A change of frame size, or :meth:`reset`, starts over.
    """

    def __init__(self, cfg: DenoiseConfig = DenoiseConfig()):
        self.cfg = cfg
        self._state: np.ndarray | None = None
        self._noise: tuple[float, float] | None = None
        self._ratio: float | None = None

    def reset(self) -> None:
        self._state = None
        self._ratio = None

    @property
    def noise(self) -> tuple[float, float] | None:
        """``(a, b)``: variance of the luma difference ``a + b * v`` at brightness v (8-bit levels), once measured."""
        return self._noise

    def noise_floor(self) -> float:
        """Noise std of the luma at black (8-bit levels; ``min_sigma`` before any measurement).

        The difference of a frame and the average holds the noise of both; dividing by
        ``sqrt(2)`` gives the per-frame value in the first frames and a lower bound later.
        """
        if self._noise is None:
            return self.cfg.min_sigma
        return float(np.sqrt(self._noise[0] / 2.0))

    def __call__(self, frame: np.ndarray) -> np.ndarray:
        _check_frame(frame)
        h, w = frame.shape[:2]
        rows = _frame_rows(frame)
        if self._state is None or self._state.shape != (h, w, 3):
            self._state = np.empty((h, w, 3), np.float32)
            self._count = np.ones((h, w), np.float32)  # frames held by the state, per pixel
            self._d = np.empty((h, w), np.float32)
            self._hist = np.zeros((BANDS, BINS), np.int32)
            self._hist_s = np.zeros((BANDS, BINS), np.int32)
            _copy_u8_to_f32(rows, _rows(self._state))
            return self._state
        if self.cfg.strength == 0.0:
            _copy_u8_to_f32(rows, _rows(self._state))
            return self._state
        state = _rows(self._state)
        _diff_kernel(rows, state, self._d)
        _hist_kernel(rows, state, self._d, self._hist, self._hist_s, _sample_step(h, w, _HIST_STEP, 180))
        win = self.cfg.window
        dbox = cv2.blur(self._d, (win, win), borderType=cv2.BORDER_REFLECT)
        fit = noise_model(self._hist, self.cfg.min_sigma)
        cap = noise_model(self._hist_s, self.cfg.min_sigma)
        if fit is not None and cap is not None:
            # motion over most of the frame (a pan) inflates the temporal differences'
            # median; the frame's second differences do not move with it: the noise
            # variance is at most SPATIAL_CAP times theirs (a mask on the neighbours'
            # first differences also measured the texture: a pan at 40/255 smeared)
            fit = (min(fit[0], SPATIAL_CAP * cap[0]), min(fit[1], SPATIAL_CAP * cap[1]))
        if fit is not None:  # follows the camera's gain within a few frames, without jitter;
            # rises slower than it falls (a burst of motion must not raise the threshold)
            self._noise = fit if self._noise is None else tuple(
                o + (0.1 if n > o else 0.3) * (n - o) for o, n in zip(self._noise, fit))
        na, nb = self._noise if self._noise is not None else (4.0, 0.0)
        na = max(na, self.cfg.motion_floor**2)
        # Noise averages down in the window by ``win`` only if it is white; a codec's
        # noise comes in blocks. The ratio of the mean |d| and of its window mean's gives
        # the real factor (<= win), so block noise does not count as motion. (Not the
        # medians: a codec-frozen static scene has d = 0 at most pixels, both medians are
        # 0, and the white-noise factor made every re-coded block read as motion.)
        step = _sample_step(h, w, 2 * _HIST_STEP, 90)
        sd = np.mean(np.abs(self._d[::step, ::step]))
        sb = np.mean(np.abs(dbox[::step, ::step]))
        ratio = float(win) if sb <= 0 or sd <= 0 else float(min(max(sd / sb, 1.0), win))
        # (falls slowly: motion over much of the frame also makes d and its mean alike)
        self._ratio = ratio if self._ratio is None else self._ratio + (0.3 if ratio > self._ratio else 0.05) * (ratio - self._ratio)
        c = self.cfg
        _update_kernel(rows, state, self._count, self._d, dbox, np.float32(na), np.float32(nb), np.float32(c.k_min), np.float32(self._ratio),
                       np.float32(c.motion_low), np.float32(c.motion_high), np.float32(c.pixel_low), np.float32(c.pixel_high))
        return self._state


def warmup() -> None:
    """Compile (or load cached) the kernels: two frames, contiguous and reversed-channel."""
    den = TemporalDenoiser()
    f = np.zeros((8, 8, 3), np.uint8)
    for v in (f, f[..., ::-1], f):
        den(v)


# --------------------------------------------------------------------------- torch


def _band_sums(values: Tensor, bands: Tensor, weights: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """Per brightness band: the sum of ``values`` (already weighted) and of the weights."""
    w = torch.ones_like(values) if weights is None else weights
    z = torch.zeros(BANDS, device=values.device)
    return z.index_add(0, bands, values), z.index_add(0, bands, w)


def _band_std(sums: Tensor, cnts: Tensor) -> Tensor:
    """``sqrt(pi / 2)`` times each band's mean absolute value (a Gaussian's std, without a
    sort); bands with fewer than 256 samples take the frame's overall value."""
    glob = sums.sum() / cnts.sum().clamp(min=1.0)
    return torch.where(cnts >= 256, sums / cnts.clamp(min=1.0), glob) * 1.2533


class TorchTemporalDenoiser:
    """:class:`TemporalDenoiser` in tensor ops, for (1, 3, H, W) float frames in [0, 1]
    on any device (the CUDA path). No host syncs: the noise level function is measured
    with ``torch.bucketize``-free band statistics (the mean absolute difference per band,
    ``sqrt(pi / 2)`` times it as the std, which is the Gaussian median rule's
    equivalent without a sort) and kept on the device.
    """

    def __init__(self, cfg: DenoiseConfig = DenoiseConfig()):
        self.cfg = cfg
        self._state: Tensor | None = None
        self._count: Tensor | None = None
        self._band_sig: Tensor | None = None
        self._luma_w: Tensor | None = None
        self._lap_k: Tensor | None = None
        self._ratio: Tensor | None = None

    def reset(self) -> None:
        self._state = None
        self._ratio = None

    def __call__(self, x: Tensor) -> Tensor:
        if self._state is None or self._state.shape != x.shape or self._state.device != x.device:
            self._state = x.detach().float().clone()
            self._count = torch.ones_like(self._state[:, :1])  # frames held, per pixel
            self._band_sig = None
            self._ratio = None
            return self._state.to(x.dtype)
        c = self.cfg
        s = self._state
        if c.strength == 0.0:
            s.copy_(x)
            return s.to(x.dtype)
        w = self._luma_w
        if w is None or w.device != x.device:  # once, not a host-to-device copy per frame
            w = self._luma_w = torch.tensor([_KR, _KG, _KB], device=x.device).view(1, 3, 1, 1)
            self._lap_k = torch.tensor(_LAPLACE, device=x.device).view(1, 1, 3, 3)
        ys = (s * w).sum(1, keepdim=True) * 255.0
        yx = (x.float() * w).sum(1, keepdim=True) * 255.0  # the frame's luma
        d = yx - ys
        band = (ys / 16.0).long().clamp_(0, BANDS - 1)
        bf = band.flatten()
        ad = d.abs().flatten()
        # a robust-enough std per band: mean |d| of the values below 3x the band mean
        sums, cnts = _band_sums(ad, bf)
        keep = (ad < (3.0 * sums / cnts.clamp(min=1.0))[bf]).float()
        sig = _band_std(*_band_sums(ad * keep, bf, keep))
        # the cap of the CPU path: motion over most of the frame must not read as noise;
        # the frame's own luma through the 3x3 second-difference mask does not move with it
        hs = F.conv2d(yx, self._lap_k).abs().flatten() * (1.0 / 18.0**0.5)
        sig_s = _band_std(*_band_sums(hs, band[..., 1:-1, 1:-1].flatten()))
        sig = torch.minimum(sig, SPATIAL_CAP**0.5 * sig_s).clamp(min=c.min_sigma)
        if self._band_sig is None:
            self._band_sig = sig
        else:  # rises slower than it falls
            self._band_sig = self._band_sig + torch.where(sig > self._band_sig, 0.1, 0.3) * (sig - self._band_sig)
        sig_px = self._band_sig.clamp(min=c.motion_floor)[band]
        win = c.window
        dbox = F.avg_pool2d(F.pad(d, (win // 2,) * 4, mode="reflect"), win, stride=1)
        # the CPU path's block-noise factor: mean |d| over mean |box mean of d|, in [1, win]
        sb = dbox.abs().mean()
        ratio = torch.where(sb > 0, ad.mean() / sb.clamp(min=1e-12), float(win)).clamp(1.0, float(win))
        if self._ratio is None:
            self._ratio = ratio
        else:  # falls slowly: motion over much of the frame also makes d and its mean alike
            self._ratio = self._ratio + torch.where(ratio > self._ratio, 0.3, 0.05) * (ratio - self._ratio)
        zm = dbox.abs() * self._ratio / sig_px
        zp = d.abs() / sig_px
        m = torch.maximum(((zm - c.motion_low) / (c.motion_high - c.motion_low)).clamp(0, 1),
                          ((zp - c.pixel_low) / (c.pixel_high - c.pixel_low)).clamp(0, 1))
        kf = (1.0 / (self._count + 1.0)).clamp_(min=c.k_min)  # the running mean's weight
        k = kf + (1.0 - kf) * m
        torch.reciprocal(k, out=self._count)
        s.add_(k * (x.float() - s))
        return s.to(x.dtype)
