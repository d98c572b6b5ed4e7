"""The training steps' speed switches keep the numbers of plain fp32 eager, on CPU-sized inputs.

On CUDA the fast path is bf16 autocast + channels_last + torch.compile + fused Adam. Here the switches are forced
on for the CPU (a subclass with `fast_devices = ("cpu",)`), except compile: inductor needs minutes on this CPU for
the tiny networks. (Checked by hand instead: with the `aot_eager` backend, dynamo + AOTAutograd, the sfd, esrgan and
real-world steps match eager to about 1e-5 in the losses and 1e-7 in the weights after three or four steps.)

Tolerances:
- fp32 with channels_last and fused Adam: only the summation order changes. Losses agree to 1e-4 relative (the
  image discriminator's BatchNorm turns 1e-7 into 2e-5). Adam's first steps move each weight by about lr times
  the sign of its gradient, so the few weights whose gradient is near 0 may move the other way: the weight
  updates after the steps must agree to 1e-2 of their norm (measured: 4e-3 at most, from 3 of 65536 weights).
- bf16 autocast: bf16 keeps 8 significant bits, so features and losses carry about 1e-2 relative error: 2e-2 for
  the pixel, perceptual and Feat-D terms, 5e-2 for the image discriminator (its BatchNorm of the real and the fake
  batch makes the loss a difference of large terms); the TG-D terms pass CLIP cosines through a x100 logit
  scale, so they get 0.3 absolute on losses of order 1. Gradients at the first step (same weights): cosine to
  fp32 >= 0.999 for the generator and Feat-D, >= 0.99 for the prompt context, >= 0.8 for the image
  discriminator (measured about 0.91: see above).
"""
import copy
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
import yaml
from torch import nn

from pipeline.archs.clip_encoder import TINY_ARCH, CLIPEncoder
from pipeline.archs.featd import FeatD
from pipeline.archs.lpp import LearnablePromptPairs
from pipeline.archs.rrdbnet import RRDBNet
from pipeline.data.degradation import PairPool, RealESRGANDegradation
from pipeline.sfd_iqa import SFDIQA
from pipeline.train_step import SWITCHES, GANStep, PSNRStep, degradation_seed, unwrap
from pipeline.trainer import to_host

MODEL = {"rrdbnet": {"num_feat": 8, "num_block": 1, "num_grow_ch": 4}, "clip": {"arch": TINY_ARCH, "weights": "none"},
         "vgg19": {"weights": "none"}, "featd": {"widths": [16, 16, 8, 8]}, "lpp": {"n_ctx": 4},
         "image_d": {"num_feat": 8}, "prompt_logit_scale": 100.0, "scale": 4}
LAMBDAS = {"lambda1": 1.0, "lambda2": 1.0, "lambda3": 0.1, "lambda4": 0.1, "image_gan_weight": 0.005}
PATCH = 64  # the image discriminator's last map is 2 x 2: smaller patches leave its BatchNorm almost no samples
CFG = {"lr": 1.0e-4, "betas": [0.9, 0.99], "gamma": 0.5, "milestones": [100], "patch": PATCH, "compile": False}
STEPS = 2

BF16_RTOL = {"l1": 2e-2, "g_l1": 2e-2, "g_percep": 2e-2, "g_fea": 2e-2, "d_fea": 2e-2, "g_img": 5e-2, "d_img": 5e-2}
BF16_ATOL = {"g_tg": 0.3, "d_tg": 0.3, "lpp_hr": 0.1, "lpp_sr": 0.1, "d_hr": 0.02, "d_sr": 0.02}
GRAD_COS = {"g": 0.999, "featd": 0.999, "lpp": 0.99, "image_d": 0.8}


class FastGANStep(GANStep):
    fast_devices = ("cpu",)


class FastPSNRStep(PSNRStep):
    fast_devices = ("cpu",)


