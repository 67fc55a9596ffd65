"""Pictures for docs: input | lite (this checkout) | SCI | Zero-DCE++ on frames of the
shared real clips, and on a synthetic dusk scene (a LOL reference darkened to mean
~60/255 by ``realtime.degrade``), each run as a video so the temporal filters work.

    python bench/real_pictures.py -o docs/images
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import av
import cv2
import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import models  # noqa: E402
from dark_video import label_strip  # noqa: E402
from peers import load_sci, load_zero_dce_pp, run_peer  # noqa: E402
from realtime import create_engine  # noqa: E402
from realtime.frame import Frame  # noqa: E402
from realtime.paths import lol_root, video_root  # noqa: E402

CLIPS = {"night_driving_dark_360p.mp4": (300, 700), "night_ir_surveillance.mp4": (300,)}


def _frames(path: Path, last: int):
    with av.open(str(path)) as c:
        for i, f in enumerate(c.decode(video=0)):
            if i > last:
                return
            yield i, f.to_ndarray(format="rgb24")


#: (label, checkpoint or None for the shipped weights) of the lite columns; --weights adds more
LITE_COLUMNS: list[tuple[str, str | None]] = [("lite", None)]


def _lite(weights: str | None):
    if weights is None:
        return models.load_pretrained("lite", torch.device("cpu"))[0]
    return models.load_checkpoint(weights, torch.device("cpu"))[0]


def strips(frames, picks, width):
    engines = [create_engine(_lite(w), "lite", torch.device("cpu")) for _, w in LITE_COLUMNS]
    sci, zdce = load_sci(), load_zero_dce_pp()
    out = []
    for i, img in frames:
        ours = [e.process(Frame(image=img, index=i))[0].result.copy() for e in engines]
        if i in picks:
            out.append(label_strip([img, *ours, run_peer(sci, img), run_peer(zdce, img)],
                                   [f"input (mean {img.mean():.0f})", *(c for c, _ in LITE_COLUMNS), "SCI", "Zero-DCE++"], width))
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("-o", "--out", default="docs/images")
    p.add_argument("--width", type=int, default=320)
    p.add_argument("--weights", action="append", default=[], metavar="LABEL=CHECKPOINT",
                   help="another lite column from a checkpoint (repeatable), e.g. new=runs/lite_video/best.pt")
    args = p.parse_args(argv)
    for spec in args.weights:
        label, _, path = spec.partition("=")
        LITE_COLUMNS.append((label, path))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    video = video_root()
    for name, picks in CLIPS.items():
        rows = strips(_frames(video / name, max(picks)), set(picks), args.width)
        path = out / f"real_{Path(name).stem}.jpg"
        cv2.imwrite(str(path), cv2.cvtColor(np.vstack(rows), cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 88])
        print(path)
    # dusk (~60/255) and well exposed (~125/255): a LOL reference through realtime.degrade
    # (fresh phone noise per frame, H.264 CRF 23), 16 static frames, the last one shown;
    # for the well-exposed clip also the mean absolute change |out - in| in 8-bit levels
    import tempfile

    from realtime import degrade

    ref = cv2.cvtColor(cv2.imread(str(lol_root() / "eval15/high/1.png")), cv2.COLOR_BGR2RGB)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for mean in (60, 125):
            clip = Path(tmp) / f"m{mean}.mp4"
            # 125: the reference itself (mean 124) with the sensor noise
            exp = 1.0 if mean >= ref.mean() else degrade.exposure_for_mean(ref, mean, degrade.NOISE_PRESETS["phone"])
            degrade.write_dark_clip(clip, [ref] * 16, exp)
            frames = list(_frames(clip, 15))
            rows += strips(frames, {15}, args.width)
            if mean == 125:
                eng = create_engine(_lite(LITE_COLUMNS[-1][1]), "lite", torch.device("cpu"))
                diffs = [np.abs(eng.process(Frame(image=im, index=i))[0].result.astype(np.float32) - im).mean()
                         for i, im in frames]
                print(f"well exposed (input mean {np.mean([im.mean() for _, im in frames]):.1f}): "
                      f"mean |out - in| = {np.mean(diffs):.2f} levels")
    path = out / "synthetic_dusk_bright.jpg"
    cv2.imwrite(str(path), cv2.cvtColor(np.vstack(rows), cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 88])
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
