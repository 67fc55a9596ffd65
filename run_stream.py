"""Enhance dark video: files and URLs, webcams, images and folders of images.

    python run_stream.py INPUT -o OUTPUT            # video file/URL -> video file; image(s) -> folder
    python run_stream.py --webcam 0 --preview        # live, original and enhanced side by side
    python run_stream.py INPUT --no-output --profile report.json   # where does the time go?
    python run_stream.py --demo                      # builds a dark clip from skimage.data and enhances it
    python run_stream.py batch clips/ '*.mkv' -o out/ --jobs 2 --report r.jsonl   # many files (--ray, --split)

Exit codes: 0 success, 1 runtime failure, 2 bad usage or unusable input/output,
130 interrupted (the output file is still finished and plays).
"""
from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Sequence

EXIT_OK, EXIT_FAIL, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130

logger = logging.getLogger("run_stream")


from models.errors import LowlightError  # noqa: E402  (light: no torch import)


class UsageError(LowlightError, ValueError):
    """Bad options or an unusable input/output, found before running."""

    exit_code = EXIT_USAGE


#: Options of a single run that do not apply to a batch (every other option does).
SINGLE_ONLY = ("input", "output", "webcam", "demo", "preview", "no_output", "profile")


def build_parser(batch: bool = False) -> argparse.ArgumentParser:
    """The single-run parser, or (``batch``) the ``run-stream batch`` parser: the same
    options (model, backend, strength, crf...) with INPUTS..., -o OUTDIR and the batch
    options instead of the single-input ones."""
    p = argparse.ArgumentParser(
        prog="run-stream batch" if batch else "run-stream",
        description="Enhance many videos and images into a folder, on all cores or a Ray cluster."
        if batch else "Real-time low-light enhancement of video files, webcams and images.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__.split("\n\n")[1] if __doc__ else None,
    )
    if batch:
        _add_batch_options(p)
    else:
        p.add_argument("input", nargs="?", help="video file or URL, an image, or a folder of images")
        p.add_argument("-o", "--output", help="output video file (video input, webcam) or folder (images)")
        p.add_argument("--webcam", metavar="N", help="camera index or device path instead of INPUT")
        p.add_argument("--demo", action="store_true", help="build a short dark clip from skimage.data and enhance it")
        p.add_argument("--preview", action="store_true", help="show original and enhanced side by side (q quits)")
        p.add_argument("--no-output", action="store_true", help="write nothing (profiling)")
        p.add_argument("--profile", metavar="FILE", help="write a JSON report (and a PNG chart next to it)")
    p.add_argument("--model", help="model name (default: lite on CPU, blnet on CUDA)")
    p.add_argument("--backend", default="auto", choices=("auto", "tensorrt", "compile", "cuda", "cpu"))
    p.add_argument("--device", choices=("cpu", "cuda"), help="default: cuda if available")
    p.add_argument("--calibration", metavar="PROFILE_JSON", help="profile.json written by python -m calibrate")
    p.add_argument("--strength", type=float, default=1.0, metavar="S",
                   help="how much of the enhancement to apply, in (0, 1]; lower it for very dark, "
                        "heavily compressed video (default 1)")
    p.add_argument("--temporal-strength", type=float, default=0.8, metavar="S",
                   help="smoothing of the illumination over time in [0, 1), 0 turns it off (default 0.8)")
    p.add_argument("--denoise", type=float, default=0.5, metavar="S",
                   help="motion-adaptive temporal denoising of the input in [0, 1], 0 turns it off (default 0.5)")
    p.add_argument("--exposure", type=float, default=0.0, metavar="EV",
                   help="brighter (+1 = twice) or darker (-1 = half) than the default night exposure, "
                        "in [-4, 4] (default 0; lite on CPU)")
    p.add_argument("--no-tone", action="store_true",
                   help="render lite's network output as it is, without the exposure policy (signal "
                        "and chroma floors, highlight limit, auto-bypass)")
    p.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    p.add_argument("--codec", default="libx264", help="video encoder (default libx264)")
    p.add_argument("--crf", type=int, default=23, help="x264/x265 constant rate factor (default 23)")
    p.add_argument("--preset", default=None,
                   help="encoder preset (default: ultrafast on CPU, with macroblock-tree rate control, "
                        "deblocking and adaptive quantisation back on; veryfast on CUDA)")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: half the cores, at least 1)")
    p.add_argument("--queue-size", type=int, default=4, help=argparse.SUPPRESS)
    p.add_argument("--weights", help=argparse.SUPPRESS)  # a checkpoint .pt instead of the shipped weights
    p.add_argument("--quiet", action="store_true", help="no progress bar or table")
    p.add_argument("--debug", action="store_true", help="verbose logging and tracebacks")
    return p


