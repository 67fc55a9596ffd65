"""Dark-video benchmark (issue 15): full-reference scores on synthetic dark clips made from
LOL eval15 references, and false colour on real dark clips.

Clips (``realtime.degrade``, sensor noise preset ``phone``, libx264 yuv420p CRF 23): for each
scene (an eval15 ``high`` image) and each exposure level (the dark input's mean, 0..255
scale: 40, 20, 10, 5 by default) a **static** clip (the reference in every frame, fresh noise
in every frame) and a **pan** (a crop window sliding ``--pan-speed`` px/frame across the
reference; the reference is cropped identically), plus both again through the camera
pipeline (dark-weighted spatial denoise + black clipping) at the two darkest levels
(groups ``10 cam``, ``5 cam``).

Methods: our shipped models run through ``run_stream.py`` as a user runs them (a subprocess,
defaults, ``--quiet --overwrite``, plus ``--extra`` arguments; output decoded with PyAV);
the peers Zero-DCE++ and SCI (``bench/peers.py``, weights in ``../shared/peers``); ``gamma``,
a per-frame auto-gamma that maps the input mean to 0.45 (``y = x ** (ln 0.45 / ln mean)``,
per channel, exponent clipped to [0.1, 1]); ``classical``, a motion-adaptive recursive
temporal average (per-pixel blend weight ``max(1/n, 0.2)``, rising linearly to 1 as the 5x5-box
luma's difference from the running average goes from 3 to 6 levels) followed by
the same auto-gamma with its exponent smoothed over time (EMA 0.8). Every method's frames
are written with the options run_stream's file sink sets (``realtime.sinks.encoder_options``:
libx264 yuv420p CRF 23, ultrafast with macroblock-tree rate control, deblocking and adaptive
quantisation back on), so all rows pay the
same output codec.

Scores, per group, averaged over scenes and scored frames (frames ``--skip`` onwards, every
``--score-every``-th, of static and pan clips; ``--skip`` frames (default 4) let temporal
filters converge):

* plain PSNR / SSIM: ``training.metrics.psnr`` / ``ssim`` (RGB; SSIM on R, G, B with the Wang
  et al. Gaussian window, averaged over channels);
* matched PSNR / SSIM / dE: the output multiplied (in sRGB 0..255 values, per frame, one gain
  for all channels, clipped to [0, 255]) so its mean BT.601 luma equals the reference's, then
  PSNR, SSIM and ``training.metrics.delta_e`` (mean CIE76 in CIELAB, D65);
* temporal noise (static clips): std over frames ``--skip``..``--frames`` of the matched
  output, per pixel and channel, averaged, in 8-bit levels (the reference is constant, so this
  is all noise and flicker). With ``--steady-frames N`` (e.g. 48) the static clips run on to
  N frames (the quality scores stay on the first ``--frames``) and the same std over the
  frames after ``--frames`` is reported as the *steady* temporal noise, after a temporal
  filter's start (docs/BENCHMARKS.md §17: the input codec's own noise changes over a
  longer clip, so both columns move);
* false colour: mean CIELAB chroma sqrt(a*^2 + b*^2) of the plain output over the pixels whose
  input BT.601 luma is <= 4 (0..255): the input holds no signal there, so any colour is made up
  (pooled over the pixels of all scored frames; ``mask%`` is their share).

``--real`` scores false colour on the real clips in ``../shared/data/video``: 8 segments of
12 frames spread over each clip, copied losslessly (x264 qp 0 of the decoded frames) into one
clip that each method runs on; scored on the last frame of each segment.

Incremental: clips, method outputs and scores are cached under ``--cache`` (default
``.cache/dark_video``) by a hash of their settings; the run_stream rows' hash includes the
bytes of ``run_stream.py``, ``realtime/*.py``, ``models/*.py`` and ``models/weights/*``, so
changing the enhancement reruns just those rows.

    python bench/dark_video.py --quick                      # 2 scenes, 12 frames, 320x240
    python bench/dark_video.py --md out.md --json out.json   # 6 scenes, 24 frames, 600x400
    python bench/dark_video.py --methods lite --extra="--denoise 0" --label=-dn0
    python bench/dark_video.py --methods lite sri blnet --slow-frames 8 --real --pictures docs/images/dark
"""
from __future__ import annotations

