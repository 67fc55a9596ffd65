"""Every shipped model can be retrained from scratch: its recipe chain resolves and matches
the shipped manifest; the chain runner trains a tiny chain end to end and resumes it."""
from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

import models
from models import config_from_dict
from training.train import RECIPES_DIR, RecipeError, _same_weights_config, load_recipe, main, recipe_chain, shipped_recipe

SHIPPED = sorted(p.stem for p in models.WEIGHTS_DIR.glob("*.json"))
#: stage fields every manifest records (older manifests lack ``warmup`` and ``loss_weights``)
STAGE_KEYS = ("name", "kind", "steps", "lr", "lr_end", "batch", "patch")


def _manifest(name: str) -> dict:
    return json.loads((models.WEIGHTS_DIR / f"{name}.json").read_text())


def _trained_config(recipe):
    """The config a recipe's run trains (``Trainer``: the recipe's fields over the registered default)."""
    return config_from_dict(recipe.model, recipe.config)


def test_every_model_ships_a_manifest():
    assert {"blnet", "lite", "sri"} <= set(SHIPPED)


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_recipe_chain_resolves_back_to_a_from_scratch_recipe(name):
    manifest = _manifest(name)
    final = shipped_recipe(name)
    assert final == manifest["recipe"]["name"]
    assert (RECIPES_DIR / f"{final}.json").exists(), f"{name} was shipped from recipe {final!r}, not in training/recipes"
    chain = recipe_chain(final)
    assert chain[-1].name == final
    assert chain[0].init is None, f"{name}: the chain starts at {chain[0].name!r}, which is not from scratch"
    for parent, child in zip(chain, chain[1:]):
        assert child.init_recipe == parent.name, f"{child.name} starts from {child.init!r}, not from recipe {parent.name!r}"
        assert (RECIPES_DIR / f"{parent.name}.json").exists()
        if child.init_strict:  # a strict init needs the parent's weights as they are
            assert _same_weights_config(_trained_config(parent), _trained_config(child)), (parent.name, child.name)
    assert all(r.model == manifest["model"] for r in chain)
    # what the manifest says the shipped run started from is the chain's previous recipe
    recorded_init = (manifest["recipe"].get("init") or {}).get("recipe")
    assert recorded_init == (chain[-2].name if len(chain) > 1 else None)


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_recipe_config_and_ship_changes_give_the_shipped_config(name):
    """The recipe's config, with its ship_config applied as ``python -m training.ship`` does,
    is the shipped config; the ship-time change the manifest records is the recipe's; and
    the recipe's stages are the ones the shipped run trained."""
    manifest = _manifest(name)
    recipe = load_recipe(manifest["recipe"]["name"])
    shipped_cfg = config_from_dict(name, manifest["config"], base="fields")
    assert config_from_dict(name, {**recipe.config, **recipe.ship_config}) == shipped_cfg
    assert manifest.get("config_changed_at_ship", {}) == recipe.ship_config
    ran = [{k: s.get(k) for k in STAGE_KEYS} for s in manifest["recipe"]["stages"]]
    assert [{k: getattr(s, k) for k in STAGE_KEYS} for s in recipe.stages] == ran
    assert recipe.loss_weights == manifest["recipe"].get("loss_weights", {})


def test_blnet_ships_with_the_detail_transfer_set_at_ship_time():
    recipe = load_recipe(shipped_recipe("blnet"))
    assert recipe.config["detail_gamma"] == 0.0 and recipe.ship_config == {"detail_gamma": 0.5}
    assert set(recipe.ship_config) <= set(models.BLNetConfig.RENDER_FIELDS)  # it leaves the weights as trained


def test_every_recipe_init_resolves():
    """No recipe in training/recipes starts from a file that is gone: an init recipe exists,
    an init file exists with the sha256 the recipe pins."""
    for path in sorted(RECIPES_DIR.glob("*.json")):
        r = load_recipe(path.stem)
        if r.init_recipe:
            assert recipe_chain(path.stem)[-1].name == r.name
        elif r.init:
            manifest = models.read_manifest(Path(__file__).resolve().parents[1] / r.init)
            assert r.init_sha256 in (None, manifest["sha256"]), f"{r.name}: its init {r.init} has been replaced"


