"""Numba CPU kernels for the real-time path: uint8 frames in, uint8 frames out.

The ``lite`` model's full-resolution work is a per-pixel affine map whose coefficients
live on a small grid (see :func:`models.lite_coefficients`). Doing that in torch costs
a float copy of the frame, an up-sampled (6, H, W) coefficient map and a uint8
conversion. The kernels here read the uint8 frame once and write the uint8 output
once:

* :func:`box_stats_u8` computes the grid statistics the ``lite`` network needs
  (:meth:`models.LiteNet.box_stats` of the replicate-padded frame) straight from the
  uint8 frame, to feed :meth:`models.LiteNet.estimate_from_stats`.
* :func:`lite_render_u8` applies ``out = P_up * x + Q_up`` with the bilinear
  up-sampling (``align_corners=False``, as ``F.interpolate``) done on the fly, one
  interpolated grid row per output row.
* :func:`u8_to_float_chw` / :func:`float_chw_to_u8` convert frames for the torch
  models (any strides, so they can write into a ``channels_last`` tensor's memory).

All kernels are parallel over rows (``prange``), write into caller-owned buffers when
given (no allocation per frame), and are compiled on first use and cached on disk;
call :func:`warmup` once at start so the first frame does not pay for compilation.

Threads: numba's default is one thread per core. Parallel regions wait for their
slowest thread, so on a 2-core machine whose cores are also busy with decoding,
encoding or torch, ``numba.set_num_threads(1)`` can be faster than 2 (measured at
1280x720 on the busy project machine: ``lite_render_u8`` 1.7-2.5 ms with one thread,
8-16 ms with two threads competing with two other busy processes).

Example::

    aux, gain = model.estimate_from_stats(*map(torch.from_numpy, box_stats_u8(frame, 4, 32)))
    coef = lite_coefficients(aux, gain)[0].numpy()
    lite_render_u8(frame, coef, 4, out=out_frame)
"""
from __future__ import annotations

import logging

import numpy as np
from numba import njit, prange

__all__ = [
    "lite_render_u8",
    "box_stats_u8",
    "u8_to_float_chw",
    "float_chw_to_u8",
    "padded_grid_shape",
    "warmup",
]

logger = logging.getLogger(__name__)

# Parallel tasks of lite_render_u8; each walks a run of grid rows, reusing up-sampled rows.
_RENDER_CHUNKS = 16

# Rec.601 luma, the same constants as models._layers.luminance.
_KR, _KG, _KB = 0.299, 0.587, 0.114


# --------------------------------------------------------------------------- kernels


@njit(cache=True)
def _src_index(dst: int, inv_scale: float, n_in: int) -> tuple[int, int, float]:
    """Bilinear source taps of ``dst`` as torch computes them for align_corners=False."""
    src = (dst + 0.5) * inv_scale - 0.5
    if src < 0.0:
        src = 0.0
    i0 = int(src)
    if i0 > n_in - 1:
        i0 = n_in - 1
    i1 = i0 + 1 if i0 < n_in - 1 else i0
    return i0, i1, src - i0


@njit(cache=True, fastmath=True)
def _hup_row(coef, g, cx0, cx1, wx, p_out, q_out, w_out):  # pragma: no cover - compiled
    """Grid row ``g`` up-sampled along x into HWC-ordered rows: P, and 255 * Q; and the
    chroma weight (channel 6) per pixel when ``coef`` has it."""
    has_w = coef.shape[0] > 6
    for x in range(cx0.shape[0]):
        j0 = cx0[x]
        j1 = cx1[x]
        lx = wx[x]
        for c in range(3):
            a0 = coef[c, g, j0]
            p_out[3 * x + c] = a0 + lx * (coef[c, g, j1] - a0)
            a0 = coef[c + 3, g, j0]
            q_out[3 * x + c] = np.float32(255.0) * (a0 + lx * (coef[c + 3, g, j1] - a0))
        if has_w:
            a0 = coef[6, g, j0]
            w_out[x] = a0 + lx * (coef[6, g, j1] - a0)


