"""Resumable training driven by recipe files (``training/recipes/NAME.json``).

    python -m training.train --recipe lite [--steps-scale 0.1] [--device cuda] [--resume] [--max-minutes M]
    python -m training.train --retrain blnet      # a shipped model from scratch, every recipe of its chain
    python -m training.train --recipe blnet_skip_full --chain     # the same, by the chain's last recipe

A recipe names the model and its config, the data, and a list of stages; each stage
has a kind (which loss, which parameters), a number of steps and a learning rate that
decays with a cosine to ``lr_end``. Losses go to ``RUN/log.csv`` and ``RUN/curve.png``;
``RUN/last.pt`` holds everything needed to resume; ``RUN/best.pt`` (+ ``.json`` manifest)
is the checkpoint with the best PSNR on the held-out validation split of the training pairs.

A fine-tuning recipe starts from another recipe's output, ``"init": {"recipe": "NAME"}``:
the ``best.pt`` of that recipe's run, ``RUNS/NAME/best.pt`` (``--runs``, default ``runs``).
``--chain`` (and ``--retrain MODEL``, the chain of the recipe that MODEL's shipped manifest
names) trains that recipe first, and the one it starts from before it, back to a recipe that
starts from scratch; each run goes to ``RUNS/NAME``. With ``--resume`` a finished run is
skipped and an unfinished one continues, so an interrupted chain picks up where it stopped.
"""
from __future__ import annotations

import argparse
import csv
import json
import logging
import math
import platform
import sys
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, NamedTuple

import numpy as np
import torch
from torch import Tensor, nn

import models
from models import NCBCFeatures, create_model, save_checkpoint
from models.checkpoint import CheckpointError, load_checkpoint
from models.errors import LowlightError
from realtime.convert import to_tensor, to_uint8

from . import losses as L
from .data import DarkVideoConfig, DataError, PairedCrops, SyntheticConfig, default_lol_root, list_pairs, load_rgb, split_pairs, synthesize_dark

logger = logging.getLogger(__name__)

RECIPES_DIR = Path(__file__).resolve().parent / "recipes"
REPO_ROOT = Path(__file__).resolve().parents[1]


class BLNetKind(NamedTuple):
    """What a blnet stage kind trains and which losses it sees."""

    #: the sub-net whose parameters learn (``decom`` or ``enhance``); None: the whole model.
    trains: str | None
    #: L_decom + L_NCBC
    decom_loss: bool
    #: L_eh (through a detached decomposition when only ``enhance`` learns)
    enhance_loss: bool


#: ``blnet_joint_decom``: all losses, but the enhancement net stays as it is and the
#: decomposition learns the R_low its fixed L_out needs.
BLNET_KINDS: dict[str, BLNetKind] = {
    "blnet_decom": BLNetKind("decom", decom_loss=True, enhance_loss=False),
    "blnet_enhance": BLNetKind("enhance", decom_loss=False, enhance_loss=True),
    "blnet_joint": BLNetKind(None, decom_loss=True, enhance_loss=True),
    "blnet_joint_decom": BLNetKind("decom", decom_loss=True, enhance_loss=True),
}
STAGE_KINDS = ("lite", *BLNET_KINDS, "sri_synth", "sri_real")


class RecipeError(LowlightError, ValueError):
    """A recipe file is missing or malformed."""

    exit_code = 2


@dataclass(frozen=True)
class Stage:
    kind: str
    steps: int
    lr: float
    lr_end: float = 1e-5
    batch: int = 8
    patch: int = 96
    name: str = ""
    #: overrides of the recipe's loss_weights for this stage only (same keys).
    loss_weights: dict = field(default_factory=dict)
    #: steps of linear warm-up to ``lr`` before the cosine: Adam starts each stage afresh, and
    #: its first steps move every parameter by about ``lr`` whatever its gradient (a stage that
    #: continues a trained net at full rate first undoes part of it).
    warmup: int = 0


