"""The CUDA path: pinned host buffers, three streams, results a few frames late.

A ring of pinned host slots; uploads on a copy stream, compute on its own stream,
downloads on a third stream back into pinned memory, with events so that no slot is
reused before its copy finished. uint8<->float and channel-order conversion run on the
GPU. Up to ``cuda_slots`` frames are in flight, so :meth:`process` returns results a few
frames late; :meth:`flush` returns the rest.
"""
from __future__ import annotations

import numpy as np
import torch

from ..colour import i420_to_rgb, rgb_to_i420
from ..convert import u8_from_unit, unit_from_u8
from ..frame import Frame
from ._base import LUMA, InferenceEngine

__all__ = ["CudaEngine"]



class CudaEngine(InferenceEngine):
    """CUDA engine (arguments: :class:`InferenceEngine`)."""

    path = "cuda"

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._pending: list[tuple[Frame, int, int]] = []

    def _key(self, h: int, w: int, color: str) -> tuple:
        # the input buffers hold the frames as they come (RGB/BGR or I420)
        return (h, w, color == "yuv420p")

    def _build(self, h: int, w: int, color: str) -> None:
        self.backend = self._select(h, w)
        self._den = self._new_denoiser()
        self._setup_cuda(h, w, color == "yuv420p")

    def _setup_cuda(self, h: int, w: int, yuv_in: bool) -> None:
        dev = self.device
        n = self.cuda_slots
        self._yuv_out = self.cuda_output == "yuv420p" and h % 2 == 0 and w % 2 == 0
        in_shape = (h * 3 // 2, w) if yuv_in else (h, w, 3)
        out_shape = (h * 3 // 2, w) if self._yuv_out else (h, w, 3)
        # pinned output ring: in-flight frames + everything queued downstream
        self._out_shape = out_shape
        self._out_pinned = [torch.empty(out_shape, dtype=torch.uint8, pin_memory=True) for _ in range(self.out_ring + n)]
        self._out = [t.numpy() for t in self._out_pinned]
        self._in_pinned = [torch.empty(in_shape, dtype=torch.uint8, pin_memory=True) for _ in range(n)]
        self._in_np = [t.numpy() for t in self._in_pinned]
        self._dev_in = [torch.empty(in_shape, dtype=torch.uint8, device=dev) for _ in range(n)]
        self._dev_out = [torch.empty(out_shape, dtype=torch.uint8, device=dev) for _ in range(n)]
        ev = lambda: torch.cuda.Event(enable_timing=True)  # noqa: E731
        self._h2d_done = [ev() for _ in range(n)]
        self._compute_done = [ev() for _ in range(n)]
        self._d2h_done = [ev() for _ in range(len(self._out_pinned))]
        self._marks = [[ev() for _ in range(5)] for _ in range(n)]  # up0, c0, s0, s1, c1
        self._d2h_start = [ev() for _ in range(len(self._out_pinned))]
        self._copy_stream = torch.cuda.Stream(dev)
        self._compute_stream = torch.cuda.Stream(dev)
        self._d2h_stream = torch.cuda.Stream(dev)
        self._slot = 0
        self._luma = torch.tensor(LUMA, device=dev).view(1, 3, 1, 1)


    def _grow_ring(self, n: int) -> None:
        # the pinned ring holds the frames in flight on top of the n alive downstream;
        # new slots go at the end, so slots in use keep their index
        extra = n + self.cuda_slots - len(self._out_pinned)
        ev = lambda: torch.cuda.Event(enable_timing=True)  # noqa: E731
        for _ in range(extra):
            t = torch.empty(self._out_shape, dtype=torch.uint8, pin_memory=True)
            self._out_pinned.append(t)
            self._out.append(t.numpy())
            self._d2h_done.append(ev())
            self._d2h_start.append(ev())

    def flush(self) -> list[Frame]:
        """Finish every frame still in flight and return them in order."""
        done = []
        while self._pending:
            done.append(self._finish_cuda())
        return done

    def _process(self, frame: Frame) -> list[Frame]:
        i = self._slot
        self._slot = (i + 1) % self.cuda_slots
        b = self.backend
        up0, c0, s0, s1, c1 = self._marks[i]
        # the pinned input slot may still be the source of an upload: wait for it
        self._h2d_done[i].synchronize()
        np.copyto(self._in_np[i], frame.image)
        with torch.cuda.stream(self._copy_stream):
            # the device input slot may still be read by the compute of 3 frames ago
            self._copy_stream.wait_event(self._compute_done[i])
            up0.record(self._copy_stream)
            self._dev_in[i].copy_(self._in_pinned[i], non_blocking=True)
            self._h2d_done[i].record(self._copy_stream)
        with torch.cuda.stream(self._compute_stream), torch.inference_mode():
            self._compute_stream.wait_event(self._h2d_done[i])
            c0.record(self._compute_stream)
            if frame.color == "yuv420p":
                x = i420_to_rgb(self._dev_in[i], b.dtype)
            else:
                x = self._dev_in[i].permute(2, 0, 1)[None]
                if frame.color == "bgr":
                    x = x.flip(1)
                x = unit_from_u8(x, b.dtype).contiguous(memory_format=torch.channels_last)
            if self._den is not None:
                x = self._den(x).contiguous(memory_format=torch.channels_last)
            aux, illum = b.estimate(x)
            s0.record(self._compute_stream)
            if self.smoother is not None:
                exposure = (x.float() * self._luma).sum(1).mean()
                illum = self.smoother(illum, exposure)
            s1.record(self._compute_stream)
            y = self._blend(x, b.render(x, aux, illum))
            if self._yuv_out:
                rgb_to_i420(y, out=self._dev_out[i])
            else:
                self._dev_out[i].copy_(u8_from_unit(y[0].permute(1, 2, 0).float()))
            c1.record(self._compute_stream)
            self._compute_done[i].record(self._compute_stream)
        k = self._k % len(self._out_pinned)
        self._k += 1
        with torch.cuda.stream(self._d2h_stream):
            self._d2h_stream.wait_event(self._compute_done[i])
            self._d2h_start[k].record(self._d2h_stream)
            self._out_pinned[k].copy_(self._dev_out[i], non_blocking=True)
            self._d2h_done[k].record(self._d2h_stream)
        self._pending.append((frame, i, k))
        # At most cuda_slots - 1 frames stay in flight: the frame that last used slot i
        # was finished (its D2H event synchronised) before slot i comes round again,
        # so its device buffers and events are free for reuse.
        done = []
        while len(self._pending) >= self.cuda_slots:
            done.append(self._finish_cuda())
        return done

    def _finish_cuda(self) -> Frame:
        frame, i, k = self._pending.pop(0)
        self._d2h_done[k].synchronize()  # D2H of a non_blocking copy is garbage until then
        up0, c0, s0, s1, c1 = self._marks[i]
        ms = 1e-3
        t = frame.timings
        t["upload"] = up0.elapsed_time(self._h2d_done[i]) * ms
        t["infer"] = (c0.elapsed_time(s0) + s1.elapsed_time(c1)) * ms
        t["smooth"] = s0.elapsed_time(s1) * ms
        t["download"] = self._d2h_start[k].elapsed_time(self._d2h_done[k]) * ms
        frame.result = self._out[k]
        frame.result_color = "yuv420p" if self._yuv_out else "rgb"
        return frame
