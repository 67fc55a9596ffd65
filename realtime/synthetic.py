"""Writing synthetic test and benchmark clips with PyAV (the frames come from
:mod:`realtime.degrade`, the one dark-video synthesiser)."""
from __future__ import annotations

import os
from fractions import Fraction
from pathlib import Path
from typing import Iterable, Sequence

import av
import numpy as np

__all__ = ["write_clip", "dark_frames"]


def dark_frames(n: int, width: int, height: int, seed: int = 0, level: float = 0.12):
    """``n`` dark RGB uint8 frames of a moving test pattern with fresh sensor noise
    (:func:`realtime.degrade.pattern_frames`)."""
    from .degrade import pattern_frames

    return pattern_frames(n, width, height, seed, level)


def write_clip(
    path: str | os.PathLike,
    n_frames: int = 12,
    size: tuple[int, int] = (64, 48),
    fps: int = 24,
    audio: str | None = None,
    pts: Sequence[int] | None = None,
    time_base: Fraction | None = None,
    codec: str = "libx264",
    options: dict | None = None,
    seed: int = 0,
    frames: Iterable[np.ndarray] | None = None,
) -> Path:
    """Write a small dark clip.

    Args:
        path: output (.mp4, .mkv, .ts ...).
        n_frames, size, fps: length, (width, height), nominal rate.
        audio: None, or an audio encoder ("aac", "mp2", "pcm_s16le") for a 48 kHz tone
            as long as the video.
        pts: explicit video timestamps in ``time_base`` units (variable frame rate).
        time_base: time base of ``pts`` (default 1/fps).
        codec, options: video encoder and its options (default libx264 ultrafast).
        frames: the (H, W, 3) uint8 RGB frames to write (default: ``dark_frames``).
    """
    path = Path(path)
    w, h = size
    tb = time_base or Fraction(1, fps)
    with av.open(str(path), "w") as out:
        vs = out.add_stream(codec, rate=fps)
        vs.width, vs.height, vs.pix_fmt = w, h, "yuv420p"
        vs.time_base = tb
        vs.codec_context.time_base = tb
        vs.options = options if options is not None else ({"preset": "ultrafast"} if codec == "libx264" else {})
        ast = None
        if audio:
            ast = out.add_stream(audio, rate=48000)
            ast.layout = "mono"
        a_done = 0
        frame_size = 1152 if audio == "mp2" else 1024
        fmt = "s16" if audio == "pcm_s16le" else ("s16" if audio == "mp2" else "fltp")
        for i, img in enumerate(frames if frames is not None else dark_frames(n_frames, w, h, seed)):
            vf = av.VideoFrame.from_ndarray(img, format="rgb24")
            vf.pts = int(pts[i]) if pts is not None else i
            vf.time_base = tb
            for pkt in vs.encode(vf):
                out.mux(pkt)
            if ast is not None:
                t_end = float((vf.pts + 1) * tb) if pts is not None else (i + 1) / fps
                while a_done < t_end * 48000:
                    k = np.arange(a_done, a_done + frame_size)
                    tone = 0.1 * np.sin(2 * np.pi * 330.0 * k / 48000)
                    arr = (tone * 32767).astype(np.int16)[None] if fmt == "s16" else tone.astype(np.float32)[None]
                    af = av.AudioFrame.from_ndarray(arr, format=fmt, layout="mono")
                    af.sample_rate = 48000
                    af.pts = a_done
                    af.time_base = Fraction(1, 48000)
                    for pkt in ast.encode(af):
                        out.mux(pkt)
                    a_done += frame_size
        for pkt in vs.encode(None):
            out.mux(pkt)
        if ast is not None:
            for pkt in ast.encode(None):
                out.mux(pkt)
    return path
