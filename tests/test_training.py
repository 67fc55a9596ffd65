"""Recipes load, and a short overfit on two LOL crops lowers every recipe's loss."""
from __future__ import annotations

from pathlib import Path

import cv2
import pytest
import torch

from training.train import RECIPES_DIR, RecipeError, Trainer, load_recipe, scaled

RECIPES = sorted(p.stem for p in RECIPES_DIR.glob("*.json"))


def test_every_recipe_loads():
    assert {"lite", "blnet", "blnet_skip_full", "sri_global", "sri_detail", "sri_detail_interaction"} <= set(RECIPES)
    for name in RECIPES:
        r = load_recipe(name)
        assert r.total_steps > 0


def test_bad_recipe_is_a_clear_error(tmp_path):
    with pytest.raises(RecipeError, match="known"):
        load_recipe("no_such_recipe")
    bad = tmp_path / "bad.json"
    bad.write_text('{"name": "x", "model": "lite", "stages": [{"kind": "nope", "steps": 1, "lr": 1e-3}]}')
    with pytest.raises(RecipeError, match="unknown stage kind"):
        load_recipe(str(bad))


@pytest.fixture
def two_crops(lol_root, tmp_path) -> Path:
    """Two 256x256 LOL crops written as a tiny paired dataset."""
    for sub in ("low", "high"):
        (tmp_path / sub).mkdir()
    # The two best-lit crops among the first ten pairs by name: adding pairs to the shared
    # folder must not hand the test a near-black crop (a 64 px patch of mean ~3/255 lets
    # the short decomposition stage collapse to zero output, and the joint stage then has
    # no gradient).
    names = sorted(p.name for p in (lol_root / "our485" / "low").glob("*.png"))[:10]
    crops = {n: {sub: cv2.imread(str(lol_root / "our485" / sub / n))[72:328, 172:428] for sub in ("low", "high")} for n in names}
    for name in sorted(names, key=lambda n: -float(crops[n]["low"].mean()))[:2]:
        for sub in ("low", "high"):
            cv2.imwrite(str(tmp_path / sub / name), crops[name][sub])
    return tmp_path


@pytest.mark.parametrize("recipe", RECIPES)
def test_short_overfit_lowers_each_stage_loss(recipe, two_crops, tmp_path):
    import dataclasses

    torch.set_num_threads(1)
    # A fine-tuning recipe's init checkpoint is tested on its own below; here every recipe
    # starts from scratch so that it does not depend on which weights are shipped now.
    r = dataclasses.replace(scaled(load_recipe(recipe), 1e-6), init=None)
    trainer = Trainer(r, tmp_path / "run", torch.device("cpu"), data_root=str(two_crops))
    lo, hi = trainer.data.batch(2, 64)
    for stage in r.stages:
        opt = trainer._make_opt(stage)
        trainer.gen.manual_seed(0)
        first = trainer.stage_loss(stage.kind, lo, hi, stage.loss_weights)["total"].item()
        seen = []
        for _ in range(25):
            trainer.gen.manual_seed(0)  # the synthetic stage draws the same pairs each step
            loss = trainer.stage_loss(stage.kind, lo, hi, stage.loss_weights)["total"]
            opt.zero_grad()
            loss.backward()
            opt.step()
            seen.append(loss.item())
        trainer.gen.manual_seed(0)
        seen.append(trainer.stage_loss(stage.kind, lo, hi, stage.loss_weights)["total"].item())
        # the best loss reached, not the last: Adam at a stage's full learning rate on one
        # repeated batch may overshoot on the last step, but a stage whose nets do not learn
        # (no gradient, wrong parameters stepped) never gets below its first loss
        assert min(seen[1:]) < first, f"{recipe}/{stage.name}: {first:.4f} -> {seen}"


def test_training_run_writes_log_curve_checkpoint_and_resumes(two_crops, tmp_path):
    from models import load_checkpoint

    torch.set_num_threads(1)
    r = scaled(load_recipe("lite"), 1e-6)  # one step per stage
    run = tmp_path / "run"
    run.mkdir()
    t = Trainer(r, run, torch.device("cpu"), data_root=str(two_crops))
    t.val_images = t.val_images or [(t.data.low[0], t.data.high[0])]
    t.run()
    for f in ("log.csv", "curve.png", "last.pt", "best.pt", "best.json"):
        assert (run / f).exists(), f
    model, manifest = load_checkpoint(run / "best.pt")
    assert manifest["model"] == "lite" and "validation" in manifest["metrics"]
    t2 = Trainer(r, run, torch.device("cpu"), data_root=str(two_crops))
    assert t2.resume() and t2.global_step == t.global_step
    for k, v in t.model.state_dict().items():
        assert torch.equal(v, t2.model.state_dict()[k])


