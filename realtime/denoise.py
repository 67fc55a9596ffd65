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
* The average follows the camera (``align``): :class:`GlobalShift` measures the frame's
  global translation against the last one (a low-passed phase correlation of the luma
  reduced to ~128 pixels across, taken only when it explains the two frames better than
  no move and the colours move with it) and the kernels read the average at that offset,
  in whole pixels (no interpolation blurs it), the strips that come into view starting
  afresh. A pan or a
  shaking hand is then averaged like a still scene instead of reading as motion
  everywhere; a moving object on a still background moves nothing.

:class:`TemporalDenoiser` works on uint8 HxWx3 frames with numba kernels and OpenCV's
box filter (about 2.4 ms per 1280x720 frame of a still scene and 3.9 ms of a moving one
on an idle machine, 10–13 ms of wall time in the pipeline beside decode and encode,
docs/BENCHMARKS.md §18); :class:`TorchTemporalDenoiser`
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

__all__ = ["DenoiseConfig", "GlobalShift", "TemporalDenoiser", "TorchGlobalShift", "TorchTemporalDenoiser", "noise_model"]

#: Brightness bands of the noise level function (luma 0..255 in bands of 16).
BANDS = 16
#: |d| histogram bins per band: 0.25 levels wide, up to 32 levels.
BINS = 128
_BIN_W = 0.25
#: the noise histogram samples every _HIST_STEP-th row and pixel of large frames, and
#: more sparsely above ~360 rows (about the same number of samples at every size: some
#: 25,000 at 720p and 1080p, 16 per brightness band at least; 57,000 before the global
#: shift was measured, whose cost this saving pays for).
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
    #: follow the camera: estimate the frame's global shift (phase correlation of a
    #: reduced luma) and move the average with it, so a pan or a shaking hand is averaged
    #: like a still scene. Shifts are whole pixels (no interpolation blurs the average).
    align: bool = True
    #: a shift is taken when it leaves at most this share of the two frames' low-passed
    #: difference that no shift leaves (a still scene gives none; on the benchmark's
    #: pans the true shift leaves 0.02 at 40/255 and about 0.25 at 5/255).
    align_residual: float = 0.8

    def __post_init__(self):
        if not 0.0 <= self.strength <= 1.0:
            raise ValueError(f"denoise strength must be in [0, 1], got {self.strength}")
        if self.window < 1 or self.window % 2 == 0:
            raise ValueError(f"denoise window must be a positive odd number, got {self.window}")
        if self.motion_floor < 0.0:
            raise ValueError(f"denoise motion_floor must be >= 0, got {self.motion_floor}")
        if not 0.0 < self.align_residual <= 1.0:
            raise ValueError(f"denoise align_residual must be in (0, 1], got {self.align_residual}")

    @property
    def k_min(self) -> float:
        return 1.0 / (1.0 + 31.0 * self.strength)


# --------------------------------------------------------------------------- kernels


# The kernels read the last average ``state`` where the camera's move (dx, dy) puts it:
# the pixel (y, x) of the new frame lies at (y - dy, x - dx) in the average, and a pixel
# that comes into view has no average yet (it is taken whole). The update writes the new
# average into ``out``: ``state`` itself unless the move is vertical (a horizontally moved
# row is updated from a copy of its source row), a second buffer when it is.


@njit(cache=True)
def _span(w, dx):  # pragma: no cover - compiled
    """The x range [x0, x1) of the new frame whose pixel lies inside the average."""
    return max(0, dx), min(w, w + dx)


