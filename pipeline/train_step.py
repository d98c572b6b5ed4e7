"""One training iteration of each model the paper trains: the PSNR models (L1; bicubic, or RealESRNet's real-world
one) and the GAN variants of SFD.

Variants (Fig. 8's ablation): `esrgan` (the baseline: BasicSR's VGG-style image discriminator with ESRGAN's
relativistic GAN), `featd` (Feat-D only, Eq. 1-2), `tgd` (TG-D only, Eq. 5-6), `sfd` (both). The generator's loss
is Eq. 7 with the variant's adversarial terms. Per iteration, SFD runs CLIP once on the SR batch with gradients
(for G) and reuses those features, detached, for the discriminators' step; the HR batch's features are computed
without gradients; the LPP's text features are computed once and serve both steps. With `degradation` set (the
real-world models), LR inputs are made on the fly by Real-ESRGAN's second-order pipeline (`Step.real_pair`, its
randomness seeded per iteration and DDP rank) and the L1/perceptual target is the sharpened GT. A skipped step
(non-finite loss) leaves weights, Adam states and the discriminators' buffers as they were.

Speed switches (params of the training sections, each on by default, applied on CUDA only): `bf16` autocast,
`channels_last` memory format, `compile` (torch.compile of every network's forward: generator, VGG19, CLIP's
image tower, Feat-D, the LPP's text pass, the image discriminator; `compile_mode` is torch.compile's mode,
"reduce-overhead" for CUDA graphs), `fused_adam` (Adam's fused kernel) and `cudnn_benchmark`. On the CPU they cost
more than they give (bf16 is emulated on most CPUs, compiling the networks takes minutes), so a CPU run is plain
fp32 eager. `python -m bench` times the steps; tests/test_fast_path.py checks that the switches keep the
numbers. The phases of a GAN step are named profiler ranges (PHASES), which `python -m bench --profile` reports.
With fused Adam a step never waits for the GPU: a non-finite loss skips the update on the device (`Step.update`)
and the logs stay there until the trainer reads them, so the CPU queues the next step while the GPU runs this one.
"""
from __future__ import annotations

import contextlib
import copy

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.profiler import record_function

from pipeline.archs.clip_encoder import CLIPEncoder, CLIPFeatures
from pipeline.archs.featd import FeatD
from pipeline.archs.lpp import LearnablePromptPairs
from pipeline.archs.vgg19 import VGG19Features
from pipeline.archs.vgg_discriminator import VGGStyleDiscriminator
from pipeline.losses import (
    loss_d_fea,
    loss_d_ragan,
    loss_d_tg,
    loss_g_ragan,
    loss_total,
    prompt_pair_score,
    psnr_loss,
)

# The adversarial weights of Eq. 7 each variant uses (besides lambda1, lambda2); stages declare exactly these.
ADVERSARIAL_WEIGHTS = {"esrgan": ("image_gan_weight",), "featd": ("lambda3",), "tgd": ("lambda4",),
                       "sfd": ("lambda3", "lambda4")}
VARIANTS = tuple(ADVERSARIAL_WEIGHTS)
# The fidelity models' pixel losses (cfg `pixel_loss`, L1 when absent) and the name each is logged under: L1 for the
# SR models (ESRGAN, Real-ESRNet), NAFNet's PSNR loss for Table 5's restoration models.
PIXEL_LOSSES = {"l1": (F.l1_loss, "l1"), "psnr": (psnr_loss, "psnr_loss")}
TRAINED_BY = {"lambda3": "Feat-D", "lambda4": "TG-D", "image_gan_weight": "the image discriminator"}
WEIGHTS = ("lambda1", "lambda2", "lambda3", "lambda4", "image_gan_weight")