@dataclass(frozen=True)
class Recipe:
    name: str
    model: str
    config: dict = field(default_factory=dict)
    stages: tuple[Stage, ...] = ()
    data_root: str | None = None
    val_every: int = 14
    val_interval: int = 250
    seed: int = 0
    loss_weights: dict = field(default_factory=dict)
    notes: str = ""
    #: weights to start from (fine-tuning): ``{"recipe": NAME}``, the best checkpoint of that
    #: recipe's run (``RUNS/NAME/best.pt``; ``--chain`` trains it first), or a checkpoint
    #: path, absolute or relative to the repo root.
    init: str | dict | None = None
    #: sha256 the init checkpoint must have (a path init only: the file may since have been replaced).
    init_sha256: str | None = None
    #: False: the config may differ; parameters with the same name and shape are copied,
    #: the rest keep their fresh initialisation (listed in the manifest).
    init_strict: bool = True
    #: overrides of ``training.data.SyntheticConfig`` for the sri_synth stages.
    synthetic: dict = field(default_factory=dict)
    #: ``training.data.DarkVideoConfig`` fields: training input made to look like real
    #: dark video (synthesised dark frames, camera pipeline, H.264 4:2:0); empty: LOL as it is.
    dark_video: dict = field(default_factory=dict)
    #: config fields ``python -m training.ship`` changes when it ships this recipe's run:
    #: fields that leave the weights as they are (blnet's ``detail_gamma``), chosen after
    #: training. Recorded in the run's manifest; the shipped manifest says
    #: ``config_changed_at_ship``.
    ship_config: dict = field(default_factory=dict)

    @property
    def total_steps(self) -> int:
        return sum(s.steps for s in self.stages)

    @property
    def init_recipe(self) -> str | None:
        """The recipe whose output this one starts from (``"init": {"recipe": NAME}``), else None."""
        return self.init.get("recipe") if isinstance(self.init, dict) else None


def load_recipe(name_or_path: str, folder: Path | None = None) -> Recipe:
    """Read a recipe by name (from ``folder`` if it has the file, else ``training/recipes``) or path.

    Raises:
        RecipeError: missing file, bad JSON, unknown stage kind or model.
    """
    p = Path(name_or_path)
    if not p.suffix:
        p = RECIPES_DIR / f"{name_or_path}.json"
        if folder is not None and (Path(folder) / p.name).exists():
            p = Path(folder) / p.name
    try:
        doc = json.loads(p.read_text())
    except FileNotFoundError as err:
        known = ", ".join(sorted(q.stem for q in RECIPES_DIR.glob("*.json")))
        raise RecipeError(f"no recipe {name_or_path!r} (known: {known})") from err
    except json.JSONDecodeError as err:
        raise RecipeError(f"recipe {p} is not valid JSON: {err}") from err
    try:
        stages = tuple(Stage(**s) for s in doc.pop("stages"))
        recipe = Recipe(stages=stages, **doc)
    except (TypeError, KeyError) as err:
        raise RecipeError(f"recipe {p}: {err}") from err
    models.get_entry(recipe.model)
    if isinstance(recipe.init, dict):
        if set(recipe.init) != {"recipe"} or not isinstance(recipe.init["recipe"], str):
            raise RecipeError(f'recipe {p}: "init" is a checkpoint path or {{"recipe": NAME}}, not {recipe.init!r}')
        if recipe.init_sha256:
            raise RecipeError(f"recipe {p}: init_sha256 pins a checkpoint file; an init recipe's output has none to pin")
    elif recipe.init is not None and not isinstance(recipe.init, str):
        raise RecipeError(f'recipe {p}: "init" is a checkpoint path or {{"recipe": NAME}}, not {recipe.init!r}')
    try:
        models.config_from_dict(recipe.model, {**recipe.config, **recipe.ship_config})
    except ValueError as err:
        raise RecipeError(f"recipe {p}: {err}") from err
    for s in stages:
        if not 0 <= s.warmup < s.steps:
            raise RecipeError(f"recipe {p}: stage {s.name or s.kind!r} needs 0 <= warmup < steps (has {s.warmup} of {s.steps})")
        if s.kind not in STAGE_KINDS:
            raise RecipeError(f"recipe {p}: unknown stage kind {s.kind!r}; valid: {', '.join(STAGE_KINDS)}")
    return recipe