@njit(parallel=True, cache=True, fastmath=True)
def _diff_kernel(frame, state, d, dx, dy):  # pragma: no cover - compiled
    # frame (H, 3W) uint8 rows, state (H, 3W) float32 -> d (H, W) float32: luma difference
    # (0 where the pixel has just come into view).
    H = frame.shape[0]
    W = d.shape[1]
    kr, kg, kb = np.float32(_KR), np.float32(_KG), np.float32(_KB)
    x0, x1 = _span(W, dx)
    for y in prange(H):
        f = frame[y]
        dr = d[y]
        sy = y - dy
        if sy < 0 or sy >= H:
            dr[:] = 0.0
            continue
        # views at the move's offset: the loops index with their own counters (an index
        # that may be negative gets a wrap-around test that stops vectorisation)
        sv = state[sy][3 * (x0 - dx): 3 * (x1 - dx)]
        fv = f[3 * x0: 3 * x1]
        n = x1 - x0
        t = np.empty(3 * n, np.float32)
        for i in range(3 * n):  # contiguous: vectorises
            t[i] = np.float32(fv[i]) - sv[i]
        dr[:x0] = 0.0
        dr[x1:] = 0.0
        dv = dr[x0:x1]
        for x in range(n):
            dv[x] = kr * t[3 * x] + kg * t[3 * x + 1] + kb * t[3 * x + 2]


@njit(cache=True, fastmath=True)
def _luma_u8(f, x, kr, kg, kb):  # pragma: no cover - compiled
    return kr * np.float32(f[3 * x]) + kg * np.float32(f[3 * x + 1]) + kb * np.float32(f[3 * x + 2])


@njit(cache=True, fastmath=True)
def _hist_kernel(frame, state, d, hist, hist_s, step, dx, dy):  # pragma: no cover - compiled
    # |d| histogram per brightness band of the average, on every ``step``-th row and pixel
    # (tens of thousands of samples: plenty for a median, a fraction of the cost); and
    # (``hist_s``: spatial, blind to motion) the same for the frame's luma through the
    # 3x3 mask [1 -2 1; -2 4 -2; 1 -2 1], which cancels flat areas and linear ramps, so
    # texture and edges add little: its variance is 36 sigma^2 for white noise, scaled
    # here to 2 sigma^2, what ``d`` holds (a frame's noise and the average's). Pixels that
    # have just come into view are left out.
    hist[:, :] = 0
    hist_s[:, :] = 0
    kr, kg, kb = np.float32(_KR), np.float32(_KG), np.float32(_KB)
    inv_w = np.float32(1.0 / _BIN_W)
    lap_scale = np.float32(1.0 / np.sqrt(18.0))
    H, W = d.shape
    x0, x1 = _span(W, dx)
    for y in range(0, H, step):
        sy = y - dy
        if sy < 0 or sy >= H:
            continue
        s = state[sy]
        dr = d[y]
        for x in range(0, W, step):
            if x < x0 or x >= x1:
                continue
            sx = x - dx
            ys = kr * s[3 * sx] + kg * s[3 * sx + 1] + kb * s[3 * sx + 2]
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


@njit(cache=True, fastmath=True, inline="always")
def _weight(ys, box, diff, count, a, b, box_scale, m_lo, inv_m, p_lo, inv_p, k_min):  # pragma: no cover - compiled
    # the update weight of one pixel: the running mean's 1 / (count + 1), at least k_min,
    # raised towards 1 by the window mean's and the pixel's difference in units of the
    # noise at the average's brightness ys
    one = np.float32(1.0)
    zero = np.float32(0.0)
    isig = one / np.sqrt(a + b * max(ys, zero))
    m = min(max((abs(box) * box_scale * isig - m_lo) * inv_m, zero), one)
    mp = min(max((abs(diff) * isig - p_lo) * inv_p, zero), one)
    kf = max(one / (count + one), k_min)
    return kf + (one - kf) * max(m, mp)


