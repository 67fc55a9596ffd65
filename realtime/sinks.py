"""Frame sinks: an encoded video file (PyAV), a preview window (OpenCV), a folder of
images, and a null sink for profiling.

Every sink has ``write(frame)``, ``write_packet(passthrough)`` and ``close(commit)``.
Outputs are written to a hidden temporary name next to the target and moved into place
by ``close(commit=True)`` (also after Ctrl-C), so a failed run never clobbers an
existing file and an interrupted run still leaves a playable one.
"""
from __future__ import annotations

import logging
import os
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path
from typing import Callable, Iterable, Sequence

import av
import cv2
import numpy as np

from .errors import OutputExistsError, OutputWriteError, SinkError
from .frame import Frame, Passthrough

__all__ = [
    "CPU_PRESET",
    "encoder_options",
    "check_output_file",
    "check_output_folder",
    "VideoFileSink",
    "ImageFolderSink",
    "PreviewSink",
    "NullSink",
    "TeeSink",
]

logger = logging.getLogger(__name__)

VIDEO_EXTENSIONS = (".mp4", ".mkv", ".mov", ".m4v", ".avi", ".ts", ".webm")

#: The encoder preset of the CPU path: fast enough for 720p30 beside the enhancement on
#: two cores, with the options of :data:`_FAST_PRESET_PARAMS`.
CPU_PRESET = "ultrafast"
#: What the sink adds to x264's two fastest presets. Both turn macroblock-tree rate
#: control off (and the lookahead it needs): a static picture then "breathes", the
#: P-frames re-coding what the I-frame left; a perfectly still 600x400 scene at CRF 23
#: moved by 0.5 levels (std over frames) through the clip, by 0.0 with the tree and a
#: 10-frame lookahead. On ``ultrafast`` the deblocking filter (``deblock=1`` also sets
#: its offsets to 1:1), adaptive quantisation, 8x8 transforms and two B-frames also go
#: back on: on the dark-video benchmark's
#: output the picture then matches ``superfast``'s (matched SSIM +0.001 to +0.016 over
#: plain ``ultrafast``) for about half of its extra CPU time (``ultrafast``'s CAVLC
#: kept), in files about half the size of plain ``ultrafast``'s (docs/BENCHMARKS.md §15).
_FAST_PRESET_PARAMS = {
    "ultrafast": "mbtree=1:rc-lookahead=10:deblock=1:aq-mode=1:bframes=2:8x8dct=1",
    "superfast": "mbtree=1:rc-lookahead=10",
}


def encoder_options(codec: str = "libx264", crf: int | None = 23, preset: str | None = CPU_PRESET,
                    tune: str | None = None) -> dict[str, str]:
    """The encoder options :class:`VideoFileSink` sets (x264/x265: ``crf``, ``preset``,
    ``tune``; x264's two fastest presets get :data:`_FAST_PRESET_PARAMS` unless a
    ``tune`` such as ``zerolatency`` asks for no lookahead)."""
    opts: dict[str, str] = {}
    if codec in ("libx264", "libx265"):
        if crf is not None:
            opts["crf"] = str(crf)
        if preset:
            opts["preset"] = preset
        if tune:
            opts["tune"] = tune
        elif codec == "libx264" and (preset or "medium") in _FAST_PRESET_PARAMS:
            opts["x264-params"] = _FAST_PRESET_PARAMS[preset]
    return opts


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.resolve() == b.resolve() or (a.exists() and b.exists() and os.path.samefile(a, b))
    except OSError:
        return False


def _probe_writable(folder: Path) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise SinkError(f"cannot create output folder {folder}: {err.strerror or err}") from err
    if not folder.is_dir():
        raise SinkError(f"output folder {folder} is not a folder")
    try:
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".write-test-"):
            pass
    except OSError as err:
        raise SinkError(f"output folder {folder} is not writable: {err.strerror or err}") from err


