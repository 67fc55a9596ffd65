"""Enhance dark video: files and URLs, webcams, images and folders of images.

    python run_stream.py INPUT -o OUTPUT            # video file/URL -> video file; image(s) -> folder
    python run_stream.py --webcam 0 --preview        # live, original and enhanced side by side
    python run_stream.py INPUT --no-output --profile report.json   # where does the time go?
    python run_stream.py --demo                      # builds a dark clip from skimage.data and enhances it

Exit codes: 0 success, 1 runtime failure, 2 bad usage or unusable input/output,
130 interrupted (the output file is still finished and plays).
"""
from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from pathlib import Path
from typing import Sequence

EXIT_OK, EXIT_FAIL, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130

logger = logging.getLogger("run_stream")


class UsageError(ValueError):
    exit_code = EXIT_USAGE


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="run-stream",
        description="Real-time low-light enhancement of video files, webcams and images.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__.split("\n\n")[1] if __doc__ else None,
    )
    p.add_argument("input", nargs="?", help="video file or URL, an image, or a folder of images")
    p.add_argument("-o", "--output", help="output video file (video input, webcam) or folder (images)")
    p.add_argument("--webcam", metavar="N", help="camera index or device path instead of INPUT")
    p.add_argument("--demo", action="store_true", help="build a short dark clip from skimage.data and enhance it")
    p.add_argument("--preview", action="store_true", help="show original and enhanced side by side (q quits)")
    p.add_argument("--no-output", action="store_true", help="write nothing (profiling)")
    p.add_argument("--model", help="model name (default: lite on CPU, blnet on CUDA)")
    p.add_argument("--backend", default="auto", choices=("auto", "tensorrt", "compile", "cuda", "cpu"))
    p.add_argument("--device", choices=("cpu", "cuda"), help="default: cuda if available")
    p.add_argument("--calibration", metavar="PROFILE_JSON", help="profile.json written by python -m calibrate")
    p.add_argument("--strength", type=float, default=1.0, metavar="S",
                   help="how much of the enhancement to apply, in (0, 1]; lower it for very dark, "
                        "heavily compressed video (default 1)")
    p.add_argument("--temporal-strength", type=float, default=0.8, metavar="S",
                   help="smoothing of the illumination over time in [0, 1), 0 turns it off (default 0.8)")
    p.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    p.add_argument("--profile", metavar="FILE", help="write a JSON report (and a PNG chart next to it)")
    p.add_argument("--codec", default="libx264", help="video encoder (default libx264)")
    p.add_argument("--crf", type=int, default=23, help="x264/x265 constant rate factor (default 23)")
    p.add_argument("--preset", default=None,
                   help="encoder preset (default: ultrafast on CPU, veryfast on CUDA)")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: half the cores, at least 1)")
    p.add_argument("--queue-size", type=int, default=4, help=argparse.SUPPRESS)
    p.add_argument("--weights", help=argparse.SUPPRESS)  # a checkpoint .pt instead of the shipped weights
    p.add_argument("--quiet", action="store_true", help="no progress bar or table")
    p.add_argument("--debug", action="store_true", help="verbose logging and tracebacks")
    return p


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
        from calibrate.tune import apply_model_options

        try:
            model = apply_model_options(name, model, dict(options)).to(device)
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
            preset = args.preset or ("veryfast" if device.type == "cuda" else "ultrafast")
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


def _run(args) -> int:
    import torch

    from realtime import InferenceEngine, Pipeline, VideoFileSink

    device = _resolve_device(args.device)
    calibration = None
    if args.calibration:
        from calibrate.backends import load_calibration

        try:
            calibration = load_calibration(args.calibration)
        except (ValueError, OSError) as err:
            raise UsageError(f"calibration {args.calibration}: {err}") from err
        cal_model = calibration.get("model")
        if cal_model and not args.model and not args.weights:
            args.model = cal_model
        elif cal_model and args.model and cal_model != args.model:
            raise UsageError(f"--calibration is for model {cal_model!r}, not {args.model!r}")
    if not 0.0 < args.strength <= 1.0:
        raise UsageError(f"--strength must be in (0, 1], got {args.strength}")
    if not 0.0 <= args.temporal_strength < 1.0:
        raise UsageError(f"--temporal-strength must be in [0, 1), got {args.temporal_strength}")
    if args.input is None and args.webcam is None:
        raise UsageError("give an INPUT, --webcam N or --demo")
    if args.input is not None and args.webcam is not None:
        raise UsageError("give either INPUT or --webcam, not both")
    if device.type == "cpu":
        torch.set_num_threads(args.threads or max(1, (os.cpu_count() or 2) // 2))

    source = _open_source(args, device)
    with source:
        pipe_box: list = []
        sink = _make_sink(args, source, device, on_quit=lambda: pipe_box[0].stop() if pipe_box else None)
        try:
            model, name = _load_model(args, device, calibration)
            live = source.live
            engine = InferenceEngine(
                model, name, device, backend=args.backend, calibration=calibration,
                temporal_strength=args.temporal_strength, strength=args.strength,
                out_ring=Pipeline.queue_capacity(live, args.queue_size) + 1,
                cuda_output="yuv420p" if isinstance(sink, VideoFileSink) else "rgb",
            )
            if source.kind != "images":  # one frame size: build the backend before decoding
                engine.prepare(source.height, source.width, getattr(source, "pixel_format", "rgb"))
        except BaseException:
            sink.close(commit=False)
            raise
        progress = _Progress(getattr(source, "expected_frames", None), source.live, not args.quiet)
        pipe = Pipeline(source, engine, sink, queue_size=args.queue_size, on_tick=progress)
        pipe_box.append(pipe)
        try:
            result = pipe.run()
        finally:
            progress.close()
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
    return EXIT_OK


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


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.debug else logging.WARNING,
        format="%(levelname)s: %(message)s" if not args.debug else "%(asctime)s %(name)s %(levelname)s: %(message)s",
    )
    from realtime import PipelineError

    try:
        return _demo(args) if args.demo else _run(args)
    except (PipelineError, UsageError) as err:
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
