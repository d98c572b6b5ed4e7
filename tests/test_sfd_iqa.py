"""SFD-IQA, Eq. 8-10, its Table 4 variants, tiling and its checkpoint (tiny CLIP, random weights)."""
import copy
import json

import pytest
import torch
from safetensors import safe_open

from pipeline.archs.clip_encoder import TINY_ARCH, CLIPEncoder
from pipeline.archs.featd import FeatD
from pipeline.archs.lpp import LearnablePromptPairs
from pipeline.checkpoint import CheckpointError, load_state_dict, save_state_dict
from pipeline.losses import prompt_pair_score
from pipeline.sfd_iqa import (
    FIXED_PROMPTS,
    SFDIQA,
    VARIANTS,
    combine_scores,
    load_sfd_iqa,
    resize_to_budget,
    save_sfd_iqa,
)

WIDTHS = (32, 32, 16, 16)


@pytest.fixture(scope="module")
def parts():
    torch.manual_seed(0)
    encoder = CLIPEncoder(TINY_ARCH, "none")
    return encoder, FeatD(encoder.mid_channels, WIDTHS), LearnablePromptPairs(encoder, n_ctx=8)


def image(*shape, seed=0):
    return torch.rand(*shape, generator=torch.Generator().manual_seed(seed))


def test_eq9_eq10_and_variants_by_hand():
    s_o, s_lp, m = torch.tensor([0.6]), torch.tensor([0.8]), torch.tensor([0.5])
    by_variant = {v: combine_scores(v, s_o, s_lp, m).item() for v in VARIANTS}
    assert by_variant == pytest.approx({"baseline": 0.6, "featd": 0.3, "tgd": 0.7, "full": 0.35})
    assert combine_scores("full", s_o, s_lp, m, alpha1=0.25, alpha2=0.75).item() == pytest.approx(0.375)
    with pytest.raises(ValueError, match="unknown SFD-IQA variant"):
        combine_scores("ours", s_o, s_lp, m)


def test_full_score_is_eq10_of_the_modules(parts):
    encoder, featd, lpp = parts
    model = SFDIQA(encoder, featd, lpp, alpha1=0.3, alpha2=0.7, prompt_logit_scale=100.0)
    x = image(1, 3, 64, 80)
    with torch.no_grad():
        feats = encoder(x)
        s_o = prompt_pair_score(feats.out, *encoder.encode_text(FIXED_PROMPTS), 100.0)
        s_lp = prompt_pair_score(feats.out, *lpp(encoder), 100.0)
        map_mean = torch.sigmoid(featd(*feats[:3])).mean()
    expected = (0.3 * s_o + 0.7 * s_lp) * map_mean
    assert model(x).item() == pytest.approx(expected.item(), rel=1e-5)
    assert model(x, "baseline").item() == pytest.approx(s_o.item(), rel=1e-5)


def test_odd_sized_single_image_and_batch(parts):
    model = SFDIQA(*parts)
    x = image(2, 3, 97, 75)
    batch = model.scores(x)
    single = model.scores(x[1])
    for v in VARIANTS:
        assert batch[v].shape == (2,) and ((batch[v] >= 0) & (batch[v] <= 1)).all()
        assert single[v].item() == pytest.approx(batch[v][1].item(), rel=1e-4, abs=1e-7)
    with pytest.raises(ValueError, match="at least 32"):
        model(image(3, 31, 64))


def test_tiles_give_the_whole_image_map_mean(parts):
    """With a margin that covers the image every tile sees all of it: the tiled mean must equal the whole one."""
    x = image(1, 3, 97, 75, seed=1)
    whole = SFDIQA(*parts).parts(x)
    tiled_model = SFDIQA(*parts, max_pixels=48 * 48, tile=64, tile_margin=96)
    tiled = tiled_model.parts(x)
    assert tiled["map_mean"].item() == pytest.approx(whole["map_mean"].item(), rel=1e-5)
    small = resize_to_budget(x, 48 * 48)
    assert small.shape[-2] * small.shape[-1] <= 48 * 48 and small.shape[-2] > small.shape[-1]
    assert tiled["s_o"].item() == pytest.approx(SFDIQA(*parts).parts(small)["s_o"].item(), rel=1e-4, abs=1e-7)


@pytest.fixture(scope="module")
def sharp_featd(parts):
    """Feat-D with its head scaled and centred so that its sigmoid map varies strongly (std ~0.2; at init ~0.001,
    where any slice of the map has nearly the same mean)."""
    encoder, featd, _ = parts
    sharp = copy.deepcopy(featd).eval()  # eval: spectral norm's power iteration would change the weights per call
    with torch.no_grad():
        logits = sharp(*encoder(image(1, 3, 160, 224, seed=1), with_output=False)[:3])
        k = 3 / logits.std()
        sharp.head.weight.mul_(k)
        sharp.head.bias.mul_(k).sub_(k * logits.mean())
    return sharp