def recipe_chain(name_or_path: str) -> list[Recipe]:
    """The recipes to train, in order, for ``name_or_path``: the recipe its init names
    (``{"recipe": NAME}``), the one that recipe's init names, ... back to one that starts
    from scratch (or from a checkpoint file), then the recipe itself. Init names are looked
    up beside a recipe given by path first, then in ``training/recipes``.

    Raises:
        RecipeError: a recipe is missing or malformed, or the chain loops.
    """
    folder = Path(name_or_path).parent if Path(name_or_path).suffix else None
    chain = [load_recipe(name_or_path)]
    while (parent := chain[0].init_recipe) is not None:
        if parent in {r.name for r in chain}:
            raise RecipeError(f"recipe {chain[-1].name!r}: its chain of inits loops back to {parent!r}")
        recipe = load_recipe(parent, folder)
        if recipe.name != parent:
            raise RecipeError(f"recipe file {parent!r} is named {recipe.name!r} inside: the init of {chain[0].name!r} cannot be resolved")
        chain.insert(0, recipe)
    return chain


def shipped_recipe(model: str) -> str:
    """The recipe that produced the shipped weights of ``model`` (its manifest's ``recipe.name``).

    Raises:
        RecipeError: the model ships no weights, or its manifest names no recipe.
    """
    path = models.WEIGHTS_DIR / f"{model}.json"
    try:
        name = json.loads(path.read_text())["recipe"]["name"]
    except FileNotFoundError as err:
        raise RecipeError(f"model {model!r} ships no weights ({path}); shipped: {', '.join(models.available_pretrained())}") from err
    except (KeyError, TypeError, json.JSONDecodeError) as err:
        raise RecipeError(f"{path} names no recipe (recipe.name)") from err
    return name


def _cosine_lr(stage: Stage, step: int) -> float:
    """The stage's rate at ``step``: a linear ramp over ``warmup`` steps to ``lr``, then a cosine to ``lr_end``."""
    if step < stage.warmup:
        return stage.lr * (step + 1) / (stage.warmup + 1)
    t = (step - stage.warmup) / max(1, stage.steps - stage.warmup - 1)
    return stage.lr_end + 0.5 * (stage.lr - stage.lr_end) * (1 + math.cos(math.pi * min(1.0, t)))


def _same_weights_config(a: Any, b: Any) -> bool:
    """Configs equal but for the fields the config declares render-only (``RENDER_FIELDS``)."""
    if type(a) is not type(b):
        return False
    return replace(a, **{f: getattr(b, f) for f in getattr(type(b), "RENDER_FIELDS", ())}) == b