@njit(parallel=True, cache=True, fastmath=True)
def _lite_render_kernel(frame, coef, scale, out, pix):  # pragma: no cover - compiled
    # frame, out: (H, 3W) uint8 rows (HWC flattened per row); coef: (6, h, w).
    # pix (3,) float32: per-pixel chroma gate (lo, hi, amount) on the input's luma, levels.
    H, W3 = out.shape[0], out.shape[1]
    W = W3 // 3
    h, w = coef.shape[1], coef.shape[2]
    inv = 1.0 / scale
    # Column taps, shared by every row.
    cx0 = np.empty(W, np.int64)
    cx1 = np.empty(W, np.int64)
    wx = np.empty(W, np.float32)
    for x in range(W):
        i0, i1, lam = _src_index(x, inv, w)
        cx0[x] = i0
        cx1[x] = i1
        wx[x] = lam
    # Row taps; output rows with the same upper tap form one contiguous band.
    wy = np.empty(H, np.float32)
    band_start = np.full(h + 1, H, np.int64)
    for y in range(H - 1, -1, -1):
        i0, i1, lam = _src_index(y, inv, h)
        wy[y] = lam
        band_start[i0] = y
    for b in range(h - 1, -1, -1):
        if band_start[b] > band_start[b + 1]:
            band_start[b] = band_start[b + 1]
    # Separable bilinear: each grid row is up-sampled horizontally once per chunk of
    # bands (P as is, Q times 255) and reused as the lower row of one band and the
    # upper row of the next; each output row is then a vertical lerp plus the affine map.
    nchunks = min(h, _RENDER_CHUNKS)
    has_w = coef.shape[0] > 6
    kr, kg, kb = np.float32(_KR), np.float32(_KG), np.float32(_KB)
    lo, hi, half = np.float32(0.0), np.float32(255.0), np.float32(0.5)
    p_lo, p_amount = np.float32(pix[0]), np.float32(pix[2])
    p_inv = np.float32(1.0) / max(np.float32(pix[1]) - p_lo, np.float32(1e-6))
    one = np.float32(1.0)
    for cp in prange(nchunks):
        ck = np.int64(cp)  # prange indices may be unsigned: keep index arithmetic in int64
        g_begin = ck * h // nchunks
        g_end = (ck + 1) * h // nchunks
        up_p = np.empty((2, W3), np.float32)
        up_q = np.empty((2, W3), np.float32)
        up_w = np.ones((2, W), np.float32)
        dp = np.empty(W3, np.float32)
        dq = np.empty(W3, np.float32)
        dw = np.zeros(W, np.float32)
        v3 = np.empty(W3, np.float32)
        cur = 0
        _hup_row(coef, g_begin, cx0, cx1, wx, up_p[cur], up_q[cur], up_w[cur])
        for g in range(g_begin, g_end):
            y0 = band_start[g]
            y1 = band_start[g + 1]
            g1 = g + 1 if g < h - 1 else g
            nxt = 1 - cur
            _hup_row(coef, g1, cx0, cx1, wx, up_p[nxt], up_q[nxt], up_w[nxt])
            pa = up_p[cur]
            qa = up_q[cur]
            pb = up_p[nxt]
            qb = up_q[nxt]
            wa = up_w[cur]
            for k in range(W3):
                dp[k] = pb[k] - pa[k]
                dq[k] = qb[k] - qa[k]
            if has_w:
                wb = up_w[nxt]
                for x in range(W):
                    dw[x] = wb[x] - wa[x]
            for y in range(y0, y1):
                ly = wy[y]
                src = frame[y]
                dst = out[y]
                if not has_w:
                    for k in range(W3):
                        v = (pa[k] + ly * dp[k]) * np.float32(src[k]) + (qa[k] + ly * dq[k])
                        v = min(max(v, lo), hi)
                        dst[k] = np.uint8(v + half)
                    continue
                for k in range(W3):
                    v3[k] = (pa[k] + ly * dp[k]) * np.float32(src[k]) + (qa[k] + ly * dq[k])
                # chroma weight: out = Y + w * (out - Y), w in [0, 1] (0: neutral grey)
                for x in range(W):
                    r = v3[3 * x]
                    gg = v3[3 * x + 1]
                    b = v3[3 * x + 2]
                    yl = kr * r + kg * gg + kb * b
                    cw = wa[x] + ly * dw[x]
                    if p_amount > 0:
                        # the pixel's own signal: no chroma where its input luma is at black
                        t = (kr * np.float32(src[3 * x]) + kg * np.float32(src[3 * x + 1])
                             + kb * np.float32(src[3 * x + 2]) - p_lo) * p_inv
                        t = min(max(t, np.float32(0.0)), one)
                        cw *= one - p_amount * (one - t * t * (np.float32(3.0) - np.float32(2.0) * t))
                    v3[3 * x] = yl + cw * (r - yl)
                    v3[3 * x + 1] = yl + cw * (gg - yl)
                    v3[3 * x + 2] = yl + cw * (b - yl)
                for k in range(W3):
                    dst[k] = np.uint8(min(max(v3[k], lo), hi) + half)
            cur = nxt
    return out


