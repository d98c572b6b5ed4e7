"""Eq. 1-7 and the VGG19 feature extractor."""
import math

import pytest
import torch
from torch import nn

from pipeline.archs.clip_encoder import TINY_ARCH, CLIPEncoder
from pipeline.archs.featd import FeatD
from pipeline.archs.lpp import LearnablePromptPairs
from pipeline.archs.vgg19 import VGG19Features
from pipeline.checkpoint import CheckpointError, save_state_dict
from pipeline.losses import (
    VGG_LAYER_WEIGHTS,
    loss_d_fea,
    loss_d_ragan,
    loss_d_tg,
    loss_g_fea,
    loss_g_ragan,
    loss_g_tg,
    loss_percep,
    loss_total,
    prompt_pair_score,
)

LAMBDAS = {"lambda1": 1.0, "lambda2": 1.0, "lambda3": 0.1, "lambda4": 0.1}


@pytest.fixture(scope="module")
def encoder():
    return CLIPEncoder(TINY_ARCH, "none")


@pytest.fixture(scope="module")
def vgg():
    return VGG19Features("none")


class MustNotRun(nn.Module):
    def forward(self, *args, **kwargs):
        raise AssertionError("this network must not run when its loss weight is 0")


def test_prompt_pair_score_by_hand():
    f_img = torch.tensor([[3.0, 4.0]])  # cosines: 0.6 with f_pos, 0.8 with f_neg
    f_pos, f_neg = torch.tensor([1.0, 0.0]), torch.tensor([0.0, 2.0])
    s1 = prompt_pair_score(f_img, f_pos, f_neg, logit_scale=1.0)
    s100 = prompt_pair_score(f_img, f_pos, f_neg, logit_scale=100.0)
    assert s1.item() == pytest.approx(math.exp(0.6) / (math.exp(0.6) + math.exp(0.8)), rel=1e-6)
    assert s100.item() == pytest.approx(1 / (1 + math.exp(20.0)), rel=1e-4)
    swapped = prompt_pair_score(f_img, f_neg, f_pos, logit_scale=1.0)
    assert (s1 + swapped).item() == pytest.approx(1.0)


def test_feat_d_losses_by_hand_and_signs():
    zeros = torch.zeros(2, 1, 4, 4)
    assert loss_d_fea(zeros, zeros).item() == pytest.approx(2 * math.log(2))
    assert loss_g_fea(zeros).item() == pytest.approx(math.log(2))
    separated = loss_d_fea(zeros + 3, zeros - 3).item()
    assert separated == pytest.approx(2 * math.log1p(math.exp(-3)), rel=1e-5)
    assert separated < 2 * math.log(2) < loss_d_fea(zeros - 3, zeros + 3).item()
    logits_sr = zeros.clone().requires_grad_()
    loss_g_fea(logits_sr).backward()
    assert (logits_sr.grad < 0).all()  # descending G's loss raises D's score of SR



def softplus(x: float) -> float:
    return math.log1p(math.exp(x))


def test_relativistic_gan_losses_by_hand():
    """ESRGAN's RaGAN: means hr 1, sr -1; BCE(x, 1) = softplus(-x), BCE(x, 0) = softplus(x)."""
    hr, sr = torch.tensor([2.0, 0.0, 1.0]), torch.tensor([0.0, -3.0, 0.0])
    d_real = sum(softplus(-(h + 1)) for h in (2, 0, 1)) / 3  # hr - mean(sr) against 1
    d_fake = sum(softplus(s - 1) for s in (0, -3, 0)) / 3  # sr - mean(hr) against 0
    assert loss_d_ragan(hr, sr).item() == pytest.approx(0.5 * d_real + 0.5 * d_fake, rel=1e-6)
    g_real = sum(softplus(h + 1) for h in (2, 0, 1)) / 3  # hr - mean(sr) against 0
    g_fake = sum(softplus(-(s - 1)) for s in (0, -3, 0)) / 3  # sr - mean(hr) against 1
    assert loss_g_ragan(hr, sr).item() == pytest.approx((g_real + g_fake) / 2, rel=1e-6)
    assert loss_d_ragan(hr, sr) < loss_d_ragan(sr, hr) and loss_g_ragan(sr, hr) < loss_g_ragan(hr, sr)

    # the means are constants: D's real term alone reaches the HR logits, and G's loss never does
    hr_d, sr_d = hr.clone().requires_grad_(), sr.clone().requires_grad_()
    loss_d_ragan(hr_d, sr_d).backward()
    torch.testing.assert_close(hr_d.grad, -0.5 * torch.sigmoid(-(hr + 1)) / 3)
    torch.testing.assert_close(sr_d.grad, 0.5 * torch.sigmoid(sr - 1) / 3)
    hr_g, sr_g = hr.clone().requires_grad_(), sr.clone().requires_grad_()
    loss_g_ragan(hr_g, sr_g).backward()
    assert hr_g.grad is None and (sr_g.grad < 0).all()