import argparse
import hashlib
import inspect
import json
import math
import shlex
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import av
import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from realtime.degrade import CAMERA_PRESETS, NOISE_PRESETS, exposure_for_mean, write_dark_clip  # noqa: E402
from realtime.paths import lol_root  # noqa: E402
from realtime.sinks import CPU_PRESET, encoder_options  # noqa: E402
from training.data import _natural_key, load_rgb  # noqa: E402
from training.metrics import delta_e, psnr, ssim  # noqa: E402

STREAM_MODELS = ("lite", "sri", "blnet")
SLOW_MODELS = ("sri", "blnet")
INPROC = ("zero_dce_pp", "sci", "gamma", "classical")
DEFAULT_METHODS = ("lite", "zero_dce_pp", "sci", "gamma", "classical")
LUMA = np.array([0.299, 0.587, 0.114], np.float32)
BLACK_LUMA = 4.0
SCORE_VERSION = "3"


# --------------------------------------------------------------------------- metrics


def luma(img: np.ndarray) -> np.ndarray:
    """BT.601 luma of (..., 3) RGB values (same scale as the input)."""
    return np.asarray(img, np.float32) @ LUMA


def match_luma(out: np.ndarray, ref: np.ndarray) -> np.ndarray:
    """``out`` times one gain (sRGB values) so its mean luma equals ``ref``'s, clipped to
    [0, 255]; float32. A black output stays black."""
    m_out = float(luma(out).mean())
    g = float(luma(ref).mean()) / m_out if m_out > 1e-6 else 1.0
    return np.clip(out.astype(np.float32) * g, 0.0, 255.0)


def temporal_noise(frames: list[np.ndarray] | np.ndarray) -> float:
    """Std over frames per pixel and channel, averaged (8-bit levels)."""
    stack = np.asarray(frames, np.float32)
    if len(stack) < 2:
        return math.nan
    return float(stack.std(axis=0).mean())


def chroma(img: np.ndarray) -> np.ndarray:
    """CIELAB chroma sqrt(a*^2 + b*^2) of uint8 sRGB pixels, shape (..., 3) -> (...)."""
    from skimage.color import rgb2lab

    lab = rgb2lab(np.asarray(img, np.uint8).reshape(-1, 1, 3)).reshape(*img.shape)
    return np.hypot(lab[..., 1], lab[..., 2])


def false_colour_sums(out: np.ndarray, inp: np.ndarray, threshold: float = BLACK_LUMA) -> tuple[float, int, int]:
    """(sum of the output's chroma, pixel count) over the input's black pixels, and all pixels."""
    mask = luma(inp) <= threshold
    n = int(mask.sum())
    if n == 0:
        return 0.0, 0, mask.size
    return float(chroma(out[mask]).sum()), n, mask.size


def false_colour(out: np.ndarray, inp: np.ndarray, threshold: float = BLACK_LUMA) -> float:
    """Mean chroma of ``out`` where ``inp``'s luma <= threshold (NaN where there is none)."""
    s, n, _ = false_colour_sums(out, inp, threshold)
    return s / n if n else math.nan


# --------------------------------------------------------------------------- baselines


def auto_gamma_exponent(img: np.ndarray, target: float = 0.45) -> float:
    m = float(np.clip(img.mean() / 255.0, 1e-4, 0.999))
    return float(np.clip(math.log(target) / math.log(m), 0.1, 1.0))


def apply_gamma(img: np.ndarray, g: float) -> np.ndarray:
    lut = np.clip(np.rint(255.0 * (np.arange(256) / 255.0) ** g), 0, 255).astype(np.uint8)
    return lut[img]


class AutoGamma:
    """Per-frame auto-gamma: input mean -> 0.45 (no memory)."""

    def reset(self) -> None:
        pass

    def __call__(self, img: np.ndarray) -> np.ndarray:
        return apply_gamma(img, auto_gamma_exponent(img))


class Classical:
    """Motion-adaptive recursive temporal average, then a time-smoothed auto-gamma."""

    def __init__(self, min_alpha: float = 0.2, threshold: float = 3.0, gamma_ema: float = 0.8):
        self.min_alpha, self.threshold, self.gamma_ema = min_alpha, threshold, gamma_ema
        self.reset()

    def reset(self) -> None:
        self.acc: np.ndarray | None = None
        self.n = 0
        self.g: float | None = None

    def __call__(self, img: np.ndarray) -> np.ndarray:
        x = img.astype(np.float32)
        self.n += 1
        if self.acc is None:
            self.acc = x
        else:
            d = np.abs(cv2.blur(luma(x), (5, 5)) - cv2.blur(luma(self.acc), (5, 5)))
            a0 = max(1.0 / self.n, self.min_alpha)
            alpha = a0 + (1.0 - a0) * np.clip((d - self.threshold) / self.threshold, 0.0, 1.0)
            self.acc += alpha[..., None] * (x - self.acc)
        den = np.clip(np.rint(self.acc), 0, 255).astype(np.uint8)
        g = auto_gamma_exponent(den)
        self.g = g if self.g is None else self.gamma_ema * self.g + (1 - self.gamma_ema) * g
        return apply_gamma(den, self.g)