def variant_lambdas(variant: str, lambdas: dict) -> dict:
    """Eq. 7's weights for a variant: the adversarial terms it does not have are 0 (and so never computed); its
    own must be > 0, or its discriminator would train without a generator term (and the real-world run export no
    SFD-IQA)."""
    if variant not in VARIANTS:
        raise ValueError(f"unknown variant {variant!r}, expected one of {VARIANTS}")
    for key in ADVERSARIAL_WEIGHTS[variant]:
        if not lambdas.get(key, 0) > 0:
            raise ValueError(f"variant {variant} trains {TRAINED_BY[key]}: {key} must be > 0, not {lambdas.get(key)}")
    uses = ("lambda1", "lambda2", *ADVERSARIAL_WEIGHTS[variant])
    return {k: lambdas[k] if k in uses else 0.0 for k in WEIGHTS}


def unwrap(net: nn.Module) -> nn.Module:
    return net.module if isinstance(net, DistributedDataParallel) else net


def adam(params, cfg: dict, fused: bool) -> torch.optim.Adam:
    """Adam as the paper trains (lr 1e-4, betas 0.9/0.99 by default), with the fused kernel if `fused`."""
    return torch.optim.Adam(params, lr=cfg["lr"], betas=tuple(cfg["betas"]), fused=fused)


def nonfinite(loss: torch.Tensor) -> torch.Tensor:
    """1.0 if `loss` is NaN or infinite on any DDP rank, else 0.0 (a 0-d float32 tensor on its device).

    Nothing reads it on the host here: DDP ranks agree through an all-reduce that the host does not wait for."""
    bad = (~torch.isfinite(loss.detach())).any().to(torch.float32).reshape(1)
    if torch.distributed.is_initialized():
        torch.distributed.all_reduce(bad, op=torch.distributed.ReduceOp.MAX)
    return bad.reshape(())


def degradation_seed(seed: int, iteration: int, rank: int) -> int:
    """The seed of an iteration's real-world degradation, crop and pool order. Each DDP rank draws its own, as
    BasicSR seeds each rank; rank 0 keeps a single process's. Distinct for seeds and iterations below 1_000_003."""
    return seed * 1_000_003 + iteration + rank * 1_000_003 ** 2


def multistep(opt, cfg: dict):
    return torch.optim.lr_scheduler.MultiStepLR(opt, milestones=cfg["milestones"], gamma=cfg["gamma"])


SWITCHES = ("bf16", "channels_last", "compile", "fused_adam")
PHASES = ("make_pair", "g_forward", "g_backward", "g_optimizer", "d_forward", "d_backward", "d_optimizer")