def check_output_file(path: Path, overwrite: bool, inputs: Sequence[Path] = ()) -> None:
    """Validate an output file before anything is decoded.

    Raises:
        SinkError: same as an input, a folder, unknown container, or unwritable folder.
        OutputExistsError: it exists and ``overwrite`` is False.
    """
    for inp in inputs:
        if _same_file(path, inp):
            raise SinkError(f"output {path} is the input file; choose another output path")
    if path.is_dir():
        raise SinkError(f"output {path} is a folder; give a video file name such as {path / 'out.mp4'}")
    if path.exists() and not overwrite:
        raise OutputExistsError(f"output {path} already exists (pass --overwrite to replace it)")
    try:
        av.format.ContainerFormat(path.suffix.lstrip(".").lower() or "?")
    except (ValueError, av.error.FFmpegError):
        if path.suffix.lower() not in VIDEO_EXTENSIONS:
            raise SinkError(
                f"output {path}: unknown video container {path.suffix!r} (use one of {', '.join(VIDEO_EXTENSIONS)})"
            ) from None
    _probe_writable(path.parent if str(path.parent) else Path("."))


def check_output_folder(folder: Path, names: Iterable[str], overwrite: bool, inputs: Sequence[Path] = ()) -> None:
    """Validate an output folder for images named ``names``.

    Raises:
        SinkError: a file where the folder should be, the input folder itself, unwritable.
        OutputExistsError: one of the outputs exists and ``overwrite`` is False.
    """
    for inp in inputs:
        if _same_file(folder, inp) or (inp.is_file() and _same_file(folder, inp.parent)):
            raise SinkError(f"output folder {folder} is where the input images are; choose another folder")
    if folder.exists() and not folder.is_dir():
        raise SinkError(f"output {folder} is a file, not a folder")
    if folder.is_dir() and not overwrite:
        for n in names:
            if (folder / n).exists():
                raise OutputExistsError(f"output {folder / n} already exists (pass --overwrite to replace it)")
    _probe_writable(folder)


def _partial_name(path: Path) -> Path:
    return path.with_name(f".{path.stem}.partial-{os.getpid()}{path.suffix}")