@njit(parallel=True, cache=True, fastmath=True)
def _update_kernel(frame, state, count, out, out_count, d, dbox, noise_a, noise_b, k_min, box_scale,
                   m_lo, m_hi, p_lo, p_hi, dx, dy):  # pragma: no cover
    # out = state + k * (frame - state), k from the window mean and the pixel difference
    # of the luma in units of the noise at the average's brightness v: std = sqrt(a + b v);
    # where static, k is the running mean's 1 / (count + 1), at least k_min; the frames
    # the average holds, out_count, become 1 / k. state and count are read at the move's
    # offset; with no vertical move (dy == 0), out and out_count must be state and count
    # (updated in place, a moved row from its own copy), with one, other buffers.
    H = frame.shape[0]
    W = d.shape[1]
    kr, kg, kb = np.float32(_KR), np.float32(_KG), np.float32(_KB)
    one = np.float32(1.0)
    inv_m = one / np.float32(m_hi - m_lo)
    inv_p = one / np.float32(p_hi - p_lo)
    a = np.float32(noise_a)
    b = np.float32(noise_b)
    x0, x1 = _span(W, dx)
    still = dx == 0 and dy == 0  # then out must be state, count out_count
    for y in prange(H):
        f = frame[y]
        dst = out[y]
        cd = out_count[y]
        if still:  # in place, one array per row: what LLVM vectorises best
            dr = d[y]
            br = dbox[y]
            k3 = np.empty(3 * W, np.float32)
            for x in range(W):
                ys = kr * dst[3 * x] + kg * dst[3 * x + 1] + kb * dst[3 * x + 2]
                k = _weight(ys, br[x], dr[x], cd[x], a, b, box_scale, m_lo, inv_m, p_lo, inv_p, k_min)
                cd[x] = one / k
                k3[3 * x] = k
                k3[3 * x + 1] = k
                k3[3 * x + 2] = k
            for i in range(3 * W):  # contiguous: vectorises
                dst[i] += k3[i] * (np.float32(f[i]) - dst[i])
            continue
        sy = y - dy
        if sy < 0 or sy >= H:  # a row that has just come into view: taken whole
            for i in range(3 * W):
                dst[i] = np.float32(f[i])
            cd[:] = one
            continue
        # views at the move's offset (see _diff_kernel), of a copy of the source row: a
        # horizontal move (dy == 0) updates each row in place, from its own copy
        n = x1 - x0
        sv = state[sy][3 * (x0 - dx): 3 * (x1 - dx)].copy()
        cv = count[sy][x0 - dx: x1 - dx].copy()
        fv = f[3 * x0: 3 * x1]
        dv = d[y][x0:x1]
        bv = dbox[y][x0:x1]
        k3 = np.empty(3 * n, np.float32)
        for x in range(n):
            ys = kr * sv[3 * x] + kg * sv[3 * x + 1] + kb * sv[3 * x + 2]
            k = _weight(ys, bv[x], dv[x], cv[x], a, b, box_scale, m_lo, inv_m, p_lo, inv_p, k_min)
            k3[3 * x] = k
            k3[3 * x + 1] = k
            k3[3 * x + 2] = k
        # the frame counts, then the average
        cdv = cd[x0:x1]
        for x in range(n):
            cdv[x] = one / k3[3 * x]
        ov = dst[3 * x0: 3 * x1]
        for i in range(3 * n):  # contiguous: vectorises
            v = sv[i]
            ov[i] = v + k3[i] * (np.float32(fv[i]) - v)
        cd[:x0] = one
        cd[x1:] = one
        for i in range(3 * x0):
            dst[i] = np.float32(f[i])
        for i in range(3 * x1, 3 * W):
            dst[i] = np.float32(f[i])


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


# --------------------------------------------------------------------------- alignment


#: the global shift is measured on the luma reduced to about this many pixels across.
_ALIGN_WIDTH = 128
#: the cross-power spectrum is weighted by a Gaussian of this std (cycles per reduced
#: pixel): the high frequencies hold the noise and the codec's fixed block grid, which
#: pull a whitened correlation towards no shift at all.
_ALIGN_CUTOFF = 0.2