class Peer:
    def __init__(self, name: str, sci_variant: str = "medium"):
        from peers import load_sci, load_zero_dce_pp

        self.model = load_zero_dce_pp() if name == "zero_dce_pp" else load_sci(variant=sci_variant)

    def reset(self) -> None:
        pass

    def __call__(self, img: np.ndarray) -> np.ndarray:
        from peers import run_peer

        return run_peer(self.model, img)


# --------------------------------------------------------------------------- clips


@dataclass(frozen=True)
class ClipSpec:
    scene: str  # eval15 high image file name
    level: float
    kind: str  # "static" | "pan"
    camera: bool
    frames: int
    size: tuple[int, int]  # (w, h) of the clip (static: centre crop)
    pan_speed: int
    noise: str = "phone"
    seed: int = 0

    @property
    def group(self) -> str:
        return f"{self.level:g}" + (" cam" if self.camera else "")

    def key(self) -> str:
        src = inspect.getsource(sys.modules["realtime.degrade"])
        blob = json.dumps([asdict(self), hashlib.sha1(src.encode()).hexdigest()], sort_keys=True)
        return hashlib.sha1(blob.encode()).hexdigest()[:16]


def _even(v: int) -> int:
    return v - v % 2


def reference_frames(ref: np.ndarray, spec: ClipSpec) -> list[np.ndarray]:
    """The clean reference of every frame of the clip (cropped as the clip)."""
    H, W = ref.shape[:2]
    w, h = spec.size
    w, h = _even(min(w, W)), _even(min(h, H))
    y0 = (H - h) // 2
    if spec.kind == "static":
        x0 = (W - w) // 2
        crop = np.ascontiguousarray(ref[y0:y0 + h, x0:x0 + w])
        return [crop] * spec.frames
    travel = spec.pan_speed * (spec.frames - 1)
    w = _even(min(w, W - travel))
    if w < 32:
        raise ValueError(f"pan of {travel} px does not fit in a {W} px wide reference")
    x0 = (W - w - travel) // 2
    return [np.ascontiguousarray(ref[y0:y0 + h, x0 + i * spec.pan_speed: x0 + i * spec.pan_speed + w]) for i in range(spec.frames)]


def make_clip(spec: ClipSpec, ref: np.ndarray, cache: Path) -> Path:
    path = cache / "clips" / f"{spec.key()}.mp4"
    if path.exists():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    refs = reference_frames(ref, spec)
    noise = NOISE_PRESETS[spec.noise]
    # one exposure per scene and level (solved on the whole reference, with noise)
    k = exposure_for_mean(ref, spec.level, noise)
    seed = int(spec.key()[:8], 16)
    tmp = path.with_suffix(".tmp.mp4")
    write_dark_clip(tmp, refs, k, noise, seed=seed, camera=CAMERA_PRESETS["phone"] if spec.camera else None)
    tmp.replace(path)
    return path


def decode(path: Path) -> list[np.ndarray]:
    with av.open(str(path)) as c:
        return [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]


#: what run_stream.py's file sink sets on the CPU (libx264, CRF 23, its CPU preset): every row pays it.
OUTPUT_OPTIONS = encoder_options("libx264", 23, CPU_PRESET)


def write_frames(path: Path, frames, size: tuple[int, int], options: dict | None = None) -> Path:
    from realtime.synthetic import write_clip

    return write_clip(path, size=size, codec="libx264", options=options or OUTPUT_OPTIONS, frames=frames)


# --------------------------------------------------------------------------- methods


def _files_digest(paths) -> str:
    h = hashlib.sha1()
    for p in sorted(paths):
        h.update(p.name.encode())
        h.update(p.read_bytes())
    return h.hexdigest()


