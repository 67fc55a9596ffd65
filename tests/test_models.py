"""Model registry, contract (shapes, ranges, any frame size), gradients and checkpoints."""
from __future__ import annotations

import dataclasses
import json

import pytest
import torch

import models
from models import CheckpointError, create_model, list_models, load_checkpoint, save_checkpoint

NAMES = ["blnet", "lite", "sri"]


def test_registry_lists_models_and_rejects_unknown():
    assert list_models() == NAMES
    with pytest.raises(ValueError, match="valid models: blnet, lite, sri"):
        create_model("zero_dce")


def test_registry_rejects_duplicates_and_bad_config():
    with pytest.raises(ValueError, match="already registered"):
        models.register_model("lite", models.LiteConfig, models.LiteConfig(), "dup")(lambda c: None)
    with pytest.raises(ValueError, match="no field"):
        create_model("lite", {"not_a_field": 3})
    with pytest.raises(TypeError):
        create_model("lite", models.SRIConfig())


def test_configs_are_frozen():
    cfg = models.LiteConfig()
    with pytest.raises(Exception):
        cfg.scale = 2  # type: ignore[misc]


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("hw", [(37, 53), (64, 96), (1, 1)])
def test_output_shape_and_range_on_any_size(name, hw):
    m = create_model(name).eval()
    x = torch.rand(2, 3, *hw)
    with torch.no_grad():
        y = m(x)
        aux, illum = m.estimate(x)
        y2 = m.render(x, aux, illum)
    assert y.shape == x.shape
    assert torch.isfinite(y).all()
    assert y.min() >= 0.0 and y.max() <= 1.0
    torch.testing.assert_close(y, y2)


def test_blnet_split_is_retinex():
    m = create_model("blnet", {"detail_gamma": 0.0}).eval()
    x = torch.rand(1, 3, 37, 53)
    with torch.no_grad():
        r, l_out = m.estimate(x)
    assert r.shape == (1, 3, 37, 53) and l_out.shape == (1, 1, 37, 53)
    assert 0 <= r.min() and r.max() <= 1 and 0 <= l_out.min() and l_out.max() <= 1
    torch.testing.assert_close(m(x), (r * l_out).clamp(0, 1))


def test_blnet_detail_transfer_renders_with_the_frames_own_light_structure():
    from models._layers import pad_to_multiple
    from models.blnet import BLNET_DEFAULT, transfer_detail

    assert BLNET_DEFAULT.detail_gamma > 0  # the shipped variant uses it
    m = create_model("blnet").eval()
    x = torch.rand(1, 3, 37, 53)
    with torch.no_grad():
        aux, l_out = m.estimate(x)
        xp, _, _ = pad_to_multiple(x, m.pad_multiple)
        r, i = m.decompose(xp)
    assert aux.shape == (1, 4, 37, 53) and l_out.shape == (1, 1, 37, 53)
    guide = (i[..., :37, :53] + m.DETAIL_EPS) ** m.cfg.detail_gamma
    torch.testing.assert_close(aux, torch.cat([r[..., :37, :53], guide], 1))
    light = transfer_detail(l_out, guide, m.cfg.detail_window)
    torch.testing.assert_close(m(x), (aux[:, :3] * light).clamp(0, 1))
    # training's L_eh renders with the same light
    torch.testing.assert_close(m.output_light(l_out, i[..., :37, :53]), light)