class Trainer:
    """Runs a recipe's stages; everything a stage step needs is built once here."""

    def __init__(
        self, recipe: Recipe, run_dir: Path, device: torch.device, vgg16: str | None = None, data_root: str | None = None,
        runs_root: str | Path = "runs",
    ):
        self.recipe = recipe
        self.run_dir = run_dir
        self.device = device
        #: where ``{"recipe": NAME}`` inits are found: ``runs_root/NAME/best.pt``.
        self.runs_root = Path(runs_root)
        torch.manual_seed(recipe.seed)
        self.model = create_model(recipe.model, recipe.config or None).to(device)
        self.init_source: dict[str, Any] | None = None
        if recipe.init:
            self.init_source = self._load_init(recipe)
        root = Path(data_root or recipe.data_root or default_lol_root() / "our485")
        pairs = list_pairs(root)
        self.train_pairs, self.val_pairs = split_pairs(pairs, recipe.val_every)
        self.data_root = root
        try:
            dark_video = DarkVideoConfig(**recipe.dark_video) if recipe.dark_video else None
        except TypeError as err:
            raise RecipeError(f"recipe {recipe.name!r}: bad 'dark_video' settings: {err}") from err
        self.data = PairedCrops(self.train_pairs, seed=recipe.seed, dark_video=dark_video)
        self.val_images = [(load_rgb(a), load_rgb(b)) for a, b in self.val_pairs]
        self.gen = torch.Generator().manual_seed(recipe.seed)
        try:
            self.synthetic = SyntheticConfig(**recipe.synthetic)
        except TypeError as err:
            raise RecipeError(f"recipe {recipe.name!r}: bad 'synthetic' settings: {err}") from err
        self.phi = NCBCFeatures().to(device)
        self.perceptual: nn.Module | None = None
        self.perceptual_source = "not used (weight 0)"
        if any(s.kind in BLNET_KINDS and BLNET_KINDS[s.kind].enhance_loss and self._weights(s.loss_weights)[2].per for s in recipe.stages):
            if not vgg16:
                raise L.PerceptualWeightsMissing(
                    f"recipe {recipe.name!r} uses L_per and needs ImageNet VGG16 weights: "
                    "pass --vgg16 PATH (torchvision format) or set loss_weights.enhance.per to 0"
                )
            self.perceptual = L.PerceptualLoss(L.VGG16Features.from_file(vgg16)).to(device)
            self.perceptual_source = f"VGG16 relu3_3 from {vgg16}"
        self.stage_idx = 0
        self.stage_step = 0
        self.global_step = 0
        self.best: dict[str, Any] = {"psnr": -1.0}
        self.elapsed = 0.0
        self.opt: torch.optim.Optimizer | None = None

    def _load_init(self, recipe: Recipe) -> dict[str, Any]:
        """Copy the weights of ``recipe.init`` into the model; it must hold the same model and config."""
        parent = recipe.init_recipe
        if parent is not None:
            path = self.runs_root / parent / "best.pt"
            if not path.exists():
                raise RecipeError(
                    f"recipe {recipe.name!r} starts from the output of recipe {parent!r}, {path}, which does not exist: "
                    f"train {parent!r} first (python -m training.train --recipe {parent}), or both with --chain"
                )
        else:
            path = Path(recipe.init)
            if not path.is_absolute():
                path = REPO_ROOT / path
        try:
            source, manifest = load_checkpoint(path)
        except (OSError, CheckpointError) as err:
            raise RecipeError(f"recipe {recipe.name!r}: cannot use init checkpoint {path}: {err}") from err
        made_by = (manifest.get("recipe") or {}).get("name")
        if parent is not None and made_by != parent:
            raise RecipeError(f"recipe {recipe.name!r}: {path} was trained by recipe {made_by!r}, not by its init recipe {parent!r}")
        if recipe.init_sha256 and manifest.get("sha256") != recipe.init_sha256:
            raise RecipeError(
                f"recipe {recipe.name!r}: init checkpoint {path} has sha256 {str(manifest.get('sha256'))[:12]}, "
                f"not the {recipe.init_sha256[:12]} the recipe was written for (restore that file from git history)"
            )
        if manifest.get("model") != recipe.model or (recipe.init_strict and not _same_weights_config(source.cfg, self.model.cfg)):
            raise RecipeError(
                f"recipe {recipe.name!r}: init checkpoint {path} holds {manifest.get('model')!r} {source.cfg}, "
                f"not {recipe.model!r} {self.model.cfg}"
            )
        own = self.model.state_dict()
        theirs = source.state_dict()
        adapt = getattr(self.model, "adapt_state_dict", None)
        if adapt is not None and source.cfg != self.model.cfg:
            theirs = adapt(theirs, source.cfg)
        copied = {k: v for k, v in theirs.items() if k in own and own[k].shape == v.shape}
        fresh = sorted(set(own) - set(copied))
        if recipe.init_strict:
            self.model.load_state_dict(copied)
        else:
            self.model.load_state_dict(copied, strict=False)
            logger.info("init from %s: %d tensors copied, %d fresh: %s", path, len(copied), len(fresh), ", ".join(fresh))
        return {
            "path": str(path) if parent is not None else str(recipe.init),
            "sha256": manifest.get("sha256"),
            "recipe": made_by,
            "fresh": fresh,
        }

    # ---------------------------------------------------------------- stages

    def _weights(self, override: dict) -> tuple[L.DecomWeights, L.NCBCWeights, L.EnhanceWeights]:
        """Loss weights: the losses' paper defaults, then the recipe's, then the stage's."""
        lw = self.recipe.loss_weights
        merged = {k: {**lw.get(k, {}), **override.get(k, {})} for k in ("decom", "ncbc", "enhance")}
        return L.DecomWeights(**merged["decom"]), L.NCBCWeights(**merged["ncbc"]), L.EnhanceWeights(**merged["enhance"])

    def _params(self, kind: str) -> list[nn.Parameter]:
        m = self.model
        if kind in BLNET_KINDS and BLNET_KINDS[kind].trains is not None:
            return list(getattr(m, BLNET_KINDS[kind].trains).parameters())
        return list(m.parameters())

    def _make_opt(self, stage: Stage) -> torch.optim.Optimizer:
        for p in self.model.parameters():
            p.requires_grad_(False)
        params = self._params(stage.kind)
        for p in params:
            p.requires_grad_(True)
        return torch.optim.Adam(params, lr=stage.lr)

    def stage_loss(self, kind: str, lo: Tensor, hi: Tensor, loss_weights: dict | None = None) -> dict[str, Tensor]:
        m = self.model
        decom_w, ncbc_w, enh_w = self._weights(loss_weights or {})
        if kind == "lite":
            return L.lite_loss(m(lo), hi)
        if kind in BLNET_KINDS:
            spec = BLNET_KINDS[kind]
            x = torch.cat([lo, hi])
            r, i = m.decompose(x)
            n = lo.shape[0]
            r_low, r_high, i_low, i_high = r[:n], r[n:], i[:n], i[n:]
            terms: dict[str, Tensor] = {}
            total = lo.new_zeros(())
            if spec.decom_loss:
                d = L.decom_loss(r_low, i_low, r_high, i_high, lo, hi, decom_w)
                c = L.ncbc_loss(self.phi, r_low, r_high, ncbc_w)
                terms.update({f"decom_{k}": v for k, v in d.items()})
                terms.update({f"ncbc_{k}": v for k, v in c.items()})
                total = total + d["total"] + c["total"]
            if spec.enhance_loss:
                if spec.trains == "enhance":
                    r_low, i_low, i_high = r_low.detach(), i_low.detach(), i_high.detach()
                l_out = m.relight(r_low, i_low)
                light = m.output_light(l_out, i_low)
                e = L.enhance_loss(r_low, l_out, hi, i_high.detach(), self.perceptual, enh_w, light=light)
                terms.update({f"eh_{k}": v for k, v in e.items()})
                total = total + e["total"]
            terms["total"] = total
            return terms
        if kind == "sri_synth":
            dark, illum = synthesize_dark(hi.cpu(), self.synthetic, self.gen)
            _, pred = m.estimate(dark.to(self.device))
            if pred.shape[1] < illum.shape[1]:
                raise RecipeError(
                    f"recipe {self.recipe.name!r}: the synthetic light has {illum.shape[1]} channels "
                    f"(synthetic.cast_spread > 0) but the model's light has {pred.shape[1]}"
                )
            loss = L.mse(pred, illum.to(self.device))
            return {"synth_mse": loss, "total": loss}
        if kind == "sri_real":
            aux, pred = m.estimate(lo)
            loss = L.mse(lo / m.illumination(aux, pred).clamp(min=m.cfg.eps), hi)
            return {"real_mse": loss, "total": loss}
        raise ValueError(f"unknown stage kind {kind!r}")

    # ---------------------------------------------------------------- validation

    @torch.inference_mode()
    def validate(self) -> dict[str, float]:
        """PSNR / SSIM on the held-out validation pairs (uint8 outputs, full resolution)."""
        from skimage.metrics import peak_signal_noise_ratio, structural_similarity

        self.model.eval()
        psnrs, ssims = [], []
        for lo, hi in self.val_images:
            y = to_uint8(self.model(to_tensor(lo, self.device)))[0]
            psnrs.append(peak_signal_noise_ratio(hi, y, data_range=255))
            ssims.append(
                structural_similarity(hi, y, channel_axis=2, data_range=255, gaussian_weights=True, sigma=1.5, use_sample_covariance=False)
            )
        self.model.train()
        return {"psnr": float(np.mean(psnrs)), "ssim": float(np.mean(ssims))}

    # ---------------------------------------------------------------- persistence

    def state(self) -> dict[str, Any]:
        return {
            "model": self.model.state_dict(),
            "opt": self.opt.state_dict() if self.opt is not None else {},
            "stage_idx": self.stage_idx,
            "stage_step": self.stage_step,
            "global_step": self.global_step,
            "best": self.best,
            "elapsed": self.elapsed,
            "torch_rng": torch.get_rng_state(),
            "gen_rng": self.gen.get_state(),
            "np_rng": json.dumps(self.data.rng.bit_generator.state),
        }

    def save_last(self) -> None:
        tmp = self.run_dir / "last.pt.tmp"
        torch.save(self.state(), tmp)
        tmp.replace(self.run_dir / "last.pt")

    def resume(self) -> bool:
        path = self.run_dir / "last.pt"
        if not path.exists():
            return False
        st = torch.load(path, map_location="cpu", weights_only=True)
        self.model.load_state_dict(st["model"])
        self.stage_idx, self.stage_step, self.global_step = st["stage_idx"], st["stage_step"], st["global_step"]
        self.best, self.elapsed = st["best"], st["elapsed"]
        torch.set_rng_state(st["torch_rng"])
        self.gen.set_state(st["gen_rng"])
        self.data.rng.bit_generator.state = json.loads(st["np_rng"])
        if self.stage_idx < len(self.recipe.stages):
            self.opt = self._make_opt(self.recipe.stages[self.stage_idx])
            if st["opt"]:
                self.opt.load_state_dict(st["opt"])
        logger.info("resumed %s at step %d", self.run_dir, self.global_step)
        return True

    @property
    def finished(self) -> bool:
        """Every stage has run (a resumed run that has nothing left to do)."""
        return self.stage_idx >= len(self.recipe.stages)

    def save_best(self, metrics: dict[str, float]) -> None:
        r = self.recipe
        save_checkpoint(
            self.model,
            r.model,
            self.run_dir / "best.pt",
            data={
                "train": f"{self.data_root} ({len(self.train_pairs)} pairs)",
                "validation": [a.name for a, _ in self.val_pairs],
                "validation_rule": f"every {r.val_every}th pair by sorted name, held out",
            },
            recipe={
                "name": r.name,
                "stages": [s.__dict__ for s in r.stages],
                "loss_weights": r.loss_weights,
                "synthetic": asdict(self.synthetic),
                "dark_video": asdict(self.data.dark_video) if self.data.dark_video else None,
                "notes": r.notes,
                "init": self.init_source,
                "ship_config": r.ship_config,
            },
            perceptual=self.perceptual_source,
            trained_on=_device_name(self.device),
            training={"step": self.global_step, "seconds": round(self.elapsed, 1)},
            metrics={"validation": metrics},
        )

    # ---------------------------------------------------------------- loop

    def run(self, log_every: int = 25, max_seconds: float | None = None) -> dict[str, Any]:
        """Train to the recipe's end, or until ``max_seconds`` of wall time have passed in this
        call: then the step in progress ends with a validation and ``last.pt``, so ``--resume``
        continues exactly there (``stopped_early`` in the result says which)."""
        from tqdm import tqdm

        start = time.perf_counter()
        stopped_early = False
        r = self.recipe
        log_path = self.run_dir / "log.csv"
        new_log = not log_path.exists() or self.global_step == 0
        logf = open(log_path, "w" if new_log else "a", newline="")
        writer = csv.writer(logf)
        if new_log:
            writer.writerow(["step", "stage", "kind", "lr", "loss", "terms", "val_psnr", "val_ssim", "seconds"])
        bar = tqdm(total=r.total_steps, initial=self.global_step, desc=f"train {r.name}", unit="step", dynamic_ncols=True)
        self.model.train()
        try:
            while self.stage_idx < len(r.stages):
                stage = r.stages[self.stage_idx]
                if self.opt is None:
                    self.opt = self._make_opt(stage)
                while self.stage_step < stage.steps:
                    t0 = time.perf_counter()
                    lr = _cosine_lr(stage, self.stage_step)
                    for g in self.opt.param_groups:
                        g["lr"] = lr
                    lo, hi = self.data.batch(stage.batch, stage.patch)
                    terms = self.stage_loss(stage.kind, lo.to(self.device), hi.to(self.device), stage.loss_weights)
                    self.opt.zero_grad(set_to_none=True)
                    terms["total"].backward()
                    torch.nn.utils.clip_grad_norm_(self._params(stage.kind), 1.0)
                    self.opt.step()
                    self.stage_step += 1
                    self.global_step += 1
                    self.elapsed += time.perf_counter() - t0
                    bar.update(1)
                    val = None
                    last = self.stage_idx == len(r.stages) - 1 and self.stage_step == stage.steps
                    out_of_time = max_seconds is not None and time.perf_counter() - start >= max_seconds
                    if self.global_step % r.val_interval == 0 or last or out_of_time:
                        tv = time.perf_counter()
                        val = self.validate()
                        self.elapsed += time.perf_counter() - tv
                        if val["psnr"] > self.best["psnr"]:
                            self.best = {**val, "step": self.global_step}
                            self.save_best(val)
                        self.save_last()
                        bar.set_postfix(val_psnr=f"{val['psnr']:.2f}", best=f"{self.best['psnr']:.2f}")
                    if val is not None or self.global_step % log_every == 0:
                        writer.writerow(
                            [
                                self.global_step,
                                stage.name or stage.kind,
                                stage.kind,
                                f"{lr:.3g}",
                                f"{terms['total'].item():.5f}",
                                json.dumps({k: round(v.item(), 5) for k, v in terms.items() if k != "total"}),
                                f"{val['psnr']:.3f}" if val else "",
                                f"{val['ssim']:.4f}" if val else "",
                                round(self.elapsed, 1),
                            ]
                        )
                        logf.flush()
                    if out_of_time and not last:
                        stopped_early = True
                        break
                if stopped_early:
                    break
                self.stage_idx += 1
                self.stage_step = 0
                self.opt = None
            if not stopped_early:
                self.save_last()
        finally:
            bar.close()
            logf.close()
        plot_curve(log_path, self.run_dir / "curve.png")
        return {"best": self.best, "steps": self.global_step, "seconds": self.elapsed, "stopped_early": stopped_early}