def test_recipe_init_starts_from_a_checkpoint_of_the_same_model(two_crops, tmp_path):
    import dataclasses

    from models import create_model, save_checkpoint
    from training.train import Recipe, Stage

    torch.manual_seed(3)
    source = create_model("lite")
    ckpt = save_checkpoint(source, "lite", tmp_path / "src.pt")
    stage = Stage(kind="lite", steps=1, lr=1e-3)
    r = Recipe(name="ft", model="lite", stages=(stage,), init=str(ckpt))
    t = Trainer(r, tmp_path / "run", torch.device("cpu"), data_root=str(two_crops))
    for k, v in source.state_dict().items():
        assert torch.equal(v, t.model.state_dict()[k]), k
    assert t.init_source["sha256"] and t.init_source["path"] == str(ckpt)

    other = dataclasses.replace(r, config={"scale": 8})
    with pytest.raises(RecipeError, match="init checkpoint"):
        Trainer(other, tmp_path / "run2", torch.device("cpu"), data_root=str(two_crops))
    loose = dataclasses.replace(r, config={"widths": [8, 16, 32, 64]}, init_strict=False)
    t3 = Trainer(loose, tmp_path / "run5", torch.device("cpu"), data_root=str(two_crops))
    fresh = set(t3.init_source["fresh"])
    assert fresh and all(t3.model.state_dict()[k].shape != source.state_dict()[k].shape for k in fresh if k in source.state_dict())
    for k, v in t3.model.state_dict().items():
        if k not in fresh:
            assert torch.equal(v, source.state_dict()[k]), k
    pinned = dataclasses.replace(r, init_sha256="0" * 64)
    with pytest.raises(RecipeError, match="sha256"):
        Trainer(pinned, tmp_path / "run4", torch.device("cpu"), data_root=str(two_crops))
    missing = dataclasses.replace(r, init=str(tmp_path / "nope.pt"))
    with pytest.raises(RecipeError, match="cannot use init checkpoint"):
        Trainer(missing, tmp_path / "run3", torch.device("cpu"), data_root=str(two_crops))


def test_strict_init_accepts_a_change_of_render_only_fields(two_crops, tmp_path):
    """blnet's detail transfer leaves the weights as they are: a checkpoint rendered
    without it is a strict start for a recipe with it; a different width is not."""
    from models import create_model, save_checkpoint
    from training.train import Recipe, Stage

    small = {"decom_widths": [8, 16], "enhance_widths": [8, 16], "detail_gamma": 0.0}
    ckpt = save_checkpoint(create_model("blnet", small), "blnet", tmp_path / "src.pt")
    stage = Stage(kind="blnet_enhance", steps=1, lr=1e-3, batch=1, patch=32)
    weights = {"enhance": {"per": 0.0}}
    r = Recipe(name="ft", model="blnet", config={**small, "detail_gamma": 0.5, "detail_window": 0.25},
               stages=(stage,), init=str(ckpt), init_strict=True, loss_weights=weights)
    t = Trainer(r, tmp_path / "run", torch.device("cpu"), data_root=str(two_crops))
    assert t.model.cfg.detail_gamma == 0.5 and t.model.cfg.detail_window == 0.25
    wider = Recipe(name="ft2", model="blnet", config={**small, "enhance_widths": [8, 24]},
                   stages=(stage,), init=str(ckpt), init_strict=True, loss_weights=weights)
    with pytest.raises(RecipeError, match="init checkpoint"):
        Trainer(wider, tmp_path / "run2", torch.device("cpu"), data_root=str(two_crops))