@njit(parallel=True, cache=True, fastmath=True)
def _box_stats_kernel(frame, scale, mean, m1, m2):  # pragma: no cover - compiled
    # frame: (H, 3W) uint8 rows. Padding = clamped indices (replicate bottom/right).
    H, W3 = frame.shape[0], frame.shape[1]
    W = W3 // 3
    h, w = m1.shape[2], m1.shape[3]
    inv_n = np.float32(1.0 / (scale * scale * 255.0))
    inv_n2 = np.float32(1.0 / (scale * scale * 255.0 * 255.0))
    kr, kg, kb = np.float32(_KR), np.float32(_KG), np.float32(_KB)
    for ip in prange(h):
        i = np.int64(ip)
        acc = np.zeros(W3, np.float32)  # per-column sums over the cell's rows: R, G, B
        acc2 = np.zeros(W, np.float32)  # per-column sums of luma^2 (0..255 units)
        for dy in range(scale):
            row = frame[min(i * scale + dy, H - 1)]
            for k in range(W3):
                acc[k] += np.float32(row[k])
            for x in range(W):
                lum = kr * np.float32(row[3 * x]) + kg * np.float32(row[3 * x + 1]) + kb * np.float32(row[3 * x + 2])
                acc2[x] += lum * lum
        for j in range(w):
            sr = np.float32(0.0)
            sg = np.float32(0.0)
            sb = np.float32(0.0)
            s2 = np.float32(0.0)
            for dx in range(scale):
                x = min(j * scale + dx, W - 1)
                sr += acc[3 * x]
                sg += acc[3 * x + 1]
                sb += acc[3 * x + 2]
                s2 += acc2[x]
            mean[0, 0, i, j] = sr * inv_n
            mean[0, 1, i, j] = sg * inv_n
            mean[0, 2, i, j] = sb * inv_n
            m1[0, 0, i, j] = (kr * sr + kg * sg + kb * sb) * inv_n
            m2[0, 0, i, j] = s2 * inv_n2


@njit(parallel=True, cache=True, fastmath=True)
def _u8_to_float_flat_kernel(src, dst):  # pragma: no cover - compiled
    # src (H, 3W) uint8 -> dst (H, 3W) float32: same element order (channels-last target).
    k = np.float32(1.0 / 255.0)
    for y in prange(src.shape[0]):
        s = src[y]
        d = dst[y]
        for i in range(s.shape[0]):
            d[i] = np.float32(s[i]) * k


@njit(parallel=True, cache=True, fastmath=True)
def _u8_to_float_planar_kernel(src, dst):  # pragma: no cover - compiled
    # src (H, 3W) uint8 -> dst (3, H, W) float32, any strides.
    k = np.float32(1.0 / 255.0)
    W = dst.shape[2]
    for y in prange(src.shape[0]):
        s = src[y]
        for c in range(3):
            d = dst[c, y]
            for x in range(W):
                d[x] = np.float32(s[3 * x + c]) * k


@njit(parallel=True, cache=True, fastmath=True)
def _float_to_u8_flat_kernel(src, dst):  # pragma: no cover - compiled
    for y in prange(src.shape[0]):
        s = src[y]
        d = dst[y]
        for i in range(s.shape[0]):
            v = min(max(s[i] * np.float32(255.0), np.float32(0.0)), np.float32(255.0))
            d[i] = np.uint8(v + np.float32(0.5))