def _device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return f"cuda: {torch.cuda.get_device_name(device)}"
    return f"cpu: {platform.processor() or platform.machine()}, {torch.get_num_threads()} threads"


def plot_curve(log_csv: Path, png: Path) -> None:
    """Loss (log scale) and validation PSNR against step."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    steps, loss, vs, vp = [], [], [], []
    with open(log_csv) as f:
        for row in csv.DictReader(f):
            steps.append(int(row["step"]))
            loss.append(float(row["loss"]))
            if row["val_psnr"]:
                vs.append(int(row["step"]))
                vp.append(float(row["val_psnr"]))
    fig, ax = plt.subplots(figsize=(7, 3.5))
    ax.plot(steps, loss, lw=1, label="training loss")
    ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    if vp:
        ax2 = ax.twinx()
        ax2.plot(vs, vp, "o-", color="tab:orange", ms=3, label="val PSNR")
        ax2.set_ylabel("validation PSNR (dB)")
    ax.set_title(log_csv.parent.name)
    fig.tight_layout()
    fig.savefig(png, dpi=110)
    plt.close(fig)


def scaled(recipe: Recipe, factor: float) -> Recipe:
    """The recipe with every stage's steps multiplied by ``factor`` (for smoke runs)."""
    stages: list[Stage] = []
    for s in recipe.stages:
        steps = max(1, int(round(s.steps * factor)))
        stages.append(replace(s, steps=steps, warmup=min(steps - 1, int(round(s.warmup * factor)))))
    return replace(recipe, stages=tuple(stages), val_interval=max(1, int(round(recipe.val_interval * factor))))


