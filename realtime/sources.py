"""Frame sources: video files and URLs (PyAV), webcams (OpenCV), images and folders.

Every source is a context manager with ``frames(stop)``, a generator of
:class:`~realtime.frame.Frame` (and, for video files, :class:`~realtime.frame.Passthrough`
packets of the streams to copy), which returns when the input ends or ``stop`` is set.
Opening a source validates the input and raises a one-line error for unusable ones.
"""
from __future__ import annotations

import logging
import os
import threading
import time
from fractions import Fraction
from pathlib import Path
from typing import Any, Iterator

import av
import cv2
import numpy as np

from .errors import FrameFormatError, PipelineError, SourceError
from .frame import Frame, Passthrough

__all__ = [
    "IMAGE_EXTENSIONS",
    "VideoFileSource",
    "WebcamSource",
    "ImageSource",
    "is_url",
    "decode_image",
]

logger = logging.getLogger(__name__)

#: Image suffixes OpenCV reads and writes in every build.
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pgm", ".pnm")
#: Image suffixes we recognise as images but do not read (reported as unsupported).
UNSUPPORTED_IMAGE_EXTENSIONS = (".gif", ".heic", ".heif", ".avif", ".svg", ".ico", ".psd", ".jxl", ".dng", ".cr2", ".nef", ".raw")


def is_url(spec: str) -> bool:
    return "://" in spec


def _check_input_file(path: Path) -> None:
    if not path.exists():
        raise SourceError(f"input {path} does not exist")
    if path.is_dir():
        return
    if not os.access(path, os.R_OK):
        raise SourceError(f"input {path} is not readable (permission denied)")
    if path.stat().st_size == 0:
        raise SourceError(f"input {path} is empty (0 bytes)")


def _yuv420_to_rgb(frame: av.VideoFrame) -> np.ndarray:
    # cv2's I420 conversion is several times faster than swscale to rgb24 on few cores.
    planes = frame.to_ndarray()  # (H*3/2, W) uint8, I420 layout
    return cv2.cvtColor(planes, cv2.COLOR_YUV2RGB_I420)