@njit(parallel=True, cache=True, fastmath=True)
def _float_to_u8_planar_kernel(src, dst):  # pragma: no cover - compiled
    # src (3, H, W) float32, any strides -> dst (H, 3W) uint8.
    W = src.shape[2]
    for y in prange(src.shape[1]):
        d = dst[y]
        r = src[0, y]
        g = src[1, y]
        b = src[2, y]
        for x in range(W):
            v = min(max(r[x] * np.float32(255.0), np.float32(0.0)), np.float32(255.0))
            d[3 * x] = np.uint8(v + np.float32(0.5))
            v = min(max(g[x] * np.float32(255.0), np.float32(0.0)), np.float32(255.0))
            d[3 * x + 1] = np.uint8(v + np.float32(0.5))
            v = min(max(b[x] * np.float32(255.0), np.float32(0.0)), np.float32(255.0))
            d[3 * x + 2] = np.uint8(v + np.float32(0.5))


# --------------------------------------------------------------------------- wrappers


#: frames the kernels read: uint8, or float32 on the same 0..255 scale (a denoised frame,
#: whose sub-level precision would be lost by rounding it to uint8 before the gain).
_FRAME_DTYPES = (np.dtype(np.uint8), np.dtype(np.float32))


def _check_frame(frame: np.ndarray, name: str = "frame") -> None:
    if not isinstance(frame, np.ndarray):
        raise TypeError(f"{name} must be a numpy array, got {type(frame).__name__}")
    if frame.dtype not in _FRAME_DTYPES or frame.ndim != 3 or frame.shape[2] != 3:
        raise ValueError(f"{name} must be an HxWx3 uint8 array (or float32 on the 0..255 scale), got {frame.dtype} {frame.shape}")
    if frame.shape[0] == 0 or frame.shape[1] == 0:
        raise ValueError(f"{name} is empty: {frame.shape}")


def _check_out(out: np.ndarray, shape: tuple[int, ...], dtype: np.dtype, name: str) -> None:
    if not isinstance(out, np.ndarray) or out.shape != shape or out.dtype != dtype:
        got = f"{out.dtype} {out.shape}" if isinstance(out, np.ndarray) else type(out).__name__
        raise ValueError(f"{name} must be a {np.dtype(dtype)} array of shape {shape}, got {got}")
    if not out.flags.writeable:
        raise ValueError(f"{name} is read-only")


def _rows(a: np.ndarray) -> np.ndarray | None:
    """(H, W, C) array whose pixels are packed within each row -> (H, W*C) view, else None.

    Accepts row padding (a crop of a wider buffer), unlike ``reshape``.
    """
    item = a.itemsize
    if a.strides[2] == item and a.strides[1] == a.shape[2] * item:
        return np.lib.stride_tricks.as_strided(
            a, (a.shape[0], a.shape[1] * a.shape[2]), (a.strides[0], item), writeable=a.flags.writeable
        )
    return None


def _frame_rows(frame: np.ndarray) -> np.ndarray:
    rows = _rows(frame)
    # Reversed-channel or otherwise strided views (e.g. bgr[..., ::-1]) cost one copy.
    return rows if rows is not None else _rows(np.ascontiguousarray(frame))  # type: ignore[return-value]


