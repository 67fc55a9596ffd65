"""InferenceEngine: uint8 in/out matches the model's own torch forward, smoothing
resets on a new segment, channel order, and the CUDA ring (GPU only)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

import models
from realtime import EngineError, Frame, create_engine

# the network path as the model computes it: no input denoising, no exposure policy
RAW = dict(denoise=0.0, tone=None)


def _frames(n: int, h: int = 48, w: int = 64, seed: int = 0, level: int = 50) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.integers(0, level, (h, w, 3), dtype=np.uint8) for _ in range(n)]


def _reference(model, img: np.ndarray) -> np.ndarray:
    x = torch.from_numpy(img).permute(2, 0, 1)[None].float() / 255.0
    with torch.inference_mode():
        y = model(x)
    return (y[0].permute(1, 2, 0) * 255.0 + 0.5).clamp(0, 255).to(torch.uint8).numpy()


def _fixed(name: str) -> dict:
    """lite at grid scale 4 for every frame size; the others as they are."""
    return {"scale": 4} if name == "lite" else {}


@pytest.mark.parametrize("name", ["lite", "sri"])
def test_engine_matches_model_forward(name):
    model = models.create_model(name).eval()
    eng = create_engine(model, name, torch.device("cpu"), backend="cpu", temporal_strength=0.0, **RAW, model_options=_fixed(name))
    for i, img in enumerate(_frames(3, 50, 70)):  # odd-ish size: padding inside the model
        out = eng.process(Frame(img, i))
        assert len(out) == 1 and out[0].result.shape == img.shape and out[0].result.dtype == np.uint8
        diff = np.abs(out[0].result.astype(int) - _reference(model, img).astype(int))
        assert diff.max() <= 2, (name, diff.max())
    assert eng.flush() == []


def test_lite_grid_scale_follows_the_frame_size():
    model = models.create_model("lite").eval()
    eng = create_engine(model, "lite", torch.device("cpu"), backend="cpu", temporal_strength=0.0, **RAW)
    img = _frames(1, 200, 300)[0]
    out = eng.process(Frame(img, 0))[0].result
    assert eng.describe()["model_config"]["scale"] == models.grid_scale(200, 300) == 2
    ref = _reference(models.with_config("lite", model, scale=2), img)
    assert np.abs(out.astype(int) - ref.astype(int)).max() <= 2
    fixed = create_engine(model, "lite", torch.device("cpu"), temporal_strength=0.0, **RAW, model_options={"scale": 4})
    fixed.process(Frame(img, 0))
    assert fixed.describe()["model_config"]["scale"] == 4


def test_bgr_frames_give_the_rgb_result():
    model = models.create_model("lite").eval()
    img = _frames(1)[0]
    a = create_engine(model, "lite", torch.device("cpu"), temporal_strength=0.0, **RAW).process(Frame(img, 0))[0].result.copy()
    b = create_engine(model, "lite", torch.device("cpu"), temporal_strength=0.0, **RAW).process(
        Frame(np.ascontiguousarray(img[..., ::-1]), 0, color="bgr"))[0].result
    assert np.array_equal(a, b)


def test_smoothing_restarts_on_a_new_segment():
    model = models.create_model("lite").eval()
    bright, dark = _frames(1, level=200, seed=1)[0], _frames(1, level=30, seed=2)[0]
    fresh = create_engine(model, "lite", torch.device("cpu"), temporal_strength=0.95, **RAW)
    expect = fresh.process(Frame(dark, 0, reset=True))[0].result.copy()
    eng = create_engine(model, "lite", torch.device("cpu"), temporal_strength=0.95, **RAW)
    for i in range(5):
        eng.process(Frame(bright, i, reset=i == 0))
    eng.process(Frame(dark, 5))
    restarted = eng.process(Frame(dark, 6, reset=True))[0].result.copy()
    assert np.array_equal(restarted, expect)
    calls = []
    reset = eng.smoother.reset
    eng.smoother.reset = lambda: (calls.append(1), reset())
    for i, flag in enumerate([True, False, False, True, False]):
        eng.process(Frame(dark, i, reset=flag))
    assert len(calls) == 2


def test_output_ring_is_reused_not_reallocated():
    model = models.create_model("lite").eval()
    eng = create_engine(model, "lite", torch.device("cpu"), temporal_strength=0.0, **RAW, out_ring=3)
    ptrs = [eng.process(Frame(img, i))[0].result.ctypes.data for i, img in enumerate(_frames(7))]
    assert len(set(ptrs)) == 3 and ptrs[0] == ptrs[3] == ptrs[6]


def test_bad_frame_is_a_typed_error():
    eng = create_engine(models.create_model("lite").eval(), "lite", torch.device("cpu"))
    with pytest.raises(EngineError, match="uint8"):
        eng.process(Frame(np.zeros((8, 8), np.float32), 0))


@pytest.mark.needs_cuda
def test_cuda_ring_matches_cpu_and_keeps_order():
    dev = torch.device("cuda")
    model = models.create_model("lite").eval()
    ref = create_engine(model, "lite", torch.device("cpu"), backend="cpu", temporal_strength=0.0, **RAW)
    frames = _frames(7)
    want = [ref.process(Frame(img, i))[0].result.copy() for i, img in enumerate(frames)]
    eng = create_engine(models.create_model("lite").eval().to(dev).requires_grad_(False), "lite", dev,
                          backend="cuda", temporal_strength=0.0, **RAW, cuda_slots=3)
    eng.model.load_state_dict(model.state_dict())
    got = []
    for i, img in enumerate(frames):
        got += [(f.index, f.result.copy()) for f in eng.process(Frame(img, i))]
        assert len(got) <= i + 1
    got += [(f.index, f.result.copy()) for f in eng.flush()]
    assert [i for i, _ in got] == list(range(7))
    for (_, g), w in zip(got, want):
        assert np.abs(g.astype(int) - w.astype(int)).max() <= 3  # FP16 on the GPU


def _smooth_rgb(h: int = 48, w: int = 64) -> np.ndarray:
    import cv2

    rng = np.random.default_rng(3)
    return cv2.GaussianBlur(rng.integers(0, 256, (h, w, 3), dtype=np.uint8), (7, 7), 0)


def test_torch_i420_conversions_match_opencv():
    import cv2

    from realtime.colour import i420_to_rgb, rgb_to_i420

    rgb = _smooth_rgb()
    yuv = cv2.cvtColor(rgb, cv2.COLOR_RGB2YUV_I420)
    back = (i420_to_rgb(torch.from_numpy(yuv))[0].permute(1, 2, 0) * 255 + 0.5).to(torch.uint8).numpy()
    assert np.abs(back.astype(int) - cv2.cvtColor(yuv, cv2.COLOR_YUV2RGB_I420)).max() <= 1
    mine = rgb_to_i420(torch.from_numpy(rgb).permute(2, 0, 1)[None].float() / 255).numpy().astype(int)
    assert np.abs(mine[:48] - yuv[:48]).max() <= 1  # luma as OpenCV
    # chroma: OpenCV samples the top-left pixel of each 2x2 block, we average it
    small = cv2.resize(rgb, (32, 24), interpolation=cv2.INTER_AREA)
    ref = cv2.cvtColor(np.repeat(np.repeat(small, 2, 0), 2, 1), cv2.COLOR_RGB2YUV_I420).astype(int)
    assert np.abs(mine[48:] - ref[48:]).max() <= 2


def test_i420_frames_give_the_rgb_result():
    import cv2

    rgb = _smooth_rgb()
    yuv = cv2.cvtColor(rgb, cv2.COLOR_RGB2YUV_I420)
    model = models.create_model("lite").eval()
    a = create_engine(model, "lite", torch.device("cpu"), temporal_strength=0.0, **RAW).process(
        Frame(cv2.cvtColor(yuv, cv2.COLOR_YUV2RGB_I420), 0))[0].result.copy()
    f = create_engine(model, "lite", torch.device("cpu"), temporal_strength=0.0, **RAW).process(Frame(yuv, 0, color="yuv420p"))[0]
    assert f.size == (48, 64) and np.array_equal(f.result_rgb(), a)


@pytest.mark.needs_cuda
def test_cuda_i420_in_and_out():
    import cv2

    dev = torch.device("cuda")
    model = models.create_model("lite").eval()
    rgb = _smooth_rgb()
    yuv = cv2.cvtColor(rgb, cv2.COLOR_RGB2YUV_I420)
    want = create_engine(model, "lite", torch.device("cpu"), temporal_strength=0.0, **RAW).process(
        Frame(cv2.cvtColor(yuv, cv2.COLOR_YUV2RGB_I420), 0))[0].result.copy()
    eng = create_engine(model.to(dev), "lite", dev, backend="cuda", temporal_strength=0.0, **RAW, cuda_output="yuv420p")
    got = eng.process(Frame(yuv, 0, color="yuv420p")) + eng.flush()
    assert len(got) == 1 and got[0].result_color == "yuv420p" and got[0].result.shape == (72, 64)
    assert np.abs(got[0].result_rgb().astype(int) - want.astype(int)).mean() < 3


@pytest.mark.parametrize("name", ["lite", "sri"])
def test_strength_blends_enhancement_with_the_input(name):
    model = models.create_model(name).eval()
    img = _frames(1, 48, 64)[0]
    full = create_engine(model, name, torch.device("cpu"), temporal_strength=0.0, **RAW, model_options=_fixed(name)).process(Frame(img, 0))[0].result.copy()
    half = create_engine(model, name, torch.device("cpu"), temporal_strength=0.0, **RAW, model_options=_fixed(name), strength=0.5).process(Frame(img, 0))[0].result
    expected = (img.astype(float) + full.astype(float)) / 2
    assert np.abs(half.astype(float) - expected).max() <= 1.5
    assert np.abs(half.astype(int) - full.astype(int)).max() > 5  # the blend did something


def test_strength_out_of_range_is_refused():
    from realtime.errors import EngineError

    with pytest.raises(EngineError, match="strength"):
        create_engine(models.create_model("lite"), "lite", torch.device("cpu"), strength=0.0)
