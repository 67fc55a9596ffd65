"""How much of a model's error on LOL eval15 is the exposure it picks.

For each image: PSNR of the model's output, of the output times the best single gain
(least squares against the reference: a perfect global exposure), of the output times the
best gain per colour channel (perfect exposure and white balance), and, for ``blnet``,
of R_low * I_high, where I_high is the decomposition net's illumination of the
*reference* (what a perfect enhancement net would output under L_bri), and of
R_high * I_high (how well the decomposition recomposes a clean frame), and of
R_high * L_out (the clean reference's reflectance in the model's own light: what a
cleaner R_low alone would be worth). With
``--r0-threshold T`` (``blnet``), also of R_low replaced by R0 = S / (max_c S + 0.01)
where max_c S > T (a soft step, sigmoid(60 (max_c S - T))), times I_high: what the
frame's own colour and detail are worth where it is bright enough. With
``--box-filter K BETA``, also of the output times ``((box_K(L) + e) / (L + e)) ** BETA``
(e = 2/255): a fixed box filter of the input's fine structure, i.e. of the noise an
L / I model amplifies (how much a per-pixel noise term in I could gain). With
``--fixed-mean``, also of the output scaled to the mean brightness of the training split's
references (a fixed exposure target: what a rule that ignores the frame's content is worth).
``--denoise H ...`` also scores the output after OpenCV's non-local means of strength H (is
what is left noise, or lost detail?); ``--gate-offset D ...`` (``blnet`` with the Retinex
skip) the output with the gate's logit shifted by D (would more or less of R0 pay?).
``--detail G W ...`` (``blnet``) scores R_low rendered with the detail transfer of L_out at
gamma G and window W (G = 0: the plain R_low * L_out), whatever the model's own config;
``--curve-gain G ...`` (``blnet``) R_low * (I_low + e)^G times its best single gain (how a
fixed curve of the frame's own light compares with L_out at a perfect exposure).
``--input-denoise H ...`` scores the model run on the dark frame after non-local means of
strength H (does a cleaner input help the net?); ``--chroma-blur S ...`` the output with its
chroma (YCrCb Cr, Cb) blurred by a Gaussian of sigma S px, the luma kept (is colour noise what
costs SSIM?); ``--sharpen S K`` the output's luma plus K times its difference from a Gaussian
of sigma S (is the output over-smoothed?).
``--tone-oracle W ...`` (``blnet``) scores R_low times the detail transfer of I_high at
window W (guide G = (I_low + e)^gamma, the model's gamma or 0.5): a perfect tone at the
window's scale with the frame's own fine structure, i.e. what a perfect enhancement net
could reach under the transfer (is the rest of the gap tone or fine structure?). It
also prints how the output's mean brightness correlates with the reference's over the images.

    python research/exposure_gap.py --model blnet [--weights runs/RUN/best.pt] [--data DIR | --split validation|train]
                                 [--per-image] [--box-filter K BETA] [--r0-threshold T] [--fixed-mean]
                                 [--denoise H ...] [--gate-offset D ...] [--detail G W ...] [--curve-gain G ...]
                                 [--tone-oracle W ...] [--input-denoise H ...] [--chroma-blur S ...] [--sharpen S K]
"""
from __future__ import annotations

import argparse
import copy
import sys
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from models import load_checkpoint, load_pretrained  # noqa: E402
from models._layers import crop_to, pad_to_multiple  # noqa: E402
from models.blnet import retinex_prior, transfer_detail  # noqa: E402
from training.data import default_lol_root, list_pairs, load_rgb, split_pairs, to_tensor  # noqa: E402
from training.metrics import delta_e, psnr, ssim  # noqa: E402


def tensor_to_uint8(y: torch.Tensor) -> np.ndarray:
    """(1, 3, H, W) in [0, 1] -> uint8 (H, W, 3), rounded as the pipeline's output is."""
    return (y.detach().float()[0] * 255.0).round().clamp(0.0, 255.0).to(torch.uint8).permute(1, 2, 0).cpu().numpy()


def _scores(out: np.ndarray, ref: np.ndarray) -> tuple[float, float, float]:
    return psnr(out, ref), ssim(out, ref), delta_e(out, ref)


def _nlm(rgb: np.ndarray, h: float) -> np.ndarray:
    """OpenCV's non-local means of a uint8 RGB frame at strength h (colour and luma alike)."""
    return cv2.fastNlMeansDenoisingColored(rgb, None, h, h, 7, 21)