@dataclass
class Method:
    label: str
    name: str  # lite | sri | blnet | zero_dce_pp | sci | gamma | classical
    extra: list[str] = field(default_factory=list)
    sci_variant: str = "medium"
    root: Path = ROOT  # checkout whose run_stream.py runs the stream rows

    @property
    def stream(self) -> bool:
        return self.name in STREAM_MODELS

    def key(self) -> str:
        if self.stream:
            r = self.root
            code = [r / "run_stream.py", *sorted((r / "realtime").rglob("*.py")), *(r / "models").glob("*.py"),
                    *(p for p in (r / "models" / "weights").glob("*") if p.is_file())]
            parts = [self.name, self.extra, _files_digest(code)]
        else:
            src = inspect.getsource(Classical) + inspect.getsource(AutoGamma) + inspect.getsource(auto_gamma_exponent)
            src += inspect.getsource(apply_gamma) + (ROOT / "bench" / "peers.py").read_text()
            parts = [self.name, self.sci_variant, hashlib.sha1(src.encode()).hexdigest(), OUTPUT_OPTIONS]
        return hashlib.sha1(json.dumps(parts).encode()).hexdigest()[:12]

    def run(self, clip: Path, out: Path) -> None:
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_name(out.stem + ".tmp.mp4")
        if self.stream:
            cmd = [sys.executable, str(self.root / "run_stream.py"), str(clip.resolve()), "-o", str(tmp.resolve()),
                   "--model", self.name, "--overwrite", "--quiet", *self.extra]
            r = subprocess.run(cmd, cwd=self.root, capture_output=True, text=True)
            if r.returncode != 0:
                raise RuntimeError(f"{' '.join(cmd)} failed ({r.returncode}):\n{r.stderr[-2000:]}")
        else:
            proc = _processor(self)
            proc.reset()
            frames = decode(clip)
            h, w = frames[0].shape[:2]
            write_frames(tmp, (proc(f) for f in frames), (w, h))
        tmp.replace(out)


_PROCS: dict = {}


def _processor(m: Method):
    key = (m.name, m.sci_variant)
    if key not in _PROCS:
        if m.name == "gamma":
            _PROCS[key] = AutoGamma()
        elif m.name == "classical":
            _PROCS[key] = Classical()
        else:
            _PROCS[key] = Peer(m.name, m.sci_variant)
    return _PROCS[key]


# --------------------------------------------------------------------------- scoring


