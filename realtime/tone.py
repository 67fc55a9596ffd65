"""How much to brighten, and where not to: the exposure policy of the real-time path.

A network trained on LOL pairs learns to lift every frame to the brightness of a
daylight reference (mean ~0.45). On real dark video that is the wrong goal: a night
scene lifted to daylight whitens its sky, draws halos around the lights, and turns
the parts of the frame that hold no signal (crushed blacks, the 4:2:0 chroma of
near-black pixels) into saturated, blocky false colour. The policy here works on the
``lite`` network's small grid (a few thousand cells, so it costs nothing) and decides:

* **Exposure** (keep night looking like night): the output mean luma follows
  ``target * (m / target) ** night`` of the input mean ``m`` (never darker than the
  input), times ``2 ** exposure`` for users who want more or less. The network still
  decides the local distribution of light (shadows lifted more than lit areas); the
  policy only rescales its overall gain.
* **Black level**: the darkest cells (``black_quantile`` of the cells, at most
  ``black_max`` levels) are real video's black (limited range, a camera's offset); the
  gain applies to what lies above it, so black stays black instead of turning grey.
* **Highlights and halos**: no cell darker than the frame's mean cell is lifted above
  ``y ** lift_limit`` of its own luma ``y`` (the dark, noisy regions); brighter cells
  follow the mean cell's cap times ``(y / mean) ** highlight_lift``, so their gain never
  exceeds the mean's: bright areas (a dusk sky, a lamp) keep their contrast without
  clipping to white, and the step around them (the halo) stays small.
* **Signal floor**: cells whose signal above black is below the noise left after the
  temporal denoiser plus ``floor_levels`` keep their own (dark) level: the gain fades to
  1 there (``gain ** s``, ``s`` a smooth step), and the gain map is smoothed on the grid
  (log domain) so that it never steps from cell to cell along an edge.
* **De-quantisation** (``dequant``): near black, each cell's mean is replaced by a
  smooth estimate within its uncertainty (``dequant`` floors), so the codec's flat dark
  blocks (whole blocks at 0 beside blocks at 2) render as a gradient instead of black
  holes in a lifted field, and a night sky one level above the camera's clipped black
  fades into it over a tenth of the frame instead of ending in a hard edge; only what
  lies within ``dequant_reach`` uncertainties of black takes part (a normalised blur,
  brighter cells have no weight), so a light does not lend its dark surroundings a glow.
* **Chroma floor**: the colour of a pixel is kept in full only where its cell holds
  signal well above the floor (``chroma_floor`` floors); below, it fades to neutral
  grey (the 7th coefficient channel, applied per pixel by the render kernel).
  The same floors also gate each pixel by its own input luma (``pixel_chroma``): a
  near-black pixel inside a cell that holds signal elsewhere (the dark side of a lit
  object) is rendered neutral too, since the 4:2:0 chroma of such pixels is noise.
* **Monochrome input** (``mono_colour``): an infrared camera's grey picture keeps no
  colour correction, so it stays grey.
* **Detail after the denoiser** (``detail_frames``): the network weighs each cell's
  full-resolution detail against the noise of one frame, like a Wiener gain; a frame
  from the temporal denoiser holds a fraction of that noise, so more of the detail is
  kept. **Edges** (``detail_edge``): a cell whose variance is far above the measured
  noise keeps its detail in full.
* **Auto-bypass**: a frame that is already well exposed (smoothed input mean between
  ``bypass_start`` and ``bypass_end``) fades to the input itself.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from models._layers import luminance

__all__ = ["ToneConfig", "policy_coefficients", "pixel_chroma_gate", "black_level", "smoothstep", "exposure_target",
           "bypass_weight"]



@dataclass(frozen=True)
class ToneConfig:
    #: exposure compensation in EV: the output brightness target times 2 ** exposure.
    exposure: float = 0.0
    #: brightness of a fully lifted frame (the mean of the LOL references is ~0.45).
    target: float = 0.45
    #: how much of the darkness is kept: target(m) = target * (m / target) ** night
    #: (0 lifts every frame to ``target``, 1 leaves the brightness as it is).
    night: float = 0.4
    #: smoothed input mean luma at which the auto-bypass starts / is complete.
    bypass_start: float = 0.30
    bypass_end: float = 0.42
    #: added to the measured noise (8-bit levels): quantisation and codec floor.
    floor_levels: float = 0.5
    #: share of the input's noise left after the temporal denoiser on a static scene (a
    #: recursive average with k = 0.09 keeps sqrt(k / (2 - k)) ~ 0.2 of it; 1 without it).
    residual_noise: float = 0.3
    #: colour is kept in full above this many floors, neutral grey below one floor.
    chroma_floor: float = 10.0
    #: how much the chroma floor also applies per pixel, on the pixel's own input luma
    #: (0: per grid cell only) ...
    pixel_chroma: float = 1.0
    #: ... with floors this many times larger than a cell's (a pixel keeps more noise
    #: than a cell's average).
    pixel_floors: float = 2.0
    #: largest overall gain.
    max_gain: float = 32.0
    #: no cell's output luma above ``y ** lift_limit * 2 ** exposure`` of its input luma ``y``
    #: (cells darker than the frame's mean cell) ...
    lift_limit: float = 0.4
    #: ... and above the mean cell's cap times ``(y / mean) ** highlight_lift`` (brighter
    #: cells: their gain never exceeds the mean cell's, so highlights keep their contrast
    #: without whitening; ``lift_limit`` here would flatten them).
    highlight_lift: float = 0.7
    #: how much of the network's colour correction is kept (0: a pure brightness gain,
    #: the input's hues; 1: the network's colour gains as they are).
    colour: float = 0.5
    #: a frame whose cells hold less colour than this (the sum over the cells of
    #: ``max - min`` of their mean RGB over the sum of their ``max``) is monochrome, an
    #: infrared camera's night picture: the network's colour correction fades out (between
    #: half and 1.5 times this), so grey input stays grey instead of taking a cast. The
    #: dark-video benchmark's colour clips hold 0.008 or more (a grey kitchen at 5/255),
    #: the shared infrared clip 0.0006 (docs/BENCHMARKS.md §14). 0: off.
    mono_colour: float = 0.004
    #: de-quantisation of the dark cells: each cell's mean is replaced by a smooth
    #: (blurred) estimate of it, kept within ``dequant`` floors of the cell's own mean. In
    #: the dark, 8-bit steps and the codec's flat blocks (whole blocks at 0 beside blocks
    #: at 2) are below the noise floor; multiplied by a large gain they would render as
    #: black holes and steps. 0: off.
    dequant: float = 1.5
    #: passes of the ``dequant_kernel``-cell box blur of the smooth estimate (about a
    #: Gaussian of ``sqrt(passes * (k*k - 1) / 12)`` cells: ~10 cells, a tenth of the
    #: frame's short side). It is wide on purpose: the edge between two flat dark areas
    #: one level apart (a night sky at black + 1 beside the camera's clipped black)
    #: becomes a long gradient; a narrow blur leaves a step that the gain draws as a hard
    #: edge across the sky.
    dequant_passes: int = 3
    dequant_kernel: int = 21
    #: only cells within this many uncertainties of black are smoothed; brighter cells
    #: weigh less in the smooth estimate and nothing above twice this (a light must not
    #: lend its dark surroundings a glow).
    dequant_reach: float = 3.0
    #: noise variance the temporal denoiser takes out, as a factor (1: none), for the
    #: network's detail weight. The network chooses per cell how much full-resolution
    #: detail to keep against the noise of a single frame, like a Wiener gain
    #: ``a = s / (s + n)``; after the denoiser the frame holds about ``n / detail_frames``
    #: of that noise, so the weight becomes ``a d / (a d + 1 - a)``.
    detail_frames: float = 4.0
    #: edges keep their detail: a cell whose luma std is this many times one frame's noise
    #: at its brightness (as the temporal denoiser measures it) is an edge, a lane line, a
    #: sign, and its weight becomes at least ``1 - (detail_edge * noise)**2 / var`` whatever
    #: the network chose (it rendered thin bright lines as wide soft bands). Far above the
    #: noise only: finer texture keeps the network's weight, since more detail there keeps
    #: more of the noise (docs/BENCHMARKS.md §17). 0: off; no effect without the denoiser.
    detail_edge: float = 6.0
    #: the black level is this quantile of the cells' mean RGB, per channel ...
    black_quantile: float = 0.02
    #: ... and at most this many 8-bit levels.
    black_max: float = 2.0

    def __post_init__(self):
        if not -4.0 <= self.exposure <= 4.0:
            raise ValueError(f"exposure must be in [-4, 4] EV, got {self.exposure}")
        if not 0.0 <= self.night <= 1.0:
            raise ValueError(f"night must be in [0, 1], got {self.night}")
        if self.dequant_kernel < 1 or self.dequant_kernel % 2 == 0 or self.dequant_passes < 0:
            raise ValueError(f"dequant_kernel must be a positive odd number and dequant_passes >= 0, "
                             f"got {self.dequant_kernel}, {self.dequant_passes}")
        if self.detail_edge < 0.0:
            raise ValueError(f"detail_edge must be >= 0 (0: off), got {self.detail_edge}")
        if self.detail_frames < 1.0:
            raise ValueError(f"detail_frames must be >= 1 (1: off), got {self.detail_frames}")
        if self.mono_colour < 0.0:
            raise ValueError(f"mono_colour must be >= 0 (0: off), got {self.mono_colour}")
        if not 0.0 < self.bypass_start < self.bypass_end:
            raise ValueError(f"need 0 < bypass_start < bypass_end, got {self.bypass_start}, {self.bypass_end}")


def smoothstep(lo: float | Tensor, hi: float | Tensor, x: Tensor) -> Tensor:
    t = ((x - lo) / (hi - lo)).clamp(0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)


def exposure_target(m: float, cfg: ToneConfig) -> float:
    """Output mean luma for an input mean luma ``m`` (both in [0, 1])."""
    m = max(float(m), 1e-4)
    t = cfg.target * (m / cfg.target) ** cfg.night * 2.0**cfg.exposure
    return float(min(max(t, m if cfg.exposure >= 0 else 0.0), 0.95))


def bypass_weight(m: float, cfg: ToneConfig) -> float:
    """1 where the enhancement applies in full, fading to 0 for well-exposed input."""
    t = min(max((float(m) - cfg.bypass_start) / (cfg.bypass_end - cfg.bypass_start), 0.0), 1.0)
    return 1.0 - t * t * (3.0 - 2.0 * t)


def _blur(x: Tensor, passes: int = 2, k: int = 3) -> Tensor:
    """Repeated k x k box filter on the grid (replicate borders): about a Gaussian.

    One CPU frame goes through OpenCV's box filter (same result to float rounding, ~15x
    faster than ``avg_pool2d`` on a grid of this size); other tensors through torch.
    """
    if x.device.type == "cpu" and x.shape[0] == 1 and x.dtype == torch.float32:
        a = x[0].permute(1, 2, 0).contiguous().numpy()
        for _ in range(passes):
            a = cv2.blur(a, (k, k), borderType=cv2.BORDER_REPLICATE)
        t = torch.from_numpy(np.ascontiguousarray(a).reshape(x.shape[2], x.shape[3], x.shape[1]))
        return t.permute(2, 0, 1)[None].contiguous()
    x = x.contiguous()  # avg_pool2d's channels-last path is several times slower here
    for _ in range(passes):
        x = F.avg_pool2d(F.pad(x, (k // 2,) * 4, mode="replicate"), k, stride=1)
    return x


def black_level(mean: Tensor, cfg: ToneConfig) -> Tensor:
    """Per-channel black level of a frame from its cells' mean RGB (N, 3, h, w) -> (N, 3, 1, 1).

    The ``black_quantile`` of the cells, at most ``black_max`` levels: real video's
    blacks are rarely 0 (limited-range video, a camera's black offset, codec lift) and
    often tinted; what sits at that level holds no signal and must stay black.
    """
    flat = mean.flatten(2).float()
    k = max(1, int(round(cfg.black_quantile * flat.shape[2])))
    q = flat.kthvalue(k, dim=2).values[..., None, None]  # O(n), unlike torch.quantile's sort
    return q.clamp(max=cfg.black_max / 255.0).to(mean.dtype)


def pixel_chroma_gate(floor: float, black: Tensor, m: float, cfg: ToneConfig, strength: float = 1.0) -> tuple[float, float, float]:
    """``(lo, hi, amount)`` of the render kernel's per-pixel chroma gate
    (``realtime.kernels.lite_render_u8``): in 8-bit levels of input luma, one and
    ``chroma_floor`` floors above the black level, faded by the auto-bypass and the
    user's strength like the rest of the policy."""
    f = cfg.pixel_floors * (cfg.residual_noise * floor + cfg.floor_levels)
    by = float(luminance(black.float()).mean()) * 255.0
    return by + f, by + cfg.chroma_floor * f, cfg.pixel_chroma * bypass_weight(m, cfg) * strength


def policy_coefficients(
    aux: Tensor, gain: Tensor, m: float, floor: float, cfg: ToneConfig, strength: float = 1.0, black: Tensor | None = None,
    denoised: bool = False, stats: tuple[Tensor, Tensor] | None = None, noise: tuple[float, float] | None = None,
) -> Tensor:
    """``lite``'s grid output -> the render kernel's (N, 7, h, w) coefficients under the policy.

    Args:
        aux: (N, 4, h, w): detail weight ``a`` and the cells' mean RGB (as ``LiteNet.estimate``).
        gain: (N, 3, h, w) colour gain (after temporal smoothing).
        m: the (temporally smoothed) mean luma of the input frame, in [0, 1].
        floor: noise std of the input at black, in 8-bit levels.
        cfg: the policy.
        strength: the user's blend with the input, in (0, 1].
        black: (N, 3, 1, 1) black level in [0, 1] (default: :func:`black_level` of this frame).
        denoised: the frame comes from the temporal denoiser (``detail_frames`` applies).
        stats: the cells' mean luma and mean squared luma (``box_stats``), for ``detail_edge``.
        noise: ``(a, b)``: the variance ``a + b * v`` of a frame-to-average difference at
            brightness ``v`` in 8-bit levels (``TemporalDenoiser.noise``), for ``detail_edge``.

    Returns:
        P (3 ch), Q (3 ch) as ``models.lite_coefficients`` (``out = P * x + Q``) and the
        chroma weight (1 ch).
    """
    a, mean = aux[:, :1], aux[:, 1:4]
    if denoised and cfg.detail_frames != 1.0:
        # the noise the network weighed the detail against is divided by the frames
        # averaged (the denominator is 1 + a (d - 1) >= 1)
        a = a * cfg.detail_frames / (a * cfg.detail_frames + (1.0 - a))
    if cfg.detail_edge > 0 and stats is not None and noise is not None:
        # a Wiener gain against (detail_edge x one frame's noise)^2: 0 for all but edges
        m1, m2 = stats
        var = (m2 - m1 * m1).clamp(min=0.0) * (255.0 * 255.0)
        nvar = (noise[0] + noise[1] * 255.0 * m1) / 2.0  # a frame-to-average difference holds two frames' noise
        a = torch.maximum(a, (1.0 - cfg.detail_edge**2 * nvar / var.clamp(min=1e-6)).clamp(0.0, 1.0))
    if black is None:
        black = black_level(mean, cfg)
    f = (cfg.residual_noise * floor + cfg.floor_levels) / 255.0
    if cfg.dequant > 0:
        # near black, a smooth estimate of each cell within its uncertainty: a field of
        # flat dark blocks renders as a gradient. Only cells within ``dequant_reach``
        # uncertainties of black take part (a normalised blur: brighter cells have no
        # weight), so a light lends its dark surroundings no glow; cells above twice that
        # are left as they are.
        d = cfg.dequant * f
        r = cfg.dequant_reach * d
        near = smoothstep(r, 2.0 * r, luminance(mean - black))
        wgt = 1.0 - near
        acc = _blur(torch.cat([torch.minimum(mean, black + r) * wgt, wgt], dim=1), cfg.dequant_passes, cfg.dequant_kernel)
        smooth = acc[:, :3] / acc[:, 3:].clamp(min=1e-6)
        dq = torch.minimum(torch.maximum(smooth, mean - d), mean + d)
        mean = dq + near * (mean - dq)
    sig = (mean - black).clamp(min=0.0)  # what the cells hold above black
    ys = luminance(sig)
    # colour: keep ``colour`` of the network's colour correction, the rest is a luma gain
    y_in = luminance(mean)  # the cells' input luma
    g_lum = (luminance(gain * mean) / y_in.clamp(min=1e-6)).clamp(min=1e-6)
    mx, mn = mean.amax(dim=1, keepdim=True), mean.amin(dim=1, keepdim=True)
    colourful = (mx - mn).sum(dim=(1, 2, 3), keepdim=True) / mx.sum(dim=(1, 2, 3), keepdim=True).clamp(min=1e-6)
    colour = cfg.colour * smoothstep(0.5 * cfg.mono_colour, 1.5 * cfg.mono_colour, colourful) if cfg.mono_colour > 0 else cfg.colour
    gain = g_lum * (gain.clamp(min=1e-6) / g_lum) ** colour
    # signal floor: the gain fades to 1 where the cell holds nothing above black (after
    # the de-quantisation, a cell a fraction of a floor above black is a smooth estimate,
    # not a lone 8-bit step, so the fade can be narrow: 0.25..1.5 floors before it)
    s = smoothstep(0.05 * f, 0.4 * f, ys)
    # smooth in space (log domain): a gain that steps from cell to cell would draw the
    # cell grid into the picture along every edge between signal and black
    gain = _blur(s * torch.log(gain)).exp()
    # exposure: rescale so that the output mean hits the target (the rendered cell is
    # ``P * mean + Q = gain * (mean - black)`` with the black level taken out below)
    out_mean = luminance(gain * sig).mean(dim=(1, 2, 3), keepdim=True).clamp(min=1e-4)
    k = (exposure_target(m, cfg) / out_mean).clamp(min=1.0, max=cfg.max_gain)
    gain = gain * k
    # highlights and halos: no cell brighter than the curve y ** lift_limit of its own
    # luma (bright areas keep nearly their level, dark ones may be lifted a lot)
    y = y_in.clamp(1e-6, 1.0)
    cell_out = luminance(gain * sig).clamp(min=1e-6)
    ym = y_in.mean(dim=(1, 2, 3), keepdim=True).clamp(1e-6, 1.0)
    cap = torch.where(y < ym, y**cfg.lift_limit, ym**cfg.lift_limit * (y / ym) ** cfg.highlight_lift)
    cap = (cap * 2.0**cfg.exposure).clamp(max=1.0)  # --exposure moves the cap too
    gain = gain * torch.minimum(torch.ones_like(cell_out), torch.maximum(cap, y) / cell_out)
    b = bypass_weight(m, cfg) * strength
    p = gain * a
    q = gain * (1.0 - a) * mean - gain * black  # out = gain * (a x + (1 - a) mean - black)
    p = 1.0 + b * (p - 1.0)  # the bypass and the user's strength blend with the input
    q = b * q
    w = smoothstep(f, cfg.chroma_floor * f, ys)
    w = 1.0 + b * (w - 1.0)
    return torch.cat([p, q, w], dim=1)
