"""Pipeline mechanics with fake stages: queues and drop policy, ordering, error
propagation, Ctrl-C finishing the output."""
from __future__ import annotations

import threading
import time

import av
import numpy as np
import pytest

from realtime import END, Aborted, Frame, NullSink, Pipeline, StageError, StageQueue, VideoFileSink
from realtime.synthetic import write_clip


class FakeSource:
    def __init__(self, n: int, live: bool = False, delay: float = 0.0, fail_at: int | None = None):
        self.n, self.live, self.delay, self.fail_at = n, live, delay, fail_at
        self.frames_read = 0
        self.warnings: list[str] = []

    def frames(self, stop):
        for i in range(self.n):
            if stop.is_set():
                return
            if i == self.fail_at:
                raise OSError("disk on fire")
            if self.delay:
                time.sleep(self.delay)
            self.frames_read += 1
            yield Frame(np.full((8, 8, 3), i % 256, np.uint8), i, i, None, time.perf_counter())


class FakeEngine:
    def __init__(self, delay: float = 0.0, fail_at: int | None = None):
        self.delay, self.fail_at = delay, fail_at

    def process(self, f):
        if f.index == self.fail_at:
            raise ValueError("bad frame")
        if self.delay:
            time.sleep(self.delay)
        f.result = f.image
        return [f]

    def flush(self):
        return []

    def reserve_outputs(self, n):
        pass  # returns the input frames themselves: no buffers to keep


class ListSink:
    def __init__(self):
        self.indices: list[int] = []
        self.closed: bool | None = None
        self.frames_written = 0

    def write(self, f):
        self.indices.append(f.index)
        self.frames_written += 1

    def write_packet(self, p):
        pass

    def close(self, commit=True):
        self.closed = commit


def test_queue_drop_oldest_counts_and_keeps_end():
    q = StageQueue(2, drop_oldest=True)
    for i in range(5):
        q.put(Frame(np.zeros((1, 1, 3), np.uint8), i))
    q.put(END)
    assert q.dropped == 3
    assert [q.get().index, q.get().index, q.get()] == [3, 4, END]


def test_queue_abort_wakes_a_blocked_reader():
    q = StageQueue(1)
    raised = []

    def reader():
        try:
            q.get()
        except Aborted:
            raised.append(True)

    t = threading.Thread(target=reader)
    t.start()
    time.sleep(0.05)
    q.abort()
    t.join(2)
    assert raised == [True] and not t.is_alive()


def test_file_mode_keeps_every_frame_in_order():
    sink = ListSink()
    r = Pipeline(FakeSource(30), FakeEngine(delay=0.002), sink, queue_size=2).run()
    assert sink.indices == list(range(30)) and r.dropped == 0 and sink.closed is True


def test_live_mode_drops_stale_frames_and_counts_them():
    sink = ListSink()
    r = Pipeline(FakeSource(40, live=True), FakeEngine(delay=0.01), sink).run()
    assert r.dropped > 0
    assert r.frames_out + r.dropped == r.frames_in == 40
    assert sink.indices == sorted(sink.indices) and sink.indices[-1] == 39  # newest frame always reaches the sink
    assert any("dropped" in w for w in r.warnings)


@pytest.mark.parametrize("stage,source,engine", [
    ("decode", FakeSource(20, fail_at=5), FakeEngine()),
    ("infer", FakeSource(20), FakeEngine(fail_at=7)),
])
def test_stage_errors_reach_the_caller_chained(stage, source, engine):
    sink = ListSink()
    with pytest.raises(StageError) as info:
        Pipeline(source, engine, sink, queue_size=2).run()
    assert info.value.stage == stage
    assert isinstance(info.value.__cause__, (OSError, ValueError))
    assert str(info.value.__cause__) in str(info.value)
    assert sink.closed is False  # the output is discarded, not committed


def test_sink_error_reaches_the_caller():
    class BadSink(ListSink):
        def write(self, f):
            raise OSError("no space left")

    with pytest.raises(StageError, match="encode stage failed: no space left") as info:
        Pipeline(FakeSource(10), FakeEngine(), BadSink()).run()
    assert isinstance(info.value.__cause__, OSError)


def test_ctrl_c_finishes_a_playable_file(tmp_path):
    out = tmp_path / "out.mp4"
    src = FakeSource(500, delay=0.002)
    sink = VideoFileSink(out, 8, 8, time_base=__import__("fractions").Fraction(1, 25), rate=25)
    ticks = []

    def tick(pipe):
        ticks.append(1)
        if len(ticks) == 2:
            raise KeyboardInterrupt

    r = Pipeline(src, FakeEngine(), sink, on_tick=tick).run()
    assert r.interrupted and 0 < r.frames_out < 500
    with av.open(str(out)) as c:
        assert sum(1 for _ in c.decode(video=0)) == r.frames_out
    assert not list(tmp_path.glob(".*partial*"))  # temp file moved into place


def test_failed_run_leaves_no_partial_output(tmp_path):
    src = write_clip(tmp_path / "in.mp4", n_frames=6)
    from realtime import VideoFileSource

    out = tmp_path / "out.mp4"
    with VideoFileSource(src) as s:
        sink = VideoFileSink(out, s.width, s.height, s.time_base, s.rate)
        with pytest.raises(StageError):
            Pipeline(s, FakeEngine(fail_at=3), sink).run()
    assert not out.exists() and not list(tmp_path.glob(".*partial*"))


def test_null_sink_counts():
    r = Pipeline(FakeSource(5), FakeEngine(), NullSink()).run()
    assert r.frames_out == 5


def test_pipeline_sizes_the_engines_output_ring_from_its_queues():
    """A library caller's engine with a small ring gets enough buffers for the pipeline's
    queues: no result is overwritten while it waits for the sink."""
    import models
    import torch
    from realtime import create_engine

    eng = create_engine(models.create_model("lite").eval(), "lite", torch.device("cpu"), out_ring=3, temporal_strength=0.0)
    eng.prepare(16, 16)
    assert len(eng._out) == 3
    Pipeline(FakeSource(1), eng, NullSink(), queue_size=8)
    assert len(eng._out) == Pipeline.queue_capacity(False, 8) + 1 == 11