class Step:
    """Shared plumbing: device placement, DDP wrapping, the speed switches, the skip of a non-finite step, the
    profiler's ranges, state for checkpoints. A subclass's `step` is the method and nothing else.

    `switches`: which of SWITCHES this step uses: each is on where the device type is in `fast_devices` and the
    cfg key of that name is not false (absent keys count as true).
    """

    fast_devices = ("cuda",)

    def __init__(self, cfg: dict, device: torch.device, degradation=None, pool=None, seed: int = 0):
        self.cfg, self.device = cfg, device
        self.degradation, self.pool, self.seed = degradation, pool, seed
        self.rank = torch.distributed.get_rank() if torch.distributed.is_initialized() else 0
        fast = device.type in self.fast_devices
        self.switches = {k: fast and bool(cfg.get(k, True)) for k in SWITCHES}
        if device.type == "cuda":  # fixed patch sizes: let cuDNN time its algorithms once and keep the fastest
            torch.backends.cudnn.benchmark = bool(cfg.get("cudnn_benchmark", True))
        self.nets: dict[str, nn.Module] = {}
        self.optims: dict[str, torch.optim.Optimizer] = {}
        self.scheds: dict[str, object] = {}
        self.skip: torch.Tensor | None = None  # this iteration's flag: 1.0 once a loss was non-finite
        self.ema: nn.Module | None = None  # the generator's exponential moving average (BasicSR's net_g_ema)

    def add_net(self, name: str, net: nn.Module, trainable: bool = True) -> nn.Module:
        net = net.to(self.device)
        if self.switches["channels_last"]:
            net = net.to(memory_format=torch.channels_last)
        if self.switches["compile"]:  # in place: the module, its state-dict keys and DDP wrapping stay as they are
            net.compile(mode=self.cfg.get("compile_mode", "default"))
        if trainable and torch.distributed.is_initialized():
            net = DistributedDataParallel(net, device_ids=[self.device.index] if self.device.type == "cuda" else None)
        self.nets[name] = net
        return net

    def add_ema(self, net: nn.Module) -> None:
        """Keep an exponential moving average of `net`'s parameters with cfg `ema_decay` (BasicSR and Real-ESRGAN:
        0.999; 0: none), starting from a copy of it; validation and export use it."""
        decay = float(self.cfg.get("ema_decay", 0.0))
        if decay > 0:
            self.ema = copy.deepcopy(net).to(self.device).requires_grad_(False).eval()
            self.ema_decay = decay

    def update_ema(self) -> None:
        """ema <- decay * ema + (1 - decay) * g after the generator's update, not after a skipped one (on the device:
        no host sync)."""
        if self.ema is None:
            return
        weight = (1.0 - self.ema_decay) * (1.0 - self.skip)
        with torch.no_grad():
            for e, p in zip(self.ema.parameters(), unwrap(self.nets["g"]).parameters()):
                e.lerp_(p.detach().to(e.dtype), weight.to(e.dtype))

    def eval_net(self) -> nn.Module:
        """The generator that is validated and exported: the EMA when there is one."""
        return self.ema if self.ema is not None else unwrap(self.nets["g"])

    def add_optim(self, name: str, params) -> None:
        self.optims[name] = adam(params, self.cfg, self.switches["fused_adam"])
        self.scheds[name] = multistep(self.optims[name], self.cfg)

    @contextlib.contextmanager
    def iteration(self, guarded=()):
        """One training iteration. Under compile mode "reduce-overhead" (CUDA graphs) the last one's graph outputs
        may be overwritten from its start. Training forwards move the buffers of the nets `guarded` (BatchNorm
        statistics, spectral norm's vectors): a skipped iteration puts them back, or one NaN batch would leave
        eval-mode BatchNorm NaN for good."""
        if self.switches["compile"]:
            torch.compiler.cudagraph_mark_step_begin()
        self.skip = None
        buffers = [b for name in guarded for b in unwrap(self.nets[name]).buffers()]
        saved = [b.clone() for b in buffers]
        yield
        for buffer, old in zip(buffers, saved):  # on the device: no host sync
            buffer.copy_(torch.where(self.skip.bool(), old, buffer))

    @contextlib.contextmanager
    def frozen(self, *nets: nn.Module | None):
        """The nets' parameters take no gradients inside (a discriminator is a constant of the generator's step)."""
        nets = [net for net in nets if net is not None]
        for net in nets:
            net.requires_grad_(False)
        yield
        for net in nets:
            net.requires_grad_(True)

    def optimize(self, names, loss: torch.Tensor, phase: str) -> None:
        """Backward of `loss` and Adam's step of the optimisers `names`, skipped (and every later update of the
        iteration with it) when a loss of this iteration is non-finite; profiled as `<phase>_backward` and
        `<phase>_optimizer`."""
        bad = nonfinite(loss)
        self.skip = bad if self.skip is None else torch.maximum(self.skip, bad)
        for name in names:
            self.optims[name].zero_grad(set_to_none=True)
        with record_function(f"{phase}_backward"):
            loss.backward()
        with record_function(f"{phase}_optimizer"):
            self.update(names, self.skip)

    def update(self, names, skip: torch.Tensor) -> None:
        """Adam's step for the optimisers `names`, skipped where `skip` (nonfinite's flag) is 1.

        Fused Adam reads the flag on the device (its `found_inf`, the protocol torch.amp.GradScaler drives it
        with: no update, step count kept), so the host never waits for the GPU within a step; plain Adam needs the
        host to decide, which costs nothing on a CPU."""
        optims = [self.optims[name] for name in names]
        if self.switches["fused_adam"]:
            for opt in optims:
                opt.found_inf = skip
                opt.step()
        elif not skip.item():
            for opt in optims:
                opt.step()

    def real_pair(self, batch: dict, iteration: int, sharpened_hr: bool) -> tuple[torch.Tensor, torch.Tensor]:
        """(LR, HR) patches from the HR degradation crops `batch["hr"]` by Real-ESRGAN's on-the-fly pipeline: the
        crop is USM-sharpened and degraded (its randomness seeded per iteration and DDP rank), a random paired
        patch of `patch` px is cut and the pair goes through the pool. The HR patch is cut from the sharpened crop
        with `sharpened_hr` (RealESRNet, gt_usm true: its L1 target), from the crop as it is without (RealESRGAN,
        which sharpens its target after the pool: realesrgan_model.py feed_data)."""
        generator = torch.Generator().manual_seed(degradation_seed(self.seed, iteration, self.rank))
        hr = batch["hr"].to(self.device, non_blocking=True)
        sharp = self.degradation.sharpen(hr)
        lr = self.degradation.degrade(sharp, generator)
        hr = sharp if sharpened_hr else hr
        patch, s = self.cfg["patch"], self.degradation.scale
        lp = patch // s
        y = int(torch.randint(lr.shape[-2] - lp + 1, (1,), generator=generator))
        x = int(torch.randint(lr.shape[-1] - lp + 1, (1,), generator=generator))
        lr, hr = lr[..., y:y + lp, x:x + lp], hr[..., y * s:y * s + patch, x * s:x * s + patch]
        return self.pool(lr.contiguous(), hr.contiguous(), generator)

    def autocast(self):
        if self.switches["bf16"]:
            return torch.autocast(self.device.type, dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def to_device(self, x: torch.Tensor) -> torch.Tensor:
        x = x.to(self.device, non_blocking=True)
        return x.contiguous(memory_format=torch.channels_last) if self.switches["channels_last"] else x

    def state_dict(self) -> dict:
        # the trained networks only: frozen CLIP and VGG are rebuilt from their weights setting
        return {"nets": {k: unwrap(self.nets[k]).state_dict() for k in self.optims},
                "optims": {k: v.state_dict() for k, v in self.optims.items()},
                "scheds": {k: v.state_dict() for k, v in self.scheds.items()},
                **({"ema": self.ema.state_dict()} if self.ema is not None else {})}

    def local_state_dict(self) -> dict:
        """State that differs between DDP ranks, which the trainer saves for every rank: the real-world pair pool
        (each rank's holds pairs of its own share of the batches)."""
        return {"pool": self.pool.state_dict()} if self.pool is not None else {}

    def load_local_state_dict(self, state: dict) -> None:
        if self.pool is not None:
            self.pool.load_state_dict(state["pool"])

    def load_state_dict(self, state: dict) -> None:
        for k, v in state["nets"].items():
            unwrap(self.nets[k]).load_state_dict(v)
        for k, v in state["optims"].items():
            self.optims[k].load_state_dict(v)
        for k, v in state["scheds"].items():
            self.scheds[k].load_state_dict(v)
        if self.ema is not None:
            self.ema.load_state_dict(state["ema"])

    def finish(self, losses: dict[str, torch.Tensor]) -> dict:
        """The step's logs, still on the device (trainer.to_host reads them): the losses, `skipped` (1.0 if a
        non-finite loss skipped an update) and the generator's learning rate in this step. The schedulers count
        every iteration, skipped or not, as BasicSR's do."""
        lr = self.optims["g"].param_groups[0]["lr"]  # before the schedulers set the next iteration's
        for sched in self.scheds.values():
            sched.step()
        # copied into one new tensor: CUDA graphs may overwrite their outputs in the next iteration
        values = torch.stack([v.detach().float().reshape(()) for v in losses.values()] + [self.skip])
        return {**dict(zip([*losses, "skipped"], values.unbind())), "lr": lr}


class PSNRStep(Step):
    """Stage 1: the fidelity-oriented model, one pixel loss (PIXEL_LOSSES, cfg `pixel_loss`: L1 by default); with
    `degradation`, RealESRNet (L1 to the sharpened GT, on Real-ESRGAN's degradation made on the fly)."""

    def __init__(self, generator: nn.Module, cfg: dict, device: torch.device, degradation=None, pool=None,
                 seed: int = 0):
        super().__init__(cfg, device, degradation, pool, seed)
        self.pixel_loss, self.loss_name = PIXEL_LOSSES[cfg.get("pixel_loss", "l1")]
        self.add_ema(generator)  # before add_net: a plain copy, never compiled or wrapped
        self.g = self.add_net("g", generator)
        self.add_optim("g", self.g.parameters())

    def step(self, batch: dict, iteration: int) -> dict:
        with self.iteration():
            with record_function("make_pair"):
                lr, hr = (batch["lr"], batch["hr"]) if self.degradation is None else \
                    self.real_pair(batch, iteration, sharpened_hr=True)
            lr, hr = self.to_device(lr), self.to_device(hr)
            with self.autocast(), record_function("g_forward"):
                sr = self.g(lr)
            loss = self.pixel_loss(sr.float(), hr)
            self.optimize(["g"], loss, "g")
            self.update_ema()
        return self.finish({self.loss_name: loss.detach()})


class GANStep(Step):
    """Stage 2: Eq. 7 for the generator, then the discriminators' losses (Eq. 1 and 5, or ESRGAN's RaGAN)."""

    def __init__(self, variant: str, generator: nn.Module, model_cfg: dict, lambdas: dict, cfg: dict,
                 device: torch.device, degradation=None, pool=None, seed: int = 0):
        super().__init__(cfg, device, degradation, pool, seed)
        self.variant = variant
        self.lambdas = variant_lambdas(variant, lambdas)
        self.scale = model_cfg["prompt_logit_scale"]
        self.add_ema(generator)  # before add_net: a plain copy, never compiled or wrapped
        self.g = self.add_net("g", generator)
        self.add_optim("g", self.g.parameters())
        self.vgg = self.add_net("vgg", VGG19Features(model_cfg["vgg19"]["weights"]), trainable=False) \
            if self.lambdas["lambda2"] else None
        needs_clip = variant != "esrgan"
        self.encoder = self.add_net("clip", CLIPEncoder(**model_cfg["clip"]), trainable=False) if needs_clip else None
        self.featd = self.lpp = self.image_d = None
        if self.lambdas["lambda3"]:
            self.featd = self.add_net("featd", FeatD(self.encoder.mid_channels, model_cfg["featd"]["widths"]))
            self.add_optim("featd", self.featd.parameters())
        if self.lambdas["lambda4"]:
            self.lpp = self.add_net("lpp", LearnablePromptPairs(self.encoder, model_cfg["lpp"]["n_ctx"]))
            self.add_optim("lpp", self.lpp.parameters())
        if variant == "esrgan":
            self.image_d = self.add_net("image_d", VGGStyleDiscriminator(
                num_feat=model_cfg["image_d"]["num_feat"], input_size=cfg["patch"]))
            self.add_optim("image_d", self.image_d.parameters())
        self.discriminators = [n for n in ("featd", "lpp", "image_d") if n in self.optims]

    def make_pair(self, batch: dict, iteration: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(LR, HR for the adversarial terms, HR target for L1 and perceptual)."""
        if self.degradation is None:
            hr = self.to_device(batch["hr"])
            return self.to_device(batch["lr"]), hr, hr
        lr, hr = self.real_pair(batch, iteration, sharpened_hr=False)
        return self.to_device(lr), self.to_device(hr), self.to_device(self.degradation.sharpen(hr))

    def step(self, batch: dict, iteration: int) -> dict:
        """The generator's step on Eq. 7, then the discriminators' on Eq. 1 + 5 (or ESRGAN's RaGAN loss)."""
        with self.iteration(guarded=self.discriminators):
            with record_function("make_pair"):
                lr, hr, target = self.make_pair(batch, iteration)
            with self.frozen(self.featd, self.image_d):
                with self.autocast(), record_function("g_forward"):
                    sr, sr_feats, text, total, parts = self.generator_loss(lr, hr, target)
                self.optimize(["g"], total, "g")
                self.update_ema()
            logs = {k if k.startswith("g_") else f"g_{k}": v.detach() for k, v in parts.items()}
            with self.autocast(), record_function("d_forward"):
                d_loss = self.discriminator_loss(sr.detach(), hr, sr_feats, text, logs)
            self.optimize(self.discriminators, d_loss, "d")  # skipped too after a skipped generator step
        return self.finish(logs)

    def generator_loss(self, lr: torch.Tensor, hr: torch.Tensor, target: torch.Tensor):
        """Eq. 7 on SR = G(LR): (SR, its CLIP features, the LPP's text features, the total, its terms). CLIP runs
        once on SR with gradients; its features serve the discriminators' step too, detached, and the LPP's text
        features keep their graph for the LPP's step."""
        sr = self.g(lr)
        sr_feats = self.encoder(sr, with_output=bool(self.lpp)) if self.encoder else None
        text = self.lpp(self.encoder) if self.lpp else None
        total, parts = loss_total(sr, target, self.lambdas, vgg=self.vgg, featd=unwrap(self.featd) if self.featd
                                  else None, text_features=text, prompt_logit_scale=self.scale, sr_feats=sr_feats)
        if self.image_d is not None:  # D(hr) is a constant here, from a forward of its own (BasicSR)
            with torch.no_grad():
                real = unwrap(self.image_d)(hr)
            parts["g_img"] = loss_g_ragan(real, unwrap(self.image_d)(sr))
            total = total + self.lambdas["image_gan_weight"] * parts["g_img"]
        return sr, sr_feats, text, total, parts

    def discriminator_loss(self, sr: torch.Tensor, hr: torch.Tensor, sr_feats: CLIPFeatures | None, text, logs: dict):
        """Eq. 1 (Feat-D) + Eq. 5 (LPP), or the image discriminator's RaGAN loss; logs D(HR)/D(SR) means and LPP
        scores."""
        if self.image_d is not None:  # real and fake in separate forwards: its BatchNorm sees each alone (BasicSR)
            real, fake = self.image_d(hr), self.image_d(sr)
            loss = loss_d_ragan(real, fake)
            logs.update(d_img=loss.detach(), d_hr=torch.sigmoid(real.float()).mean(),
                        d_sr=torch.sigmoid(fake.float()).mean())
            return loss
        with torch.no_grad():
            hr_feats = self.encoder(hr, with_output=bool(self.lpp))
        loss = 0.0
        if self.featd is not None:
            m = [torch.cat([h, s.detach()]) for h, s in zip(hr_feats[:3], sr_feats[:3])]
            real, fake = self.featd(*m).chunk(2)
            d_fea = loss_d_fea(real, fake)
            logs.update(d_fea=d_fea.detach(), d_hr=torch.sigmoid(real.float()).mean(),
                        d_sr=torch.sigmoid(fake.float()).mean())
            loss = loss + d_fea
        if self.lpp is not None:
            s_hr = prompt_pair_score(hr_feats.out, *text, self.scale)
            s_sr = prompt_pair_score(sr_feats.out.detach(), *text, self.scale)
            d_tg = loss_d_tg(s_hr, s_sr)
            logs.update(d_tg=d_tg.detach(), lpp_hr=s_hr.detach().mean(), lpp_sr=s_sr.detach().mean())
            loss = loss + d_tg
        return loss