def padded_grid_shape(height: int, width: int, scale: int, pad_multiple: int) -> tuple[int, int]:
    """Grid (h, w) of a frame replicate-padded to ``pad_multiple`` and pooled by ``scale``.

    Raises:
        ValueError: ``scale`` or ``pad_multiple`` is not positive, or ``pad_multiple``
            is not a multiple of ``scale``.
    """
    if scale < 1 or pad_multiple < 1 or pad_multiple % scale:
        raise ValueError(f"need scale >= 1 and pad_multiple a multiple of scale, got {scale}, {pad_multiple}")
    hp = -(-height // pad_multiple) * pad_multiple
    wp = -(-width // pad_multiple) * pad_multiple
    return hp // scale, wp // scale


def _u8_out(out: np.ndarray | None, H: int, W: int) -> tuple[np.ndarray, np.ndarray]:
    """The (H, W, 3) uint8 output buffer (allocated when ``out`` is None) and its row view."""
    if out is None:
        out = np.empty((H, W, 3), np.uint8)
    else:
        _check_out(out, (H, W, 3), np.dtype(np.uint8), "out")
    out_rows = _rows(out)
    if out_rows is None:
        raise ValueError(f"out must have its pixels packed within rows, got strides {out.strides}")
    return out, out_rows


def lite_render_u8(frame: np.ndarray, coef: np.ndarray, scale: int, out: np.ndarray | None = None,
                   pixel_chroma: tuple[float, float, float] | None = None) -> np.ndarray:
    """Apply the ``lite`` model's low-resolution affine map to a uint8 frame.

    ``out = clip(round(255 * (P_up * frame / 255 + Q_up)))`` where ``P = coef[0:3]``,
    ``Q = coef[3:6]`` and ``*_up`` is the bilinear up-sampling of the grid to
    ``(h * scale, w * scale)`` with ``align_corners=False`` (edges clamped, as
    ``torch.nn.functional.interpolate``), cropped to the frame. Matches
    ``LiteNet.render`` within one uint8 level.

    Args:
        frame: H x W x 3 uint8 RGB frame (any strides), or float32 on the 0..255 scale.
        coef: (6, h, w) or (1, 6, h, w) float32 coefficients,
            ``models.lite_coefficients(aux, gain)[0]``; ``h * scale >= H``, ``w * scale >= W``.
            A 7th channel, when given, is a chroma weight ``w`` in [0, 1] applied after
            the affine map: ``out = Y + w_up * (out - Y)`` (Y: Rec.601 luma of out), so
            0 renders neutral grey (see ``realtime.tone``).
        pixel_chroma: with a 7th channel, ``(lo, hi, amount)``: the chroma weight is also
            multiplied per pixel by ``1 - amount * (1 - smoothstep(lo, hi, Y_in))``, Y_in
            the input pixel's Rec.601 luma in 8-bit levels (near-black pixels go neutral
            even inside a cell that holds signal). None: no per-pixel gate.
        scale: grid cell size in pixels.
        out: H x W x 3 uint8 array to write into (may be ``frame`` itself).

    Returns:
        ``out`` (a new array when ``out`` is None).

    Raises:
        TypeError: ``frame`` is not a numpy array.
        ValueError: wrong shapes or dtypes, or a grid too small for the frame.
    """
    _check_frame(frame)
    coef = np.asarray(coef)
    if coef.ndim == 4 and coef.shape[0] == 1:
        coef = coef[0]
    if coef.ndim != 3 or coef.shape[0] not in (6, 7):
        raise ValueError(f"coef must have shape (6, h, w) or (7, h, w), got {coef.shape}")
    if coef.dtype != np.float32:
        coef = coef.astype(np.float32)
    scale = int(scale)
    H, W = frame.shape[0], frame.shape[1]
    if scale < 1 or coef.shape[1] * scale < H or coef.shape[2] * scale < W:
        raise ValueError(f"grid {coef.shape[1:]} x scale {scale} does not cover the frame {H}x{W}")
    out, out_rows = _u8_out(out, H, W)
    pix = np.array(pixel_chroma if pixel_chroma is not None else (0.0, 1.0, 0.0), np.float32)
    _lite_render_kernel(_frame_rows(frame), np.ascontiguousarray(coef), scale, out_rows, pix)
    return out


def box_stats_u8(
    frame: np.ndarray,
    scale: int,
    pad_multiple: int,
    out: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-cell statistics of a uint8 frame, as ``LiteNet.box_stats(pad_to_multiple(x))``.

    The frame is replicate-padded (bottom/right) to a multiple of ``pad_multiple``,
    then averaged over ``scale`` x ``scale`` cells; values are on the [0, 1] scale and
    luma is Rec.601 (0.299 R + 0.587 G + 0.114 B).

    Args:
        frame: H x W x 3 uint8 RGB frame (any strides), or float32 on the 0..255 scale.
        scale: cell size in pixels.
        pad_multiple: the model's ``pad_multiple`` (a multiple of ``scale``).
        out: optional ``(mean, m1, m2)`` float32 buffers to fill, shapes as returned.

    Returns:
        ``(mean (1,3,h,w), m1 (1,1,h,w), m2 (1,1,h,w))`` float32: mean RGB, mean luma,
        mean luma squared.

    Raises:
        TypeError: ``frame`` is not a numpy array.
        ValueError: wrong shapes or dtypes, or inconsistent ``scale``/``pad_multiple``.
    """
    _check_frame(frame)
    h, w = padded_grid_shape(frame.shape[0], frame.shape[1], int(scale), int(pad_multiple))
    shapes = ((1, 3, h, w), (1, 1, h, w), (1, 1, h, w))
    if out is None:
        out = tuple(np.empty(s, np.float32) for s in shapes)  # type: ignore[assignment]
    else:
        if len(out) != 3:
            raise ValueError(f"out must be a (mean, m1, m2) tuple, got {len(out)} arrays")
        for arr, shape, name in zip(out, shapes, ("mean", "m1", "m2")):
            _check_out(arr, shape, np.dtype(np.float32), f"out {name}")
    mean, m1, m2 = out
    _box_stats_kernel(_frame_rows(frame), int(scale), mean, m1, m2)
    return mean, m1, m2


def u8_to_float_chw(frame: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """H x W x 3 uint8 -> (3, H, W) float32 in [0, 1].

    ``out`` may have any strides: ``tensor.numpy()[0]`` of a ``(1, 3, H, W)`` tensor in
    ``torch.channels_last`` format gives a view whose memory is HWC, the fast layout
    for oneDNN on CPU.

    Args:
        frame: H x W x 3 uint8 frame.
        out: (3, H, W) or (1, 3, H, W) float32 array to write into.

    Returns:
        ``out`` (a new contiguous (3, H, W) array when None).

    Raises:
        TypeError: ``frame`` is not a numpy array.
        ValueError: wrong shapes or dtypes.
    """
    _check_frame(frame)
    H, W = frame.shape[0], frame.shape[1]
    if out is None:
        out = np.empty((3, H, W), np.float32)
    target = out[0] if isinstance(out, np.ndarray) and out.ndim == 4 and out.shape[0] == 1 else out
    _check_out(target, (3, H, W), np.dtype(np.float32), "out")
    rows = _frame_rows(frame)
    flat = _rows(target.transpose(1, 2, 0))
    if flat is not None:  # channels-last memory: a straight element-wise conversion
        _u8_to_float_flat_kernel(rows, flat)
    else:
        _u8_to_float_planar_kernel(rows, target)
    return out


def float_chw_to_u8(arr: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """(3, H, W) float in [0, 1] -> H x W x 3 uint8, ``clip(round(255 * arr))``.

    Args:
        arr: (3, H, W) or (1, 3, H, W) float32 array (any strides).
        out: H x W x 3 uint8 array to write into.

    Returns:
        ``out`` (a new array when None).

    Raises:
        ValueError: wrong shapes or dtypes.
    """
    if not isinstance(arr, np.ndarray):
        raise ValueError(f"arr must be a numpy array, got {type(arr).__name__}")
    if arr.ndim == 4 and arr.shape[0] == 1:
        arr = arr[0]
    if arr.ndim != 3 or arr.shape[0] != 3:
        raise ValueError(f"arr must have shape (3, H, W), got {arr.shape}")
    if arr.dtype != np.float32:
        arr = arr.astype(np.float32)
    H, W = arr.shape[1], arr.shape[2]
    out, out_rows = _u8_out(out, H, W)
    flat = _rows(arr.transpose(1, 2, 0))
    if flat is not None:
        _float_to_u8_flat_kernel(flat, out_rows)
    else:
        _float_to_u8_planar_kernel(arr, out_rows)
    return out


def warmup() -> None:
    """Compile (or load from the on-disk cache) every kernel for the common layouts.

    Covers contiguous frames, reversed-channel views (``bgr[..., ::-1]``) and
    channels-last float buffers. Takes seconds on the first run, well under a second
    once the numba cache exists.
    """
    frame = np.zeros((8, 8, 3), np.uint8)
    views = (frame, frame[..., ::-1])
    coef = np.zeros((6, 2, 2), np.float32)
    chw = np.zeros((3, 8, 8), np.float32)
    chw_cl = np.zeros((8, 8, 3), np.float32).transpose(2, 0, 1)
    coef7 = np.zeros((7, 2, 2), np.float32)
    for f in views + (frame.astype(np.float32),):
        lite_render_u8(f, coef, 4, out=np.empty((8, 8, 3), np.uint8))
        lite_render_u8(f, coef7, 4, out=np.empty((8, 8, 3), np.uint8))
        box_stats_u8(f, 4, 8)
    for f in views:
        u8_to_float_chw(f, chw)
        u8_to_float_chw(f, chw_cl)
    float_chw_to_u8(chw)
    float_chw_to_u8(chw_cl)
    logger.debug("numba kernels ready")