def _add_batch_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("inputs", nargs="+", metavar="INPUTS", help="video and image files, folders (recursive) and globs")
    p.add_argument("-o", "--output", required=True, metavar="OUTDIR",
                   help="output folder: each input keeps its name and relative folder")
    p.add_argument("--jobs", type=int, metavar="N",
                   help="worker processes (default: one per GPU, else one per two CPU cores)")
    p.add_argument("--ray", nargs="?", const="", metavar="ADDRESS",
                   help="run on a Ray cluster: ADDRESS (auto, ray://head:10001) or, without one, a local "
                        "cluster started for the run; a bare --ray goes after INPUTS (before them: --ray=ADDRESS)")
    p.add_argument("--split", nargs="?", type=int, const=0, metavar="PARTS",
                   help="cut long videos at keyframes into PARTS segments enhanced in parallel and joined "
                        "losslessly (default PARTS: the number of workers)")
    p.add_argument("--warmup", type=int, default=30, help=argparse.SUPPRESS)  # frames before each --split cut
    again = p.add_mutually_exclusive_group()
    again.add_argument("--resume", dest="force", action="store_false",
                       help="skip outputs that are complete (frame count checked), redo partial ones (default)")
    again.add_argument("--force", dest="force", action="store_true", help="redo every output")
    p.set_defaults(force=False)
    p.add_argument("--report", metavar="FILE", help="JSON lines: input, output, frames, seconds, fps, status, error")


def _fail(msg: str) -> None:
    print(f"error: {msg}", file=sys.stderr)


def _parse_webcam(spec: str) -> int | str:
    try:
        return int(spec)
    except ValueError:
        return spec


def _resolve_device(name: str | None):
    import torch

    if name == "cuda" and not torch.cuda.is_available():
        raise UsageError("--device cuda: CUDA is not available on this machine")
    if name is None:
        name = "cuda" if torch.cuda.is_available() else "cpu"
    return torch.device(name)


def _load_model(args, device, calibration: dict | None = None):
    """The model to run: --weights, else the shipped weights of --model (default by
    device), with a calibration's model options (e.g. lite's grid scale) applied."""
    import models

    if args.weights:
        try:
            model, manifest = models.load_checkpoint(args.weights, device)
        except (models.CheckpointError, OSError) as err:
            raise UsageError(f"cannot load weights {args.weights}: {err}") from err
        name = manifest["model"]
        if args.model and args.model != name:
            raise UsageError(f"--weights holds model {name!r}, not {args.model!r}")
    else:
        name = args.model or ("blnet" if device.type == "cuda" else "lite")
        if name not in models.list_models():
            raise UsageError(f"unknown model {name!r}; available: {', '.join(models.list_models())}")
        try:
            model, _ = models.load_pretrained(name, device)
        except models.CheckpointError as err:
            raise UsageError(str(err)) from err
    options = (calibration or {}).get("model_options") or {}
    if options:
        try:
            model = models.with_config(name, model, **options).to(device)
        except (TypeError, ValueError) as err:
            raise UsageError(f"calibration model options {options} do not fit {name!r}: {err}") from err
    return model, name