class VideoFileSink:
    """Encode frames into a video file with PyAV and copy other streams packet by packet.

    Frame timestamps are kept: each encoded frame gets the source frame's ``pts`` and
    ``time_base`` (variable frame rate included).

    Args:
        path: output file; its suffix picks the container.
        width, height: frame size.
        time_base: time base of the frames' pts.
        rate: nominal frame rate (rate control hint only).
        codec: encoder name ("libx264" by default).
        crf: constant rate factor for x264/x265.
        preset: encoder preset (:data:`CPU_PRESET` keeps up with 720p30 on two cores).
        tune: e.g. "zerolatency" for live sources.
        copy_streams: input streams (audio, subtitles) to copy; ``Passthrough.stream_index``
            indexes this list.
        rotation: display rotation in degrees (counter-clockwise, as ``VideoFileSource.rotation``),
            written as the stream's display matrix; frames are encoded as stored.

    Raises:
        SinkError: the container or encoder cannot be set up.
    """

    def __init__(
        self,
        path: str | os.PathLike,
        width: int,
        height: int,
        time_base: Fraction,
        rate: Fraction | float = 30,
        codec: str = "libx264",
        crf: int | None = 23,
        preset: str | None = CPU_PRESET,
        tune: str | None = None,
        copy_streams: Sequence[av.stream.Stream] = (),
        rotation: int = 0,
    ):
        self.path = Path(path)
        self.rotation = int(rotation) % 360  # display rotation (counter-clockwise degrees), as the source's
        self.tmp = _partial_name(self.path)
        self.width, self.height = width - width % 2, height - height % 2
        if (self.width, self.height) != (width, height):
            logger.warning("odd frame size %dx%d: encoding %dx%d (yuv420p needs even sizes)", width, height, self.width, self.height)
        self.time_base = Fraction(time_base)
        self.frames_written = 0
        self._last_pts: int | None = None
        self._fixed_pts = 0
        self.warnings: list[str] = []
        try:
            self.container = av.open(str(self.tmp), mode="w")
        except (ValueError, av.error.FFmpegError, OSError) as err:
            raise SinkError(f"cannot create {self.path}: {err}") from err
        try:
            self._setup(codec, crf, preset, tune, rate, copy_streams)
        except BaseException:
            self._discard()
            raise

    def _setup(self, codec, crf, preset, tune, rate, copy_streams) -> None:
        try:
            st = self.container.add_stream(codec, rate=Fraction(rate).limit_denominator(1001000))
        except (ValueError, av.error.FFmpegError) as err:
            raise SinkError(f"cannot use video encoder {codec!r}: {err}") from err
        st.width, st.height = self.width, self.height
        st.pix_fmt = "yuv420p"
        st.time_base = self.time_base
        st.codec_context.time_base = self.time_base
        st.options = encoder_options(codec, crf, preset, tune)
        if self.rotation:
            st.set_display_rotation(self.rotation)  # the display matrix: players rotate like the input
        self.stream = st
        self.copy_map: dict[int, av.stream.Stream | None] = {}
        supported = self.container.supported_codecs
        for i, s in enumerate(copy_streams):
            name = s.codec_context.name if s.codec_context else None
            if name and name not in supported:
                msg = f"{s.type} stream #{s.index} ({name}) cannot be stored in {self.path.suffix}; dropped (use .mkv to keep it)"
                self.warnings.append(msg)
                logger.warning(msg)
                self.copy_map[i] = None
                continue
            self.copy_map[i] = self.container.add_stream_from_template(s)
        try:
            self.container.start_encoding()  # write the header now: fail before decoding starts
        except (ValueError, av.error.FFmpegError, OSError) as err:
            raise SinkError(f"cannot write {self.path}: {err}") from err

    def write(self, frame: Frame) -> None:
        if frame.result is not None and frame.result_color == "yuv420p" and frame.size == (self.height, self.width):
            yuv = frame.result  # converted on the GPU
        else:
            img = frame.result_rgb()
            if img.shape[0] != self.height or img.shape[1] != self.width:
                img = img[: self.height, : self.width]
            yuv = cv2.cvtColor(img, cv2.COLOR_RGB2YUV_I420)
        vf = av.VideoFrame.from_ndarray(yuv, format="yuv420p")
        pts = frame.pts
        if frame.time_base is not None and frame.time_base != self.time_base and pts is not None:
            pts = round(pts * frame.time_base / self.time_base)
        if pts is None:
            pts = 0 if self._last_pts is None else self._last_pts + 1
        if self._last_pts is not None and pts <= self._last_pts:
            self._fixed_pts += 1
            pts = self._last_pts + 1
        self._last_pts = pts
        vf.pts = pts
        vf.time_base = self.time_base
        try:
            for pkt in self.stream.encode(vf):
                self.container.mux(pkt)
        except (av.error.FFmpegError, OSError) as err:
            raise OutputWriteError(f"cannot write {self.path}: {err}") from err
        self.frames_written += 1

    def write_packet(self, item: Passthrough) -> None:
        out = self.copy_map.get(item.stream_index)
        if out is None:
            return
        item.packet.stream = out
        self.container.mux(item.packet)

    def _discard(self) -> None:
        self.container.close()
        self.tmp.unlink(missing_ok=True)

    def close(self, commit: bool = True) -> None:
        """Flush the encoder, write the trailer; move the file into place if ``commit``.

        Raises:
            SinkError: the file cannot be finished or moved.
        """
        if self.container is None:
            return
        try:
            if commit:
                for pkt in self.stream.encode(None):
                    self.container.mux(pkt)
            self.container.close()
        except (av.error.FFmpegError, OSError) as err:
            self.tmp.unlink(missing_ok=True)
            raise OutputWriteError(f"cannot finish {self.path}: {err}") from err
        finally:
            self.container = None
        if self._fixed_pts:
            logger.warning("%d frame(s) had non-increasing timestamps and were shifted by one tick", self._fixed_pts)
        if commit:
            os.replace(self.tmp, self.path)
        else:
            self.tmp.unlink(missing_ok=True)


class ImageFolderSink:
    """Write each frame as an image named like its input, into ``folder`` (or to ``file``).

    Raises:
        SinkError: an image cannot be written.
    """

    def __init__(self, folder: str | os.PathLike | None = None, file: str | os.PathLike | None = None, jpeg_quality: int = 95):
        self.folder = Path(folder) if folder is not None else None
        self.file = Path(file) if file is not None else None
        self.params = [cv2.IMWRITE_JPEG_QUALITY, jpeg_quality]
        self.frames_written = 0
        self.warnings: list[str] = []

    def write(self, frame: Frame) -> None:
        img = frame.result_rgb()
        target = self.file if self.file is not None else self.folder / (frame.name or f"{frame.index:06d}.png")
        tmp = _partial_name(target)
        bgr = cv2.cvtColor(img, cv2.COLOR_RGB2BGR)
        # the JPEG quality only for JPEG: OpenCV warns about every key the format lacks
        params = self.params if target.suffix.lower() in (".jpg", ".jpeg") else []
        ok, buf = cv2.imencode(target.suffix or ".png", bgr, params)
        if not ok:
            raise SinkError(f"cannot encode {target.name} as {target.suffix}")
        try:
            buf.tofile(tmp)
            os.replace(tmp, target)
        except OSError as err:
            tmp.unlink(missing_ok=True)
            raise OutputWriteError(f"cannot write {target}: {err.strerror or err}") from err
        self.frames_written += 1

    def write_packet(self, item: Passthrough) -> None:
        pass  # images have no audio

    def close(self, commit: bool = True) -> None:
        pass


