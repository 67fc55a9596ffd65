"""capture -> infer -> encode, one thread per stage, bounded queues between them.

* File mode never drops a frame: a full queue blocks the stage before it.
* Live mode (webcams) hands inference only the newest frame (a one-slot queue that
  overwrites) and keeps at most a couple of results for the sink; every dropped frame
  is counted.
* The end of the stream travels as a sentinel (:data:`~realtime.frame.END`).
* An error in any stage stops the others and is re-raised by :meth:`Pipeline.run`
  as :class:`~realtime.errors.StageError` chained to the original.
* Ctrl-C (KeyboardInterrupt in the thread calling ``run``) stops the source; the
  frames in flight are finished and the output file is closed properly, so it plays.
  A second Ctrl-C aborts the queues but still finalises the file.
"""
from __future__ import annotations

import collections
import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from .errors import StageError
from .frame import END, Frame, Passthrough
from .profiling import Profiler

__all__ = ["StageQueue", "Aborted", "Pipeline", "RunResult"]

logger = logging.getLogger(__name__)


class Aborted(Exception):
    """Raised by a queue operation after :meth:`StageQueue.abort`."""


class StageQueue:
    """A bounded FIFO between two threads, with an explicit drop policy.

    Args:
        maxsize: capacity (>= 1).
        drop_oldest: when full, ``put`` discards the oldest frame instead of blocking
            (live mode; ``maxsize=1`` makes it a latest-frame slot). Passthrough
            packets and the END sentinel are never dropped.
    """

    def __init__(self, maxsize: int, drop_oldest: bool = False):
        self.maxsize = max(1, maxsize)
        self.drop_oldest = drop_oldest
        self.dropped = 0
        self._items: collections.deque = collections.deque()
        self._cond = threading.Condition()
        self._aborted = False

    def __len__(self) -> int:
        return len(self._items)

    def put(self, item: Any) -> None:
        """Add ``item``; blocks while full (unless dropping).

        Raises:
            Aborted: the queue was aborted.
        """
        with self._cond:
            while True:
                if self._aborted:
                    raise Aborted
                if len(self._items) < self.maxsize or item is END:
                    break
                if self.drop_oldest:
                    victim = next((x for x in self._items if isinstance(x, Frame)), None)
                    if victim is not None:
                        self._items.remove(victim)
                        self.dropped += 1
                        break
                self._cond.wait()
            self._items.append(item)
            self._cond.notify_all()

    def get(self) -> Any:
        """Remove and return the oldest item; blocks while empty.

        Raises:
            Aborted: the queue was aborted.
        """
        with self._cond:
            while not self._items:
                if self._aborted:
                    raise Aborted
                self._cond.wait()
            if self._aborted:
                raise Aborted
            item = self._items.popleft()
            self._cond.notify_all()
            return item

    def abort(self) -> None:
        """Wake every waiting thread with :class:`Aborted`."""
        with self._cond:
            self._aborted = True
            self._cond.notify_all()


@dataclass
class RunResult:
    frames_in: int
    frames_out: int
    dropped: int
    interrupted: bool
    report: dict[str, Any]
    warnings: list[str] = field(default_factory=list)