def run_recipes(
    chain: list[Recipe], *, device: torch.device, runs_root: Path = Path("runs"), run_dir: Path | None = None,
    data_root: str | None = None, vgg16: str | None = None, resume: bool = False, max_seconds: float | None = None,
) -> dict[str, dict[str, Any]]:
    """Train ``chain``'s recipes in order, each in ``runs_root/NAME`` (``run_dir`` for a
    single recipe), each fine-tune starting from the ``best.pt`` of the run before it.

    ``resume``: a run that has finished is skipped, an unfinished one continues; without it
    a run folder that already holds a run is an error (nothing is trained). ``max_seconds``
    is the wall time of the whole chain: when it runs out the recipe in progress stops as
    ``Trainer.run`` does and the chain stops after it. Returns each trained or skipped
    recipe's result (``Trainer.run``'s, plus ``skipped`` for a finished run).

    Raises:
        RecipeError: a run folder already holds a run (without ``resume``), or a recipe's
            init cannot be used.
    """
    dirs = [run_dir if run_dir is not None and len(chain) == 1 else runs_root / r.name for r in chain]
    if not resume:
        held = [str(d) for d in dirs if (d / "last.pt").exists()]
        if held:
            raise RecipeError(f"{', '.join(held)} already hold{'s' if len(held) == 1 else ''} a run: pass --resume to continue, or choose another --runs / --run-dir")
    start = time.perf_counter()
    results: dict[str, dict[str, Any]] = {}
    for recipe, d in zip(chain, dirs):
        d.mkdir(parents=True, exist_ok=True)
        trainer = Trainer(recipe, d, device, vgg16=vgg16, data_root=data_root, runs_root=runs_root)
        if resume and trainer.resume() and trainer.finished:
            results[recipe.name] = {"best": trainer.best, "steps": trainer.global_step, "seconds": trainer.elapsed,
                                    "stopped_early": False, "skipped": "already finished"}
            continue
        left = None if max_seconds is None else max(0.0, max_seconds - (time.perf_counter() - start))
        results[recipe.name] = trainer.run(max_seconds=left)
        if results[recipe.name]["stopped_early"]:
            break
    return results


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m training.train", description=__doc__.splitlines()[0],
        epilog="Retrain a shipped model from scratch: python -m training.train --retrain lite|sri|blnet, "
               "then python -m training.ship --run runs/RECIPE (the chain's last recipe, printed at the end).",
    )
    which = ap.add_mutually_exclusive_group(required=True)
    which.add_argument("--recipe", help="recipe name in training/recipes or a path to a JSON recipe")
    which.add_argument(
        "--retrain", metavar="MODEL",
        help="retrain a shipped model from scratch: the recipe its manifest (models/weights/MODEL.json) names, with --chain",
    )
    ap.add_argument(
        "--chain", action="store_true",
        help='first train the recipes the recipe starts from ("init": {"recipe": NAME}), back to one from scratch, each in RUNS/NAME',
    )
    ap.add_argument("--runs", default="runs", help="folder of run folders: recipe NAME runs in RUNS/NAME, and an init {\"recipe\": NAME} is RUNS/NAME/best.pt (default runs)")
    ap.add_argument("--run-dir", default=None, help="output folder of a single recipe (default RUNS/RECIPE)")
    ap.add_argument("--data", default=None, help="folder with low/ and high/ training pairs (default ../shared/data/lol/our485)")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--threads", type=int, default=None, help="CPU threads for torch")
    ap.add_argument("--steps-scale", type=float, default=1.0, help="multiply every stage's steps (smoke runs)")
    ap.add_argument("--vgg16", default=None, help="torchvision-format ImageNet VGG16 weights for L_per")
    ap.add_argument("--resume", action="store_true", help="continue from RUN/last.pt (a chain: skip finished runs, continue the unfinished one)")
    ap.add_argument(
        "--max-minutes", type=float, default=None,
        help="stop after this much wall time (validating and saving RUN/last.pt first); --resume continues",
    )
    args = ap.parse_args(argv)
    if args.max_minutes is not None and args.max_minutes < 0:
        ap.error("--max-minutes must be >= 0")
    chained = args.chain or args.retrain is not None
    if chained and args.run_dir:
        ap.error("--run-dir names one run; a chain puts each recipe's run in RUNS/NAME (set --runs)")
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        name = args.recipe if args.retrain is None else shipped_recipe(args.retrain)
        chain = recipe_chain(name) if chained else [load_recipe(name)]
        if args.steps_scale != 1.0:
            chain = [scaled(r, args.steps_scale) for r in chain]
        if chained:
            logger.info("chain: %s", " -> ".join(r.name for r in chain))
        results = run_recipes(
            chain, device=torch.device(args.device), runs_root=Path(args.runs), run_dir=Path(args.run_dir) if args.run_dir else None,
            data_root=args.data, vgg16=args.vgg16, resume=args.resume,
            max_seconds=None if args.max_minutes is None else 60.0 * args.max_minutes,
        )
    except (RecipeError, DataError, L.PerceptualWeightsMissing, FileNotFoundError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted: resume with --resume", file=sys.stderr)
        return 130
    if not chained:
        print(json.dumps(results[chain[0].name], indent=2))
        return 0
    print(json.dumps(results, indent=2))
    last = chain[-1]
    if last.name in results and not results[last.name]["stopped_early"]:
        ship = f"python -m training.ship --run {Path(args.runs) / last.name}"
        print(f"chain finished; ship with: {ship}" + (f" (applies its ship_config {json.dumps(last.ship_config)})" if last.ship_config else ""), file=sys.stderr)
    else:
        print("chain stopped before its end: continue with the same command and --resume", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