#: a move that leaves a colour plane (R - G, B - G) more than this many times the
#: difference that no move leaves is not the camera's. On the dark-video benchmark's pans
#: the true move leaves at most 0.55 of it at 40/255 and 1.66 at 5/255, where the colour
#: is mostly noise; on the pipeline benchmark's pattern, whose colours move apart from its
#: brightness, the luma's move leaves 4.1 or more.
_CHROMA_SLACK = 2.0


def _align_factor(w: int) -> int:
    return max(1, round(w / _ALIGN_WIDTH))


def _lowpass(sh: int, sw: int) -> np.ndarray:
    """The Gaussian weight of the (sh, sw // 2 + 1) half-spectrum."""
    fy = np.fft.fftfreq(sh)[:, None]
    fx = np.fft.rfftfreq(sw)[None, :]
    return np.exp(-(fx**2 + fy**2) / (2.0 * _ALIGN_CUTOFF**2)).astype(np.float32)


@njit(cache=True, fastmath=True)
def _reduce_planes(rows, s, win, out):  # pragma: no cover - compiled
    # out (3, sh, sw): the s x s box means of the uint8 RGB rows as luma, R - G and B - G,
    # each less its mean, times the window. Serial, and holding the GIL like the other
    # small steps of the estimate: in the pipeline a parallel region waited for a second
    # core that decode and encode keep busy (4 ms of wall time for 1 ms of work).
    sh, sw = out.shape[1:]
    n = sw * s
    q = np.float32(1.0 / (s * s))
    kr, kg, kb = np.float32(_KR) * q, np.float32(_KG) * q, np.float32(_KB) * q
    for j in range(sh):
        ty = np.zeros(n, np.float32)
        t1 = np.zeros(n, np.float32)
        t2 = np.zeros(n, np.float32)
        for y in range(j * s, j * s + s):
            f = rows[y]
            for x in range(n):  # vectorises
                r, g, b = np.float32(f[3 * x]), np.float32(f[3 * x + 1]), np.float32(f[3 * x + 2])
                ty[x] += kr * r + kg * g + kb * b
                t1[x] += q * (r - g)
                t2[x] += q * (b - g)
        for c, t in ((0, ty), (1, t1), (2, t2)):
            o = out[c, j]
            for i in range(sw):
                acc = np.float32(0.0)
                for x in range(i * s, i * s + s):
                    acc += t[x]
                o[i] = acc
    for c in range(3):
        m = out[c].mean()
        for j in range(sh):
            for i in range(sw):
                out[c, j, i] = (out[c, j, i] - m) * win[j, i]


@njit(cache=True, fastmath=True)
def _cross_spectra(spec, prev, lp, cross, whitened):  # pragma: no cover - compiled
    # the low-passed cross-power spectrum, its whitened form, and the low-passed energy of
    # the difference of the two frames (what no shift leaves)
    big = np.float32(0.0)
    for j in range(spec.shape[0]):
        for i in range(spec.shape[1]):
            big = max(big, abs(spec[j, i] * np.conj(prev[j, i])))
    eps = np.float32(1e-6) * big + np.float32(1e-30)
    still = 0.0
    for j in range(spec.shape[0]):
        for i in range(spec.shape[1]):
            raw = spec[j, i] * np.conj(prev[j, i])
            c = raw * lp[j, i]
            cross[j, i] = c
            whitened[j, i] = c / (abs(raw) + eps)
            e = spec[j, i] - prev[j, i]
            still += lp[j, i] * (e.real * e.real + e.imag * e.imag)
    return still


@njit(cache=True, fastmath=True)
def _residual(spec, prev, lp, fx, fy, dx, dy):  # pragma: no cover - compiled
    # the low-passed energy of the new frame less the last one moved by (dx, dy)
    err = 0.0
    for j in range(spec.shape[0]):
        for i in range(spec.shape[1]):
            ph = -2.0 * np.pi * (fx[i] * dx + fy[j] * dy)
            e = spec[j, i] - prev[j, i] * complex(np.cos(ph), np.sin(ph))
            err += lp[j, i] * (e.real * e.real + e.imag * e.imag)
    return err


