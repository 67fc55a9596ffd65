"""realtime.degrade: dark video made the way a camera makes it."""
from __future__ import annotations

import av
import numpy as np
import pytest

from realtime.degrade import (
    CAMERA_PRESETS,
    NOISE_PRESETS,
    CameraPipeline,
    SensorNoise,
    degrade_frame,
    exposure_for_mean,
    linear_to_srgb,
    srgb_to_linear,
    write_dark_clip,
)


def _scene(h: int = 96, w: int = 128, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    img = np.stack([xx / w, yy / h, 0.5 + 0.5 * np.sin(xx / 9.0)], -1) * 220 + 20
    img[h // 4: h // 2, w // 4: w // 2] = 245
    img[-h // 4:, -w // 3:] = 3  # a black region
    img += rng.normal(0, 4, img.shape)
    return np.clip(img, 0, 255).astype(np.uint8)


def test_srgb_round_trip():
    v = np.linspace(0, 1, 101, dtype=np.float32)
    assert np.allclose(linear_to_srgb(srgb_to_linear(v)), v, atol=1e-5)


@pytest.mark.parametrize("target", [40.0, 20.0, 10.0, 5.0])
def test_mean_hits_target(target):
    ref = _scene()
    noise = NOISE_PRESETS["phone"]
    k = exposure_for_mean(ref, target, noise)
    rng = np.random.default_rng(1)
    means = [degrade_frame(ref, k, noise, rng).mean() for _ in range(3)]
    assert abs(np.mean(means) - target) < max(0.5, 0.04 * target)
    # noise-free solve hits the noise-free mean
    k0 = exposure_for_mean(ref, target)
    assert abs(degrade_frame(ref, k0, None, rng).mean() - target) < max(0.5, 0.04 * target)


def test_exposure_rejects_impossible_target():
    with pytest.raises(ValueError):
        exposure_for_mean(_scene(), 300.0)


def test_noise_fresh_per_frame_and_std_matches_model():
    ref = np.full((128, 128, 3), 200, np.uint8)
    noise = SensorNoise(shot=4e-4, read=1e-3)
    k = 0.1
    rng = np.random.default_rng(0)
    a = degrade_frame(ref, k, noise, rng).astype(np.float64)
    b = degrade_frame(ref, k, noise, rng).astype(np.float64)
    assert not np.array_equal(a, b)
    x = float(srgb_to_linear(np.float32(200 / 255)) * k)
    slope = 1.055 / 2.4 * x ** (1 / 2.4 - 1)  # d sRGB / d linear
    expected = slope * float(noise.std(x)) * 255.0
    measured = (a - b).std() / np.sqrt(2)
    expected_q = np.sqrt(expected**2 + 1 / 12)  # plus 8-bit rounding
    assert abs(measured - expected_q) < 0.08 * expected_q, (measured, expected_q)


def test_seeds_reproduce():
    ref = _scene()
    n = NOISE_PRESETS["phone"]
    a = degrade_frame(ref, 0.05, n, np.random.default_rng(7))
    b = degrade_frame(ref, 0.05, n, np.random.default_rng(7))
    c = degrade_frame(ref, 0.05, n, np.random.default_rng(8))
    assert np.array_equal(a, b) and not np.array_equal(a, c)


def test_camera_pipeline_crushes_blacks():
    ref = _scene()
    n = NOISE_PRESETS["phone"]
    k = exposure_for_mean(ref, 10.0, n)
    plain = degrade_frame(ref, k, n, np.random.default_rng(0))
    cam = degrade_frame(ref, k, n, np.random.default_rng(0), CAMERA_PRESETS["phone"])
    assert (cam == 0).mean() > (plain == 0).mean() + 0.1
    # the dark-weighted denoiser flattens the blacks: less spatial variation there
    h, w = ref.shape[:2]
    black = (slice(-h // 4 + 4, -4), slice(-w // 3 + 4, -4))  # inside the scene's black patch
    no_clip = degrade_frame(ref, k, n, np.random.default_rng(0), CameraPipeline(black_level=0))
    assert no_clip[black].std(axis=(0, 1)).mean() < 0.6 * plain[black].std(axis=(0, 1)).mean()


def test_clip_is_h264_yuv420p_and_reproducible(tmp_path):
    ref = _scene(64, 96)
    refs = [ref] * 6
    p = write_dark_clip(tmp_path / "a.mp4", refs, exposure=0.05, seed=3)
    q = write_dark_clip(tmp_path / "b.mp4", refs, exposure=0.05, seed=3)
    with av.open(str(p)) as c:
        st = c.streams.video[0]
        assert st.codec_context.name == "h264"
        assert st.codec_context.pix_fmt == "yuv420p"
        frames = [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]
    assert len(frames) == 6 and frames[0].shape == (64, 96, 3)
    assert not np.array_equal(frames[0], frames[1])  # fresh noise survives the codec
    with av.open(str(q)) as c:
        frames_q = [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]
    assert all(np.array_equal(x, y) for x, y in zip(frames, frames_q))


def test_h264_frame_keeps_size_and_brightness_and_subsamples_chroma():
    from realtime.degrade import h264_frame

    rng = np.random.default_rng(0)
    x = np.zeros((33, 48, 3), np.uint8)
    x[:, ::2] = (200, 20, 20)  # red/black columns: 4:2:0 cannot keep that chroma
    y = h264_frame(x, crf=18)
    assert y.shape == x.shape and y.dtype == np.uint8
    smooth = np.broadcast_to(np.linspace(10, 120, 48, dtype=np.float32)[None, :, None], (33, 48, 3)).astype(np.uint8)
    assert abs(float(h264_frame(smooth, crf=18).mean()) - float(smooth.mean())) < 2
    red = y[..., 0].astype(int) - y[..., 1].astype(int)
    assert red[:, 1::2].mean() > 20  # the black columns took colour from their neighbours
    noisy = rng.integers(0, 30, (64, 64, 3), dtype=np.uint8)
    assert np.abs(h264_frame(noisy, crf=30).astype(int) - noisy).mean() > 1  # the codec is lossy


def test_dark_video_training_input_is_dark_and_deterministic():
    from training.data import DarkVideoConfig, dark_video_sample

    rng = np.random.default_rng(1)
    high = rng.integers(60, 250, (64, 64, 3), dtype=np.uint8)
    low = (high // 8).astype(np.uint8)
    cfg = DarkVideoConfig(synthetic=1.0, mean=(5.0, 5.0), codec=1.0)
    a = dark_video_sample(low, high, cfg, np.random.default_rng(7))
    b = dark_video_sample(low, high, cfg, np.random.default_rng(7))
    assert np.array_equal(a, b) and a.shape == high.shape
    assert 2.0 < a.mean() < 9.0  # made from the bright reference at about 5/255
    keep = dark_video_sample(low, high, DarkVideoConfig(synthetic=0.0, codec=0.0), rng)
    assert np.array_equal(keep, low)