class Pipeline:
    """Run ``source`` -> ``engine`` -> ``sink`` on three threads.

    Args:
        source: a realtime.sources source (``frames(stop)``, ``live``).
        engine: a :class:`realtime.engine.InferenceEngine` (``process``, ``flush``,
            ``reserve_outputs``: the pipeline tells it how many results its queues can
            hold, so that no output buffer is reused while a result waits downstream).
        sink: a realtime.sinks sink (``write``, ``write_packet``, ``close``).
        live: drop stale frames (default: ``source.live``).
        queue_size: capacity of the queues in file mode.
        on_tick: called about 4 times a second from the ``run`` thread with the
            pipeline (progress bars, live status).
    """

    def __init__(self, source: Any, engine: Any, sink: Any, live: bool | None = None, queue_size: int = 4,
                 on_tick: Callable[[Pipeline], None] | None = None):
        self.source, self.engine, self.sink = source, engine, sink
        self.live = bool(source.live if live is None else live)
        if self.live:
            self.q_in = StageQueue(1, drop_oldest=True)
            self.q_out = StageQueue(2, drop_oldest=True)
        else:
            self.q_in = StageQueue(queue_size)
            self.q_out = StageQueue(queue_size)
        self.engine.reserve_outputs(self.queue_capacity(self.live, queue_size) + 1)
        self.on_tick = on_tick
        self.profiler = Profiler()
        self.frames_out = 0
        self.interrupted = False
        self._stop = threading.Event()
        self._error: tuple[str, BaseException] | None = None
        self._lock = threading.Lock()

    @staticmethod
    def queue_capacity(live: bool, queue_size: int = 4) -> int:
        """Most results alive downstream of the engine at once (for its output ring)."""
        return (2 if live else queue_size) + 2

    # ------------------------------------------------------------------ control
    def stop(self) -> None:
        """Ask the source to stop; frames in flight are still finished and written."""
        self._stop.set()

    def _fail(self, stage: str, err: BaseException) -> None:
        with self._lock:
            if self._error is None:
                self._error = (stage, err)
        self._stop.set()
        self.q_in.abort()
        self.q_out.abort()

    @property
    def dropped(self) -> int:
        return self.q_in.dropped + self.q_out.dropped

    @property
    def frames_in(self) -> int:
        return int(getattr(self.source, "frames_read", 0))

    # ------------------------------------------------------------------ stages
    def _run_source(self) -> None:
        try:
            for item in self.source.frames(self._stop):
                self.q_in.put(item)
        except Aborted:
            return
        except BaseException as err:  # noqa: BLE001 - handed to the caller by run()
            self._fail("decode", err)
            return
        try:
            self.q_in.put(END)
        except Aborted:
            return

    def _run_engine(self) -> None:
        try:
            while True:
                item = self.q_in.get()
                if item is END:
                    for f in self.engine.flush():
                        self.q_out.put(f)
                    self.q_out.put(END)
                    return
                if isinstance(item, Passthrough):
                    self.q_out.put(item)
                    continue
                for f in self.engine.process(item):
                    self.q_out.put(f)
        except Aborted:
            return
        except BaseException as err:  # noqa: BLE001 - handed to the caller by run()
            self._fail("infer", err)

    def _run_sink(self) -> None:
        commit = False
        try:
            while True:
                item = self.q_out.get()
                if item is END:
                    commit = True
                    return
                if isinstance(item, Passthrough):
                    self.sink.write_packet(item)
                    continue
                t0 = time.perf_counter()
                self.sink.write(item)
                t1 = time.perf_counter()
                item.timings["encode"] = t1 - t0
                self.profiler.add(item, t1)
                item.result = None
                self.frames_out += 1
        except Aborted:
            commit = self.interrupted
        except BaseException as err:  # noqa: BLE001 - handed to the caller by run()
            self._fail("encode", err)
        finally:
            try:
                self.sink.close(commit=commit and self._error is None)
            except BaseException as err:  # noqa: BLE001 - handed to the caller by run()
                self._fail("encode", err)

    # ------------------------------------------------------------------ run
    def run(self) -> RunResult:
        """Run to the end of the input (or ``stop()``/Ctrl-C).

        Returns:
            counts, the profile report and warnings; ``interrupted`` after Ctrl-C.

        Raises:
            StageError: a stage failed (``__cause__`` is the original error).
        """
        stages = [(self._run_source, "decode"), (self._run_engine, "infer"), (self._run_sink, "encode")]
        running = [len(stages)]
        finished = threading.Event()

        def stage(fn: Callable[[], None]) -> None:
            try:
                fn()
            finally:
                with self._lock:
                    running[0] -= 1
                    if running[0] == 0:
                        finished.set()

        threads = [threading.Thread(target=stage, args=(fn,), name=name, daemon=True) for fn, name in stages]
        self.profiler.start()
        for t in threads:
            t.start()
        interrupts = 0
        # Wait on an Event, never in Thread.join(): a KeyboardInterrupt that lands inside
        # join() on a running thread can leave that thread marked as stopped (CPython's
        # bpo-45274 clean-up), and run() would return while the sink is still closing
        # the file, which then goes missing or aborts at interpreter exit.
        while not finished.is_set():
            try:
                finished.wait(0.25)
                if self.on_tick is not None:
                    self.on_tick(self)
            except KeyboardInterrupt:
                interrupts += 1
                self.interrupted = True
                self._stop.set()
                if interrupts == 1:
                    logger.warning("interrupted: finishing the frames in flight and closing the output")
                else:
                    self.q_in.abort()
                    self.q_out.abort()
        for t in threads:
            t.join()
        self.profiler.stop()
        self.profiler.dropped = self.dropped
        if self.on_tick is not None:
            self.on_tick(self)
        if self._error is not None:
            stage, err = self._error
            raise StageError(stage, err) from err
        warnings = list(getattr(self.source, "warnings", [])) + list(getattr(self.sink, "warnings", []))
        if self.dropped:
            warnings.append(f"dropped {self.dropped} stale frame(s) to stay live")
        return RunResult(self.frames_in, self.frames_out, self.dropped, self.interrupted, self.profiler.report(), warnings)