def score_clip(out_frames, inp_frames, ref_frames, static: bool, skip: int, every: int, until: int | None = None) -> dict:
    """Scores of one clip on frames ``skip`` .. ``until`` (default: all); a static clip
    longer than ``until`` also gets the steady-state temporal noise of the frames after it."""
    total = min(len(out_frames), len(inp_frames), len(ref_frames))
    n = total if until is None else min(total, until)
    skip = min(skip, max(0, n // 2))
    idx = list(range(skip, n, every)) or [n - 1]
    rows = []
    fc_sum, fc_n, px, fc_ref = 0.0, 0, 0, 0.0
    for i in idx:
        o, r, x = out_frames[i], ref_frames[i], inp_frames[i]
        if o.shape != r.shape:
            o = cv2.resize(o, (r.shape[1], r.shape[0]), interpolation=cv2.INTER_AREA)
        m = np.clip(np.rint(match_luma(o, r)), 0, 255).astype(np.uint8)
        rows.append([psnr(o, r), ssim(o, r), psnr(m, r), ssim(m, r), delta_e(m, r)])
        s, c, t = false_colour_sums(o, x)
        fc_sum, fc_n, px, fc_ref = fc_sum + s, fc_n + c, px + t, fc_ref + false_colour_sums(r, x)[0]
    a = np.array(rows, np.float64)
    res = dict(zip(("psnr", "ssim", "m_psnr", "m_ssim", "m_de"), a.mean(0).tolist()))
    res.update(fc_sum=fc_sum, fc_n=fc_n, px=px, fc_ref=fc_ref, frames=n, scored=len(idx))
    if static:
        res["tnoise"] = temporal_noise([match_luma(out_frames[i], ref_frames[i]) for i in range(skip, n)])
        if total - n >= 2:
            res["tnoise_steady"] = temporal_noise([match_luma(out_frames[i], ref_frames[i]) for i in range(n, total)])
    return res


METRIC_COLS = [("psnr", "PSNR", "{:.2f}"), ("ssim", "SSIM", "{:.3f}"), ("m_psnr", "m-PSNR", "{:.2f}"),
               ("m_ssim", "m-SSIM", "{:.3f}"), ("m_de", "m-dE76", "{:.2f}"), ("tnoise", "t-noise", "{:.2f}"),
               ("tnoise_steady", "t-noise steady", "{:.2f}"),
               ("false_colour", "false colour", "{:.1f}"), ("mask", "mask%", "{:.1f}")]


def aggregate(per_clip: list[dict]) -> dict:
    out = {}
    for k in ("psnr", "ssim", "m_psnr", "m_ssim", "m_de"):
        out[k] = float(np.mean([c[k] for c in per_clip]))
    tn = [c["tnoise"] for c in per_clip if "tnoise" in c and not math.isnan(c["tnoise"])]
    out["tnoise"] = float(np.mean(tn)) if tn else math.nan
    ts = [c["tnoise_steady"] for c in per_clip if not math.isnan(c.get("tnoise_steady", math.nan))]
    out["tnoise_steady"] = float(np.mean(ts)) if ts else math.nan
    n = sum(c["fc_n"] for c in per_clip)
    out["false_colour"] = sum(c["fc_sum"] for c in per_clip) / n if n else math.nan
    out["false_colour_ref"] = sum(c["fc_ref"] for c in per_clip) / n if n else math.nan
    out["mask"] = 100.0 * n / max(1, sum(c["px"] for c in per_clip))
    out["clips"] = len(per_clip)
    out["frames"] = int(np.mean([c["frames"] for c in per_clip]))
    return out


def markdown(results: dict, methods: list[Method], title: str = "") -> str:
    lines = []
    if title:
        lines.append(title)

    def shown(k: str) -> bool:
        vals = [r.get(k) for rows in results.values() for r in rows.values()]
        return any(isinstance(v, (int, float)) and not math.isnan(v) for v in vals)

    cols = [c for c in METRIC_COLS if c[0] != "tnoise_steady" or shown(c[0])]  # only with --steady-frames
    for group, rows in results.items():
        ref_fc = next(iter(rows.values()), {}).get("false_colour_ref", math.nan)
        lines.append(f"\n**input mean {group.replace(' cam', '')}/255{' + camera pipeline' if 'cam' in group else ''}** "
                     f"(the reference's own chroma on the false-colour pixels: {ref_fc:.1f})\n")
        lines.append("| method | " + " | ".join(c[1] for c in cols) + " |")
        lines.append("|---" * (len(cols) + 1) + "|")
        for m in methods:
            if m.label not in rows:
                continue
            r = rows[m.label]
            cells = ["-" if (v := r.get(k)) is None or (isinstance(v, float) and math.isnan(v)) else fmt.format(v) for k, _, fmt in cols]
            note = f" ({r['frames']} fr)" if m.name in SLOW_MODELS else ""
            lines.append(f"| {m.label}{note} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- real clips


def real_sample_clip(src: Path, cache: Path, segments: int = 8, length: int = 12) -> tuple[Path, list[int]]:
    """One clip of ``segments`` runs of ``length`` decoded frames spread over ``src``,
    encoded losslessly; returns it and the indices of each segment's last frame (segments
    the decoder cannot complete, e.g. past a stated frame count, are left out)."""
    st = src.stat()
    key = hashlib.sha1(f"v2|{src.resolve()}|{st.st_size}|{st.st_mtime_ns}|{segments}|{length}".encode()).hexdigest()[:16]
    path = cache / "real" / f"{src.stem}-{key}.mp4"
    meta = path.with_suffix(".json")
    if path.exists() and meta.exists():
        return path, json.loads(meta.read_text())
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(src)) as c:
        total = c.streams.video[0].frames or 0
    if total < segments * length * 2:
        raise ValueError(f"{src} has too few frames ({total})")
    ends = np.linspace(length, total - length, segments).astype(int)
    seg_of = {f: k for k, e in enumerate(ends) for f in range(e - length + 1, e + 1)}
    got: dict[int, list[np.ndarray]] = {}
    with av.open(str(src)) as c:
        for i, f in enumerate(c.decode(video=0)):
            if i in seg_of:
                got.setdefault(seg_of[i], []).append(f.to_ndarray(format="rgb24"))
            if i >= max(seg_of):
                break
    frames = [f for k in sorted(got) if len(got[k]) == length for f in got[k]]
    if not frames:
        raise ValueError(f"no complete segment decoded from {src}")
    last = [(i + 1) * length - 1 for i in range(len(frames) // length)]
    h, w = frames[0].shape[:2]
    w, h = _even(w), _even(h)
    tmp = path.with_suffix(".tmp.mp4")
    write_frames(tmp, (np.ascontiguousarray(f[:h, :w]) for f in frames), (w, h), {"qp": "0", "preset": "ultrafast"})
    tmp.replace(path)
    meta.write_text(json.dumps(last))
    return path, last


def run_real(methods: list[Method], cache: Path, video_dir: Path, force: set[str]) -> dict:
    res: dict = {}
    for src in sorted(video_dir.glob("*.mp4")):
        clip, last = real_sample_clip(src, cache)
        inp = decode(clip)
        res[src.name] = {}
        for m in methods:
            out_path = cache / "out" / f"{m.label}-{m.key()}" / f"real-{clip.stem}.mp4"
            if m.label in force or not out_path.exists():
                t0 = time.time()
                m.run(clip, out_path)
                print(f"  {src.name} {m.label}: {time.time() - t0:.1f}s", file=sys.stderr, flush=True)
            out = decode(out_path)
            if len(out) != len(inp):
                raise RuntimeError(f"{m.label} wrote {len(out)} frames for the {len(inp)} of {clip}")
            s = n = 0
            for i in last:
                a, b, _ = false_colour_sums(out[i], inp[i])
                s, n = s + a, n + b
            res[src.name][m.label] = {"false_colour": s / n if n else math.nan,
                                      "mask": 100.0 * n / (len(last) * inp[0].shape[0] * inp[0].shape[1]),
                                      "frames_scored": len(last)}
    return res


# --------------------------------------------------------------------------- main


def label_strip(images: list[np.ndarray], labels: list[str], width: int = 320) -> np.ndarray:
    tiles = []
    for img, lab in zip(images, labels):
        h, w = img.shape[:2]
        t = cv2.resize(img, (width, round(h * width / w)), interpolation=cv2.INTER_AREA)
        t = np.ascontiguousarray(t)
        cv2.putText(t, lab, (6, 18), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 3, cv2.LINE_AA)
        cv2.putText(t, lab, (6, 18), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (255, 255, 255), 1, cv2.LINE_AA)
        tiles.append(t)
    return np.concatenate(tiles, 1)


def parse_methods(args) -> list[Method]:
    root = Path(args.stream_root).resolve() if args.stream_root else ROOT
    if not (root / "run_stream.py").is_file():
        raise SystemExit(f"--stream-root {root} has no run_stream.py")
    names = list(args.methods)
    if "all" in names:
        names = [*DEFAULT_METHODS, *SLOW_MODELS]
    methods = []
    for n in names:
        if n not in (*STREAM_MODELS, *INPROC):
            raise SystemExit(f"unknown method {n!r} (choose from {', '.join((*STREAM_MODELS, *INPROC))}, all)")
        if n in STREAM_MODELS:
            methods.append(Method(n + args.label, n, shlex.split(args.extra), root=root))
        else:
            methods.append(Method(n + ("-" + args.sci_variant if n == "sci" and args.sci_variant != "medium" else ""), n,
                                  sci_variant=args.sci_variant))
    for spec in args.stream:
        label, _, rest = spec.partition("=")
        parts = shlex.split(rest)
        if not label or not parts or parts[0] not in STREAM_MODELS:
            raise SystemExit(f"--stream wants LABEL=MODEL [ARGS], got {spec!r}")
        methods.append(Method(label, parts[0], parts[1:], root=root))
    return methods


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="2 scenes, 12 frames, 320x240 (a few minutes)")
    ap.add_argument("--scenes", type=int, default=None, help="eval15 scenes (default 6; quick 2)")
    ap.add_argument("--frames", type=int, default=None, help="frames per clip (default 24; quick 12)")
    ap.add_argument("--size", default=None, help="WxH clip size (default: the reference, 600x400; quick 320x240)")
    ap.add_argument("--levels", type=float, nargs="+", default=[40, 20, 10, 5], help="input means (0..255)")
    ap.add_argument("--camera-levels", type=int, default=2, help="the N darkest levels also get the camera-pipeline clips")
    ap.add_argument("--pan-speed", type=int, default=3, help="pan speed, px/frame")
    ap.add_argument("--steady-frames", type=int, default=0,
                    help="static clips run this long (sri/blnet: no); quality is scored on the first --frames, the "
                         "frames after them give the steady-state temporal noise (default 0: off)")
    ap.add_argument("--skip", type=int, default=4, help="frames left out of the scores while temporal filters converge")
    ap.add_argument("--score-every", type=int, default=None, help="score every N-th frame after --skip (default 4; quick 2)")
    ap.add_argument("--methods", nargs="+", default=list(DEFAULT_METHODS),
                    help=f"rows: {', '.join((*STREAM_MODELS, *INPROC))} or all (default: {' '.join(DEFAULT_METHODS)})")
    ap.add_argument("--stream", action="append", default=[], metavar="LABEL=MODEL [ARGS]",
                    help="an extra run_stream row, e.g. 'lite-dn0=lite --denoise 0' (repeatable)")
    ap.add_argument("--extra", default="",
                    help='arguments passed to run_stream for the lite/sri/blnet rows (write --extra="--no-tone")')
    ap.add_argument("--stream-root", default=None, metavar="DIR",
                    help="run the stream rows with DIR/run_stream.py (e.g. an export of an older commit: "
                         "git archive COMMIT | tar -x -C DIR); default: this checkout")
    ap.add_argument("--label", default="", help="suffix for the labels of the lite/sri/blnet rows (write --label=-dn0)")
    ap.add_argument("--sci-variant", default="medium", choices=("easy", "medium", "difficult"))
    ap.add_argument("--slow-frames", type=int, default=8, help="frames per clip for sri/blnet (seconds per frame on CPU)")
    ap.add_argument("--slow-scenes", type=int, default=None, help="scenes for sri/blnet (default: all)")
    ap.add_argument("--force", nargs="*", default=[], metavar="LABEL", help="recompute these rows despite the cache")
    ap.add_argument("--cache", default=str(ROOT / ".cache" / "dark_video"))
    ap.add_argument("--data", default=None, help="LOL root (default: realtime.paths.lol_root())")
    ap.add_argument("--md", help="write the markdown table here")
    ap.add_argument("--json", help="write all numbers here")
    ap.add_argument("--pictures", help="folder for input | method ... | reference strips: the last frame of each group's static clip, and the centre of its pan at 2x (ghosting)")
    ap.add_argument("--real", action="store_true", help="also false colour on ../shared/data/video/*.mp4")
    ap.add_argument("--real-only", action="store_true", help="only the real clips")
    args = ap.parse_args(argv)
    # a level is part of its clips' cache key (and noise seed): ``--levels 10`` must name
    # the same clips as the default's 10, not new ones with other noise
    args.levels = [int(v) if float(v).is_integer() else v for v in args.levels]

    scenes_n = args.scenes or (2 if args.quick else 6)
    frames_n = args.frames or (12 if args.quick else 24)
    every = args.score_every or (2 if args.quick else 4)
    size = tuple(int(v) for v in args.size.split("x")) if args.size else ((320, 240) if args.quick else (10**6, 10**6))
    methods = parse_methods(args)
    force = set(args.force)
    cache = Path(args.cache)
    lol = Path(args.data) if args.data else lol_root()
    high = lol / "eval15" / "high"
    t_start = time.time()
    report: dict = {"settings": {"scenes": scenes_n, "frames": frames_n, "size": None if not args.size and not args.quick else list(size),
                                 "levels": args.levels, "camera_levels": args.camera_levels, "pan_speed": args.pan_speed,
                                 "skip": args.skip, "score_every": every, "steady_frames": args.steady_frames, "slow_frames": args.slow_frames,
                                 "noise": asdict(NOISE_PRESETS["phone"]), "camera": asdict(CAMERA_PRESETS["phone"]),
                                 "methods": [{**asdict(m), "root": str(m.root)} for m in methods]}}

    if not args.real_only:
        if not high.is_dir():
            print(f"dark_video: LOL eval15 references not found in {high} (../shared absent?); nothing to do", file=sys.stderr)
            return 2
        scenes = sorted((p for p in high.iterdir() if p.suffix.lower() == ".png"), key=_natural_key)[:scenes_n]
        refs = {p.name: load_rgb(p) for p in scenes}
        groups: dict[str, dict[str, list]] = {}
        pictures: dict[str, dict] = {}
        levels = sorted(args.levels, reverse=True)
        cam_levels = set(sorted(levels)[: args.camera_levels])
        for m in methods:
            slow = m.name in SLOW_MODELS
            nf = min(frames_n, args.slow_frames) if slow else frames_n
            m_scenes = scenes[: args.slow_scenes] if slow and args.slow_scenes else scenes
            t_m = time.time()
            for lv in levels:
                for cam in ([False, True] if lv in cam_levels else [False]):
                    for kind in ("static", "pan"):
                        for sc in m_scenes:
                            long = kind == "static" and not slow and args.steady_frames > nf
                            spec = ClipSpec(sc.name, lv, kind, cam, args.steady_frames if long else nf, size, args.pan_speed)
                            clip = make_clip(spec, refs[sc.name], cache)
                            tag = f"{m.label}-{m.key()}"
                            out_path = cache / "out" / tag / f"{spec.key()}.mp4"
                            score_path = cache / "scores" / tag / f"{spec.key()}-s{SCORE_VERSION}-{args.skip}-{every}-{nf}.json"
                            if m.label in force or not out_path.exists():
                                m.run(clip, out_path)
                            if m.label in force or not score_path.exists() or score_path.stat().st_mtime < out_path.stat().st_mtime:
                                inp, out = decode(clip), decode(out_path)
                                ref_frames = reference_frames(refs[sc.name], spec)
                                res = score_clip(out, inp, ref_frames, kind == "static", args.skip, every, until=nf)
                                score_path.parent.mkdir(parents=True, exist_ok=True)
                                score_path.write_text(json.dumps(res))
                            res = json.loads(score_path.read_text())
                            res.update(scene=sc.name, kind=kind)
                            groups.setdefault(spec.group, {}).setdefault(m.label, []).append(res)
                            if args.pictures and sc == scenes[0]:
                                key = spec.group if kind == "static" else f"{spec.group} pan"
                                pic = pictures.setdefault(key, {"clip": clip, "refs": reference_frames(refs[sc.name], spec), "out": {}})
                                pic["out"][m.label] = out_path
            print(f"dark_video: {m.label} done in {time.time() - t_m:.0f}s", file=sys.stderr, flush=True)
        results = {g: {lab: aggregate(clips) for lab, clips in rows.items()} for g, rows in groups.items()}
        report["groups"] = results
        report["per_clip"] = groups
        settings = (f"{scenes_n} eval15 scenes, {frames_n} frames/clip (sri/blnet: {args.slow_frames}), "
                    f"{'x'.join(map(str, size)) if size[0] < 10**6 else '600x400'} (pan: {args.pan_speed} px/frame), "
                    f"skip {args.skip}, every {every}-th frame scored")
        md = markdown(results, methods, f"Dark-video benchmark: {settings}")
        print(md)
        if args.md:
            Path(args.md).write_text(md)
        if args.pictures:
            folder = Path(args.pictures)
            folder.mkdir(parents=True, exist_ok=True)
            for g, pic in pictures.items():
                inp = decode(pic["clip"])
                i = len(inp) - 1
                imgs, labs = [inp[i]], [f"input (mean {g})"]
                for lab, p in pic["out"].items():
                    o = decode(p)
                    imgs.append(o[min(i, len(o) - 1)])
                    labs.append(lab)
                imgs.append(pic["refs"][min(i, len(pic["refs"]) - 1)])
                labs.append("reference")
                if g.endswith("pan"):  # the last frame of the pan, its centre at 2x: ghosts show as trails
                    h, w = imgs[0].shape[:2]
                    imgs = [im[h // 4: h // 4 + h // 2, w // 4: w // 4 + w // 2] for im in imgs]
                strip = label_strip(imgs, labs)
                name = folder / f"dark_{g.replace(' ', '_')}.jpg"
                cv2.imwrite(str(name), cv2.cvtColor(strip, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 88])
                print(f"dark_video: wrote {name}", file=sys.stderr)

    if args.real or args.real_only:
        video_dir = lol.parents[0] / "video"
        if not video_dir.is_dir():
            print(f"dark_video: no real clips in {video_dir}; skipped", file=sys.stderr)
        else:
            real = run_real(methods, cache, video_dir, force)
            report["real"] = real
            lines = ["\n**False colour on real clips** (mean chroma where input luma <= 4; mask% of pixels)\n",
                     "| method | " + " | ".join(real) + " |", "|---" * (len(real) + 1) + "|"]
            for m in methods:
                lines.append(f"| {m.label} | " + " | ".join(f"{real[c][m.label]['false_colour']:.1f} ({real[c][m.label]['mask']:.0f}%)" for c in real) + " |")
            text = "\n".join(lines) + "\n"
            print(text)
            if args.md:
                with open(args.md, "a") as f:
                    f.write(text)
    report["seconds"] = time.time() - t_start
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=1, default=str))
    print(f"dark_video: {time.time() - t_start:.0f}s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