def test_transfer_detail_keeps_the_tone_of_the_light_and_the_detail_of_the_guide():
    from models.blnet import transfer_detail

    h, w = 45, 61
    yy, xx = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
    checker = ((yy + xx) % 2).float()[None, None]
    guide = 0.3 + 0.1 * checker  # fine structure only
    # a light proportional to the guide comes back unchanged
    torch.testing.assert_close(transfer_detail(0.5 * guide, guide, 0.25), 0.5 * guide)
    # a flat light takes on the guide's relative detail around its own level
    out = transfer_detail(torch.full_like(guide, 0.6), guide, 0.25)
    assert abs(out.mean().item() - 0.6) < 0.01
    ratio = out[..., 10:-10, 10:-10] / guide[..., 10:-10, 10:-10]
    assert ratio.std() < 1e-4  # out = guide * one local factor: the checkerboard's relative depth
    # a smooth light's tone survives: the left half stays darker than the right
    ramp = (0.2 + 0.6 * xx.float() / (w - 1))[None, None]
    out = transfer_detail(ramp, guide, 0.25)
    assert out[..., :, : w // 3].mean() < 0.4 < out[..., :, -w // 3 :].mean()
    # clamped to [0, 1]
    assert transfer_detail(torch.ones_like(guide), 0.01 * guide, 0.25).max() <= 1.0


@pytest.mark.parametrize("cfg", [{}, {"illum_channels": 1, "detail_box": 0}, {"unshuffle": 2, "global_context": False, "illum_channels": 1, "detail_box": 0}])
def test_sri_matches_paper_size(cfg):
    m = create_model("sri", cfg)
    convs = [k for k in m.modules() if isinstance(k, torch.nn.Conv2d) and k.kernel_size == (3, 3)]
    assert len(convs) == 26
    n = sum(p.numel() for p in m.parameters())
    assert 0.85e6 < n < 0.97e6  # the paper: ~0.89 M; ours adds a global context and a colour + detail tail


def test_sri_global_context_sees_the_whole_frame():
    from models._layers import GlobalContext

    m = create_model("sri").eval()
    ctx = [k for k in m.modules() if isinstance(k, GlobalContext)]
    assert len(ctx) == 1
    with torch.no_grad():
        ctx[0][2].weight.mul_(100.0)  # undo the near-zero start to see the effect
        x = torch.rand(1, 3, 64, 2048) * 0.2
        far = x.clone()
        far[..., 1900:] += 0.5  # far beyond the 26 convs' receptive field from the left edge
        d = (m(far) - m(x))[..., :16].abs().max()
        plain = create_model("sri", {"global_context": False}).eval()
        d_plain = (plain(far) - plain(x))[..., :16].abs().max()
    assert d_plain == 0 and d > 0


def test_sri_colour_illumination_and_widening_from_grey():
    grey = create_model("sri", {"illum_channels": 1, "detail_box": 0}).eval()
    colour = create_model("sri", {"illum_channels": 3, "detail_box": 0}).eval()
    x = torch.rand(1, 3, 37, 53) * 0.3
    with torch.no_grad():
        grey.tail.bias.add_(torch.randn(grey.tail.bias.shape))  # something other than the start
        assert colour.estimate(x)[1].shape == (1, 3, 37, 53)
        colour.load_state_dict(colour.adapt_state_dict(grey.state_dict(), grey.cfg))
        torch.testing.assert_close(colour(x), grey(x))
        i3 = colour.estimate(x)[1]
        torch.testing.assert_close(i3, grey.estimate(x)[1].expand_as(i3))
    assert colour.adapt_state_dict(colour.state_dict(), colour.cfg)["tail.weight"].shape[0] == 48
    with pytest.raises(ValueError, match="illum_channels"):
        create_model("sri", {"illum_channels": 2})


def test_sri_detail_term_is_an_edge_aware_filter_of_the_input():
    m = create_model("sri", {"illum_channels": 3, "detail_box": 5}).eval()
    uu = 16
    with torch.no_grad():
        flat = torch.full((1, 3, 20, 24), 0.07)
        aux, light = m.estimate(flat)
        assert aux.shape == (1, 3, 20, 24) and light.shape == (1, 3, 20, 24)
        torch.testing.assert_close(aux, torch.ones_like(aux))  # nothing to remove in a flat frame
        x = torch.rand(1, 3, 20, 24) * 0.2
        e = m.cfg.detail_eps
        local = torch.nn.functional.avg_pool2d(x, 5, 1, 2, count_include_pad=False)
        for bias, beta in ((-30.0, 0.0), (0.0, 0.5), (30.0, 1.0)):
            m.tail.weight[3 * uu :].zero_()
            m.tail.bias[3 * uu :].fill_(bias)
            aux, light = m.estimate(x)
            torch.testing.assert_close(aux, ((x + e) / (local + e)) ** beta)
            torch.testing.assert_close(m(x), (x / (light * aux).clamp(min=m.cfg.eps)).clamp(0, 1))
        # beta = 1: the output is the box-filtered input over the light (up to e)
        torch.testing.assert_close(m(x), (x * (local + e) / ((x + e) * light)).clamp(0, 1))
    with pytest.raises(ValueError, match="detail_box"):
        create_model("sri", {"detail_box": 4})


def test_sri_widening_to_a_detail_term_keeps_the_light():
    grey = create_model("sri", {"illum_channels": 1, "detail_box": 0}).eval()
    m = create_model("sri", {"illum_channels": 3, "detail_box": 5}).eval()
    m.load_state_dict(m.adapt_state_dict(grey.state_dict(), grey.cfg))
    x = torch.rand(1, 3, 37, 53) * 0.3
    with torch.no_grad():
        aux, light = m.estimate(x)
        torch.testing.assert_close(light, grey.estimate(x)[1].expand_as(light))
        local = torch.nn.functional.avg_pool2d(x, 5, 1, 2, count_include_pad=False)
        e = m.cfg.detail_eps
        torch.testing.assert_close(aux, ((x + e) / (local + e)) ** 0.5)


def test_sri_guards_division():
    m = create_model("sri").eval()
    x = torch.rand(1, 3, 8, 8)
    y = m.render(x, None, torch.zeros(1, 1, 8, 8))
    assert torch.isfinite(y).all() and y.max() <= 1.0


@pytest.mark.parametrize("name", NAMES)
def test_gradients_reach_every_parameter(name):
    m = create_model(name).train()
    x = torch.rand(2, 3, 64, 64)
    target = torch.rand(2, 3, 64, 64)
    loss = (m(x) - target).abs().mean()
    if name == "blnet":  # R and I of the decomposition are also supervised in training
        r, i = m.decompose(x)
        loss = loss + r.mean() + i.mean()
    loss.backward()
    missing = [n for n, p in m.named_parameters() if p.grad is None or not torch.isfinite(p.grad).all() or p.grad.abs().sum() == 0]
    assert not missing, f"no gradient for {missing}"


def test_lite_stats_path_matches_estimate():
    m = create_model("lite").eval()
    x = torch.rand(1, 3, 64, 96)
    with torch.no_grad():
        a1, g1 = m.estimate(x)
        a2, g2 = m.estimate_from_stats(*m.box_stats(x))
    torch.testing.assert_close(a1, a2)
    torch.testing.assert_close(g1, g2)


@pytest.mark.parametrize("name", NAMES)
def test_checkpoint_round_trip_is_exact(tmp_path, name):
    m = create_model(name).eval()
    mpath = save_checkpoint(m, name, tmp_path / name, data={"train": "synthetic"}, metrics={"val": {"psnr": 1.0}})
    doc = json.loads(mpath.read_text())
    for key in ("model", "config", "input_contract", "data", "metrics", "sha256"):
        assert key in doc
    m2, manifest = load_checkpoint(tmp_path / f"{name}.pt")
    assert manifest["model"] == name
    sd1, sd2 = m.state_dict(), m2.state_dict()
    assert sd1.keys() == sd2.keys()
    for k in sd1:
        assert torch.equal(sd1[k], sd2[k]), k
    x = torch.rand(1, 3, 37, 53)
    with torch.no_grad():
        assert torch.equal(m(x), m2(x))


def test_checkpoint_detects_tampering(tmp_path):
    m = create_model("lite")
    save_checkpoint(m, "lite", tmp_path / "lite")
    with open(tmp_path / "lite.pt", "ab") as f:
        f.write(b"x")
    with pytest.raises(CheckpointError, match="does not match its manifest"):
        load_checkpoint(tmp_path / "lite.pt")


def test_manifest_without_later_fields_loads_the_design_it_was_written_for(tmp_path):
    grey = create_model("sri", {"illum_channels": 1, "detail_box": 0})
    ckpt = save_checkpoint(grey, "sri", tmp_path / "old.pt")
    manifest_path = ckpt.with_suffix(".json")
    manifest = json.loads(manifest_path.read_text())
    for later in ("illum_channels", "detail_box"):  # a manifest written before these fields existed
        del manifest["config"][later]
    manifest_path.write_text(json.dumps(manifest))
    model, _ = load_checkpoint(ckpt)
    assert model.cfg == grey.cfg
    assert create_model("sri").cfg.illum_channels == 3  # while new models get the shipped variant
    old_blnet = create_model("blnet", {"enhance_global": False})
    ckpt = save_checkpoint(old_blnet, "blnet", tmp_path / "old_blnet.pt")
    manifest = json.loads(ckpt.with_suffix(".json").read_text())
    del manifest["config"]["enhance_global"]
    ckpt.with_suffix(".json").write_text(json.dumps(manifest))
    assert load_checkpoint(ckpt)[0].cfg == old_blnet.cfg
    # a manifest of the first blnet, written before the context, the skip and the transfer
    first = create_model("blnet", {"enhance_global": False, "retinex_skip": False, "detail_gamma": 0.0})
    ckpt = save_checkpoint(first, "blnet", tmp_path / "first_blnet.pt")
    manifest = json.loads(ckpt.with_suffix(".json").read_text())
    manifest["config"] = {k: manifest["config"][k] for k in ("decom_widths", "enhance_widths")}
    ckpt.with_suffix(".json").write_text(json.dumps(manifest))
    assert load_checkpoint(ckpt)[0].cfg == first.cfg


def test_blnet_config_defaults_are_the_shipped_design():
    from models.blnet import BLNET_DEFAULT, BLNetConfig

    shipped = json.loads((models.WEIGHTS_DIR / "blnet.json").read_text())["config"]
    assert dataclasses.asdict(BLNetConfig()) == {k: tuple(v) if isinstance(v, list) else v for k, v in shipped.items()}
    assert BLNET_DEFAULT == BLNetConfig() and create_model("blnet").cfg == BLNetConfig()


def test_checkpoint_missing_manifest(tmp_path):
    torch.save(create_model("lite").state_dict(), tmp_path / "w.pt")
    with pytest.raises(CheckpointError, match="no manifest"):
        load_checkpoint(tmp_path / "w.pt")


def test_non_default_config_survives_round_trip(tmp_path):
    m = create_model("lite", scale=8)
    save_checkpoint(m, "lite", tmp_path / "l8")
    m2, _ = load_checkpoint(tmp_path / "l8.pt")
    assert m2.cfg.scale == 8 and m2.cfg.widths == m.cfg.widths


@pytest.mark.parametrize("name", models.available_pretrained())
def test_shipped_weights_load_and_carry_their_contract(name):
    m, manifest = models.load_pretrained(name)
    assert manifest["model"] == name
    assert manifest["input_contract"]["range"] == [0.0, 1.0]
    assert "eval15" in manifest.get("metrics", {}), "shipped weights must record their eval15 scores"
    tiny = torch.finfo(torch.float32).tiny
    for p in m.state_dict().values():
        if p.is_floating_point():
            assert not ((p != 0) & (p.abs() < tiny)).any(), "subnormal weights slow CPU convolutions"


def test_unet_global_context_sees_the_whole_frame():
    from models._layers import UNet

    torch.manual_seed(0)
    plain = UNet(4, 1, (8, 16, 16)).eval()
    torch.manual_seed(0)
    ctx = UNet(4, 1, (8, 16, 16), global_context=True).eval()
    with torch.no_grad():
        ctx.context[2].weight.mul_(100.0)  # undo the near-zero start to see the effect
    x = torch.rand(1, 4, 128, 128)
    far = x.clone()
    far[..., 96:, 96:] += 0.5  # change only a corner far outside the top-left receptive field
    with torch.no_grad():
        d_plain = (plain(far) - plain(x))[..., :16, :16].abs().max()
        d_ctx = (ctx(far) - ctx(x))[..., :16, :16].abs().max()
    assert d_plain == 0 and d_ctx > 0


def test_blnet_global_context_option():
    from models.blnet import BLNetConfig

    m = create_model("blnet").eval()  # the default (and shipped) config has it
    assert m.cfg.enhance_global
    base = create_model("blnet", BLNetConfig(enhance_global=False)).eval()
    assert sum(p.numel() for p in m.parameters()) > sum(p.numel() for p in base.parameters())
    with torch.no_grad():
        y = m(torch.rand(1, 3, 37, 53))
    assert y.shape == (1, 3, 37, 53) and 0 <= y.min() and y.max() <= 1


def _small_blnet(**kw):
    """A small blnet of the first design (no context, skip or transfer) unless ``kw`` turns them on."""
    from models.blnet import BLNetConfig

    first = {"enhance_global": False, "retinex_skip": False, "detail_gamma": 0.0}
    return create_model("blnet", BLNetConfig(decom_widths=(8, 16, 16), enhance_widths=(8, 16, 16), **{**first, **kw})).eval()


def test_blnet_retinex_skip_starts_from_a_plain_decomposition():
    """Adapting plain weights: I is unchanged and R is the plain R moved towards R0 by the
    nearly closed gate, a = sigmoid(-4), and by exactly that."""
    torch.manual_seed(0)
    plain = _small_blnet()
    skip = _small_blnet(retinex_skip=True)
    skip.load_state_dict(skip.adapt_state_dict(plain.state_dict(), plain.cfg))
    s = torch.rand(2, 3, 16, 24) * 0.2
    with torch.no_grad():
        r_p, i_p = plain.decompose(s)
        r_s, i_s = skip.decompose(s)
    a = torch.sigmoid(torch.tensor(skip.GATE_INIT_BIAS))
    r0 = s / (s.amax(dim=1, keepdim=True) + skip.cfg.retinex_eps)
    assert torch.equal(i_s, i_p)
    torch.testing.assert_close(r_s, a * r0 + (1 - a) * r_p)
    # other pairs of configs pass through untouched
    state = plain.state_dict()
    assert plain.adapt_state_dict(state, plain.cfg) is state


def test_blnet_retinex_skip_open_gate_reconstructs_the_frame():
    """With the gate open R is R0, so R * (max_c S + e) is S exactly, detail and all; R stays
    in [0, 1] and finite on a black frame."""
    m = _small_blnet(retinex_skip=True)
    with torch.no_grad():
        m.decom.head.bias[m.GATE_CHANNEL] = 30.0
        m.decom.head.weight[m.GATE_CHANNEL] = 0.0
    s = torch.rand(1, 3, 16, 16)
    with torch.no_grad():
        r, _ = m.decompose(s)
        r_black, i_black = m.decompose(torch.zeros(1, 3, 16, 16))
    torch.testing.assert_close(r * (s.amax(dim=1, keepdim=True) + m.cfg.retinex_eps), s)
    assert 0 <= r.min() and r.max() <= 1
    assert torch.isfinite(r_black).all() and torch.isfinite(i_black).all() and r_black.abs().max() == 0


def test_blnet_retinex_skip_gradients_reach_the_gate():
    m = _small_blnet(retinex_skip=True).train()
    r, i = m.decompose(torch.rand(1, 3, 16, 16))
    (r.mean() + i.mean()).backward()
    assert m.decom.head.weight.grad[m.GATE_CHANNEL].abs().sum() > 0 and m.decom.stem[0].weight.grad[:, 4:].abs().sum() > 0