def _ycc_filter(rgb: np.ndarray, chroma_sigma: float = 0.0, sharpen: tuple[float, float] | None = None) -> np.ndarray:
    """A uint8 RGB frame with its chroma blurred (Gaussian, sigma in px) and/or its luma
    sharpened (luma + k (luma - Gaussian_s(luma)), ``sharpen`` = (s, k)), in YCrCb."""
    ycc = cv2.cvtColor(rgb, cv2.COLOR_RGB2YCrCb).astype(np.float32)
    if chroma_sigma > 0:
        for c in (1, 2):
            ycc[..., c] = cv2.GaussianBlur(ycc[..., c], (0, 0), chroma_sigma)
    if sharpen is not None:
        sigma, k = sharpen
        ycc[..., 0] += k * (ycc[..., 0] - cv2.GaussianBlur(ycc[..., 0], (0, 0), sigma))
    return cv2.cvtColor(np.clip(ycc + 0.5, 0, 255).astype(np.uint8), cv2.COLOR_YCrCb2RGB)


def decompose_gated(model, s: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """``model.decompose(s)`` of a ``BLNet`` that also returns the Retinex-skip gate a
    (None without the skip): S -> (R, I, a). The same operations as the model's, so R and
    I are bit-identical to ``decompose``'s (``tests/test_exposure_gap.py`` checks it)."""
    if not model.cfg.retinex_skip:
        r, i = model.decompose(s)
        return r, i, None
    peak, r0 = retinex_prior(s, model.cfg.retinex_eps)
    y = model.decom(torch.cat([s, peak, r0], dim=1))
    r_net, g = torch.sigmoid(y[:, :3]), model.GATE_CHANNEL
    gate = torch.sigmoid(y[:, g : g + 1])
    return r_net + gate * (r0 - r_net), torch.sigmoid(y[:, 3:4]), gate


def detail_guide(model, i_low: torch.Tensor, gamma: float) -> torch.Tensor:
    """A ``BLNet``'s detail-transfer guide G = (I_low + e)^gamma at any gamma, not only its config's."""
    return (i_low + model.DETAIL_EPS).pow(gamma)


def _decompose(model, xp: torch.Tensor, h: int, w: int, relight: bool = False) -> tuple[torch.Tensor, ...]:
    """blnet's (R, I, gate or None[, L_out]) of a padded frame, cropped to h x w: one
    decomposition pass (and, with ``relight``, one enhancement pass)."""
    r, i, gate = decompose_gated(model, xp)
    parts = (r, i, gate) + ((model.relight(r, i),) if relight else ())
    return tuple(None if t is None else crop_to(t, h, w) for t in parts)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", required=True)
    ap.add_argument("--weights", default=None, help="checkpoint (default: the shipped weights)")
    ap.add_argument("--data", default=None, help="folder of low/ and high/ pairs (default: LOL eval15)")
    ap.add_argument(
        "--split", choices=("eval15", "validation", "train"), default="eval15",
        help="without --data: LOL eval15, the training validation split, or every 13th training pair (14 of 180: how well the model fits what it trained on)",
    )
    ap.add_argument("--box-filter", nargs=2, type=float, metavar=("K", "BETA"), default=None, help="also score the output times ((box_K(L)+e)/(L+e))**BETA")
    ap.add_argument("--r0-threshold", type=float, default=None, metavar="T", help="blnet: also score R_low replaced by R0 = S/(max_c S + retinex_eps, 0.01) where max_c S > T (soft step), times I_high")
    ap.add_argument("--fixed-mean", action="store_true", help="also score the output scaled to the training references' mean brightness")
    ap.add_argument("--denoise", type=float, nargs="+", default=[], metavar="H", help="also score the output after OpenCV non-local means of strength H")
    ap.add_argument("--gate-offset", type=float, nargs="+", default=[], metavar="D", help="blnet with retinex_skip: also score the output with the gate logit shifted by D")
    ap.add_argument(
        "--detail", type=float, nargs=2, action="append", default=[], metavar=("G", "W"),
        help="blnet: also score R_low rendered with the detail transfer at gamma G, window W (G = 0: plain R_low * L_out); repeatable",
    )
    ap.add_argument("--curve-gain", type=float, nargs="+", default=[], metavar="G", help="blnet: also score R_low * (I_low + e)^G times its best single gain")
    ap.add_argument(
        "--tone-oracle", type=float, nargs="+", default=[], metavar="W",
        help="blnet: also score R_low x the detail transfer of I_high (the reference's decomposed light) at window W",
    )
    ap.add_argument("--input-denoise", type=float, nargs="+", default=[], metavar="H", help="also score the model run on the input after OpenCV non-local means of strength H")
    ap.add_argument("--chroma-blur", type=float, nargs="+", default=[], metavar="S", help="also score the output with its chroma (Cr, Cb) blurred by a Gaussian of sigma S px")
    ap.add_argument(
        "--sharpen", type=float, nargs=2, action="append", default=[], metavar=("S", "K"),
        help="also score the output with its luma sharpened: Y + K (Y - Gaussian_S(Y)); repeatable",
    )
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--per-image", action="store_true", help="also list mean brightness of input, output, reference and the best gain")
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    model, _ = load_checkpoint(args.weights) if args.weights else load_pretrained(args.model)
    model.eval()
    rows: dict[str, list[tuple[float, float, float]]] = {
        "output": [],
        "output x best global gain": [],
        "output x best gain per colour channel": [],
    }
    box_row = ""
    if args.box_filter:
        k, beta = int(args.box_filter[0]), args.box_filter[1]
        box_row = f"output x (box{k}(L)/L)^{beta:g}"
        rows[box_row] = []
    r0_row = ""
    fixed_row, target_mean = "", 0.0
    if args.fixed_mean:
        train_pairs = split_pairs(list_pairs(default_lol_root() / "our485"))[0]
        target_mean = float(np.mean([load_rgb(h).mean() / 255.0 for _, h in train_pairs]))
        fixed_row = f"output x gain to mean {target_mean:.3f} (training references)"
        rows[fixed_row] = []
    for h in args.denoise:
        rows[f"output, non-local means h={h:g}"] = []
    for h in args.input_denoise:
        rows[f"model on the input after non-local means h={h:g}"] = []
    for sigma in args.chroma_blur:
        rows[f"output, chroma blurred (sigma {sigma:g} px)"] = []
    for sigma, k in args.sharpen:
        rows[f"output, luma sharpened (sigma {sigma:g} px, k {k:g})"] = []
    shifted = {}
    for d in args.gate_offset:
        if args.model != "blnet" or not model.cfg.retinex_skip:
            ap.error("--gate-offset needs blnet with retinex_skip")
        shifted[f"output, gate logit {d:+g}"] = m = copy.deepcopy(model)
        m.decom.head.bias.data[m.GATE_CHANNEL] += d
        rows[f"output, gate logit {d:+g}"] = []
    gates: dict[str, list[float]] = {"dark input": [], "reference": []}
    means: list[tuple[float, float]] = []  # (output, reference) mean brightness per image
    if args.model == "blnet":
        rows["R_low x I_high (decomposed reference)"] = []
        rows["R_high x I_high (the reference, decomposed and recomposed)"] = []
        rows["R_high x L_out (the reference's reflectance in the model's own light)"] = []
        if args.r0_threshold is not None:
            r0_row = f"R_low, R0 where max_c S > {args.r0_threshold:g}, x I_high"
            rows[r0_row] = []
    detail_rows = {
        (g, w): "R_low x L_out" if g == 0 else f"R_low x detail transfer of L_out, gamma {g:g}, window {w:g}"
        for g, w in args.detail
    }
    curve_rows = {g: f"R_low x (I_low + e)^{g:g} x best gain" for g in args.curve_gain}
    tone_rows = {w: f"R_low x detail transfer of I_high, window {w:g} (perfect tone at that scale)" for w in args.tone_oracle}
    if (detail_rows or curve_rows or tone_rows) and args.model != "blnet":
        ap.error("--detail, --curve-gain and --tone-oracle need blnet")
    for key in (*detail_rows.values(), *curve_rows.values(), *tone_rows.values()):
        rows[key] = []
    if args.data:
        pairs = list_pairs(Path(args.data))
    elif args.split == "validation":
        pairs = split_pairs(list_pairs(default_lol_root() / "our485"))[1]
    elif args.split == "train":
        pairs = split_pairs(list_pairs(default_lol_root() / "our485"))[0][::13]
    else:
        pairs = list_pairs(default_lol_root() / "eval15")
    for low_p, high_p in pairs:
        low = load_rgb(low_p)
        x = to_tensor(low)[None]
        y = load_rgb(high_p)
        y_t = to_tensor(y)[None]
        with torch.no_grad():
            out_t = model(x).clamp(0, 1)
            g = float((out_t * y_t).sum() / (out_t * out_t).sum().clamp(min=1e-12))
            means.append((float(out_t.mean()), float(y_t.mean())))
            if args.per_image:
                print(f"{low_p.name}: mean input {x.mean():.3f}, output {out_t.mean():.3f}, reference {y_t.mean():.3f}, best gain {g:.2f}")
            out_u8 = tensor_to_uint8(out_t)
            rows["output"].append(_scores(out_u8, y))
            rows["output x best global gain"].append(_scores(tensor_to_uint8(out_t * g), y))
            gc = (out_t * y_t).sum(dim=(0, 2, 3), keepdim=True) / (out_t * out_t).sum(dim=(0, 2, 3), keepdim=True).clamp(min=1e-12)
            rows["output x best gain per colour channel"].append(_scores(tensor_to_uint8(out_t * gc), y))
            for h in args.denoise:
                rows[f"output, non-local means h={h:g}"].append(_scores(_nlm(out_u8, h), y))
            for h in args.input_denoise:
                clean = to_tensor(_nlm(low, h))[None]
                rows[f"model on the input after non-local means h={h:g}"].append(_scores(tensor_to_uint8(model(clean).clamp(0, 1)), y))
            for sigma in args.chroma_blur:
                rows[f"output, chroma blurred (sigma {sigma:g} px)"].append(_scores(_ycc_filter(out_u8, chroma_sigma=sigma), y))
            for sigma, k in args.sharpen:
                rows[f"output, luma sharpened (sigma {sigma:g} px, k {k:g})"].append(_scores(_ycc_filter(out_u8, sharpen=(sigma, k)), y))
            for key, m in shifted.items():
                rows[key].append(_scores(tensor_to_uint8(m(x).clamp(0, 1)), y))
            if fixed_row:
                fixed = out_t * (target_mean / float(out_t.mean().clamp(min=1e-6)))
                rows[fixed_row].append(_scores(tensor_to_uint8(fixed.clamp(0, 1)), y))
            if box_row:
                e = 2.0 / 255.0
                local = F.avg_pool2d(x, k, stride=1, padding=k // 2, count_include_pad=False)
                rows[box_row].append(_scores(tensor_to_uint8((out_t * ((local + e) / (x + e)) ** beta).clamp(0, 1)), y))
            if args.model == "blnet":
                xp, h, w = pad_to_multiple(x, model.pad_multiple)
                yp, _, _ = pad_to_multiple(y_t, model.pad_multiple)
                r_low, i_low, gate_low, l_out = _decompose(model, xp, h, w, relight=True)
                r_high, i_high, gate_high = _decompose(model, yp, h, w)
                if gate_low is not None:
                    gates["dark input"].append(float(gate_low.mean()))
                    gates["reference"].append(float(gate_high.mean()))
                ideal = tensor_to_uint8((r_low * i_high).clamp(0, 1))
                rows["R_low x I_high (decomposed reference)"].append(_scores(ideal, y))
                rows["R_high x I_high (the reference, decomposed and recomposed)"].append(
                    _scores(tensor_to_uint8((r_high * i_high).clamp(0, 1)), y)
                )
                rows["R_high x L_out (the reference's reflectance in the model's own light)"].append(
                    _scores(tensor_to_uint8((r_high * l_out).clamp(0, 1)), y)
                )
                for (gamma, window), key in detail_rows.items():
                    light = l_out if gamma == 0 else transfer_detail(l_out, detail_guide(model, i_low, gamma), window)
                    rows[key].append(_scores(tensor_to_uint8((r_low * light).clamp(0, 1)), y))
                if tone_rows:
                    guide = detail_guide(model, i_low, model.cfg.detail_gamma or 0.5)
                    for window, key in tone_rows.items():
                        light = transfer_detail(i_high, guide, window)
                        rows[key].append(_scores(tensor_to_uint8((r_low * light).clamp(0, 1)), y))
                for gamma, key in curve_rows.items():
                    c = r_low * detail_guide(model, i_low, gamma)
                    a = float((c * y_t).sum() / (c * c).sum().clamp(min=1e-12))
                    rows[key].append(_scores(tensor_to_uint8((c * a).clamp(0, 1)), y))
                if r0_row:
                    peak, r0 = retinex_prior(x, model.cfg.retinex_eps)
                    a = torch.sigmoid(60.0 * (peak - args.r0_threshold))  # a soft step at T
                    r_mix = a * r0 + (1.0 - a) * r_low
                    rows[r0_row].append(_scores(tensor_to_uint8((r_mix * i_high).clamp(0, 1)), y))
    print(f"| {args.model} ({args.weights or 'shipped'}) | PSNR | SSIM | ΔE |")
    print("|---|---:|---:|---:|")
    for key, v in rows.items():
        p, s, e = np.mean(np.asarray(v), axis=0)
        print(f"| {key} | {p:.2f} | {s:.3f} | {e:.2f} |")
    if len(means) > 2:
        print(f"correlation of output and reference mean brightness over the images: {np.corrcoef(np.asarray(means).T)[0, 1]:.2f}")
    if gates["reference"]:
        print("mean Retinex-skip gate a: " + ", ".join(f"{k} {np.mean(v):.2f}" for k, v in gates.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