def test_recipe_init_widens_a_grey_sri_to_a_colour_one(two_crops, tmp_path):
    import dataclasses

    from models import create_model, save_checkpoint
    from training.train import Recipe, Stage

    torch.manual_seed(4)
    grey = create_model("sri", {"illum_channels": 1, "detail_box": 0}).eval()
    ckpt = save_checkpoint(grey, "sri", tmp_path / "grey.pt")
    stage = Stage(kind="sri_synth", steps=1, lr=1e-3)
    r = Recipe(name="c", model="sri", config={"illum_channels": 3, "detail_box": 0}, stages=(stage,), init=str(ckpt), init_strict=False)
    t = Trainer(r, tmp_path / "run", torch.device("cpu"), data_root=str(two_crops))
    assert t.init_source["fresh"] == []  # the tail was widened, not re-initialised
    x = torch.rand(1, 3, 40, 48) * 0.3
    with torch.no_grad():
        torch.testing.assert_close(t.model.eval()(x), grey(x))
    bad = dataclasses.replace(r, synthetic={"no_such_setting": 1})
    with pytest.raises(RecipeError, match="synthetic"):
        Trainer(bad, tmp_path / "run2", torch.device("cpu"), data_root=str(two_crops))
    grey_light = Recipe(name="g", model="sri", config={"illum_channels": 1, "detail_box": 0}, stages=(stage,), synthetic={"cast_spread": 0.1})
    t_grey = Trainer(grey_light, tmp_path / "run3", torch.device("cpu"), data_root=str(two_crops))
    lo, hi = t_grey.data.batch(2, 32)
    with pytest.raises(RecipeError, match="channels"):  # not a silent broadcast of a 1-channel light
        t_grey.stage_loss("sri_synth", lo, hi, {})


@pytest.mark.parametrize(
    ("kind", "moves"), [("blnet_decom", "decom"), ("blnet_enhance", "enhance"), ("blnet_joint_decom", "decom"), ("blnet_joint", "both")]
)
def test_blnet_stage_kinds_train_only_their_nets(kind, moves, two_crops, tmp_path):
    """Each blnet stage kind steps exactly the parameters it names; blnet_joint_decom also
    carries the enhancement loss (it reaches the decomposition through R_low and I_low)."""
    from training.train import Recipe, Stage

    torch.set_num_threads(1)
    torch.manual_seed(0)
    stage = Stage(kind=kind, steps=1, lr=1e-2, batch=2, patch=64)
    r = Recipe(name="k", model="blnet", stages=(stage,), loss_weights={"enhance": {"per": 0.0}})
    t = Trainer(r, tmp_path / "run", torch.device("cpu"), data_root=str(two_crops))
    before = {k: v.clone() for k, v in t.model.state_dict().items()}
    opt = t._make_opt(stage)
    lo, hi = t.data.batch(2, 64)
    terms = t.stage_loss(kind, lo, hi, stage.loss_weights)
    assert any(k.startswith("eh_") for k in terms) == (kind != "blnet_decom")
    assert any(k.startswith("decom_") for k in terms) == (kind != "blnet_enhance")
    if kind in ("blnet_joint", "blnet_joint_decom"):  # L_eh itself reaches the decomposition
        grads = torch.autograd.grad(terms["eh_total"], list(t.model.decom.parameters()), retain_graph=True, allow_unused=True)
        assert any(g is not None and g.abs().sum() > 0 for g in grads)
    opt.zero_grad()
    terms["total"].backward()
    opt.step()
    after = t.model.state_dict()
    for net in ("decom", "enhance"):
        changed = any(not torch.equal(before[k], after[k]) for k in before if k.startswith(net + "."))
        assert changed == (moves in (net, "both")), f"{kind}: {net} changed={changed}"


@pytest.mark.parametrize("gamma", [0.0, 0.5])
def test_blnet_enhancement_loss_sees_the_rendered_output(gamma, two_crops, tmp_path):
    """With the detail transfer on, L_rc and L_grad score R_low times the transferred light
    (what the model outputs), L_bri scores L_out itself; off, both are the plain L_out."""
    from training import losses as L
    from training.train import Recipe, Stage

    torch.set_num_threads(1)
    torch.manual_seed(0)
    stage = Stage(kind="blnet_enhance", steps=1, lr=1e-3, batch=2, patch=64)
    r = Recipe(name="k", model="blnet", config={"detail_gamma": gamma}, stages=(stage,), loss_weights={"enhance": {"per": 0.0}})
    t = Trainer(r, tmp_path / "run", torch.device("cpu"), data_root=str(two_crops))
    lo, hi = t.data.batch(2, 64)
    terms = t.stage_loss("blnet_enhance", lo, hi, stage.loss_weights)
    with torch.no_grad():
        rr, ii = t.model.decompose(torch.cat([lo, hi]))
        l_out = t.model.relight(rr[:2], ii[:2])
        light = t.model.output_light(l_out, ii[:2])
        out = t.model(lo)
    assert torch.equal(light, l_out) == (gamma == 0)
    torch.testing.assert_close(out, (rr[:2] * light).clamp(0, 1))
    torch.testing.assert_close(terms["eh_rc"], L.l1(rr[:2] * light, hi))
    torch.testing.assert_close(terms["eh_bri"], L.l1(l_out, ii[2:]))