class VideoFileSource:
    """A video file or URL decoded with PyAV.

    Args:
        spec: file path or URL.
        thread_type: decoder threading ("AUTO" = frame+slice threads, best for files;
            "SLICE" for the lowest latency).
        copy_streams: also yield the packets of audio and subtitle streams.
        pixel_format: "rgb" (converted on the CPU in the decode thread) or "yuv420p"
            (I420 planes handed on as they are, for the GPU to convert; frames in other
            formats are still converted to RGB).

    Raises:
        SourceError: missing, empty, unreadable, not a video, or an MP4 without index.
    """

    live = False
    kind = "video"

    def __init__(self, spec: str | os.PathLike, thread_type: str = "AUTO", copy_streams: bool = True,
                 pixel_format: str = "rgb"):
        self.spec = str(spec)
        self.pixel_format = pixel_format
        if not is_url(self.spec):
            _check_input_file(Path(self.spec))
            if Path(self.spec).is_dir():
                raise SourceError(f"input {self.spec} is a folder, not a video")
        try:
            self.container = av.open(self.spec, mode="r", timeout=(10.0, 10.0) if is_url(self.spec) else None)
        except av.error.InvalidDataError as err:
            hint = ""
            if self.spec.lower().endswith((".mp4", ".mov", ".m4v", ".3gp")):
                hint = " (not a video, or a truncated MP4 whose index (moov atom) is missing)"
            raise SourceError(f"cannot read {self.spec}: invalid data{hint}") from err
        except av.error.FFmpegError as err:
            raise SourceError(f"cannot open {self.spec}: {err.strerror or err}") from err
        except OSError as err:
            raise SourceError(f"cannot open {self.spec}: {err}") from err
        videos = self.container.streams.video
        if not videos:
            self.container.close()
            raise SourceError(f"{self.spec} has no video stream")
        self.stream = videos[0]
        cc = self.stream.codec_context
        if not cc.width or not cc.height:
            self.container.close()
            raise SourceError(f"{self.spec}: the video stream has no frame size (corrupt or unsupported codec)")
        self.stream.thread_type = thread_type
        self.width, self.height = cc.width, cc.height
        self.time_base: Fraction = self.stream.time_base or Fraction(1, 90000)
        rate = self.stream.average_rate or self.stream.guessed_rate or self.stream.base_rate
        self.rate: Fraction = Fraction(rate) if rate else Fraction(30, 1)
        self.copy_streams = [
            s for s in self.container.streams if copy_streams and s.type in ("audio", "subtitle")
        ]
        self.frames_read = 0
        self.warnings: list[str] = []
        self.expected_frames = self._expected_frames()
        self.rotation = self._probe_rotation()

    def _expected_frames(self) -> int | None:
        if self.stream.frames:
            return int(self.stream.frames)
        duration = None
        if self.stream.duration is not None and self.time_base:
            duration = float(self.stream.duration * self.time_base)
        elif self.container.duration:
            duration = self.container.duration / av.time_base
        if duration:
            return max(1, round(duration * float(self.rate)))
        return None

    def _probe_rotation(self) -> int:
        """Display rotation of the video (counter-clockwise degrees, 0/90/180/270) from its
        display matrix (phone video): PyAV 18 exposes it on decoded frames only, so the first
        frame of a file is decoded through a second handle. 0 for URLs or when unreadable."""
        if is_url(self.spec):
            return 0
        try:
            with av.open(self.spec, mode="r") as c:
                for vf in c.decode(video=0):
                    return int(round(vf.rotation)) % 360
        except (av.error.FFmpegError, OSError, ValueError, StopIteration):
            pass
        return 0

    def _cut_ts(self) -> bool:
        # MPEG-TS has no index or duration to compare with, but it is a sequence of
        # 188-byte (192 for M2TS) packets: a file cut mid-stream ends mid-packet.
        if "mpegts" not in self.container.format.name or is_url(self.spec):
            return False
        size = Path(self.spec).stat().st_size
        return size % 188 != 0 and size % 192 != 0

    def __enter__(self) -> VideoFileSource:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def close(self) -> None:
        self.container.close()

    def _frame(self, vf: av.VideoFrame, t0: float) -> Frame:
        color = "rgb"
        if vf.format.name == "yuv420p" and vf.width % 2 == 0 and vf.height % 2 == 0:
            if self.pixel_format == "yuv420p":
                img, color = vf.to_ndarray(), "yuv420p"
            else:
                img = _yuv420_to_rgb(vf)
        else:
            img = vf.to_ndarray(format="rgb24")
        pts = vf.pts
        if pts is None:
            pts = round(self.frames_read / self.rate / self.time_base)
        now = time.perf_counter()
        f = Frame(img, self.frames_read, pts, self.time_base, now, reset=self.frames_read == 0, color=color)
        f.timings["decode"] = now - t0
        self.frames_read += 1
        return f

    def frames(self, stop: threading.Event | None = None) -> Iterator[Frame | Passthrough]:
        """Decode frames in order (none dropped), interleaved with packets to copy.

        A stream that ends early or breaks (truncated file) ends the iteration after
        the last decodable frame with a warning; nothing decodable at all raises.

        Raises:
            SourceError: no frame could be decoded.
        """
        streams = [self.stream, *self.copy_streams]
        copy_index = {s.index: i for i, s in enumerate(self.copy_streams)}
        bad_packets = 0
        error: BaseException | None = None
        t0 = time.perf_counter()
        demux = self.container.demux(streams)
        while stop is None or not stop.is_set():
            try:
                packet = next(demux)
            except StopIteration:
                break
            except (av.error.FFmpegError, EOFError) as err:
                error = err
                break
            if packet.stream.index != self.stream.index:
                if packet.size and packet.dts is not None:
                    yield Passthrough(packet, copy_index[packet.stream.index])
                    t0 = time.perf_counter()
                continue
            try:
                decoded = packet.decode()
            except av.error.FFmpegError as err:
                bad_packets += 1
                error = err
                continue
            for vf in decoded:
                yield self._frame(vf, t0)
                t0 = time.perf_counter()
        if error is not None or (stop is not None and stop.is_set()):
            # drain frames still inside a frame-threaded decoder
            try:
                for vf in self.stream.codec_context.decode(None):
                    yield self._frame(vf, t0)
                    t0 = time.perf_counter()
            except av.error.FFmpegError as err:
                bad_packets += 1  # nothing more is decodable; reported below
                error = error or err
        if self.frames_read == 0:
            reason = f": {error}" if error else ""
            raise SourceError(f"no decodable video frame in {self.spec}{reason}") from error
        stopped = stop is not None and stop.is_set()
        # Header frame counts of MP4s are exact only without edit lists; a cut MP4
        # shows up as a read error instead. Elsewhere (Matroska) a stream that
        # ends well before its stated duration was cut.
        short = (
            self.expected_frames is not None
            and "mp4" not in self.container.format.name
            and self.frames_read < 0.95 * self.expected_frames - 1
        ) or self._cut_ts()
        if not stopped and (error is not None or short):
            expected = f" of about {self.expected_frames}" if self.expected_frames else ""
            what = f"{bad_packets} undecodable packet(s)" if bad_packets else (str(error) if error else "it ends early")
            msg = (
                f"input {self.spec} looks truncated or damaged ({what}); read {self.frames_read}"
                f"{expected} frames, enhanced up to the last decodable frame"
            )
            self.warnings.append(msg)
            logger.warning(msg)