def test_init_forms_are_checked(tmp_path):
    base = {"name": "x", "model": "lite", "stages": [{"kind": "lite", "steps": 1, "lr": 1e-3}]}
    for bad, match in (
        ({"init": {"recipe": "lite", "extra": 1}}, "init"),
        ({"init": {"recipe": "lite"}, "init_sha256": "0" * 64}, "init_sha256"),
        ({"ship_config": {"no_such_field": 1}}, "no field"),
    ):
        p = tmp_path / "x.json"
        p.write_text(json.dumps({**base, **bad}))
        with pytest.raises(RecipeError, match=match):
            load_recipe(str(p))
    loop = {**base, "name": "a", "init": {"recipe": "b"}}
    (tmp_path / "a.json").write_text(json.dumps(loop))
    (tmp_path / "b.json").write_text(json.dumps({**base, "name": "b", "init": {"recipe": "a"}}))
    with pytest.raises(RecipeError, match="loops"):
        recipe_chain(str(tmp_path / "a.json"))


def test_ship_applies_the_recipe_ship_config_then_set():
    from training.ship import ship_changes

    manifest = {"recipe": {"name": "r", "ship_config": {"detail_gamma": 0.5}}}
    assert ship_changes(manifest, {}) == {"detail_gamma": 0.5}
    assert ship_changes(manifest, {"detail_gamma": 0.4, "detail_window": 0.125}) == {"detail_gamma": 0.4, "detail_window": 0.125}
    assert ship_changes(manifest, {"detail_window": 0.125}, use_recipe=False) == {"detail_window": 0.125}
    assert ship_changes({"recipe": {"name": "old"}}, {}) == {}


@pytest.fixture
def synthetic_pairs(tmp_path) -> Path:
    """15 small synthetic dark/bright pairs (no shared data needed): smooth colour scenes,
    the dark one a tenth as bright with noise."""
    rng = np.random.default_rng(0)
    root = tmp_path / "data"
    for sub in ("low", "high"):
        (root / sub).mkdir(parents=True)
    for k in range(15):
        hi = cv2.resize(rng.uniform(40, 230, (6, 8, 3)).astype(np.float32), (64, 48), interpolation=cv2.INTER_CUBIC)
        lo = hi * 0.1 + rng.normal(0, 2, hi.shape)
        for sub, img in (("low", lo), ("high", hi)):
            cv2.imwrite(str(root / sub / f"{k}.png"), np.clip(img, 0, 255).astype(np.uint8))
    return root


def test_chain_trains_each_recipe_from_the_previous_ones_output_and_resumes(synthetic_pairs, tmp_path, capsys):
    torch.set_num_threads(1)
    stage = {"name": "main", "kind": "lite", "steps": 2, "lr": 1e-3, "batch": 2, "patch": 32}
    recipes = tmp_path / "recipes"
    recipes.mkdir()
    (recipes / "tiny_a.json").write_text(json.dumps({"name": "tiny_a", "model": "lite", "val_interval": 1, "stages": [stage]}))
    (recipes / "tiny_b.json").write_text(json.dumps(
        {"name": "tiny_b", "model": "lite", "init": {"recipe": "tiny_a"}, "ship_config": {"scale": 5}, "val_interval": 1, "stages": [stage]}
    ))
    runs = tmp_path / "runs"
    argv = ["--recipe", str(recipes / "tiny_b.json"), "--chain", "--runs", str(runs), "--data", str(synthetic_pairs), "--device", "cpu"]

    # the second recipe alone cannot start: its init is the first one's output
    assert main(argv[:2] + argv[3:]) == 2
    assert "train 'tiny_a' first" in capsys.readouterr().err

    assert main(argv) == 0
    out = capsys.readouterr()
    results = json.loads(out.out)
    assert list(results) == ["tiny_a", "tiny_b"] and all(r["steps"] == 2 for r in results.values())
    assert f"training.ship --run {runs / 'tiny_b'}" in out.err
    a = models.read_manifest(runs / "tiny_a" / "best.pt")
    b = models.read_manifest(runs / "tiny_b" / "best.pt")
    assert a["recipe"]["init"] is None
    assert b["recipe"]["init"]["recipe"] == "tiny_a" and b["recipe"]["init"]["sha256"] == a["sha256"]
    assert b["recipe"]["ship_config"] == {"scale": 5}

    assert main(argv) == 2  # the runs exist: continuing them needs --resume
    assert "--resume" in capsys.readouterr().err
    assert main(argv + ["--resume"]) == 0
    again = json.loads(capsys.readouterr().out)
    assert all(r.get("skipped") == "already finished" for r in again.values())

