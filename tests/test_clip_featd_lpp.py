"""The frozen CLIP encoder, Feat-D and the learnable prompt pairs (tiny CLIP config, random weights)."""
import open_clip
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from pipeline.archs.clip_encoder import RANDOM_SEED, TINY_ARCH, CLIPEncoder, resize_position_table
from pipeline.archs.featd import FeatD
from pipeline.archs.lpp import LearnablePromptPairs
from pipeline.checkpoint import CheckpointError, save_state_dict
from pipeline.losses import loss_d_fea, loss_d_tg, prompt_pair_score

WIDTHS = (32, 32, 16, 16)


@pytest.fixture(scope="module")
def encoder():
    return CLIPEncoder(TINY_ARCH, "none")


def open_clip_reference() -> nn.Module:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(RANDOM_SEED)
        return open_clip.create_model(TINY_ARCH).eval()


@pytest.mark.parametrize("size", [224, 256])
def test_feature_shapes(encoder, size):
    feats = encoder(torch.rand(2, 3, size, size, generator=torch.Generator().manual_seed(0)))
    assert encoder.mid_channels == (64, 128, 256)
    assert feats.m1.shape == (2, 64, size // 4, size // 4)
    assert feats.m2.shape == (2, 128, size // 8, size // 8)
    assert feats.m3.shape == (2, 256, size // 16, size // 16)
    assert feats.out.shape == (2, encoder.embed_dim)
    assert torch.isfinite(feats.out).all()


def test_rn50_channels_and_interpolated_pool():
    encoder = CLIPEncoder("RN50-quickgelu", "none")
    feats = encoder(torch.rand(1, 3, 64, 96, generator=torch.Generator().manual_seed(0)))
    assert encoder.mid_channels == (256, 512, 1024) and encoder.embed_dim == 1024
    assert [tuple(f.shape) for f in feats] == [(1, 256, 16, 24), (1, 512, 8, 12), (1, 1024, 4, 6), (1, 1024)]


def test_native_size_matches_open_clip():
    """With `interpolate` at 224 px nothing is resized: F_out is open_clip's encode_image of the CLIP-normalised
    input."""
    encoder = CLIPEncoder(TINY_ARCH, "none", position="interpolate")
    reference = open_clip_reference()
    x = torch.rand(2, 3, 224, 224, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        expected = reference.encode_image((x - encoder.mean) / encoder.std)
        assert torch.allclose(encoder(x).out, expected, atol=1e-5)
        prompts = ["Good photo.", "Bad photo."]
        assert torch.allclose(encoder.encode_text(prompts), reference.encode_text(encoder.tokenizer(prompts)),
                              atol=1e-5)


def test_random_weights_are_the_same_in_every_build(encoder):
    other = CLIPEncoder(TINY_ARCH, "none")
    assert encoder.random_weights and "random" in encoder.weights_description
    assert all(torch.equal(a, b) for a, b in zip(encoder.state_dict().values(), other.state_dict().values()))


def test_fixed_prompt_features_are_cached(encoder):
    calls = []
    handle = encoder.transformer.register_forward_hook(lambda *_: calls.append(1))
    try:
        first = encoder.encode_text(["a cached prompt", "another"])
        second = encoder.encode_text(["a cached prompt", "another"])
    finally:
        handle.remove()
    assert len(calls) == 1 and torch.equal(first, second)


def test_frozen_eval_and_gradient_reaches_the_image(encoder):
    parent = nn.ModuleDict({"clip": encoder, "featd": FeatD(encoder.mid_channels, WIDTHS)})
    parent.train()
    assert parent["featd"].training
    assert not any(m.training for m in encoder.modules())
    assert not any(p.requires_grad for p in encoder.parameters())
    x = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(2), requires_grad=True)
    feats = encoder(x)
    (feats.out.square().sum() + feats.m1.mean()).backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    assert all(p.grad is None for p in encoder.parameters())


def test_local_weights_file_and_errors(encoder, tmp_path):
    path = tmp_path / "clip.safetensors"
    state = {k: v + 1 for k, v in open_clip_reference().state_dict().items()}
    save_state_dict(path, state)
    loaded = CLIPEncoder(TINY_ARCH, str(path))
    assert torch.equal(loaded.visual.conv1.weight, state["visual.conv1.weight"])
    assert not loaded.random_weights and loaded.weights_description == "file clip.safetensors"
    save_state_dict(tmp_path / "partial.safetensors", {"visual.conv1.weight": state["visual.conv1.weight"]})
    with pytest.raises(CheckpointError, match="missing keys"):
        CLIPEncoder(TINY_ARCH, str(tmp_path / "partial.safetensors"))
    with pytest.raises(ValueError, match="only for RN50-quickgelu"):
        CLIPEncoder(TINY_ARCH, "openai")


def test_clip_file_is_accepted_exactly_when_open_clip_accepts_it(tmp_path):
    """Converted files often lack BatchNorm's num_batches_tracked: open_clip loads them, so must we; an extra
    key open_clip refuses, we refuse too."""
    state = {k: v + 1 for k, v in open_clip_reference().state_dict().items()}
    lean = {k: v for k, v in state.items() if not k.endswith("num_batches_tracked")}
    assert len(lean) < len(state)
    save_state_dict(tmp_path / "lean.safetensors", lean)
    loaded = CLIPEncoder(TINY_ARCH, str(tmp_path / "lean.safetensors"))
    assert torch.equal(loaded.visual.layer1[0].bn1.running_mean, state["visual.layer1.0.bn1.running_mean"])
    save_state_dict(tmp_path / "extra.safetensors", {**state, "visual.extra.weight": torch.zeros(1)})
    with pytest.raises(CheckpointError, match="unexpected keys.*visual.extra.weight"):
        CLIPEncoder(TINY_ARCH, str(tmp_path / "extra.safetensors"))


@pytest.mark.parametrize("arch, message", [("foo", "unknown CLIP model 'foo'"),
                                           ("ViT-B-32", "'ViT-B-32' has no ModifiedResNet image tower")])
def test_unusable_clip_model_is_a_value_error_naming_choices(arch, message):
    with pytest.raises(ValueError, match=message) as err:
        CLIPEncoder(arch, "none")
    assert "RN50-quickgelu" in str(err.value) and TINY_ARCH in str(err.value)


def test_openai_download_failure_is_a_clear_error(monkeypatch):
    def offline(*args, **kwargs):
        raise OSError("no network")
    monkeypatch.setattr(open_clip, "create_model", offline)
    with pytest.raises(CheckpointError, match="cannot get the OpenAI CLIP weights.*no network"):
        CLIPEncoder("RN50-quickgelu", "openai")


@pytest.mark.parametrize("hw", [(768, 1024), (224, 224)])
def test_default_pool_is_clip_iqas_without_position_embedding(encoder, hw):
    """By default F_out is CLIP-IQA's (pyiqa clipiqa_arch: AttentionPool2d with pos_embedding=False) at any size,
    KonIQ's 1024 x 768 included; `interpolate` differs from it."""
    from pyiqa.archs.clip_model import AttentionPool2d
    pool = encoder.visual.attnpool
    x = torch.rand(1, 3, *hw, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        grid = encoder.visual.layer4(encoder.visual.layer3(encoder.visual.layer2(encoder.visual.layer1(
            encoder.visual.stem((x - encoder.mean) / encoder.std)))))
        reference = AttentionPool2d(7, pool.q_proj.in_features, pool.num_heads, pool.c_proj.out_features).eval()
        reference.load_state_dict(pool.state_dict())
        expected = reference(grid, pos_embedding=False)
        assert encoder.position == "none"
        torch.testing.assert_close(encoder(x).out, expected, rtol=0, atol=1e-5)
        interpolated = CLIPEncoder(TINY_ARCH, "none", position="interpolate")(x).out
        assert (interpolated - expected).abs().max() > 1e-3


def test_unknown_position_is_refused():
    with pytest.raises(ValueError, match="position must be one of"):
        CLIPEncoder(TINY_ARCH, "none", position="drop")


@pytest.mark.parametrize("hw", [(8, 8), (12, 16), (7, 7), (3, 5)])
def test_position_table_resize_is_bicubic_interpolation(hw):
    table = torch.randn(7, 7, 32, generator=torch.Generator().manual_seed(0))
    expected = F.interpolate(table.permute(2, 0, 1)[None], size=hw, mode="bicubic", align_corners=False)[0]
    got = resize_position_table(table, *hw)
    assert got.shape == (*hw, 32)
    torch.testing.assert_close(got, expected.permute(1, 2, 0), rtol=0, atol=1e-5)
    if hw == (7, 7):
        torch.testing.assert_close(got, table, rtol=0, atol=1e-6)


def test_featd_gives_the_same_map_for_either_memory_format(encoder):
    featd = FeatD(encoder.mid_channels, WIDTHS).eval()
    feats = encoder(torch.rand(2, 3, 64, 96, generator=torch.Generator().manual_seed(4)))
    nchw = featd(feats.m1, feats.m2, feats.m3)
    nhwc = featd(*(m.contiguous(memory_format=torch.channels_last) for m in feats[:3]))
    torch.testing.assert_close(nchw, nhwc, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("size", [(64, 64), (97, 75)])
def test_featd_map_is_half_resolution(encoder, size):
    featd = FeatD(encoder.mid_channels, WIDTHS)
    feats = encoder(torch.rand(2, 3, *size, generator=torch.Generator().manual_seed(3)))
    logits = featd(feats.m1, feats.m2, feats.m3)
    h1, w1 = feats.m1.shape[-2:]
    assert logits.shape == (2, 1, 2 * h1, 2 * w1)
    assert featd.forward_features(feats.m1, feats.m2, feats.m3).shape == (2, WIDTHS[-1], 2 * h1, 2 * w1)
    if size == (64, 64):
        assert logits.shape[-2:] == (32, 32)


def test_lpp_starts_at_the_text_features_of_its_init_sentence(encoder):
    lpp = LearnablePromptPairs(encoder, n_ctx=16)
    assert lpp.init_texts[0].endswith("good photo .") and lpp.init_texts[1].endswith("bad photo .")
    assert lpp.ctx.shape == (2, 16, encoder.text_width)
    assert [name for name, _ in lpp.named_parameters()] == ["ctx"]
    f_pos, f_neg = lpp(encoder)
    with torch.no_grad():
        expected = encoder.encode_text(lpp.init_texts)
    assert torch.allclose(f_pos, expected[0], atol=1e-5) and torch.allclose(f_neg, expected[1], atol=1e-5)
    assert torch.allclose(LearnablePromptPairs(encoder, n_ctx=3)(encoder)[0],
                          encoder.encode_text(["Good photo."])[0], atol=1e-5)


def test_lpp_rejects_impossible_context_lengths(encoder):
    with pytest.raises(ValueError, match="n_ctx must lie in"):
        LearnablePromptPairs(encoder, n_ctx=2)
    with pytest.raises(ValueError, match="context length"):
        LearnablePromptPairs(encoder, n_ctx=76)


def test_one_discriminator_step_changes_only_featd_and_lpp(encoder):
    torch.manual_seed(0)
    featd, lpp = FeatD(encoder.mid_channels, WIDTHS), LearnablePromptPairs(encoder, n_ctx=8)
    featd.train(), lpp.train()
    clip_before = {k: v.clone() for k, v in encoder.state_dict().items()}
    buffers_before = {k: v.clone() for k, v in encoder.named_buffers()}
    featd_before = {k: v.detach().clone() for k, v in featd.named_parameters()}
    ctx_before = lpp.ctx.detach().clone()
    optimizer = torch.optim.Adam([*featd.parameters(), *lpp.parameters()], lr=1e-3)

    hr, sr = torch.rand(2, 3, 64, 64), torch.rand(2, 3, 64, 64)
    f_hr, f_sr = encoder(hr), encoder(sr)
    f_pos, f_neg = lpp(encoder)
    loss = (loss_d_fea(featd(*f_hr[:3]), featd(*f_sr[:3]))
            + loss_d_tg(prompt_pair_score(f_hr.out, f_pos, f_neg), prompt_pair_score(f_sr.out, f_pos, f_neg)))
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()

    assert all(torch.equal(v, clip_before[k]) for k, v in encoder.state_dict().items())
    assert all(torch.equal(v, buffers_before[k]) for k, v in encoder.named_buffers())
    assert all(not torch.equal(p, featd_before[k]) for k, p in featd.named_parameters())
    assert not torch.equal(lpp.ctx, ctx_before)
