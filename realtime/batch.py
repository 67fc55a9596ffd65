"""Batch processing: many files, and long files cut into segments, on all cores or on Ray.

The unit of work is a :class:`Job`: one input file (video or image) to enhance into one
output, or one :class:`Segment` of a long video. Jobs are idempotent: a job writes its
output under a hidden temporary name and renames it when complete, so running a job
twice, or after a crash, gives the same file, and a re-run of a batch skips outputs
that are complete (:func:`is_complete` compares frame counts).

What enhances a job is not defined here: the caller passes a picklable *worker
factory*, called once in each worker process (or Ray actor) to load the model, which
returns a callable ``worker(job, on_frames) -> dict`` (``{"frames": n}``). It raises
for a bad file; the failure is reported for that job and the other jobs go on.

* :func:`discover`: files, folders and globs -> jobs, keeping relative folders.
* :func:`plan_segments` / :class:`SegmentSource` / :class:`WarmupSkippingSink` /
  :func:`join_segments`: ``--split`` (cut at keyframes, warm the temporal smoother on
  frames before each cut, join by stream copy with the original's audio).
* :func:`run_local`: a spawn-context process pool, a broken pool is replaced and the
  jobs it held retried once.
* :func:`run_ray`: Ray actors holding the model (``ray`` is imported lazily).
"""
from __future__ import annotations

import bisect
import concurrent.futures as cf
import contextlib
import dataclasses
import glob
import heapq
import json
import logging
import multiprocessing
import os
import shutil
import signal
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import av

from .errors import PipelineError, SinkError, SourceError
from .frame import Passthrough
from .sinks import VIDEO_EXTENSIONS, _partial_name
from .sources import IMAGE_EXTENSIONS

__all__ = [
    "BatchError",
    "BatchInterrupted",
    "Segment",
    "Job",
    "JobResult",
    "discover",
    "count_frames",
    "is_complete",
    "plan_segments",
    "SegmentSource",
    "WarmupSkippingSink",
    "join_segments",
    "remove_stale_partials",
    "run_local",
    "run_ray",
    "default_jobs",
    "ray_missing_message",
]

logger = logging.getLogger(__name__)

#: Video suffixes picked up from folders and globs (files named explicitly are always taken).
INPUT_VIDEO_EXTENSIONS = tuple(sorted(set(VIDEO_EXTENSIONS) | {".mts", ".m2ts", ".mpg", ".mpeg", ".flv", ".wmv", ".3gp"}))


class BatchError(PipelineError, ValueError):
    """The batch cannot be set up (no inputs, two inputs mapping to one output...)."""

    exit_code = 2


class BatchInterrupted(PipelineError):
    """Ctrl-C or SIGTERM stopped the batch; the outputs in flight were removed."""

    exit_code = 130


# --------------------------------------------------------------------------- jobs
@dataclass(frozen=True)
class Segment:
    """Part ``index`` of ``count`` of a video: frames with ``start <= pts < end``
    (``end`` None: to the end) are written to ``path``; ``warm_from`` is the pts of
    the first frame decoded and run through the model (not written) before ``start``,
    so the temporal smoother enters the segment in the state the unsplit run has."""

    index: int
    count: int
    start: int | None
    end: int | None
    warm_from: int | None
    path: Path


@dataclass(frozen=True)
class Job:
    input: Path
    output: Path
    kind: str  # "video" or "image"
    segment: Segment | None = None

    @property
    def key(self) -> str:
        return str(self.output) + (f"#{self.segment.index}" if self.segment else "")


@dataclass
class JobResult:
    input: str
    output: str
    status: str  # "ok", "skipped", "failed"
    frames: int = 0
    seconds: float = 0.0
    error: str | None = None
    segments: int = 0
    worker_peak_rss_mb: float | None = None  # the worker process's peak resident memory so far

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0

    def to_json(self) -> str:
        d = dataclasses.asdict(self)
        d["fps"] = round(self.fps, 2)
        d["seconds"] = round(self.seconds, 3)
        return json.dumps(d)