def _open_source(args, device):
    from realtime import ImageSource, VideoFileSource, WebcamSource, is_url
    from realtime.sources import IMAGE_EXTENSIONS, UNSUPPORTED_IMAGE_EXTENSIONS

    if args.webcam is not None:
        return WebcamSource(_parse_webcam(args.webcam))
    spec = args.input
    # on CUDA the I420 planes go to the GPU as decoded (half the upload, conversion there)
    fmt = "yuv420p" if device.type == "cuda" else "rgb"
    if is_url(spec):
        return VideoFileSource(spec, thread_type="AUTO", pixel_format=fmt)
    path = Path(spec)
    if path.is_dir() or path.suffix.lower() in IMAGE_EXTENSIONS + UNSUPPORTED_IMAGE_EXTENSIONS:
        return ImageSource(path)
    return VideoFileSource(path, thread_type="AUTO", pixel_format=fmt)


def _make_sink(args, source, device, on_quit):
    from fractions import Fraction

    from realtime import ImageFolderSink, NullSink, PreviewSink, TeeSink, VideoFileSink, check_output_file, check_output_folder
    from realtime.sources import IMAGE_EXTENSIONS
    from realtime.sinks import CPU_PRESET

    sinks = []
    inputs = [Path(args.input)] if args.input and "://" not in args.input else []
    if args.output and args.no_output:
        raise UsageError("-o and --no-output exclude each other")
    if args.output:
        out = Path(args.output)
        if source.kind == "images":
            if len(source.files) == 1 and out.suffix.lower() in IMAGE_EXTENSIONS and not out.is_dir():
                check_output_file_image(out, args.overwrite, inputs)
                sinks.append(ImageFolderSink(file=out))
            else:
                check_output_folder(out, [f.name for f in source.files], args.overwrite, inputs)
                sinks.append(ImageFolderSink(folder=out))
        else:
            if out.suffix.lower() in IMAGE_EXTENSIONS:
                raise UsageError(f"output {out} is an image name, but the input is a video; give a video file such as out.mp4")
            check_output_file(out, args.overwrite, inputs)
            preset = args.preset or ("veryfast" if device.type == "cuda" else CPU_PRESET)
            sinks.append(
                VideoFileSink(
                    out, source.width, source.height, source.time_base, source.rate, codec=args.codec, crf=args.crf,
                    preset=preset, tune="zerolatency" if source.live else None, copy_streams=source.copy_streams,
                    rotation=getattr(source, "rotation", 0),
                )
            )
    if args.preview:
        sinks.append(PreviewSink(on_quit=on_quit))
    if not sinks:
        if args.no_output or args.profile:
            sinks.append(NullSink())
        else:
            raise UsageError("nothing to write: give -o OUTPUT, --preview, or --no-output")
    return sinks[0] if len(sinks) == 1 else TeeSink(sinks)


def check_output_file_image(out: Path, overwrite: bool, inputs) -> None:
    from realtime import OutputExistsError, SinkError
    from realtime.sinks import _probe_writable, _same_file

    if any(_same_file(out, i) for i in inputs):
        raise SinkError(f"output {out} is the input file; choose another output path")
    if out.exists() and not overwrite:
        raise OutputExistsError(f"output {out} already exists (pass --overwrite to replace it)")
    _probe_writable(out.parent if str(out.parent) else Path("."))


class _Progress:
    """tqdm bar for files and image folders, a one-line status for live sources."""

    def __init__(self, total: int | None, live: bool, enabled: bool):
        self.live, self.enabled = live, enabled
        self.bar = None
        self._last_live = 0.0
        if enabled and not live:
            from tqdm import tqdm

            self.bar = tqdm(total=total, unit="frame", dynamic_ncols=True, file=sys.stderr, smoothing=0.1)

    def __call__(self, pipe) -> None:
        if not self.enabled:
            return
        if self.bar is not None:
            n = pipe.frames_out
            if self.bar.total is not None and n > self.bar.total:
                self.bar.total = n
            self.bar.update(n - self.bar.n)
            return
        now = time.perf_counter()
        if now - self._last_live < 0.5:
            return
        self._last_live = now
        r = pipe.profiler
        fps = r.frames / r.elapsed if r.elapsed > 0 else 0.0
        lat = r.latency[-1] if r.latency else 0.0
        sys.stderr.write(f"\r{r.frames} frames  {fps:5.1f} fps  latency {lat:4.0f} ms  dropped {pipe.dropped}   ")
        sys.stderr.flush()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
        elif self.enabled and self.live:
            sys.stderr.write("\n")