def test_tg_losses_by_hand_and_clamped():
    s_hr, s_sr = torch.tensor([0.8]), torch.tensor([0.3])
    assert loss_d_tg(s_hr, s_sr).item() == pytest.approx(-math.log(0.8) - math.log(0.7), rel=1e-6)
    assert loss_g_tg(s_sr).item() == pytest.approx(-math.log(0.3), rel=1e-6)
    assert loss_g_tg(torch.tensor([0.0])).item() == pytest.approx(-math.log(1e-6), rel=1e-4)
    assert math.isfinite(loss_d_tg(torch.tensor([0.0]), torch.tensor([1.0])).item())


def test_discriminators_learn_to_separate_and_generator_fools_them(encoder):
    """A toy GAN: smooth 'HR' vs noisy 'SR' images; D's losses fall, then G's step raises D's score of SR."""
    torch.manual_seed(0)
    base = torch.rand(2, 3, 8, 8).repeat_interleave(8, -1).repeat_interleave(8, -2)  # blocky 64 x 64
    hr, sr = base, (base + 0.3 * torch.randn_like(base)).clamp(0, 1)
    with torch.no_grad():
        f_hr, f_sr = encoder(hr), encoder(sr)
    featd, lpp = FeatD(encoder.mid_channels, (32, 32, 16, 16)), LearnablePromptPairs(encoder, n_ctx=4)
    opt = torch.optim.Adam([*featd.parameters(), *lpp.parameters()], lr=2e-3)
    fea_losses, tg_losses = [], []
    for _ in range(6):
        f_pos, f_neg = lpp(encoder)
        l_fea = loss_d_fea(featd(*f_hr[:3]), featd(*f_sr[:3]))
        l_tg = loss_d_tg(prompt_pair_score(f_hr.out, f_pos, f_neg, 1.0), prompt_pair_score(f_sr.out, f_pos, f_neg, 1.0))
        opt.zero_grad()
        (l_fea + l_tg).backward()
        opt.step()
        fea_losses.append(l_fea.item())
        tg_losses.append(l_tg.item())
    assert fea_losses[-1] < fea_losses[0] and tg_losses[-1] < tg_losses[0]

    featd.requires_grad_(False)
    img = sr.clone().requires_grad_()
    g_opt = torch.optim.Adam([img], lr=1e-2)
    scores = []
    for _ in range(3):
        feats = encoder(img)
        loss = loss_g_fea(featd(*feats[:3]))
        scores.append(-loss.item())
        g_opt.zero_grad()
        loss.backward()
        g_opt.step()
    assert scores[-1] > scores[0]


def test_vgg_features_are_pre_relu_and_frozen(vgg):
    x = torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    feats = vgg(x)
    assert {k: tuple(v.shape) for k, v in feats.items()} == {
        "conv1_2": (1, 64, 32, 32), "conv2_2": (1, 128, 16, 16), "conv3_4": (1, 256, 8, 8),
        "conv4_4": (1, 512, 4, 4), "conv5_4": (1, 512, 2, 2)}
    assert all((v < 0).any() for v in feats.values())  # taken before the ReLU
    assert len(vgg.features) == 35  # truncated after conv5_4
    vgg.train()
    assert not vgg.training and not any(p.requires_grad for p in vgg.parameters())