def _kind(path: Path) -> str | None:
    s = path.suffix.lower()
    if s in IMAGE_EXTENSIONS:
        return "image"
    if s in INPUT_VIDEO_EXTENSIONS:
        return "video"
    return None


def _walk(folder: Path) -> Iterator[Path]:
    for root, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for f in sorted(files):
            if not f.startswith("."):
                yield Path(root) / f


def discover(inputs: Sequence[str], outdir: str | os.PathLike) -> list[Job]:
    """Map INPUTS (files, folders, globs) to jobs writing into ``outdir``.

    A file keeps its name; the files of a folder (recursively, hidden ones skipped)
    keep their path relative to the folder; glob matches keep their path relative to
    the glob's literal leading folders. Folders and globs take known video and image
    suffixes only; a file named explicitly is always taken (if it is not a video it
    fails as a job, like a corrupt one).

    Raises:
        BatchError: an input that does not exist or matches nothing, no job at all, an
            output that is an input, or two inputs mapping to one output.
    """
    out = Path(outdir)
    pairs: list[tuple[Path, Path]] = []
    for spec in inputs:
        path = Path(spec)
        if path.is_dir():
            pairs += [(p, p.relative_to(path)) for p in _walk(path) if _kind(p)]
        elif path.is_file():
            pairs.append((path, Path(path.name)))
        elif glob.has_magic(spec):
            parts = path.parts
            n = next(i for i, part in enumerate(parts) if glob.has_magic(part))
            base = Path(*parts[:n]) if n else Path(".")
            matches = sorted(Path(m) for m in glob.glob(spec, recursive=True))
            if not matches:
                raise BatchError(f"{spec} matches no file")
            for m in matches:
                if m.is_dir():
                    pairs += [(p, p.relative_to(base)) for p in _walk(m) if _kind(p)]
                elif m.is_file() and _kind(m) and not m.name.startswith("."):
                    pairs.append((m, m.relative_to(base)))
        else:
            raise BatchError(f"input {spec} does not exist")
    jobs: list[Job] = []
    seen: dict[Path, Path] = {}
    for src, rel in pairs:
        target = out / rel
        key = target.resolve()
        if key == src.resolve():
            raise BatchError(f"output {target} is the input file; choose another output folder")
        if key in seen:
            if seen[key].resolve() == src.resolve():
                continue  # the same file named twice
            raise BatchError(f"{seen[key]} and {src} would both be written to {target}")
        seen[key] = src
        jobs.append(Job(src, target, _kind(src) or "video"))
    if not jobs:
        raise BatchError(f"no video or image in {' '.join(inputs)}")
    return jobs


# --------------------------------------------------------------------------- completeness
def count_frames(path: str | os.PathLike) -> int:
    """Frames of the first video stream, counted from its packets (no decoding).

    Raises:
        SourceError: the file cannot be read or has no video stream.
    """
    try:
        with av.open(str(path)) as c:
            if not c.streams.video:
                raise SourceError(f"{path} has no video stream")
            v = c.streams.video[0]
            return sum(1 for p in c.demux(v) if p.size)
    except (av.error.FFmpegError, OSError) as err:
        raise SourceError(f"cannot read {path}: {err}") from err


def is_complete(job: Job) -> bool:
    """True when ``job.output`` exists and is finished: an image (written atomically),
    or a video with as many frames as its input."""
    if not job.output.is_file():
        return False
    if job.kind == "image":
        return True
    try:
        return count_frames(job.output) == count_frames(job.input) > 0
    except SourceError:
        return False


def _partials(output: Path) -> list[Path]:
    return list(output.parent.glob(f".{glob.escape(output.stem)}.partial-*{glob.escape(output.suffix)}")) + list(
        output.parent.glob(f".{glob.escape(output.name)}.segments-*")
    )


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale_partials(output: Path, dead_pids: Sequence[int] | None = None) -> list[Path]:
    """Remove hidden partial files and segment folders of ``output`` left by processes
    that no longer run (or by ``dead_pids``). Returns what was removed."""
    removed = []
    for p in _partials(output):
        try:
            pid = int(p.name.rsplit("-", 1)[1].split(".")[0])
        except (IndexError, ValueError):
            continue
        if (dead_pids is not None and pid in dead_pids) or not _pid_alive(pid):
            if p.is_dir():
                shutil.rmtree(p, ignore_errors=True)
            else:
                p.unlink(missing_ok=True)
            removed.append(p)
    return removed