def _setup(args):
    """Check the options shared by single runs and batch workers, pick the device, read
    the calibration (which may choose the model) and set the torch threads.

    Returns:
        (device, calibration or None)
    """
    import torch

    device = _resolve_device(args.device)
    calibration = None
    if args.calibration:
        from realtime.backends import load_calibration

        try:
            calibration = load_calibration(args.calibration)
        except (ValueError, OSError) as err:
            raise UsageError(f"calibration {args.calibration}: {err}") from err
        cal_model = calibration.get("model")
        if cal_model and not args.model and not args.weights:
            args.model = cal_model
        elif cal_model and args.model and cal_model != args.model:
            raise UsageError(f"--calibration is for model {cal_model!r}, not {args.model!r}")
    _check_ranges(args)
    if device.type == "cpu":
        torch.set_num_threads(args.threads or max(1, (os.cpu_count() or 2) // 2))
    return device, calibration


def _check_ranges(args) -> None:
    if not 0.0 < args.strength <= 1.0:
        raise UsageError(f"--strength must be in (0, 1], got {args.strength}")
    if not 0.0 <= args.temporal_strength < 1.0:
        raise UsageError(f"--temporal-strength must be in [0, 1), got {args.temporal_strength}")
    if not 0.0 <= args.denoise <= 1.0:
        raise UsageError(f"--denoise must be in [0, 1], got {args.denoise}")
    if not -4.0 <= args.exposure <= 4.0:
        raise UsageError(f"--exposure must be in [-4, 4] EV, got {args.exposure}")
    if args.codec in ("libx264", "libx265") and not 0 <= args.crf <= 51:
        raise UsageError(f"--crf must be in [0, 51] for {args.codec}, got {args.crf}")
    if args.threads is not None and args.threads < 1:
        raise UsageError(f"--threads must be at least 1, got {args.threads}")


def _enhance(args, device, calibration, loaded=None, source=None, wrap_sink=None, on_tick=None):
    """Enhance ``args.input`` into ``args.output``: the one code path of a single run and
    of each file of a batch.

    Args:
        loaded: ``(model, name)`` already loaded (batch workers load it once); None loads it.
        source: an open source to use instead of opening ``args.input`` (a --split segment).
        wrap_sink: applied to the sink before running (the segment's warm-up filter).
        on_tick: called with the pipeline about 4 times a second (progress).

    Returns:
        (RunResult, Pipeline, engine, source)
    """
    from realtime import Pipeline, VideoFileSink, create_engine
    from realtime.tone import ToneConfig

    source = source if source is not None else _open_source(args, device)
    with source:
        pipe_box: list = []
        sink = _make_sink(args, source, device, on_quit=lambda: pipe_box[0].stop() if pipe_box else None)
        if wrap_sink is not None:
            sink = wrap_sink(sink)
        try:
            model, name = loaded if loaded is not None else _load_model(args, device, calibration)
            engine = create_engine(
                model, name, device, backend=args.backend, calibration=calibration,
                temporal_strength=args.temporal_strength, strength=args.strength,
                denoise=args.denoise, tone=None if args.no_tone else ToneConfig(exposure=args.exposure),
                cuda_output="yuv420p" if isinstance(getattr(sink, "sink", sink), VideoFileSink) else "rgb",
            )
            if source.kind != "images":  # one frame size: build the backend before decoding
                engine.prepare(source.height, source.width, getattr(source, "pixel_format", "rgb"))
        except BaseException:
            sink.close(commit=False)
            raise
        pipe = Pipeline(source, engine, sink, queue_size=args.queue_size, on_tick=on_tick)
        pipe_box.append(pipe)
        result = pipe.run()
    return result, pipe, engine, source


def _run(args) -> int:
    if args.input is None and args.webcam is None:
        raise UsageError("give an INPUT, --webcam N or --demo")
    if args.input is not None and args.webcam is not None:
        raise UsageError("give either INPUT or --webcam, not both")
    device, calibration = _setup(args)
    progress_box: list = []

    def tick(pipe) -> None:
        if not progress_box:
            src = pipe.source
            progress_box.append(_Progress(getattr(src, "expected_frames", None), src.live, not args.quiet))
        progress_box[0](pipe)

    try:
        result, pipe, engine, source = _enhance(args, device, calibration, on_tick=tick)
    finally:
        if progress_box:
            progress_box[0].close()
    for w in result.warnings:
        print(f"warning: {w}", file=sys.stderr)
    report = result.report
    report.update(engine=engine.describe(), input=args.input or f"webcam {args.webcam}", output=args.output)
    if args.profile:
        prof = Path(args.profile)
        pipe.profiler.write_json(prof, report)
        pipe.profiler.write_chart(prof.with_suffix(".png"), report)
    if not args.quiet:
        print(pipe.profiler.table(report), file=sys.stderr)
        if args.profile:
            print(f"profile: {args.profile} (+ {Path(args.profile).with_suffix('.png')})", file=sys.stderr)
    if result.interrupted:
        print(f"interrupted after {result.frames_out} frames; the output was finished", file=sys.stderr)
        return EXIT_INTERRUPTED
    failed = getattr(source, "failed", [])
    for path, err in failed:
        _fail(f"{path}: {err}")
    if failed:
        print(f"{len(failed)} of {len(source.files)} image(s) failed; the others were written", file=sys.stderr)
        return EXIT_FAIL
    return EXIT_OK


class _FileEnhancer:
    """A batch worker: the batch's options, its device and calibration, and the model,
    loaded once; called with each job (a file or a --split segment) to enhance.

    ``options`` is the parsed command line as a dict, so every option of a single run
    reaches the workers without being listed here.
    """

    def __init__(self, options: dict):
        import torch

        args = argparse.Namespace(**options)
        args.__dict__.update(input=None, webcam=None, demo=False, preview=False, no_output=False, profile=None,
                             overwrite=True, quiet=True)
        if args.device != "cpu" and torch.cuda.is_available():  # one GPU per worker, round robin
            torch.cuda.set_device(int(os.environ.get("LOWLIGHT_WORKER_INDEX", "0")) % torch.cuda.device_count())
        self.args = args
        self.device, self.calibration = _setup(args)
        self.loaded = _load_model(args, self.device, self.calibration)

    def __call__(self, job, on_frames) -> dict:
        from realtime import VideoFileSource
        from realtime.batch import SegmentSource, WarmupSkippingSink

        args = argparse.Namespace(**vars(self.args))
        args.input = str(job.input)
        source = wrap = None
        if job.segment is not None:
            args.output = str(job.segment.path)
            fmt = "yuv420p" if self.device.type == "cuda" else "rgb"
            source = SegmentSource(VideoFileSource(job.input, copy_streams=False, pixel_format=fmt), job.segment)
            wrap = lambda sink: WarmupSkippingSink(sink, job.segment.start)  # noqa: E731
        else:
            args.output = str(job.output)
        result, pipe, _, source = _enhance(args, self.device, self.calibration, self.loaded, source, wrap,
                                           on_tick=lambda p: on_frames(p.sink.frames_written))
        for w in result.warnings:
            logger.warning("%s", w)
        return {"frames": pipe.sink.frames_written}


def _batch(args) -> int:
    """``run-stream batch``: discover the jobs, skip complete outputs, run the rest on a
    process pool or Ray, one progress bar, a JSON-lines report and a summary table."""
    import torch

    from realtime import PipelineError, batch

    _check_ranges(args)
    if args.jobs is not None and args.jobs < 1:
        raise UsageError(f"--jobs must be at least 1, got {args.jobs}")
    if args.split is not None and args.split < 0:
        raise UsageError(f"--split takes a number of parts >= 2, got {args.split}")
    ray = None
    if args.ray is not None:
        try:
            import ray
        except ImportError as err:
            raise UsageError(batch.ray_missing_message()) from err
    device = _resolve_device(args.device)
    # what would stop every worker (unknown model, bad weights or calibration) fails here, once
    check = argparse.Namespace(**{**vars(args), "device": "cpu"})
    _load_model(check, *_setup(check))
    force = args.force or args.overwrite
    jobs = batch.discover(args.inputs, args.output)
    results: list = []
    report = open(args.report, "a", encoding="utf-8") if args.report else None  # noqa: SIM115 - closed below
    todo = []
    for job in jobs:
        batch.remove_stale_partials(job.output)
        if not force and batch.is_complete(job):
            results.append(batch.JobResult(str(job.input), str(job.output), "skipped",
                                           batch.count_frames(job.output) if job.kind == "video" else 1))
        else:
            todo.append(job)
    gpus = torch.cuda.device_count() if device.type == "cuda" else 0
    workers = args.jobs or (None if ray is not None else batch.default_jobs(device.type, gpus))
    options = {k: v for k, v in vars(args).items() if k not in ("inputs", "jobs", "ray", "split", "warmup", "force",
                                                               "report")}
    options["device"] = device.type
    if device.type == "cpu" and not args.threads:
        # a Ray actor reserves 2 CPUs: one torch thread, decode and encode beside it
        options["threads"] = 1 if ray is not None else batch.threads_per_worker(workers)
    work = []
    for job in todo:
        parts = args.split if args.split else (workers or 2)
        if args.split is not None and job.kind == "video":
            try:
                work += batch.plan_segments(job, parts, warmup=args.warmup)
            except PipelineError:
                work.append(job)  # the worker reports why it cannot be read
        else:
            work.append(job)
    total = sum(_expected_frames(j) for j in todo)
    bar = None
    if not args.quiet:
        from tqdm import tqdm

        bar = tqdm(total=total or None, unit="frame", dynamic_ncols=True, file=sys.stderr, smoothing=0.1,
                   desc=f"0/{len(todo)} files")
    done_files = [0]

    def on_result(r) -> None:
        results.append(r)
        done_files[0] += 1
        if report is not None:
            report.write(r.to_json() + "\n")
            report.flush()
        if bar is not None:
            bar.set_description(f"{done_files[0]}/{len(todo)} files")
            if r.status == "failed":
                bar.write(f"failed: {_failure_line(r)}")

    def on_frames(n: int) -> None:
        if bar is not None:
            bar.update(n)

    for r in results:
        if report is not None:
            report.write(r.to_json() + "\n")
    import functools

    factory = functools.partial(_FileEnhancer, options)
    t0 = time.perf_counter()
    try:
        if not work:
            pass
        elif ray is not None:
            num_gpus = 1 if device.type == "cuda" else 0
            batch.run_ray(work, factory, workers, on_result, on_frames, address=args.ray or None, num_gpus=num_gpus,
                          num_cpus=1 if num_gpus else 2 * (options.get("threads") or 1))
        else:
            batch.run_local(work, factory, workers, on_result, on_frames)
    finally:
        if bar is not None:
            bar.close()
        if report is not None:
            report.close()
    wall = time.perf_counter() - t0
    if not args.quiet:
        print(_batch_table(results, wall), file=sys.stderr)
    failed = [r for r in results if r.status == "failed"]
    for r in failed:
        _fail(_failure_line(r))
    return EXIT_FAIL if failed else EXIT_OK


def _failure_line(r) -> str:
    return r.error if r.input in (r.error or "") else f"{r.input}: {r.error}"


def _expected_frames(job) -> int:
    if job.kind == "image":
        return 1
    try:
        import av

        with av.open(str(job.input)) as c:
            v = c.streams.video[0]
            if v.frames:
                return int(v.frames)
            rate = v.average_rate or v.guessed_rate
            if v.duration and rate:
                return round(float(v.duration * v.time_base * rate))
            if c.duration and rate:
                return round(c.duration / av.time_base * float(rate))
    except (OSError, IndexError, ValueError, av.error.FFmpegError):
        pass  # unreadable: the worker reports it; it adds no frames to the bar
    return 0


def _batch_table(results, wall: float) -> str:
    rows = [("status", "frames", "seconds", "fps", "file")]
    for r in results:
        rows.append((r.status, str(r.frames), f"{r.seconds:.1f}", f"{r.fps:.1f}", r.input))
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    lines = ["  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(row[:4], widths))) + "  " + row[4]
             for row in rows]
    done = [r for r in results if r.status == "ok"]
    frames = sum(r.frames for r in done)
    counts = {k: sum(r.status == k for r in results) for k in ("ok", "skipped", "failed")}
    lines.append(f"{counts['ok']} done, {counts['skipped']} skipped (complete), {counts['failed']} failed; "
                 f"{frames} frames in {wall:.1f} s = {frames / wall if wall > 0 else 0:.1f} fps overall")
    return "\n".join(lines)


def _demo(args) -> int:
    from realtime.demo import make_demo_clip

    out = Path(args.output or "demo_out.mp4")
    src = out.with_name("demo_in.mp4")
    if args.input or args.webcam is not None:
        raise UsageError("--demo takes no INPUT or --webcam")
    if not args.output:
        args.overwrite = True  # the demo's own default files
    if not args.weights:  # fail before spending time on the clip
        import models

        device = _resolve_device(args.device)
        name = args.model or ("blnet" if device.type == "cuda" else "lite")
        if name not in models.available_pretrained():
            _load_model(args, device)  # raises the usual one-line error
    print(f"demo: writing a dark, noisy clip from skimage.data to {src}", file=sys.stderr)
    make_demo_clip(src)
    args.input = str(src)
    args.output = str(out)
    code = _run(args)
    if code == EXIT_OK:
        print(f"demo: input {src.resolve()}\ndemo: output {out.resolve()}")
    return code


def _sigterm(signum, frame) -> None:
    raise KeyboardInterrupt  # stop like Ctrl-C: finish (single run) or remove (batch) what is in flight


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    is_batch = bool(argv) and argv[0] == "batch"  # a file named batch: ./batch
    args = build_parser(batch=is_batch).parse_args(argv[1:] if is_batch else argv)
    previous = None
    if threading.current_thread() is threading.main_thread():
        previous = signal.signal(signal.SIGTERM, _sigterm)
    try:
        return _main(args, is_batch)
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _main(args, is_batch: bool) -> int:
    logging.basicConfig(
        level=logging.DEBUG if args.debug else logging.WARNING,
        format="%(levelname)s: %(message)s" if not args.debug else "%(asctime)s %(name)s %(levelname)s: %(message)s",
    )
    try:
        if is_batch:
            return _batch(args)
        return _demo(args) if args.demo else _run(args)
    except LowlightError as err:
        if args.debug:
            logger.exception("failed")
        _fail(str(err))
        return int(getattr(err, "exit_code", EXIT_FAIL))
    except KeyboardInterrupt:
        _fail("interrupted")
        return EXIT_INTERRUPTED
    except Exception as err:  # noqa: BLE001 - one line for the user, traceback with --debug
        if args.debug:
            logger.exception("unexpected failure")
        _fail(f"unexpected failure: {type(err).__name__}: {err} (run with --debug for the traceback)")
        return EXIT_FAIL


if __name__ == "__main__":
    sys.exit(main())
