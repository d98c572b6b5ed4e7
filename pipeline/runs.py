"""The training stages' work: build the networks a profile asks for, train them, export the final weights.

Outputs: `models/<run>/generator.safetensors` (plain state dict, loadable by `python -m pipeline.sr`), for runs
with Feat-D and LPP `models/<run>/sfd_iqa.safetensors` (loadable by `python -m pipeline.iqa`), for the esrgan
baseline `models/esrgan/image_d.safetensors` (its image discriminator, for the t-SNE figure); resumable
checkpoints in `checkpoints/<run>/last.pt`; dvclive logs in `dvclive/<run>/`.
"""
from __future__ import annotations

from pathlib import Path

import pyiqa
import torch

from pipeline.archs.rrdbnet import RRDBNet
from pipeline.checkpoint import save_state_dict
from pipeline.data.datasets import PairedPatches
from pipeline.data.degradation import PairPool, RealESRGANDegradation
from pipeline.fileio import list_images, read_image, write_json
from pipeline.tensor_image import to_tensor
from pipeline.sfd_iqa import save_sfd_iqa
from pipeline.sr import build_generator
from pipeline.train_step import GANStep, PSNRStep, unwrap
from pipeline.trainer import default_device, distributed, train

MODELS, CHECKPOINTS, LIVE, SETS = Path("models"), Path("checkpoints"), Path("dvclive"), Path("data/sets")


def new_generator(cfg: dict) -> RRDBNet:
    with torch.random.fork_rng(devices=[]):
        return RRDBNet(**cfg)


def load_generator(path: Path, cfg: dict) -> RRDBNet:
    """A generator checkpoint (any supported layout) that must have the profile's sizes."""
    net = build_generator(path)
    expected = new_generator(cfg).state_dict()
    got = net.state_dict()
    if not isinstance(net, RRDBNet) or {k: v.shape for k, v in got.items()} != {k: v.shape for k, v in
                                                                                 expected.items()}:
        raise SystemExit(f"{path} is not an RRDBNet of the profile's sizes {cfg}")
    return net


def psnr_validator(set_name: str, device: torch.device, max_images: int = 10):
    """Y-PSNR (BT.601, crop border 4) of the generator on the first images of a test set, as SR papers compute."""
    metric = pyiqa.create_metric("psnr", test_y_channel=True, color_space="ycbcr", crop_border=4, device=device)
    names = list_images(SETS / set_name / "HR")[:max_images]
    pairs = [(to_tensor(read_image(SETS / set_name / "LR_x4" / p.name), device), to_tensor(read_image(p), device))
             for p in names]

    @torch.no_grad()
    def validate(step) -> dict[str, float]:
        net = unwrap(step.g)
        net.eval()
        values = [metric(net(lr).clamp(0, 1).mul(255).round().div(255), hr).item() for lr, hr in pairs]
        net.train()
        return {"psnr_y": sum(values) / len(values)}

    return validate


def loop_cfg(cfg: dict, seed: int, identity: dict) -> dict:
    return {**{k: cfg[k] for k in ("iters", "batch", "workers", "ckpt_every", "val_every", "log_every",
                                   "max_bad_steps")}, "seed": seed, "config": identity}


def run_pretrain(cfg: dict, model_cfg: dict, seed: int, name: str = "psnr") -> Path:
    """Stage 1: train RRDBNet with L1, or verify and convert `init_from`."""
    out = MODELS / name / "generator.safetensors"
    if cfg["init_from"]:
        net = load_generator(Path(cfg["init_from"]), model_cfg["generator"])
        save_state_dict(out, net.state_dict(), {"source": str(cfg["init_from"])})
        return out
    rank, _ = distributed()
    device = default_device()
    torch.manual_seed(seed)
    step = PSNRStep(new_generator(model_cfg["generator"]), cfg, device)
    data = PairedPatches([SETS / cfg["train_set"]], cfg["patch"], lr_dir="LR_x4_sub", seed=seed)
    identity = {"cfg": cfg, "model": model_cfg["generator"], "seed": seed}
    train(step, data, loop_cfg(cfg, seed, identity), CHECKPOINTS / name,
          psnr_validator(cfg["val_set"], device) if rank == 0 else None, LIVE / name)
    if rank == 0:
        save_state_dict(out, unwrap(step.g).state_dict(), {"source": "trained by pretrain_psnr"})
    return out


def run_gan(variant: str, cfg: dict, model_cfg: dict, lambdas: dict, seed: int, name: str,
            degradation_cfg: dict | None = None) -> Path:
    """Stage 2: GAN training of a variant from the PSNR model; with `degradation_cfg`, the real-world model."""
    rank, _ = distributed()
    device = default_device()
    torch.manual_seed(seed)
    generator = load_generator(MODELS / "psnr" / "generator.safetensors", model_cfg["generator"])
    if degradation_cfg is None:
        degradation = pool = None
        data = PairedPatches([SETS / cfg["train_set"]], cfg["patch"], lr_dir="LR_x4_sub", seed=seed)
    else:
        degradation = RealESRGANDegradation(degradation_cfg, scale=model_cfg["scale"]).to(device)
        pool = PairPool(degradation_cfg["pool_size"])
        data = PairedPatches([SETS / s for s in cfg["train_sets"]], cfg["degrade_size"], seed=seed)
    step = GANStep(variant, generator.train(), model_cfg, lambdas, cfg, device, degradation, pool, seed)
    identity = {"cfg": cfg, "model": model_cfg, "lambdas": step.lambdas, "seed": seed, "variant": variant,
                "degradation": degradation_cfg}
    train(step, data, loop_cfg(cfg, seed, identity), CHECKPOINTS / name,
          psnr_validator(cfg["val_set"], device) if rank == 0 else None, LIVE / name)
    if rank == 0:
        export(step, MODELS / name, model_cfg)
    return MODELS / name


def export(step: GANStep, out: Path, model_cfg: dict) -> None:
    """Final weights as plain safetensors state dicts, with a note of which weights CLIP and VGG had."""
    save_state_dict(out / "generator.safetensors", unwrap(step.g).state_dict())
    if step.image_d is not None:
        save_state_dict(out / "image_d.safetensors", unwrap(step.image_d).state_dict())
    if step.featd is not None and step.lpp is not None:
        save_sfd_iqa(out / "sfd_iqa.safetensors", step.encoder, unwrap(step.featd), unwrap(step.lpp),
                     model_cfg["prompt_logit_scale"])
    write_json(out / "weights.json", {"clip": step.encoder.weights_description if step.encoder else "not used",
                                      "vgg19": model_cfg["vgg19"]["weights"], "variant": step.variant})