# --------------------------------------------------------------------------- split
def plan_segments(job: Job, parts: int, warmup: int = 30, min_frames: int | None = None) -> list[Job]:
    """Cut ``job``'s video at keyframes into at most ``parts`` segments of similar length.

    Each segment starts at a keyframe (so it decodes on its own) and warms the temporal
    smoother on the ``warmup`` frames before it. Returns ``[job]`` when the video is
    too short or has too few keyframes to cut.

    Raises:
        SourceError: the input cannot be read.
    """
    try:
        with av.open(str(job.input)) as c:
            if not c.streams.video:
                raise SourceError(f"{job.input} has no video stream")
            v = c.streams.video[0]
            pts, keys = [], []
            for p in c.demux(v):
                if p.size and p.pts is not None:
                    pts.append(p.pts)
                    if p.is_keyframe:
                        keys.append(p.pts)
    except (av.error.FFmpegError, OSError) as err:
        raise SourceError(f"cannot read {job.input}: {err}") from err
    pts.sort()
    n = len(pts)
    min_frames = max(2 * warmup, 30) if min_frames is None else min_frames
    parts = min(parts, n // max(1, min_frames))
    if parts < 2:
        return [job]
    cuts: list[int] = []
    for k in range(1, parts):
        target = pts[k * n // parts]
        best = min(keys, key=lambda t: abs(t - target))
        i = bisect.bisect_left(pts, best)
        prev = bisect.bisect_left(pts, cuts[-1]) if cuts else 0
        if i - prev >= min_frames and n - i >= min_frames and best not in cuts:
            cuts.append(best)
    if not cuts:
        return [job]
    folder = job.output.parent / f".{job.output.name}.segments-{os.getpid()}"
    bounds = [None, *cuts, None]
    jobs = []
    for k in range(len(bounds) - 1):
        start, end = bounds[k], bounds[k + 1]
        warm = None
        if start is not None:
            i = bisect.bisect_left(pts, start)
            warm = pts[max(0, i - warmup)]
        seg = Segment(k, len(bounds) - 1, start, end, warm, folder / f"{k:04d}{job.output.suffix}")
        jobs.append(dataclasses.replace(job, segment=seg))
    return jobs


class SegmentSource:
    """Frames of one :class:`Segment` of a video source, warm-up frames first.

    Wraps an open :class:`~realtime.sources.VideoFileSource` (opened without streams
    to copy): seeks to the keyframe before ``warm_from``, drops the frames before it,
    and stops at ``end``. The first frame handed on starts a new smoothing segment.
    """

    live = False
    kind = "video"

    def __init__(self, source: Any, segment: Segment):
        self.source, self.segment = source, segment
        for name in ("width", "height", "time_base", "rate", "pixel_format"):
            setattr(self, name, getattr(source, name))
        self.rotation = getattr(source, "rotation", 0)
        source.expected_frames = None  # a segment is short by design, not truncated
        self.copy_streams: list = []
        self.warnings: list[str] = []
        self.frames_read = 0
        self.expected_frames = None

    def __enter__(self) -> SegmentSource:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.source.close()

    def close(self) -> None:
        self.source.close()

    def frames(self, stop: threading.Event | None = None):
        seg = self.segment
        first = seg.warm_from if seg.warm_from is not None else seg.start
        if first is not None:
            self.source.container.seek(first, stream=self.source.stream, backward=True, any_frame=False)
        gen = self.source.frames(stop)
        try:
            for f in gen:
                if isinstance(f, Passthrough):
                    continue
                if f.pts is not None and first is not None and f.pts < first:
                    continue
                if f.pts is not None and seg.end is not None and f.pts >= seg.end:
                    break
                f.reset = self.frames_read == 0
                self.frames_read += 1
                yield f
        finally:
            gen.close()
        self.warnings = list(self.source.warnings)


class WarmupSkippingSink:
    """Hands frames at or after ``start`` (pts) to ``sink``; earlier (warm-up) frames
    only warmed the model's temporal state and are not written."""

    def __init__(self, sink: Any, start: int | None):
        self.sink, self.start = sink, start

    @property
    def frames_written(self) -> int:
        return self.sink.frames_written

    @property
    def warnings(self) -> list[str]:
        return self.sink.warnings

    def write(self, frame) -> None:
        if self.start is None or frame.pts is None or frame.pts >= self.start:
            self.sink.write(frame)

    def write_packet(self, item) -> None:
        pass  # the original's audio is copied when the segments are joined

    def close(self, commit: bool = True) -> None:
        self.sink.close(commit)


def join_segments(segments: Sequence[Path], original: Path, output: Path) -> int:
    """Join encoded segments by stream copy, with the original's audio and subtitle
    packets copied as they are, into ``output`` (written under a hidden name, renamed
    when complete). Returns the number of video packets.

    Raises:
        SinkError: the output cannot be written.
        SourceError: a segment or the original cannot be read.
    """
    tmp = _partial_name(output)
    inputs = []
    try:
        try:
            inputs = [av.open(str(p)) for p in segments]
            orig = av.open(str(original))
        except (av.error.FFmpegError, OSError) as err:
            raise SourceError(f"cannot read a segment of {original}: {err}") from err
        inputs.append(orig)
        try:
            out = av.open(str(tmp), "w")
        except (av.error.FFmpegError, OSError) as err:
            raise SinkError(f"cannot create {output}: {err}") from err
        n = 0
        try:
            ov = out.add_stream_from_template(inputs[0].streams.video[0])
            rotation = _rotation(original)
            if rotation:
                ov.set_display_rotation(rotation)  # as the unsplit run writes it
            others = {}
            for s in orig.streams:
                if s.type in ("audio", "subtitle"):
                    name = s.codec_context.name if s.codec_context else None
                    if name and name not in out.supported_codecs:
                        continue  # dropped by the unsplit run as well (with its warning)
                    others[s.index] = out.add_stream_from_template(s)

            def video() -> Iterator[tuple[float, int, Any]]:
                for c in inputs[:-1]:
                    for p in c.demux(c.streams.video[0]):
                        if p.size:
                            yield (float((p.dts if p.dts is not None else p.pts) * p.time_base), 0, p)

            def audio() -> Iterator[tuple[float, int, Any]]:
                if not others:
                    return
                for p in orig.demux([orig.streams[i] for i in others]):
                    if p.size and p.dts is not None:
                        yield (float(p.dts * p.time_base), 1, p)

            for _, which, p in heapq.merge(video(), audio(), key=lambda t: (t[0], t[1])):
                if which == 0:
                    p.stream = ov
                    n += 1
                else:
                    p.stream = others[p.stream.index]
                out.mux(p)
            out.close()
        except (av.error.FFmpegError, OSError) as err:
            out.close()
            raise SinkError(f"cannot write {output}: {err}") from err
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    finally:
        for c in inputs:
            c.close()
    os.replace(tmp, output)
    return n


def _rotation(path: Path) -> int:
    from .sources import VideoFileSource

    with VideoFileSource(path, copy_streams=False) as src:
        return int(getattr(src, "rotation", 0))


# --------------------------------------------------------------------------- local pool
def default_jobs(device_type: str = "cpu", gpus: int = 0) -> int:
    """Workers by default: one per GPU; on CPU one per two cores (each pipeline runs a
    decode and an encode thread beside its torch thread(s))."""
    if device_type == "cuda" and gpus:
        return gpus
    return max(1, (os.cpu_count() or 2) // 2)


def threads_per_worker(jobs: int) -> int:
    """Torch threads per CPU worker: the cores split between workers, half of each
    share for torch (as a single run does), at least 1."""
    return max(1, (os.cpu_count() or 2) // max(1, jobs) // 2)


_WORKER: Callable | None = None
_PROGRESS: Any = None


@contextlib.contextmanager
def _children_ignore_sigint() -> Iterator[None]:
    """Processes started inside inherit an ignored SIGINT (kept through exec, and Python
    then installs no KeyboardInterrupt handler): a Ctrl-C in the terminal, sent to the whole
    process group, reaches only the parent, which stops the workers and cleans up."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def _pool_init(factory: Callable[[], Callable], progress: Any, counter: Any) -> None:
    global _WORKER, _PROGRESS
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles Ctrl-C for the batch
    with counter.get_lock():
        index = counter.value
        counter.value += 1
    os.environ["LOWLIGHT_WORKER_INDEX"] = str(index)
    _PROGRESS = progress
    _WORKER = factory()


def _execute(worker: Callable, job: Job, on_frames: Callable[[int], None]) -> dict:
    """Run one job; a failure is returned as the job's result, never raised."""
    target = job.segment.path if job.segment else job.output
    remove_stale_partials(target)
    t0 = time.perf_counter()
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        out = worker(job, on_frames)
    except Exception as err:  # noqa: BLE001 - reported per job (typed message), the batch goes on
        logger.debug("job %s failed", job.key, exc_info=True)
        return {"status": "failed", "error": _one_line(err), "seconds": time.perf_counter() - t0}
    return {"status": "ok", "frames": int(out.get("frames", 0)), "seconds": time.perf_counter() - t0,
            "rss_mb": _peak_rss_mb()}


def _peak_rss_mb() -> float | None:
    try:
        import resource
    except ImportError:  # not on Windows
        return None
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)  # KiB on Linux


def _pool_run(job: Job) -> dict:
    assert _WORKER is not None, "worker process not initialised"
    _PROGRESS.put(("start", job.key, os.getpid()))
    return _execute(_WORKER, job, lambda n: _PROGRESS.put(("frames", job.key, n)))


def _one_line(err: BaseException) -> str:
    msg = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
    if isinstance(err, PipelineError) or isinstance(err, OSError):
        return msg
    return f"{type(err).__name__}: {msg}"


@dataclass
class _Tracker:
    """Per-output bookkeeping shared by the local and Ray runners."""

    jobs: list[Job]
    on_result: Callable[[JobResult], None]
    on_frames: Callable[[int], None]
    pending_segments: dict[Path, list[Job]] = field(default_factory=dict)
    seg_results: dict[Path, list[dict]] = field(default_factory=dict)
    frames_seen: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for j in self.jobs:
            if j.segment is not None:
                self.pending_segments.setdefault(j.output, []).append(j)
                self.seg_results.setdefault(j.output, [])

    def frames(self, key: str, n: int) -> None:
        d = n - self.frames_seen.get(key, 0)
        if d > 0:
            self.frames_seen[key] = n
            self.on_frames(d)

    def done(self, job: Job, res: dict) -> None:
        if res["status"] == "ok":
            self.frames(job.key, res["frames"])
        if job.segment is None:
            self.on_result(JobResult(str(job.input), str(job.output), res["status"], res.get("frames", 0),
                                     res.get("seconds", 0.0), res.get("error"), worker_peak_rss_mb=res.get("rss_mb")))
            return
        results = self.seg_results[job.output]
        results.append(res)
        if len(results) < job.segment.count:
            return
        segs = sorted(self.pending_segments[job.output], key=lambda j: j.segment.index)
        seconds = sum(r.get("seconds", 0.0) for r in results)
        frames = sum(r.get("frames", 0) for r in results)
        failed = [r for r in results if r["status"] != "ok"]
        folder = segs[0].segment.path.parent
        status, error = "ok", None
        if failed:
            status, error = "failed", failed[0].get("error")
        else:
            try:
                join_segments([j.segment.path for j in segs], job.input, job.output)
            except PipelineError as err:
                status, error = "failed", _one_line(err)
        shutil.rmtree(folder, ignore_errors=True)
        rss = max((r["rss_mb"] for r in results if r.get("rss_mb")), default=None)
        self.on_result(JobResult(str(job.input), str(job.output), status, frames, seconds, error, segments=len(segs),
                                 worker_peak_rss_mb=rss))


def _cleanup(jobs: Sequence[Job], pids: Sequence[int]) -> None:
    outputs = {j.output for j in jobs}
    for o in outputs:
        remove_stale_partials(o, dead_pids=list(pids) + [os.getpid()])


def run_local(
    jobs: Sequence[Job],
    factory: Callable[[], Callable],
    workers: int,
    on_result: Callable[[JobResult], None],
    on_frames: Callable[[int], None],
    retries: int = 1,
) -> None:
    """Run ``jobs`` on ``workers`` spawned processes, each holding ``factory()``.

    A worker that dies breaks the pool: a new pool is started and the jobs that were
    running or queued are submitted again; a job that was running when a pool broke
    ``retries + 1`` times fails. Ctrl-C / SIGTERM (as KeyboardInterrupt) stops the
    workers, removes the outputs in flight and raises :class:`BatchInterrupted`.
    """
    ctx = multiprocessing.get_context("spawn")
    progress = ctx.SimpleQueue()  # put() writes to the pipe at once: a "start" survives its worker's death
    counter = ctx.Value("i", 0)
    tracker = _Tracker(list(jobs), on_result, on_frames)
    busy: dict[str, int] = {}  # job key -> worker pid
    lock = threading.Lock()
    synced = threading.Event()

    def read_progress() -> None:
        while True:
            msg = progress.get()
            if msg is None:
                return
            what, key, value = msg
            with lock:
                if what == "start":
                    busy[key] = value
                elif what == "frames":
                    tracker.frames(key, value)
                else:  # "sync": every message sent before it has been read
                    synced.set()

    def sync() -> None:
        synced.clear()
        progress.put(("sync", None, None))
        synced.wait()

    reader = threading.Thread(target=read_progress, name="batch-progress", daemon=True)
    reader.start()
    attempts: dict[str, int] = {}
    todo = list(jobs)
    all_pids: set[int] = set()
    pool = None
    dead_rounds = 0
    try:
        while todo:
            with _children_ignore_sigint():  # the workers start during the submits
                pool = cf.ProcessPoolExecutor(max_workers=max(1, min(workers, len(todo))), mp_context=ctx,
                                              initializer=_pool_init, initargs=(factory, progress, counter))
                futures = {pool.submit(_pool_run, j): j for j in todo}
            todo = []
            broken = None
            progressed = False  # a job finished or was taken by a worker in this round
            for fut in cf.as_completed(futures):
                job = futures[fut]
                try:
                    res = fut.result()
                except cf.process.BrokenProcessPool as err:
                    if broken is None:
                        broken = err
                        sync()
                    n = attempts.get(job.key, 0)
                    with lock:
                        started = job.key in busy
                        pid = busy.pop(job.key, None)
                    if pid is not None:
                        all_pids.add(pid)
                    if started:
                        progressed = True
                        attempts[job.key] = n + 1
                    if not started or n < retries:
                        todo.append(job)
                        continue
                    res = {"status": "failed", "error": f"the worker died twice on this file ({err or 'killed'})"}
                progressed = True
                with lock:
                    busy.pop(job.key, None)
                    tracker.done(job, res)
            pool.shutdown(wait=True)
            pool = None
            if todo and not progressed:
                dead_rounds += 1  # no job finished or was taken: the workers die while starting
                if dead_rounds > retries:
                    for job in todo:
                        with lock:
                            tracker.done(job, {"status": "failed", "error": f"the worker processes die before taking "
                                                                            f"a file: {broken}"})
                    return
            else:
                dead_rounds = 0
            if todo:
                logger.warning("a worker died; starting new workers for %d file(s)", len(todo))
                _cleanup(todo, list(all_pids))
    except KeyboardInterrupt as err:
        with lock:
            pids = list(busy.values())
        if pool is not None:
            # ProcessPoolExecutor has no public way to stop busy workers before Python
            # 3.14 (terminate_workers), and shutdown() forgets its processes: take them first.
            procs = list((getattr(pool, "_processes", None) or {}).values())
            pool.shutdown(wait=False, cancel_futures=True)
            for p in procs:
                p.terminate()
            for p in procs:
                p.join()
            pids += [p.pid for p in procs if p.pid is not None]
        _cleanup(jobs, pids)
        raise BatchInterrupted("interrupted; the outputs in flight were removed") from err
    finally:
        progress.put(None)
        reader.join(timeout=5)


# --------------------------------------------------------------------------- Ray
def ray_missing_message() -> str:
    return 'Ray is not installed; install it with: pip install -e ".[ray]"  (or pip install "ray>=2.9")'


def run_ray(
    jobs: Sequence[Job],
    factory: Callable[[], Callable],
    workers: int | None,
    on_result: Callable[[JobResult], None],
    on_frames: Callable[[int], None],
    address: str | None = None,
    num_gpus: float = 0,
    num_cpus: float = 1,
    init_kwargs: dict | None = None,
) -> None:
    """Run ``jobs`` on a Ray cluster (``address``; None starts a local one).

    Each actor calls ``factory()`` once (loads the model) and takes the next job when
    it finishes one; ``num_gpus`` per actor for CUDA workers. Ray restarts an actor whose
    process dies and retries its job once (``max_restarts=1, max_task_retries=1``).
    Outputs must be on storage every node sees under the same path.

    Raises:
        ImportError: Ray is not installed (see :func:`ray_missing_message`).
        BatchInterrupted: Ctrl-C / SIGTERM; the actors are killed, outputs in flight removed.
    """
    import ray

    started_here = not ray.is_initialized()
    if started_here:
        on_sigterm = signal.getsignal(signal.SIGTERM)
        ray.init(address=address, **(init_kwargs or {}))
        if threading.current_thread() is threading.main_thread() and on_sigterm is not None:
            signal.signal(signal.SIGTERM, on_sigterm)  # the caller's (ray.init installs its own)
    tracker = _Tracker(list(jobs), on_result, on_frames)

    @ray.remote(max_restarts=1, max_task_retries=1)
    class EnhanceActor:
        def __init__(self, make: Callable[[], Callable]):
            self.worker = make()

        def run(self, job: Job) -> dict:
            return _execute(self.worker, job, lambda n: None)

    if workers is None:
        res = ray.cluster_resources()
        workers = int(res.get("GPU", 0) // num_gpus) if num_gpus else int(res.get("CPU", 1) // max(num_cpus, 1e-3))
    workers = max(1, min(workers, len(jobs)))
    actors = [EnhanceActor.options(num_cpus=num_cpus, num_gpus=num_gpus).remote(factory) for _ in range(workers)]
    todo = list(jobs)
    running: dict[Any, tuple[Job, Any]] = {}  # object ref -> (job, actor)
    try:
        idle = list(actors)
        while todo or running:
            while todo and idle:
                job, actor = todo.pop(0), idle.pop()
                running[actor.run.remote(job)] = (job, actor)
            done, _ = ray.wait(list(running), num_returns=1)
            job, actor = running.pop(done[0])
            idle.append(actor)
            try:
                res = ray.get(done[0])
            except ray.exceptions.RayError as err:
                # the actor died again after its restart and the retry of this job
                res = {"status": "failed", "error": f"the Ray worker died on this file: {type(err).__name__}"}
            tracker.done(job, res)
    except KeyboardInterrupt as err:
        for a in actors:
            ray.kill(a)
        time.sleep(0.5)  # let the killed actor processes exit before their partial files are removed
        _cleanup(jobs, [])
        raise BatchInterrupted("interrupted; the outputs in flight were removed") from err
    finally:
        for a in actors:
            ray.kill(a)
        if started_here:
            ray.shutdown()