def test_time_budget_stops_resumably_and_resuming_matches_an_uninterrupted_run(two_crops, tmp_path):
    import dataclasses

    torch.set_num_threads(1)
    r = scaled(load_recipe("lite"), 1e-6)
    r = dataclasses.replace(r, stages=(dataclasses.replace(r.stages[0], steps=3, batch=2, patch=64),), val_interval=100)

    def trainer(run: str) -> Trainer:
        (tmp_path / run).mkdir(exist_ok=True)
        t = Trainer(r, tmp_path / run, torch.device("cpu"), data_root=str(two_crops))
        t.val_images = t.val_images or [(t.data.low[0], t.data.high[0])]
        return t

    full = trainer("full")
    assert full.run()["stopped_early"] is False and full.global_step == 3
    cut = trainer("cut")
    result = cut.run(max_seconds=0.0)  # out of time after the first step
    assert result["stopped_early"] is True and result["steps"] == 1
    assert (tmp_path / "cut" / "last.pt").exists() and (tmp_path / "cut" / "best.pt").exists()
    again = trainer("cut")
    assert again.resume() and again.global_step == 1
    assert again.run()["stopped_early"] is False and again.global_step == 3
    for k, v in full.model.state_dict().items():
        assert torch.equal(v, again.model.state_dict()[k]), k


def test_learning_rate_warms_up_then_follows_the_cosine_to_its_end(tmp_path):
    from training.train import Stage, _cosine_lr

    st = Stage(kind="lite", steps=100, lr=1e-3, lr_end=1e-5, warmup=10)
    lrs = [_cosine_lr(st, i) for i in range(st.steps)]
    assert lrs[0] == pytest.approx(1e-3 / 11) and lrs[9] == pytest.approx(1e-3 * 10 / 11)
    assert all(a < b for a, b in zip(lrs[:10], lrs[1:11]))  # the ramp rises into the peak
    assert lrs[10] == pytest.approx(1e-3) and lrs[-1] == pytest.approx(1e-5)
    assert all(a >= b for a, b in zip(lrs[10:], lrs[11:]))  # then only falls
    plain = Stage(kind="lite", steps=100, lr=1e-3, lr_end=1e-5)
    assert _cosine_lr(plain, 0) == pytest.approx(1e-3) and _cosine_lr(plain, 99) == pytest.approx(1e-5)
    from training.train import Recipe

    long_ramp = Recipe(name="x", model="lite", stages=(Stage(kind="lite", steps=10, lr=1e-3, warmup=9),))
    tiny = scaled(long_ramp, 0.1)  # 1 step, and a warm-up of round(0.9) = 1 would never reach lr
    assert tiny.stages[0].steps == 1 and tiny.stages[0].warmup == 0
    bad = tmp_path / "bad.json"
    bad.write_text('{"name": "x", "model": "lite", "stages": [{"kind": "lite", "steps": 5, "lr": 1e-3, "warmup": 5}]}')
    with pytest.raises(RecipeError, match="warmup"):
        load_recipe(str(bad))


def test_ship_set_parses_json_values_and_rejects_malformed_items():
    from training.ship import parse_settings

    assert parse_settings(["detail_gamma=0.5", "decom_widths=[8, 16]", "retinex_skip=true"]) == {
        "detail_gamma": 0.5, "decom_widths": [8, 16], "retinex_skip": True,
    }
    assert parse_settings([]) == {}
    with pytest.raises(ValueError, match="FIELD=VALUE"):
        parse_settings(["detail_gamma"])
    with pytest.raises(ValueError, match="not a JSON value") as info:
        parse_settings(["detail_gamma=half"])
    assert info.value.__cause__ is not None