class NullSink:
    """Discards frames (profiling); still touches every output pixel row once."""

    def __init__(self) -> None:
        self.frames_written = 0
        self.warnings: list[str] = []
        self.checksum = 0

    def write(self, frame: Frame) -> None:
        img = frame.result if frame.result is not None else frame.image
        self.checksum ^= int(img[::64, ::64].sum())
        self.frames_written += 1

    def write_packet(self, item: Passthrough) -> None:
        pass

    def close(self, commit: bool = True) -> None:
        pass


def display_available() -> bool:
    if sys.platform.startswith("linux"):
        return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))
    return True


class PreviewSink:
    """An OpenCV window with the original and the enhanced frame side by side.

    ``q`` or Esc calls ``on_quit`` (the pipeline stops and finishes its outputs).
    The frame rate is drawn in the corner.

    Raises:
        SinkError: no display.
    """

    def __init__(self, on_quit: Callable[[], None] | None = None, title: str = "low-light enhancement (q quits)", max_width: int = 1600):
        if not display_available():
            raise SinkError("--preview needs a display (DISPLAY/WAYLAND_DISPLAY is not set)")
        self.on_quit = on_quit
        self.title = title
        self.max_width = max_width
        self.frames_written = 0
        self.warnings: list[str] = []
        self._times: list[float] = []
        self._canvas: np.ndarray | None = None

    def write(self, frame: Frame) -> None:
        src = frame.image if frame.color == "bgr" else cv2.cvtColor(frame.image_rgb(), cv2.COLOR_RGB2BGR)
        out = cv2.cvtColor(frame.result_rgb(), cv2.COLOR_RGB2BGR)
        h, w = out.shape[:2]
        if self._canvas is None or self._canvas.shape[:2] != (h, 2 * w):
            self._canvas = np.empty((h, 2 * w, 3), np.uint8)
        self._canvas[:, :w] = src
        self._canvas[:, w:] = out
        view = self._canvas
        if view.shape[1] > self.max_width:
            f = self.max_width / view.shape[1]
            view = cv2.resize(view, (self.max_width, round(h * f)), interpolation=cv2.INTER_AREA)
        now = time.perf_counter()
        self._times = [t for t in self._times if now - t < 1.0] + [now]
        cv2.putText(view, f"{len(self._times):d} fps", (10, 28), cv2.FONT_HERSHEY_SIMPLEX, 0.8, (0, 255, 0), 2)
        cv2.imshow(self.title, view)
        key = cv2.waitKey(1) & 0xFF
        if key in (ord("q"), 27) and self.on_quit is not None:
            self.on_quit()
        self.frames_written += 1

    def write_packet(self, item: Passthrough) -> None:
        pass

    def close(self, commit: bool = True) -> None:
        cv2.destroyWindow(self.title)
        cv2.waitKey(1)


class TeeSink:
    """Write to several sinks (e.g. a file and the preview)."""

    def __init__(self, sinks: Sequence) -> None:
        self.sinks = list(sinks)
        self.warnings: list[str] = []

    @property
    def frames_written(self) -> int:
        return min(s.frames_written for s in self.sinks)

    def write(self, frame: Frame) -> None:
        for s in self.sinks:
            s.write(frame)

    def write_packet(self, item: Passthrough) -> None:
        for s in self.sinks:
            s.write_packet(item)

    def close(self, commit: bool = True) -> None:
        errors = []
        for s in self.sinks:
            try:
                s.close(commit)
            except SinkError as err:
                errors.append(err)
        if errors:
            raise errors[0]