@njit(cache=True, fastmath=True)
def _colour_follows(specs, prevs, lp, fx, fy, dx, dy, slack):  # pragma: no cover - compiled
    # whether moving the last frame's colour planes (1: R - G, 2: B - G) by (dx, dy) leaves
    # each of them at most ``slack`` times the low-passed difference that no move leaves
    moved = np.zeros(2)
    still = np.zeros(2)
    for j in range(lp.shape[0]):
        for i in range(lp.shape[1]):
            ph = -2.0 * np.pi * (fx[i] * dx + fy[j] * dy)
            rot = complex(np.cos(ph), np.sin(ph))
            for c in range(2):
                e = specs[c + 1, j, i] - prevs[c + 1, j, i] * rot
                moved[c] += lp[j, i] * (e.real * e.real + e.imag * e.imag)
                e = specs[c + 1, j, i] - prevs[c + 1, j, i]
                still[c] += lp[j, i] * (e.real * e.real + e.imag * e.imag)
    return moved[0] <= slack * still[0] + 1e-9 and moved[1] <= slack * still[1] + 1e-9


def _peak_offset(m1: float, c: float, p1: float) -> float:
    """Sub-sample position of a peak from three samples: a Gaussian through them (the
    low-pass weight makes the peak one), a parabola where a sample is not positive."""
    if m1 > 0 and c > 0 and p1 > 0:
        m1, c, p1 = np.log(m1), np.log(c), np.log(p1)
    den = m1 - 2.0 * c + p1
    return 0.0 if den >= 0 else float(np.clip(0.5 * (m1 - p1) / den, -0.5, 0.5))


def _peak(r: np.ndarray) -> tuple[float, float]:
    """Position (dx, dy) of the highest value of a circular correlation, to a sub-sample,
    wrapped to [-size / 2, size / 2]."""
    sh, sw = r.shape
    iy, ix = np.unravel_index(int(np.argmax(r)), r.shape)
    dx = ix + _peak_offset(r[iy, ix - 1], r[iy, ix], r[iy, (ix + 1) % sw])
    dy = iy + _peak_offset(r[iy - 1, ix], r[iy, ix], r[(iy + 1) % sh, ix])
    return (dx - sw if dx > sw / 2 else dx), (dy - sh if dy > sh / 2 else dy)