def decode_image(path: Path) -> np.ndarray:
    """Read an image file as (H, W, 3) uint8 RGB.

    Raises:
        FrameFormatError: unsupported suffix or undecodable content.
        SourceError: the file is missing, empty or unreadable.
    """
    _check_input_file(path)
    if path.suffix.lower() not in IMAGE_EXTENSIONS:
        raise FrameFormatError(
            f"unsupported image {path.name} (supported: {', '.join(IMAGE_EXTENSIONS)})"
        )
    try:
        data = np.fromfile(path, dtype=np.uint8)
    except OSError as err:
        raise SourceError(f"cannot read {path}: {err.strerror or err}") from err
    img = cv2.imdecode(data, cv2.IMREAD_COLOR)
    if img is None:
        raise FrameFormatError(f"cannot decode image {path} (corrupt or not a {path.suffix} image)")
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


class ImageSource:
    """A single image or every image in a folder (sorted by name, not recursive).

    Each image starts a new segment (``Frame.reset``), so nothing is smoothed across
    unrelated images. In a folder, an image that cannot be read is skipped and listed
    in ``failed`` as (path, error) for the caller to report; the others are enhanced.

    Raises:
        SourceError: missing path, or a folder without images.
        FrameFormatError: a single image that is unsupported or undecodable.
    """

    live = False
    kind = "images"

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        _check_input_file(self.path)
        if self.path.is_dir():
            self.files = sorted(p for p in self.path.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS)
            skipped = [p.name for p in self.path.iterdir() if p.is_file() and p.suffix.lower() not in IMAGE_EXTENSIONS]
            if skipped:
                logger.warning("skipping %d non-image file(s) in %s, e.g. %s", len(skipped), self.path, skipped[0])
            if not self.files:
                raise SourceError(f"folder {self.path} holds no images ({', '.join(IMAGE_EXTENSIONS)})")
            self._first = None
        else:
            self.files = [self.path]
            self._first = decode_image(self.path)  # validate now, before any output is made
        self.expected_frames = len(self.files)
        self.frames_read = 0
        self.copy_streams: list = []
        self.warnings: list[str] = []
        self.failed: list[tuple[Path, PipelineError]] = []

    def __enter__(self) -> ImageSource:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def close(self) -> None:
        self._first = None

    def frames(self, stop: threading.Event | None = None) -> Iterator[Frame]:
        for i, p in enumerate(self.files):
            if stop is not None and stop.is_set():
                return
            t0 = time.perf_counter()
            try:
                img = self._first if (i == 0 and self._first is not None) else decode_image(p)
            except (FrameFormatError, SourceError) as err:
                logger.info("skipping %s: %s", p, err)  # the caller reports ``failed``
                self.failed.append((p, err))
                continue
            now = time.perf_counter()
            f = Frame(np.ascontiguousarray(img), i, None, None, now, name=p.name, reset=True)
            f.timings["decode"] = now - t0
            self.frames_read += 1
            yield f


