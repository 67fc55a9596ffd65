"""Temporal smoothing of the illumination between ``model.estimate`` and ``model.render``.

Why the illumination and not the output pixels
    Per-frame enhancement networks flicker on video: their brightness decision jumps
    from frame to frame with sensor noise and with the camera's exposure jitter. That
    flicker lives in the low-frequency brightness, which every model here exposes as
    ``illum`` (``aux, illum = model.estimate(x)``; ``out = model.render(x, aux, illum)``).
    Averaging ``illum`` over time removes the flicker without blurring detail or motion
    of the full-resolution frame, and costs almost nothing for ``lite``, whose ``illum``
    is a small grid. Averaging output pixels instead would smear every moving edge.

Exposure normalisation
    The model contract says ``illum`` scales with a uniform input exposure change ``k``
    like ``k ** e`` (``e = model.illum_exposure``: -1 for ``sri``, where ``I`` is in the
    input's units; +1 for ``lite``, whose ``illum`` is a gain; 0 for ``blnet``, whose
    ``illum`` is the output's illumination). With ``exposure_t`` the mean luma of input
    frame ``t``, the smoother averages the normalised ``n_t = illum_t * exposure_t ** e``
    and hands back ``illum'_t = ema_t * exposure_t ** -e``. For ``e != 0`` this
    cancels exposure flicker *exactly*, even flicker the network passes straight
    through (an untrained ``sri`` whose ``I`` is constant gives an output proportional to
    the exposure; after normalisation its output is exposure-independent), while a real
    exposure change (lights switched on) is followed instantly because the current
    exposure de-normalises. For ``e == 0`` (``blnet``) the illumination is already in
    output units and is smoothed directly: exposure flicker is removed only in so far
    as it shows up as jitter of ``illum``. If the network normalises brightness
    well, the output does not flicker in the first place. Whatever jitter its ``L_out``
    has is averaged away. Exposure jitter that reaches the output through the
    reflectance ``aux`` is not touched.

Motion: per-pixel EMA weight
    ``ema_t = alpha * ema_{t-1} + (1 - alpha) * n_t`` with a per-pixel
    ``alpha = strength * exp(-d / motion_sensitivity)``, where ``d`` is the symmetric
    relative difference ``2 |n_t - g ema| / (n_t + g ema + eps)`` after removing the
    frame's global gain ``g = mean(n_t) / mean(ema)``. Where the scene moves, the
    illumination changes locally, ``d`` is large and the EMA lets go (no ghost trails
    behind a moving light); global brightness jitter does not count as motion, because
    ``g`` absorbs it, so it stays smoothed.

Scene cuts
    A cut resets the EMA to the current frame (the output jumps to the new scene
    immediately). A cut is declared per sample when the mean structural change ``d``
    exceeds ``cut_threshold``, when the global level of ``n`` changes by more than a
    factor ``1 + cut_threshold``, or when the input exposure itself jumps by more than
    ``cut_exposure_ratio``. Exposure jitter of +-15 % stays below all three. A cut that
    slips under the thresholds is still followed within a few frames: its pixels
    mostly differ by more than ``motion_sensitivity``, so their ``alpha`` is near 0.

Device behaviour
    Everything is tensor ops on the illumination's device and dtype: no ``.item()``,
    no host syncs on CUDA (cut decisions are 0-dim/(N,1,1,1) boolean tensors fed to
    ``torch.where``). State buffers are allocated once per stream shape and updated in
    place; a change of shape, dtype or device resets the state. The input is never
    modified. Batches are N independent streams (one state per sample).
"""
from __future__ import annotations

import math

import torch
from torch import Tensor

__all__ = ["TemporalSmoother"]