def test_vgg_weights_from_a_file_and_offline_error(tmp_path, monkeypatch):
    state = {f"features.{k}": v + 1 for k, v in VGG19Features("none").features.state_dict().items()}
    state["classifier.0.weight"] = torch.zeros(2, 2)  # torchvision files hold the classifier too: ignored
    save_state_dict(tmp_path / "vgg19.safetensors", state)
    loaded = VGG19Features(str(tmp_path / "vgg19.safetensors"))
    assert torch.equal(loaded.features[34].weight, state["features.34.weight"])

    def offline(*args, **kwargs):
        raise OSError("no network")
    monkeypatch.setattr("torchvision.models.VGG19_Weights.IMAGENET1K_V1.get_state_dict", offline, raising=False)
    with pytest.raises(CheckpointError, match="ImageNet VGG19 weights.*no network"):
        VGG19Features("imagenet")


def test_perceptual_loss_layer_weights(vgg):
    g = torch.Generator().manual_seed(1)
    sr, hr = torch.rand(1, 3, 32, 32, generator=g), torch.rand(1, 3, 32, 32, generator=g)
    assert loss_percep(vgg, hr, hr).item() == 0.0
    f_sr, f_hr = vgg(sr), vgg(hr)
    expected = sum(w * (f_sr[k] - f_hr[k]).abs().mean() for k, w in VGG_LAYER_WEIGHTS.items())
    assert loss_percep(vgg, sr, hr).item() == pytest.approx(expected.item(), rel=1e-5)
    assert list(VGG_LAYER_WEIGHTS.values()) == [0.1, 0.1, 1.0, 1.0, 1.0]


def test_total_loss_combines_the_terms(encoder, vgg):
    torch.manual_seed(0)
    featd, lpp = FeatD(encoder.mid_channels, (32, 32, 16, 16)).eval(), LearnablePromptPairs(encoder, n_ctx=4)
    sr, hr = torch.rand(1, 3, 64, 64).requires_grad_(), torch.rand(1, 3, 64, 64)
    text = lpp(encoder)
    total, parts = loss_total(sr, hr, LAMBDAS, vgg=vgg, encoder=encoder, featd=featd, text_features=text)
    feats = encoder(sr)
    assert parts["l1"].item() == pytest.approx((sr - hr).abs().mean().item(), rel=1e-6)
    assert parts["percep"].item() == pytest.approx(loss_percep(vgg, sr, hr).item(), rel=1e-5)
    assert parts["g_fea"].item() == pytest.approx(loss_g_fea(featd(*feats[:3])).item(), rel=1e-5)
    assert parts["g_tg"].item() == pytest.approx(loss_g_tg(prompt_pair_score(feats.out, *text)).item(), rel=1e-5)
    expected = parts["l1"] + parts["percep"] + 0.1 * parts["g_fea"] + 0.1 * parts["g_tg"]
    assert total.item() == pytest.approx(expected.item(), rel=1e-6)
    total.backward()
    assert sr.grad.abs().sum() > 0 and lpp.ctx.grad is None  # Eq. 6 does not train the prompts


def test_zero_weights_skip_their_networks(encoder):
    sr, hr = torch.rand(1, 3, 64, 64), torch.rand(1, 3, 64, 64)
    only_l1 = {"lambda1": 1.0, "lambda2": 0.0, "lambda3": 0.0, "lambda4": 0.0}
    total, parts = loss_total(sr, hr, only_l1, vgg=MustNotRun(), encoder=MustNotRun(), featd=MustNotRun())
    assert set(parts) == {"l1"} and total.item() == pytest.approx((sr - hr).abs().mean().item())

    featd = FeatD(encoder.mid_channels, (32, 32, 16, 16)).eval()  # eval: no spectral-norm power step per call
    feats = encoder(sr)
    no_tg = {"lambda1": 0.0, "lambda2": 0.0, "lambda3": 1.0, "lambda4": 0.0}
    total, parts = loss_total(sr, hr, no_tg, encoder=MustNotRun(), featd=featd, sr_feats=feats)
    assert set(parts) == {"g_fea"} and total.item() == pytest.approx(loss_g_fea(featd(*feats[:3])).item())
    with pytest.raises(ValueError, match="all of lambda1..lambda4 are 0"):
        loss_total(sr, hr, dict.fromkeys(only_l1, 0.0))
    with pytest.raises(ValueError, match="needs the VGG19"):
        loss_total(sr, hr, {**only_l1, "lambda2": 1.0})