class WebcamSource:
    """A camera through OpenCV ``VideoCapture`` (index or device path).

    Asks for MJPG and a one-frame driver buffer; the pipeline hands only the newest
    frame to inference. Timestamps are capture times in milliseconds since the start.

    Raises:
        SourceError: no camera there, or it delivers no frame.
    """

    live = True
    kind = "webcam"

    def __init__(self, device: int | str, width: int | None = None, height: int | None = None, fps: float | None = None):
        self.device = device
        level = cv2.utils.logging.getLogLevel()
        cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)
        try:
            if isinstance(device, str) and not Path(device).exists():
                raise SourceError(f"no camera at {device} (device does not exist)")
            self.cap = cv2.VideoCapture(device)
            if not self.cap.isOpened():
                raise SourceError(f"no camera at {'index ' if isinstance(device, int) else ''}{device} (cannot open it)")
            self.cap.set(cv2.CAP_PROP_FOURCC, cv2.VideoWriter_fourcc(*"MJPG"))
            self.cap.set(cv2.CAP_PROP_BUFFERSIZE, 1)
            if width and height:
                self.cap.set(cv2.CAP_PROP_FRAME_WIDTH, width)
                self.cap.set(cv2.CAP_PROP_FRAME_HEIGHT, height)
            if fps:
                self.cap.set(cv2.CAP_PROP_FPS, fps)
            ok, first = self.cap.read()
            if not ok or first is None:
                self.cap.release()
                raise SourceError(f"camera {device} opened but delivers no frames")
        finally:
            cv2.utils.logging.setLogLevel(level)
        self._first = first
        self.height, self.width = first.shape[:2]
        self.rate = Fraction(round(self.cap.get(cv2.CAP_PROP_FPS) or 30)) or Fraction(30)
        self.time_base = Fraction(1, 1000)
        self.expected_frames = None
        self.frames_read = 0
        self.copy_streams: list = []
        self.warnings: list[str] = []
        logger.info(
            "camera %s: %dx%d, fourcc %r, %.1f fps", device, self.width, self.height,
            int(self.cap.get(cv2.CAP_PROP_FOURCC)).to_bytes(4, "little").decode("ascii", "replace"),
            float(self.rate),
        )

    def __enter__(self) -> WebcamSource:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def close(self) -> None:
        self.cap.release()

    def frames(self, stop: threading.Event | None = None) -> Iterator[Frame]:
        t_start = time.perf_counter()
        img = self._first
        last_pts = -1
        while stop is None or not stop.is_set():
            t0 = time.perf_counter()
            if img is None:
                ok, img = self.cap.read()
                if not ok or img is None:
                    self.warnings.append(f"camera {self.device} stopped delivering frames")
                    logger.warning("camera %s stopped delivering frames", self.device)
                    return
            now = time.perf_counter()
            pts = max(round((now - t_start) * 1000), last_pts + 1)
            last_pts = pts
            f = Frame(img, self.frames_read, pts, self.time_base, now, reset=self.frames_read == 0, color="bgr")
            f.timings["decode"] = now - t0
            self.frames_read += 1
            img = None
            yield f