class TemporalSmoother:
    """Exposure-normalised, motion-adaptive EMA of a model's illumination, with cut resets.

    Usage::

        smoother = TemporalSmoother(0.8, exposure_exponent=model.illum_exposure)
        for x in frames:                       # (1, 3, H, W) float in [0, 1]
            aux, illum = model.estimate(x)
            illum = smoother(illum, exposure=luminance(x).mean())
            out = model.render(x, aux, illum)

    Args:
        strength: EMA weight of the past in [0, 1); 0 turns smoothing off. 0.8 averages
            over about 1 / (1 - 0.8) = 5 frames on a static scene.
        exposure_exponent: ``model.illum_exposure`` (-1, 0 or +1; any real is accepted).
        cut_threshold: mean relative structural change, and relative change of the
            global illumination level, above which a frame starts a new scene.
        motion_sensitivity: relative per-pixel illumination change at which the EMA
            weight has fallen to ``strength / e``; smaller follows motion sooner but
            smooths noise less.
        cut_exposure_ratio: a frame-to-frame input exposure ratio above this (or below
            its inverse) is a cut too.
        eps: floor of the exposure, and regulariser of relative differences (as a
            fraction of the frame's mean normalised illumination).

    Raises:
        ValueError: a parameter out of range.
    """

    def __init__(
        self,
        strength: float = 0.8,
        exposure_exponent: int = 0,
        cut_threshold: float = 0.5,
        motion_sensitivity: float = 0.25,
        *,
        cut_exposure_ratio: float = 2.5,
        eps: float = 1e-3,
    ) -> None:
        if not 0.0 <= strength < 1.0:
            raise ValueError(f"strength must be in [0, 1), got {strength}")
        if cut_threshold <= 0.0 or motion_sensitivity <= 0.0 or cut_exposure_ratio <= 1.0 or eps <= 0.0:
            raise ValueError(
                "need cut_threshold > 0, motion_sensitivity > 0, cut_exposure_ratio > 1 and eps > 0, got "
                f"{cut_threshold}, {motion_sensitivity}, {cut_exposure_ratio}, {eps}"
            )
        self.strength = float(strength)
        self.exposure_exponent = exposure_exponent
        self.cut_threshold = float(cut_threshold)
        self.motion_sensitivity = float(motion_sensitivity)
        self.cut_exposure_ratio = float(cut_exposure_ratio)
        self.eps = float(eps)
        self._log_level_cut = math.log1p(self.cut_threshold)
        self._log_exposure_cut = math.log(self.cut_exposure_ratio)
        self.reset()

    def reset(self) -> None:
        """Forget the past: the next frame is taken as is and starts the average."""
        self._ema: Tensor | None = None
        self._prev_exposure: Tensor | None = None
        self._n: Tensor | None = None
        self._work: Tensor | None = None
        self._diff: Tensor | None = None
        #: per-sample cut flags of the last frame, (N,1,1,1) bool (a tensor: reading it syncs).
        self.last_cut: Tensor | None = None

    @property
    def enabled(self) -> bool:
        return self.strength > 0.0

    def _exposure_tensor(self, exposure: Tensor | float, illum: Tensor) -> Tensor:
        n = illum.shape[0]
        if isinstance(exposure, Tensor):
            e = exposure.detach().to(device=illum.device, dtype=illum.dtype, non_blocking=True)
            if e.numel() == 1:
                e = e.reshape(1, 1, 1, 1).expand(n, 1, 1, 1)
            elif e.numel() == n:
                e = e.reshape(n, 1, 1, 1)
            else:
                raise ValueError(f"exposure must have 1 or N={n} elements, got shape {tuple(exposure.shape)}")
        else:
            # A fill kernel, not a host-to-device copy.
            e = torch.full((n, 1, 1, 1), float(exposure), device=illum.device, dtype=illum.dtype)
        return e.clamp(min=self.eps)

    def _state_matches(self, illum: Tensor) -> bool:
        ema = self._ema
        return ema is not None and ema.shape == illum.shape and ema.dtype == illum.dtype and ema.device == illum.device

    @torch.no_grad()
    def __call__(self, illum: Tensor, exposure: Tensor | float, *, out: Tensor | None = None) -> Tensor:
        """Smooth one frame's illumination.

        Args:
            illum: (N, C, h, w) illumination of the frame (any resolution, floating point).
            exposure: mean luma of the input frame, a float or a tensor of 1 or N elements.
            out: optional tensor like ``illum`` to write the result into (not ``illum``).

        Returns:
            The smoothed illumination, same shape/dtype/device as ``illum`` (``out`` when
            given). With ``strength == 0`` it equals ``illum`` (a copy into ``out`` when
            given, else ``illum`` itself).

        Raises:
            ValueError: ``illum`` not 4-D floating point, or an exposure of the wrong size.
        """
        if illum.dim() != 4 or not illum.is_floating_point():
            raise ValueError(f"illum must be a floating (N, C, h, w) tensor, got {illum.dtype} {tuple(illum.shape)}")
        if out is not None and (out.shape != illum.shape or out.dtype != illum.dtype or out.device != illum.device):
            raise ValueError("out must match illum in shape, dtype and device")
        if not self.enabled:
            return out.copy_(illum) if out is not None else illum
        expo = self._exposure_tensor(exposure, illum)
        e = self.exposure_exponent

        if not self._state_matches(illum):
            self._ema = torch.empty_like(illum)
            self._n = torch.empty_like(illum)
            self._work = torch.empty_like(illum)
            self._diff = torch.empty_like(illum)
            self._prev_exposure = None
        elif self._ema.is_inference() and not torch.is_inference_mode_enabled():  # type: ignore[union-attr]
            # Buffers made under inference_mode can't be updated in place outside it.
            self._ema = self._ema.clone()  # type: ignore[union-attr]
            self._n, self._work, self._diff = (torch.empty_like(illum) for _ in range(3))
            if self._prev_exposure is not None:
                self._prev_exposure = self._prev_exposure.clone()

        assert self._ema is not None and self._n is not None and self._work is not None and self._diff is not None
        n_t, ema, work, diff = self._n, self._ema, self._work, self._diff
        if e != 0:
            torch.mul(illum, expo.pow(e), out=n_t)
        else:
            n_t.copy_(illum)

        if self._prev_exposure is None:
            # First frame of a stream: nothing to average with.
            ema.copy_(n_t)
            self.last_cut = torch.ones_like(expo, dtype=torch.bool)
        else:
            dims = (1, 2, 3)
            mu_n = n_t.mean(dim=dims, keepdim=True)
            mu_ema = ema.mean(dim=dims, keepdim=True).clamp(min=1e-12)
            gain = mu_n / mu_ema
            floor = mu_n * self.eps + 1e-12
            # d = 2 |n - g ema| / (n + g ema + eps): symmetric relative change, global gain removed.
            torch.mul(ema, gain, out=work)
            torch.sub(n_t, work, out=diff).abs_()
            work.add_(n_t).add_(floor)
            diff.mul_(2.0).div_(work)
            structural = diff.mean(dim=dims, keepdim=True)
            level = gain.clamp(min=1e-12).log().abs()
            jump = (expo / self._prev_exposure).log().abs()
            cut = (structural > self.cut_threshold) | (level > self._log_level_cut) | (jump > self._log_exposure_cut)
            self.last_cut = cut
            # alpha = strength * exp(-d / s), zero on a cut; reuse diff's memory.
            alpha = diff.mul_(-1.0 / self.motion_sensitivity).exp_().mul_(self.strength)
            alpha.masked_fill_(cut, 0.0)
            # ema <- n + alpha * (ema - n)
            ema.sub_(n_t).mul_(alpha).add_(n_t)

        self._prev_exposure = expo.clone() if self._prev_exposure is None else self._prev_exposure.copy_(expo)
        if out is None:
            out = torch.empty_like(illum)
        if e != 0:
            torch.mul(ema, expo.pow(-e), out=out)
        else:
            out.copy_(ema)
        return out