@pytest.mark.parametrize("tile, margin, tolerance", [
    (64, 64, 1e-6),  # the margin covers the reach of CLIP's layer3 + Feat-D: the whole-image mean, up to rounding
    (32, 32, 1e-4),  # just short of the reach: close (3e-5 measured); a core slice one map row off moves it 6e-3
])
def test_tiled_map_mean_matches_the_whole_image_with_real_margins(parts, sharp_featd, tile, margin, tolerance):
    """Tiles smaller than the image, with margins cut off again: interior, border and partial tiles (160 x 224 is
    a multiple of 32, so the whole image's maps fall on the same grid as the tiles', but not of 64)."""
    encoder, _, lpp = parts
    x = image(1, 3, 160, 224, seed=1)
    with torch.no_grad():
        whole_map = torch.sigmoid(sharp_featd(*encoder(x, with_output=False)[:3]))
    assert whole_map.std() > 0.1
    tiled = SFDIQA(encoder, sharp_featd, lpp, max_pixels=32 * 32, tile=tile, tile_margin=margin)
    got = tiled.parts(x, need_lp=False)["map_mean"].item()
    assert got == pytest.approx(whole_map.mean().item(), abs=tolerance)


def test_baseline_needs_no_trained_parts(parts):
    encoder = parts[0]
    model = SFDIQA(encoder)
    assert model(image(1, 3, 64, 64), "baseline").shape == (1,)
    with pytest.raises(ValueError, match="needs the trained Feat-D and LPP"):
        model(image(1, 3, 64, 64), "full")


def test_checkpoint_round_trip(parts, tmp_path):
    encoder, featd, lpp = parts
    with torch.no_grad():
        lpp.ctx.add_(0.01)  # not the init, so a reload from the init sentence would not pass
    path = tmp_path / "sfd_iqa.safetensors"
    save_sfd_iqa(path, encoder, featd, lpp, prompt_logit_scale=50.0)
    with safe_open(str(path), framework="pt") as f:
        meta, keys = f.metadata(), set(f.keys())
    assert meta["format"] == "sfd-iqa" and meta["clip_arch"] == TINY_ARCH and meta["clip_weights"] == "none"
    assert json.loads(meta["featd_widths"]) == list(WIDTHS) and meta["n_ctx"] == "8"
    assert float(meta["prompt_logit_scale"]) == 50.0
    assert "lpp.ctx" in keys and all(k.startswith(("featd.", "lpp.")) for k in keys)

    loaded = load_sfd_iqa(path, alpha1=0.5, alpha2=0.5)
    assert loaded.prompt_logit_scale == 50.0
    x = image(1, 3, 64, 72, seed=2)
    expected = SFDIQA(encoder, featd, lpp, prompt_logit_scale=50.0).scores(x)
    got = loaded.scores(x)
    for v in VARIANTS:
        assert torch.allclose(got[v], expected[v], rtol=1e-5, atol=1e-8)


def test_checkpoint_errors(parts, tmp_path):
    encoder, featd, lpp = parts
    good = tmp_path / "good.safetensors"
    save_sfd_iqa(good, encoder, featd, lpp, prompt_logit_scale=100.0)
    state, meta = load_state_dict(good)

    save_state_dict(tmp_path / "plain.safetensors", state)  # no metadata: e.g. some other network's weights
    with pytest.raises(CheckpointError, match="not an SFD-IQA checkpoint"):
        load_sfd_iqa(tmp_path / "plain.safetensors")
    save_state_dict(tmp_path / "wide.safetensors", state, {**meta, "featd_widths": "[64, 32, 16, 16]"})
    with pytest.raises(CheckpointError, match="does not fit FeatD"):
        load_sfd_iqa(tmp_path / "wide.safetensors")
    save_state_dict(tmp_path / "nometa.safetensors", state, {"format": "sfd-iqa"})
    with pytest.raises(CheckpointError, match="incomplete or invalid SFD-IQA metadata"):
        load_sfd_iqa(tmp_path / "nometa.safetensors")
    (tmp_path / "text.pth").write_text("not weights")
    with pytest.raises(CheckpointError, match="not a weights-only checkpoint"):
        load_sfd_iqa(tmp_path / "text.pth")


def test_missing_clip_file_named_by_the_checkpoint(parts, tmp_path, monkeypatch):
    encoder, featd, lpp = parts
    path = tmp_path / "sfd_iqa.safetensors"
    save_sfd_iqa(path, encoder, featd, lpp, prompt_logit_scale=100.0)
    state, meta = load_state_dict(path)
    save_state_dict(path, state, {**meta, "clip_weights": "data/weights/clip/clip_tiny.safetensors"})
    monkeypatch.chdir(tmp_path)
    with pytest.raises(CheckpointError) as err:
        load_sfd_iqa(path)
    message = str(err.value)
    assert "CLIP weights file" in message and "data/weights/clip/clip_tiny.safetensors" in message
    assert "relative to the current directory" in message and "--clip-weights" in message
    assert load_sfd_iqa(path, clip_weights="none").encoder.random_weights  # the override needs no such file