def build(variant: str, fast: bool, **cfg):
    torch.manual_seed(0)
    generator, cfg = RRDBNet(**MODEL["rrdbnet"]), {**CFG, **cfg}
    if variant == "psnr":
        return (FastPSNRStep if fast else PSNRStep)(generator, cfg, torch.device("cpu"))
    return (FastGANStep if fast else GANStep)(variant, generator, MODEL, LAMBDAS, cfg, torch.device("cpu"))


def batches() -> list[dict]:
    g = torch.Generator().manual_seed(1)
    return [{"lr": torch.rand(2, 3, PATCH // 4, PATCH // 4, generator=g),
             "hr": torch.rand(2, 3, PATCH, PATCH, generator=g)} for _ in range(STEPS)]


def trained_state(step) -> dict[str, torch.Tensor]:
    return {f"{n}.{k}": v for n in step.optims for k, v in unwrap(step.nets[n]).state_dict().items()
            if v.is_floating_point()}


def grad_cosine(ref, fast, name: str) -> float:
    def flat(step):
        return torch.cat([p.grad.flatten() for p in unwrap(step.nets[name]).parameters() if p.grad is not None])
    return F.cosine_similarity(flat(ref), flat(fast), dim=0).item()


def test_switches_stay_off_on_cpu(monkeypatch):
    def no_compile(self, *args, **kwargs):
        raise AssertionError("torch.compile must not run on the CPU by default")

    monkeypatch.setattr(nn.Module, "compile", no_compile)
    step = build("sfd", fast=False, compile=True, bf16=True, channels_last=True)
    assert step.switches == {k: False for k in SWITCHES}
    assert not step.optims["g"].defaults["fused"]
    assert step.g.conv_first.weight.is_contiguous()  # not channels_last
    with step.autocast():
        assert not torch.is_autocast_enabled("cpu")
    assert build("sfd", fast=True, compile=False).switches == {"bf16": True, "channels_last": True,
                                                                 "compile": False, "fused_adam": True}


@pytest.mark.parametrize("variant", ["sfd", "psnr"])
def test_compile_mode_reaches_every_network_and_each_step_marks_cudagraphs(monkeypatch, variant):
    modes, marks = [], []
    monkeypatch.setattr(nn.Module, "compile", lambda self, mode=None: modes.append((type(self).__name__, mode)))
    monkeypatch.setattr(torch.compiler, "cudagraph_mark_step_begin", lambda: marks.append(1))
    step = build(variant, fast=True, compile=True, compile_mode="reduce-overhead")
    expected = {"RRDBNet"} | ({"VGG19Features", "CLIPEncoder", "FeatD", "LearnablePromptPairs"} if variant == "sfd"
                              else set())
    assert {name for name, _ in modes} == expected and {mode for _, mode in modes} == {"reduce-overhead"}
    for i, batch in enumerate(batches(), start=1):
        assert step.step(batch, i)["skipped"] == 0
    assert len(marks) == STEPS  # outputs of the last iteration's graphs may be overwritten from each step on


@pytest.mark.parametrize("variant", ["sfd", "esrgan", "psnr"])
def test_channels_last_and_fused_adam_are_exact(variant):
    ref, fast = build(variant, fast=False), build(variant, fast=True, bf16=False)
    assert fast.switches["channels_last"] and fast.switches["fused_adam"] and not fast.switches["bf16"]
    assert fast.g.conv_first.weight.is_contiguous(memory_format=torch.channels_last)
    for i, batch in enumerate(batches(), start=1):
        logs_ref, logs_fast = to_host(ref.step(batch, i)), to_host(fast.step(batch, i))
        assert logs_fast.keys() == logs_ref.keys()
        for key in logs_ref:
            assert logs_fast[key] == pytest.approx(logs_ref[key], rel=1e-4, abs=1e-7), (i, key)
    start, a, b = trained_state(build(variant, fast=False)), trained_state(ref), trained_state(fast)
    for name in ref.optims:
        keys = [k for k in start if k.startswith(f"{name}.")]
        update_ref = torch.cat([(a[k] - start[k]).flatten() for k in keys])
        update_fast = torch.cat([(b[k] - start[k]).flatten() for k in keys])
        assert update_ref.norm() > 0
        assert (update_fast - update_ref).norm() <= 1e-2 * update_ref.norm(), name


def check_bf16_logs(logs_ref: dict, logs_fast: dict, where) -> None:
    assert logs_fast.keys() == logs_ref.keys()
    for key, value in logs_ref.items():
        if key in BF16_RTOL:
            assert logs_fast[key] == pytest.approx(value, rel=BF16_RTOL[key]), (where, key)
        elif key in BF16_ATOL:
            assert logs_fast[key] == pytest.approx(value, abs=BF16_ATOL[key]), (where, key)
        else:
            assert key in ("lr", "skipped") and logs_fast[key] == value


@pytest.mark.parametrize("variant", ["sfd", "esrgan", "psnr"])
def test_bf16_autocast_matches_fp32_within_tolerance(variant):
    ref, fast = build(variant, fast=False), build(variant, fast=True)
    assert fast.switches["bf16"]
    for i, batch in enumerate(batches(), start=1):
        check_bf16_logs(to_host(ref.step(batch, i)), to_host(fast.step(batch, i)), i)
        if i == 1:  # same weights: the gradients themselves must agree
            for name in ref.optims:
                assert grad_cosine(ref, fast, name) >= GRAD_COS[name], name


def test_logs_are_the_loss_values():
    step = build("psnr", fast=False)
    step.optims["g"].step()  # no gradients: changes nothing, but the scheduler expects it before its own step
    step.skip = torch.tensor(1.0)  # as a skipped iteration leaves it
    logs = step.finish({"a": torch.tensor(1.5), "b": torch.tensor(-2.25, dtype=torch.bfloat16)})
    assert to_host(logs) == {"a": 1.5, "b": -2.25, "skipped": 1.0, "lr": CFG["lr"]}


def test_the_logged_lr_is_the_one_the_step_used():
    """MultiStepLR halves the lr after the 2nd step: the 2nd step still ran at the initial lr."""
    step = build("psnr", fast=False, milestones=[2])
    logged = [to_host(step.step(batch, i))["lr"] for i, batch in enumerate(batches() * 2, start=1)]
    assert logged == [CFG["lr"], CFG["lr"], CFG["lr"] / 2, CFG["lr"] / 2]


def host_read(*args, **kwargs):
    raise AssertionError("the step read a device value on the host")


@pytest.mark.parametrize("fused", [True, False])
@pytest.mark.parametrize("variant", ["sfd", "esrgan", "psnr"])
def test_a_nan_batch_changes_nothing(monkeypatch, variant, fused):
    """A non-finite loss leaves every trained network's state dict (weights and buffers: the image
    discriminator's BatchNorm statistics, Feat-D's spectral-norm vectors) and Adam state as it was; with fused Adam
    the step never reads a tensor on the host (which on a GPU would wait for it). The next finite batch trains
    again."""
    step = build(variant, fast=fused, bf16=False)

    def state():
        return {f"{n}.{k}": v.clone() for n in step.optims for k, v in unwrap(step.nets[n]).state_dict().items()}

    good, nan = batches()[0], {k: torch.full_like(v, float("nan")) for k, v in batches()[1].items()}
    assert step.step(good, 1)["skipped"] == 0
    before, adam = state(), copy.deepcopy({k: o.state_dict()["state"] for k, o in step.optims.items()})
    assert variant == "psnr" or any("running_mean" in k or "_u" in k for k in before)
    with monkeypatch.context() as m:
        for name in ("item", "tolist", "__bool__", "__float__") if fused else ():  # plain Adam reads the flag
            m.setattr(torch.Tensor, name, host_read)
        logs = step.step(nan, 2)
    assert logs["skipped"] == 1
    after = state()
    assert before.keys() == after.keys()
    assert [k for k in before if not torch.equal(before[k], after[k])] == []
    for name, opt in step.optims.items():
        states = opt.state_dict()["state"]
        assert adam[name].keys() == states.keys()
        for i, s in states.items():
            assert all(torch.equal(adam[name][i][k], s[k]) for k in s), (name, i)
    if variant == "esrgan":  # eval mode reads the running statistics (the t-SNE figure)
        image_d = unwrap(step.image_d).eval()
        assert torch.isfinite(image_d(good["hr"])).all()
        image_d.train()
    assert step.step(good, 3)["skipped"] == 0
    assert all(not torch.equal(before[k], v) for k, v in state().items() if k.endswith("conv_first.weight"))


@pytest.mark.parametrize("variant, weight", [("featd", "lambda3"), ("tgd", "lambda4"), ("sfd", "lambda3"),
                                             ("sfd", "lambda4"), ("esrgan", "image_gan_weight")])
def test_a_variant_without_its_adversarial_weight_is_refused(variant, weight):
    with pytest.raises(ValueError, match=f"variant {variant} trains .*: {weight} must be > 0"):
        GANStep(variant, RRDBNet(**MODEL["rrdbnet"]), MODEL, {**LAMBDAS, weight: 0.0}, CFG, torch.device("cpu"))
    other = "sfd" if variant == "esrgan" else "esrgan"  # a variant that does not read `weight`
    GANStep(other, RRDBNet(**MODEL["rrdbnet"]), MODEL, {**LAMBDAS, weight: 0.0}, CFG, torch.device("cpu"))


def test_each_ddp_rank_draws_its_own_degradation():
    """Real-world pairs: rank 0 (and a single process) keep the seeds they had; rank 1 degrades differently."""
    assert degradation_seed(3, 7, rank=0) == 3 * 1_000_003 + 7
    degradation = yaml.safe_load((Path(__file__).resolve().parents[1] / "params.yaml").read_text())["degradation"]
    torch.manual_seed(0)
    step = GANStep("esrgan", RRDBNet(**MODEL["rrdbnet"]), MODEL, LAMBDAS, CFG, torch.device("cpu"),
                   RealESRGANDegradation(degradation), seed=3)
    hr = torch.rand(2, 3, 96, 96, generator=torch.Generator().manual_seed(4))
    pairs = {}
    for rank in (0, 1):
        step.rank, step.pool = rank, PairPool(4)  # a filling pool passes the batch through
        pairs[rank] = step.make_pair({"hr": hr}, 7)
    assert not torch.equal(pairs[0][0], pairs[1][0]) and not torch.equal(pairs[0][1], pairs[1][1])


def test_sfd_iqa_reuses_the_lpp_features_until_the_context_changes():
    torch.manual_seed(0)
    encoder = CLIPEncoder(TINY_ARCH, "none")
    featd, lpp = FeatD(encoder.mid_channels, (16, 16, 8, 8)), LearnablePromptPairs(encoder, n_ctx=4)
    model = SFDIQA(encoder, featd, lpp)
    calls = []
    lpp.register_forward_hook(lambda *args: calls.append(1))
    x = torch.rand(2, 3, 64, 96, generator=torch.Generator().manual_seed(2))

    def uncached() -> torch.Tensor:  # a fresh model computes the LPP features anew
        return SFDIQA(encoder, featd, lpp)(x)

    first = model(x)
    assert torch.equal(model(x), first) and len(calls) == 1
    torch.testing.assert_close(first, uncached(), rtol=0, atol=0)
    with torch.no_grad():
        lpp.ctx.mul_(1.5)  # as an optimiser step changes it: in place
    changed = model(x)
    assert len(calls) == 3  # the first pass, the fresh model's, this one
    torch.testing.assert_close(changed, uncached(), rtol=0, atol=0)
    assert not torch.allclose(changed, first)
