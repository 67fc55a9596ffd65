"""TemporalSmoother: exposure-flicker removal, cut resets, motion without ghosts, tensor hygiene."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from realtime.smoothing import TemporalSmoother


def _luma(x: torch.Tensor) -> torch.Tensor:
    return 0.299 * x[:, 0:1] + 0.587 * x[:, 1:2] + 0.114 * x[:, 2:3]


class _PartialTracker:
    """sri-like stand-in (e = -1): I tracks only the square root of the exposure,
    so half of the exposure flicker reaches the output x / I."""

    illum_exposure = -1

    def estimate(self, x):
        m = _luma(x).mean(dim=(1, 2, 3), keepdim=True)
        return None, (0.4 * m.sqrt()).expand(-1, 1, x.shape[-2], x.shape[-1])

    def render(self, x, aux, illum):
        return (x / illum.clamp(min=1e-3)).clamp(0.0, 1.0)


class _MeanIllum:
    """blnet-like stand-in (e = 0): exposure-invariant reflectance, output illumination
    proportional to the frame mean, so all the exposure flicker reaches the output."""

    illum_exposure = 0

    def estimate(self, x):
        m = _luma(x).mean(dim=(1, 2, 3), keepdim=True)
        r = (x / (4.0 * m)).clamp(0.0, 1.0)
        return r, (6.0 * m).expand(-1, 1, x.shape[-2], x.shape[-1])

    def render(self, x, aux, illum):
        return (aux * illum).clamp(0.0, 1.0)


class _LocalIllum:
    """Retinex-like stand-in (e = -1): I is a box-blurred max channel, so it moves with the scene."""

    illum_exposure = -1

    def estimate(self, x):
        return None, F.avg_pool2d(x.amax(dim=1, keepdim=True), 3, stride=1, padding=1, count_include_pad=False)

    def render(self, x, aux, illum):
        return (x / illum.clamp(min=1e-3)).clamp(0.0, 1.0)


def _scene(seed: int, brightness: float, h: int = 32, w: int = 48) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    coarse = torch.rand(1, 3, h // 8, w // 8, generator=g)
    base = F.interpolate(coarse, size=(h, w), mode="bilinear", align_corners=False) * 0.5 + 0.25
    return base * brightness / base.mean()


def _clip(scenes, lengths, jitter, noise, seed=0):
    rng = np.random.default_rng(seed)
    frames = []
    for scene, n in zip(scenes, lengths):
        for _ in range(n):
            k = 1.0 + rng.uniform(-jitter, jitter)
            nz = torch.from_numpy(rng.normal(0.0, noise, scene.shape).astype(np.float32))
            frames.append((scene * k + nz * scene.sqrt()).clamp(0.0, 1.0))
    return frames


def _run(model, frames, smoother):
    outs, illums = [], []
    for x in frames:
        aux, illum = model.estimate(x)
        if smoother is not None:
            illum = smoother(illum, _luma(x).mean())
        illums.append(illum)
        outs.append(model.render(x, aux, illum))
    return outs, illums


def _flicker(frames) -> float:
    m = torch.stack([_luma(f).mean() for f in frames])
    return float((m[1:] - m[:-1]).abs().mean() / m.mean())


def _frames_to_settle(frames, cut: int, tol: float = 0.05, tail: int = 3) -> int:
    m = torch.stack([_luma(f).mean() for f in frames[cut:]])
    settled = m[-tail:].mean()
    bad = torch.nonzero((m - settled).abs() > tol * settled).flatten()
    return 0 if bad.numel() == 0 else int(bad[-1]) + 1


@pytest.mark.parametrize("model", [_PartialTracker(), _MeanIllum()], ids=["e=-1", "e=0"])
def test_exposure_flicker_halved(model):
    frames = _clip([_scene(1, 0.08)], [40], jitter=0.15, noise=0.01)
    raw, _ = _run(model, frames, None)
    smooth, _ = _run(model, frames, TemporalSmoother(0.8, exposure_exponent=model.illum_exposure))
    fin, fraw, fsm = _flicker(frames), _flicker(raw), _flicker(smooth)
    assert fraw > 0.4 * fin  # the stand-in really passes flicker through
    assert fsm <= 0.5 * fin
    assert fsm <= 0.5 * fraw


@pytest.mark.parametrize("model", [_PartialTracker(), _MeanIllum(), _LocalIllum()], ids=["e=-1", "e=0", "local"])
@pytest.mark.parametrize("b_brightness", [0.2, 0.08, 0.03], ids=["brighter", "same", "darker"])
def test_cut_reaches_new_brightness_within_3_frames(model, b_brightness):
    frames = _clip([_scene(1, 0.08), _scene(2, b_brightness)], [15, 10], jitter=0.0, noise=0.01)
    smooth, _ = _run(model, frames, TemporalSmoother(0.8, exposure_exponent=model.illum_exposure))
    assert _frames_to_settle(smooth, cut=15) < 3


def test_cut_resets_immediately_on_large_change():
    model = _MeanIllum()
    sm = TemporalSmoother(0.9, exposure_exponent=0)
    frames = _clip([_scene(1, 0.05), _scene(2, 0.3)], [10, 3], jitter=0.0, noise=0.0)
    raw, _ = _run(model, frames, None)
    smooth, _ = _run(model, frames, sm)
    torch.testing.assert_close(smooth[10], raw[10])
    assert bool(sm.last_cut.all()) is False  # the frame after the cut continues smoothing


def _square_clip(positions, size=8, h=48, w=64):
    frames = []
    for y, x in positions:
        f = torch.full((1, 3, h, w), 0.05)
        f[..., y : y + size, x : x + size] = 0.6
        frames.append(f)
    return frames


def _region_error(est, ref, y, x, size=8):
    sl = (..., slice(y, y + size), slice(x, x + size))
    return float(((est[sl] - ref[sl]).abs() / ref[sl]).max())


def test_moving_square_does_not_ghost():
    model = _LocalIllum()
    frames = _square_clip([(8, 8)] * 10 + [(24, 40)] * 3)
    _, raw = _run(model, frames, None)
    sm = TemporalSmoother(0.8, exposure_exponent=-1)
    _, smooth = _run(model, frames, sm)
    assert not bool(sm.last_cut.any())  # a small object moving is not a scene cut
    for t in (10, 11):  # the first two frames after the move
        assert _region_error(smooth[t], raw[t], 24, 40) < 0.1  # where the square arrived
        assert _region_error(smooth[t], raw[t], 8, 8) < 0.1  # where it left: no trail
    # Without motion adaptivity the same EMA leaves a ghost: the check above has teeth.
    _, blind = _run(model, frames, TemporalSmoother(0.8, exposure_exponent=-1, motion_sensitivity=1e6))
    assert _region_error(blind[11], raw[11], 8, 8) > 0.3


def test_continuous_motion_follows_square():
    model = _LocalIllum()
    frames = _square_clip([(20, 4 + 3 * t) for t in range(16)])
    _, raw = _run(model, frames, None)
    _, smooth = _run(model, frames, TemporalSmoother(0.8, exposure_exponent=-1))
    for t in range(2, 16):
        assert _region_error(smooth[t], raw[t], 20, 4 + 3 * t) < 0.1


def test_static_noise_is_reduced_in_illumination():
    model = _LocalIllum()
    frames = _clip([_scene(3, 0.1)], [30], jitter=0.0, noise=0.02)
    _, raw = _run(model, frames, None)
    _, smooth = _run(model, frames, TemporalSmoother(0.8, exposure_exponent=-1))
    d_raw = torch.stack([(a - b).abs().mean() for a, b in zip(raw[10:], raw[9:])]).mean()
    d_sm = torch.stack([(a - b).abs().mean() for a, b in zip(smooth[10:], smooth[9:])]).mean()
    assert d_sm < 0.7 * d_raw


def test_exposure_tracking_model_follows_real_exposure_change_instantly():
    # illum = c / exposure exactly (e = +1 gain): normalised illum is constant, so even a
    # 4x exposure step (no cut needed) comes out with zero lag.
    sm = TemporalSmoother(0.9, exposure_exponent=1)
    grid = torch.rand(1, 3, 4, 6) + 0.5
    for k in [0.1] * 5 + [0.4] * 3 + [0.1]:
        out = sm(grid / k, k)
        torch.testing.assert_close(out, grid / k)


def test_strength_zero_is_identity_and_input_untouched():
    illum = torch.rand(1, 1, 8, 8)
    assert TemporalSmoother(0.0, exposure_exponent=-1)(illum, 0.1) is illum
    sm = TemporalSmoother(0.8, exposure_exponent=-1)
    first = sm(illum, 0.1)
    torch.testing.assert_close(first, illum)
    x2 = torch.rand(1, 1, 8, 8)
    keep = x2.clone()
    sm(x2, 0.12)
    torch.testing.assert_close(x2, keep, rtol=0, atol=0)


def test_float_and_tensor_exposure_agree_and_out_is_used():
    a, b = TemporalSmoother(0.8, exposure_exponent=1), TemporalSmoother(0.8, exposure_exponent=1)
    out = torch.empty(1, 3, 5, 7)
    for t in range(5):
        g = torch.rand(1, 3, 5, 7) + 0.5
        k = 0.05 + 0.01 * t
        ra = a(g, k)
        rb = b(g, torch.tensor(k), out=out)
        assert rb is out
        torch.testing.assert_close(ra, rb)


def test_batch_samples_are_independent_and_reset_forgets():
    sm = TemporalSmoother(0.8, exposure_exponent=0)
    ones = torch.ones(2, 1, 4, 4)
    sm(ones, torch.tensor([0.1, 0.1]))
    step = ones.clone()
    step[1] *= 5.0  # a cut in sample 1 only
    out = sm(step, torch.tensor([0.1, 0.1]))
    assert sm.last_cut.flatten().tolist() == [False, True]
    torch.testing.assert_close(out[1], step[1])
    sm.reset()
    torch.testing.assert_close(sm(step * 3, 0.1), step * 3)


def test_shape_change_and_inference_mode_switch():
    sm = TemporalSmoother(0.8, exposure_exponent=-1)
    with torch.inference_mode():
        sm(torch.rand(1, 1, 6, 6) + 0.1, 0.1)
        sm(torch.rand(1, 1, 6, 6) + 0.1, 0.1)
    y = sm(torch.rand(1, 1, 6, 6) + 0.1, 0.1)  # buffers made under inference_mode keep working
    assert y.shape == (1, 1, 6, 6)
    z = torch.rand(1, 1, 9, 5) + 0.1
    torch.testing.assert_close(sm(z, 0.1), z)  # new shape: a fresh stream


def test_state_buffers_are_reused():
    sm = TemporalSmoother(0.8, exposure_exponent=-1)
    sm(torch.rand(1, 1, 8, 8) + 0.1, 0.1)
    ptr = sm._ema.data_ptr()
    for _ in range(3):
        sm(torch.rand(1, 1, 8, 8) + 0.1, 0.1)
    assert sm._ema.data_ptr() == ptr


def test_bad_arguments():
    with pytest.raises(ValueError):
        TemporalSmoother(1.0)
    with pytest.raises(ValueError):
        TemporalSmoother(0.5, motion_sensitivity=0.0)
    sm = TemporalSmoother(0.5)
    with pytest.raises(ValueError):
        sm(torch.rand(8, 8), 0.1)
    with pytest.raises(ValueError):
        sm(torch.rand(2, 1, 4, 4), torch.tensor([0.1, 0.2, 0.3]))


@pytest.mark.needs_cuda
def test_cuda_matches_cpu_without_host_syncs():
    dev = torch.device("cuda")
    frames = _clip([_scene(1, 0.08), _scene(2, 0.2)], [8, 4], jitter=0.15, noise=0.01)
    model = _LocalIllum()
    _, ref = _run(model, frames, TemporalSmoother(0.8, exposure_exponent=-1))
    sm = TemporalSmoother(0.8, exposure_exponent=-1)
    gpu_frames = [f.to(dev) for f in frames]
    outs = []
    torch.cuda.set_sync_debug_mode("error")
    try:
        for x in gpu_frames:
            _, illum = model.estimate(x)
            outs.append(sm(illum, _luma(x).mean()))
    finally:
        torch.cuda.set_sync_debug_mode("default")
    for a, b in zip(outs, ref):
        torch.testing.assert_close(a.cpu(), b, rtol=1e-4, atol=1e-5)