class GlobalShift:
    """Frame-to-frame global translation, in whole pixels, for the temporal denoiser.

    Each call takes the new frame (uint8 RGB rows) and returns ``(dx, dy)``: the
    content moved by that much since the last frame (``new[y, x] = old[y - dy, x - dx]``),
    or ``(0, 0)``. The luma is reduced to about 128 pixels across; two candidates, the
    peak of the phase correlation (sharp on texture) and of the plain cross-correlation
    (robust on smooth shading), both low-passed (the high frequencies hold the noise and
    the codec's block grid, which stays put), are scored by how much of the two frames'
    low-passed difference they explain. A shift is taken only when it leaves at most
    ``max_residual`` of what no shift leaves, and moves the colour planes (R - G, B - G)
    as well: a still scene, a dark, flat frame or colours moving apart from the brightness
    give none. (Two unrelated scenes often leave 0.5–0.8 at low frequencies, so a cut may
    give a move; the motion test restarts the average everywhere at a cut anyway.) The
    sub-pixel remainder carries over to the next frame, so a pan of 1.5 px/frame moves the
    average by 1 and 2 px in turn and never drifts more than half a pixel from the picture.
    """

    def __init__(self, max_residual: float = 0.8):
        self.max_residual = max_residual
        self._prev: np.ndarray | None = None
        self._win: np.ndarray | None = None
        self._acc = np.zeros(2)
        #: the last frame's best candidate: its residual over the still one's (1: none)
        self.residual = 1.0

    def reset(self) -> None:
        self._prev = None
        self._acc[:] = 0.0

    def _nothing(self) -> tuple[int, int]:
        self._acc[:] = 0.0
        return 0, 0

    def __call__(self, rows: np.ndarray) -> tuple[int, int]:
        """``rows``: the frame as (H, 3W) uint8 RGB rows."""
        h, w = rows.shape[0], rows.shape[1] // 3
        s = _align_factor(w)
        sh, sw = max(1, h // s), max(1, w // s)
        self.residual = 1.0
        if min(sh, sw) < 16:
            return self._nothing()
        if self._win is None or self._win.shape != (sh, sw):
            self._win = cv2.createHanningWindow((sw, sh), cv2.CV_32F)
            self._lp = _lowpass(sh, sw)
            self._fy, self._fx = np.fft.fftfreq(sh).astype(np.float32), np.fft.rfftfreq(sw).astype(np.float32)
            self._planes = np.empty((3, sh, sw), np.float32)  # luma, R - G, B - G
            self._pair = np.empty((2, sh, sw // 2 + 1), np.complex64)  # whitened, plain
            self._prev = None
        _reduce_planes(rows, s, self._win, self._planes)
        specs = np.fft.rfft2(self._planes)  # one call for the three planes
        prevs, self._prev = self._prev, specs
        if prevs is None:
            return self._nothing()
        spec, prev = specs[0], prevs[0]
        still = _cross_spectra(spec, prev, self._lp, self._pair[1], self._pair[0])
        best, best_err = (0.0, 0.0), still
        for r in np.fft.irfft2(self._pair, s=(sh, sw)):  # one call for both
            dx, dy = _peak(r)
            err = _residual(spec, prev, self._lp, self._fx, self._fy, dx, dy)
            if err < best_err:
                best, best_err = (dx, dy), err
        self.residual = best_err / still if still > 0 else 1.0
        if not self.residual <= self.max_residual:
            return self._nothing()
        # the colour must move the same way: a scene whose colours move apart from its
        # brightness (rare in camera footage) would otherwise be averaged out of line
        if not _colour_follows(specs, prevs, self._lp, self._fx, self._fy, best[0], best[1], _CHROMA_SLACK):
            return self._nothing()
        self._acc += (best[0] * s, best[1] * s)
        move = np.rint(self._acc)
        if abs(move[0]) > w // 4 or abs(move[1]) > h // 4:  # a quarter of the frame: a cut
            return self._nothing()
        self._acc -= move
        return int(move[0]), int(move[1])


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
        self._shift = GlobalShift(cfg.align_residual) if cfg.align else None
        self._spare: tuple[np.ndarray, np.ndarray] | None = None
        #: the last frame's global shift (dx, dy) that the average followed
        self.last_shift = (0, 0)

    def reset(self) -> None:
        self._state = None
        self._ratio = None
        if self._shift is not None:
            self._shift.reset()

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
            if self._shift is not None:
                self._shift.reset()
                self._shift(rows)
            return self._state
        if self.cfg.strength == 0.0:
            _copy_u8_to_f32(rows, _rows(self._state))
            return self._state
        dx, dy = self.last_shift = self._shift(rows) if self._shift is not None else (0, 0)
        state = _rows(self._state)
        _diff_kernel(rows, state, self._d, dx, dy)
        _hist_kernel(rows, state, self._d, self._hist, self._hist_s, _sample_step(h, w, _HIST_STEP, 120), dx, dy)
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
        if dy == 0:  # in place (a horizontal move too: each row is updated from its own copy)
            out, out_count = self._state, self._count
        else:  # into the spare buffers (rows are read from other rows that other threads write)
            if self._spare is None or self._spare[0].shape != self._state.shape:
                self._spare = (np.empty_like(self._state), np.empty_like(self._count))
            out, out_count = self._spare
        _update_kernel(rows, state, self._count, _rows(out), out_count, self._d, dbox, np.float32(na), np.float32(nb),
                       np.float32(c.k_min), np.float32(self._ratio), np.float32(c.motion_low), np.float32(c.motion_high),
                       np.float32(c.pixel_low), np.float32(c.pixel_high), dx, dy)
        if out is not self._state:
            self._spare = (self._state, self._count)
            self._state, self._count = out, out_count
        return self._state


def warmup() -> None:
    """Compile (or load cached) the kernels: frames contiguous and reversed-channel, large
    enough for the global-shift estimate, the last one moved."""
    den = TemporalDenoiser()
    f = np.kron(np.arange(48, dtype=np.uint8).reshape(6, 8) % 7 * 9, np.ones((8, 8), np.uint8))
    f = np.repeat(f[..., None], 3, axis=2)
    for v in (f, f[..., ::-1], np.roll(f, 8, axis=1)):
        den(v)


# --------------------------------------------------------------------------- torch


def _torch_peak(r: Tensor) -> Tensor:
    """:func:`_peak` on the device: (dx, dy) as a (2,) tensor."""
    sh, sw = r.shape
    i = r.flatten().argmax()
    iy, ix = i // sw, i % sw
    c = r[iy, ix]

    def offset(m1: Tensor, p1: Tensor) -> Tensor:
        pos = (m1 > 0) & (c > 0) & (p1 > 0)
        lm, lc, lp = (torch.where(pos, v.clamp(min=1e-30).log(), v) for v in (m1, c, p1))
        den = lm - 2.0 * lc + lp
        return torch.where(den < 0, (0.5 * (lm - lp) / den.clamp(max=-1e-30)).clamp(-0.5, 0.5), 0.0)

    dx = ix + offset(r[iy, (ix - 1) % sw], r[iy, (ix + 1) % sw])
    dy = iy + offset(r[(iy - 1) % sh, ix], r[(iy + 1) % sh, ix])
    return torch.stack([torch.where(dx > sw / 2, dx - sw, dx), torch.where(dy > sh / 2, dy - sh, dy)]).float()


class TorchGlobalShift:
    """:class:`GlobalShift` in tensor ops, for the CUDA path: the same reduction, two
    low-passed candidates, residual test and carried remainder, with no host sync (the
    move is a (2,) int64 tensor ``(dx, dy)`` on the frame's device)."""

    def __init__(self, max_residual: float = 0.8):
        self.max_residual = max_residual
        self._prev: Tensor | None = None
        self._win: Tensor | None = None
        self._acc: Tensor | None = None

    def reset(self) -> None:
        self._prev = None
        self._acc = None

    def __call__(self, x: Tensor) -> Tensor:
        """``x``: the (1, 3, H, W) RGB frame in [0, 1]. Returns the move ``(dx, dy)``."""
        h, w = x.shape[-2:]
        dev = x.device
        s = _align_factor(w)
        sh, sw = h // s, w // s
        none = torch.zeros(2, dtype=torch.long, device=dev)
        if min(sh, sw) < 16:
            return none
        r, g, b = F.avg_pool2d(x[..., : sh * s, : sw * s].float() * 255.0, s)[0]
        planes = torch.stack([_KR * r + _KG * g + _KB * b, r - g, b - g])  # luma, R - G, B - G
        if self._win is None or self._win.shape != (sh, sw) or self._win.device != dev:
            self._win = torch.from_numpy(cv2.createHanningWindow((sw, sh), cv2.CV_32F)).to(dev)
            self._lp = torch.from_numpy(_lowpass(sh, sw)).to(dev)
            self._fy = torch.fft.fftfreq(sh, device=dev)[:, None]
            self._fx = torch.fft.rfftfreq(sw, device=dev)[None, :]
            self._prev = None
        if self._acc is None or self._acc.device != dev:
            self._acc = torch.zeros(2, device=dev)
        specs = torch.fft.rfft2((planes - planes.mean((1, 2), keepdim=True)) * self._win)
        prevs, self._prev = self._prev, specs
        if prevs is None:
            self._acc.zero_()
            return none
        spec, prev = specs[0], prevs[0]
        raw = spec * prev.conj()
        mag = raw.abs()
        cross = raw * self._lp
        whitened = cross / (mag + 1e-6 * (mag.max() + 1e-30))
        still = (self._lp * (spec - prev).abs().square()).sum()
        cands = torch.stack([_torch_peak(torch.fft.irfft2(c, s=(sh, sw))) for c in (whitened, cross)])  # (2, 2)
        phase = torch.exp(-2j * torch.pi * (self._fx[None] * cands[:, 0, None, None] + self._fy[None] * cands[:, 1, None, None]))
        errs = (self._lp * (spec[None] - prev[None] * phase).abs().square()).sum((1, 2))
        j = errs.argmin()
        best, err = cands[j], errs[j]
        ok = err <= self.max_residual * still
        # the colour planes must move the same way (GlobalShift's test)
        moved_c = (self._lp * (specs[1:] - prevs[1:] * phase[j]).abs().square()).sum((1, 2))
        still_c = (self._lp * (specs[1:] - prevs[1:]).abs().square()).sum((1, 2))
        ok = ok & (moved_c <= _CHROMA_SLACK * still_c + 1e-9).all()
        acc = torch.where(ok, self._acc + best * s, 0.0)
        move = acc.round()
        cut = (move[0].abs() > w // 4) | (move[1].abs() > h // 4)
        move = torch.where(cut, 0.0, move)
        self._acc = torch.where(cut, 0.0, acc - move)
        return move.long()


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
        self._shift = TorchGlobalShift(cfg.align_residual) if cfg.align else None
        #: the last frame's global shift (dx, dy) that the average followed (a device tensor)
        self.last_shift: Tensor | None = None

    def reset(self) -> None:
        self._state = None
        self._ratio = None
        if self._shift is not None:
            self._shift.reset()

    def _follow(self, x: Tensor, move: Tensor) -> None:
        """Move the average and its frame counts by ``move`` = (dx, dy); what comes into
        view starts from the new frame (count 0). A gather with device indices: no sync."""
        self.last_shift = move
        h, w = x.shape[-2:]
        ix = torch.arange(w, device=x.device) - move[0]
        iy = torch.arange(h, device=x.device) - move[1]
        inside = (((iy >= 0) & (iy < h))[:, None] & ((ix >= 0) & (ix < w))[None, :])
        ix, iy = ix.clamp(0, w - 1), iy.clamp(0, h - 1)
        st = self._state.index_select(3, ix).index_select(2, iy)
        self._state = torch.where(inside, st, x.float())
        self._count = torch.where(inside, self._count.index_select(3, ix).index_select(2, iy), 0.0)

    def _luma(self, x: Tensor) -> Tensor:
        w = self._luma_w
        if w is None or w.device != x.device:  # once, not a host-to-device copy per frame
            w = self._luma_w = torch.tensor([_KR, _KG, _KB], device=x.device).view(1, 3, 1, 1)
            self._lap_k = torch.tensor(_LAPLACE, device=x.device).view(1, 1, 3, 3)
        return (x.float() * w).sum(1, keepdim=True) * 255.0

    def __call__(self, x: Tensor) -> Tensor:
        if self._state is None or self._state.shape != x.shape or self._state.device != x.device:
            self._state = x.detach().float().clone()
            self._count = torch.ones_like(self._state[:, :1])  # frames held, per pixel
            self._band_sig = None
            self._ratio = None
            if self._shift is not None:
                self._shift.reset()
                self._shift(x)
            return self._state.to(x.dtype)
        c = self.cfg
        if c.strength == 0.0:
            self._state.copy_(x)
            return self._state.to(x.dtype)
        yx = self._luma(x)  # the frame's luma, 0..255
        if self._shift is not None:
            self._follow(x, self._shift(x))
        s = self._state
        w = self._luma_w
        ys = (s * w).sum(1, keepdim=True) * 255.0
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
