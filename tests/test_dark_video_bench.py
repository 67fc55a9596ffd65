"""bench/dark_video.py metrics and bench/peers.py modules (synthetic, CPU, no ../shared needed)."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

import dark_video as dv  # noqa: E402
import peers  # noqa: E402


def _img(seed=0, h=32, w=40, lo=10, hi=200):
    return np.random.default_rng(seed).integers(lo, hi, (h, w, 3)).astype(np.uint8)


def test_match_luma_equalises_means():
    ref, out = _img(0), _img(1, lo=0, hi=60)
    m = dv.match_luma(out, ref)
    assert abs(dv.luma(m).mean() - dv.luma(ref).mean()) < 0.5
    assert m.min() >= 0 and m.max() <= 255
    assert np.array_equal(dv.match_luma(np.zeros_like(ref), ref), np.zeros_like(ref, np.float32))


def test_temporal_noise_constant_and_noisy():
    f = _img(2)
    assert dv.temporal_noise([f] * 6) == 0.0
    rng = np.random.default_rng(0)
    base = np.full((64, 64, 3), 128.0)
    frames = [base + rng.normal(0, 5.0, base.shape) for _ in range(40)]
    assert abs(dv.temporal_noise(frames) - 5.0) < 0.3


def test_steady_temporal_noise_after_the_scored_frames():
    # a static clip longer than the scored frames: quality and the first temporal noise come
    # from frames skip..until, the steady temporal noise from the frames after them (a
    # running average that has converged is still, the start of it is not)
    ref = _img(3)
    rng = np.random.default_rng(1)
    noise = [rng.normal(0, 6.0, ref.shape) for _ in range(24)]
    run = [ref + np.mean(noise[: i + 1], axis=0) for i in range(24)]  # a running mean of the noise
    out = [np.clip(f, 0, 255).astype(np.uint8) for f in run[:12]] + [ref] * 12  # then it holds still
    res = dv.score_clip(out, out, [ref] * 24, static=True, skip=2, every=2, until=12)
    assert res["frames"] == 12 and res["scored"] == 5  # frames 2, 4 .. 10
    assert res["tnoise"] > 0.5 and res["tnoise_steady"] == 0.0
    assert "tnoise_steady" not in dv.score_clip(out, out, [ref] * 24, static=True, skip=2, every=2)
    agg = dv.aggregate([res, {**res, "tnoise_steady": 2.0}])
    assert agg["tnoise_steady"] == pytest.approx(1.0)


def test_false_colour_gray_vs_purple():
    inp = np.zeros((16, 16, 3), np.uint8)
    inp[:, 8:] = 100  # only the left half is "black"
    gray = np.full((16, 16, 3), 60, np.uint8)
    purple = np.zeros((16, 16, 3), np.uint8)
    purple[..., 0], purple[..., 2] = 120, 160
    assert dv.false_colour(gray, inp) < 0.5
    assert dv.false_colour(purple, inp) > 40
    s, n, total = dv.false_colour_sums(purple, inp)
    assert n == 16 * 8 and total == 256
    assert np.isnan(dv.false_colour(gray, np.full_like(inp, 50)))


def test_baselines_brighten_and_keep_shape():
    dark = _img(3, lo=0, hi=20)
    for proc in (dv.AutoGamma(), dv.Classical()):
        outs = [proc(dark) for _ in range(3)]
        assert outs[-1].shape == dark.shape and outs[-1].dtype == np.uint8
        assert outs[-1].mean() > 3 * dark.mean()
    # the temporal average converges on a static noisy scene
    c = dv.Classical()
    rng = np.random.default_rng(0)
    frames = [np.clip(20 + rng.normal(0, 3, (32, 32, 3)), 0, 255).astype(np.uint8) for _ in range(10)]
    outs = [c(f) for f in frames]
    assert np.std(outs[-1].astype(float)) < np.std(outs[0].astype(float))


def test_reference_frames_pan():
    ref = _img(4, h=60, w=100)
    spec = dv.ClipSpec("x", 10, "pan", False, 5, (64, 48), 3)
    fr = dv.reference_frames(ref, spec)
    assert len(fr) == 5 and fr[0].shape == (48, 64, 3)
    assert np.array_equal(fr[1][:, :-3], fr[0][:, 3:])
    st = dv.reference_frames(ref, dv.ClipSpec("x", 10, "static", False, 3, (64, 48), 3))
    assert all(np.array_equal(st[0], f) for f in st)


def _randomise(sd):
    g = torch.Generator().manual_seed(0)
    return {k: (torch.rand(v.shape, generator=g) * 0.2 + (0.9 if "running_var" in k else 0)).to(v.dtype)
            if v.is_floating_point() else v for k, v in sd.items()}


def test_zero_dce_pp_loads_state_dict_and_runs(tmp_path):
    sd = _randomise(peers.ZeroDCEpp().state_dict())
    assert len(sd) == 28 and sd["e_conv5.depth_conv.weight"].shape == (64, 1, 3, 3)
    torch.save(sd, tmp_path / "z.pth")
    m = peers.load_zero_dce_pp(tmp_path / "z.pth")
    y = m(torch.rand(1, 3, 48, 64) * 0.2)
    assert y.shape == (1, 3, 48, 64) and torch.isfinite(y).all() and y.min() >= 0 and y.max() <= 1


def test_sci_loads_state_dict_and_runs(tmp_path):
    sd = _randomise(peers.SCI().state_dict())
    assert {"enhance.conv.0.weight", "enhance.blocks.0.0.weight", "enhance.out_conv.0.weight"} <= set(sd)
    sd["calibrate.in_conv.0.weight"] = torch.zeros(16, 3, 3, 3)  # training-only branch: ignored
    torch.save(sd, tmp_path / "s.pt")
    m = peers.load_sci(tmp_path / "s.pt")
    x = torch.rand(1, 3, 40, 56) * 0.2
    y = m(x)
    assert y.shape == x.shape and torch.isfinite(y).all() and (y >= x - 1e-6).all()


def test_missing_weights_error(tmp_path):
    with pytest.raises(peers.PeerWeightsMissing):
        peers.load_sci(tmp_path / "nope.pt")


def test_real_peer_weights_brighten():
    root = peers.peers_root()
    if not (root / "zero_dce_pp" / "Epoch99.pth").is_file() or not (root / "sci" / "medium.pt").is_file():
        pytest.skip("../shared/peers absent")
    yy, xx = np.mgrid[0:64, 0:96]
    dark = np.stack([xx % 40, yy % 30, (xx + yy) % 25], -1).astype(np.uint8)
    for m in (peers.load_zero_dce_pp(), peers.load_sci()):
        out = peers.run_peer(m, dark)
        assert out.mean() > 2 * dark.mean()


def test_real_sample_clip_segments(tmp_path):
    from realtime.synthetic import write_clip

    src = write_clip(tmp_path / "long.mp4", n_frames=200, size=(64, 48))
    clip, last = dv.real_sample_clip(src, tmp_path / "cache", segments=4, length=5)
    frames = dv.decode(clip)
    assert last == [4, 9, 14, 19] and len(frames) == 20
    again, last2 = dv.real_sample_clip(src, tmp_path / "cache", segments=4, length=5)  # cached
    assert again == clip and last2 == last
