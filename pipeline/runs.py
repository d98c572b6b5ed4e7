"""The training stages' work: build the networks a profile asks for, train them, export the final weights.

Every trained model is one entry of params.yaml's run table `runs.<stage>.<run>` (run_entry): its generator
backbone (`rrdbnet`, ESRGAN's RRDBNet, the paper's main model, or `swinir`, Table 1's SwinIR), sized by
`<profile>.model.<backbone>` and trained on `<profile>.<stage>.<backbone>` (`<profile>.<stage>` for the real-world
stages; train_config); the run it starts from (`init`), its Fig. 8 variant and the loss weights its generator
reads (run_lambdas). `reads` lists the dotted keys each run reads, which dvc.yaml declares.

Stages: `pretrain_psnr` (L1 on bicubic pairs), `pretrain_real` (RealESRNet: L1 to the sharpened GT on
Real-ESRGAN's degradation made on the fly, the fidelity model the real-world run starts from), `train_gan`
(Eq. 7 on bicubic pairs), `train_real` (Eq. 7 on the real-world degradation), and Table 5's restoration stages at
scale 1 on the pairs of data/restore, one schedule per task: `restore_psnr` (NAFNet's fidelity model, its pixel
loss) and `restore_gan` (Eq. 7 from it). A PSNR stage with `init_from` converts a public checkpoint instead of
training.

Outputs: `models/<run>/generator.safetensors` (plain state dict, loadable by `python -m pipeline.sr`), for runs
with Feat-D and LPP `models/<run>/sfd_iqa.safetensors` (loadable by `python -m pipeline.iqa`), for the esrgan
baseline `models/esrgan/image_d.safetensors` (its image discriminator, for the t-SNE figure); resumable
checkpoints in `checkpoints/<run>/last.pt`; dvclive logs in `dvclive/<run>/`.
"""
from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pyiqa
import torch

from pipeline.archs.nafnet import NAFNet
from pipeline.archs.rrdbnet import RRDBNet
from pipeline.archs.swinir import SwinIR
from pipeline.checkpoint import CheckpointError, save_state_dict
from pipeline.data.datasets import PairedPatches
from pipeline.data.degradation import PairPool, RealESRGANDegradation
from pipeline.fileio import list_images, read_image, write_json
from pipeline.param_schema import WEIGHT
from pipeline.params import ParamError, lookup, profile_section
from pipeline.data.synthesize import OUT_ROOTS
from pipeline.run_table import RESTORATION_STAGES, run_entry
from pipeline.tensor_image import to_tensor
from pipeline.sfd_iqa import save_sfd_iqa
from pipeline.sr import build_generator
from pipeline.train_step import ADVERSARIAL_WEIGHTS, GANStep, PSNRStep, unwrap
from pipeline.trainer import default_device, distributed, relaunch_under_torchrun, train

MODELS, CHECKPOINTS, LIVE = Path("models"), Path("checkpoints"), Path("dvclive")
SETS, RESTORE_SETS = OUT_ROOTS["sr"], OUT_ROOTS["restore"]  # the SR stages' sets (x4), the restoration ones' (x1)


BACKBONES = {"rrdbnet": RRDBNet, "swinir": SwinIR, "nafnet": NAFNet}
PER_BACKBONE = ("pretrain_psnr", "train_gan")  # stages whose profile section has one schedule per backbone
PSNR_STAGES = ("pretrain_psnr", "pretrain_real", "restore_psnr")  # a pixel loss only
REAL_WORLD = ("pretrain_real", "train_real")  # stages that make their LR inputs by the `degradation` section
GAN_NETS = ("clip", "vgg19", "featd", "lpp", "image_d")  # the model sections a GAN run builds besides its generator


def schedule_key(stage: str, entry: dict) -> str | None:
    """Which schedule of `<profile>.<stage>` a run trains on: its backbone's (SR), its task's (restoration), or the
    stage's one (None)."""
    return entry["backbone"] if stage in PER_BACKBONE else entry["task"] if stage in RESTORATION_STAGES else None


def reads(params: dict, stage: str, run: str) -> tuple[str, ...]:
    """The dotted keys a training run reads (dvc.yaml declares the same for `<stage>@<run>`)."""
    entry, profile = run_entry(params, stage, run), params["profile"]
    key, where = schedule_key(stage, entry), f"runs.{stage}.{run}"
    keys = ["profile", "seed", "speed", "optim", f"{where}.backbone", f"{profile}.model.{entry['backbone']}",
            f"{profile}.{stage}" + (f".{key}" if key else "")]
    keys.append(f"{where}.task" if stage in RESTORATION_STAGES else "scale")  # restoration is at scale 1
    if stage not in ("pretrain_psnr", "restore_psnr"):
        keys.append(f"{where}.init")
    if stage not in PSNR_STAGES:
        keys += [*(f"{where}.{k}" for k in ("variant", "weights")), "prompt_logit_scale",
                 *(f"{profile}.model.{net}" for net in GAN_NETS), *dict.fromkeys(entry["weights"].values())]
    return (*keys, "degradation") if stage in REAL_WORLD else tuple(keys)


def model_config(params: dict) -> dict:
    """The networks' sizes and weights the run reads, with the SR scale and Eq. 3-4's logit scale where it reads
    them."""
    extra = {k: params[k] for k in ("prompt_logit_scale", "scale") if k in params}
    return {**profile_section(params, "model"), **extra}


def train_config(params: dict, stage: str, key: str | None) -> dict:
    """The trainer's and step's settings: the run's schedule (`<profile>.<stage>[.<key>]`, key from schedule_key),
    the speed switches and Adam's settings."""
    schedule = profile_section(params, stage)
    return {**params["speed"], **params["optim"], **(schedule[key] if key else schedule)}


def run_lambdas(params: dict, stage: str, run: str) -> dict[str, float]:
    """The weights of the run's Eq. 7 terms, keyed by the term's own param name (lambda1 L1, lambda2 perceptual,
    then the variant's adversarial terms: lambda3 Feat-D, lambda4 TG-D, image_gan_weight the image
    discriminator), each read from the param its entry names in slots w1, w2, w3 and w4 (a variant with one
    adversarial term names it in both w3 and w4)."""
    entry, where = run_entry(params, stage, run), f"runs.{stage}.{run}"
    slots, variant = lookup(params, f"{where}.weights"), entry.get("variant")
    if variant not in ADVERSARIAL_WEIGHTS:
        raise ParamError(f"`{where}.variant` must be one of {tuple(ADVERSARIAL_WEIGHTS)}, got {variant!r}")
    terms = ADVERSARIAL_WEIGHTS[variant]
    if sorted(slots) != ["w1", "w2", "w3", "w4"] or (len(terms) == 1 and slots["w3"] != slots["w4"]):
        raise ParamError(f"`{where}.weights` must name w1 (L1), w2 (perceptual), w3 and w4 (the adversarial terms; "
                         f"variant {variant} has {len(terms)}, so w4 {'repeats w3' if len(terms) == 1 else 'is TG-D'})"
                         f", got {slots}")
    named = dict(zip(("lambda1", "lambda2", *terms), (slots["w1"], slots["w2"], slots["w3"], slots["w4"])))
    lambdas = {}
    for term, name in named.items():
        value = lookup(params, name)
        if not WEIGHT.ok(value):
            raise ParamError(f"`{name}` (read by `{where}.weights`) must be {WEIGHT.allowed}, got {value!r}")
        lambdas[term] = value
    return lambdas


def new_generator(backbone: str, cfg: dict) -> torch.nn.Module:
    with torch.random.fork_rng(devices=[]):
        return BACKBONES[backbone](**cfg)


def load_generator(path: Path, backbone: str, cfg: dict) -> torch.nn.Module:
    """A generator checkpoint (any supported layout) that must be `backbone` with the profile's sizes."""
    net = build_generator(path)
    expected = new_generator(backbone, cfg).state_dict()
    got = net.state_dict()
    if not isinstance(net, BACKBONES[backbone]) or {k: v.shape for k, v in got.items()} != {
            k: v.shape for k, v in expected.items()}:
        raise CheckpointError(f"{path} is not a {BACKBONES[backbone].__name__} of the profile's sizes {cfg}")
    return net


def psnr_validator(set_name: str, device: torch.device, sets: Path = SETS, scale: int = 4, max_images: int = 10):
    """Y-PSNR (BT.601, crop border = the scale, none at scale 1) of the generator on the first images of a test
    set, as SR papers compute it; a training log, not a table's number."""
    metric = pyiqa.create_metric("psnr", test_y_channel=True, color_space="ycbcr", crop_border=scale * (scale > 1),
                                 device=device)
    names = list_images(sets / set_name / "HR")[:max_images]
    pairs = [(to_tensor(read_image(sets / set_name / f"LR_x{scale}" / p.name), device),
              to_tensor(read_image(p), device)) for p in names]

    @torch.no_grad()
    def validate(step) -> dict[str, float]:
        net = step.eval_net()
        training = net.training
        net.eval()
        with torch.compiler.set_stance("force_eager"):  # test images of many sizes: no compiling for each
            values = [metric(net(lr).clamp(0, 1).mul(255).round().div(255), hr).item() for lr, hr in pairs]
        net.train(training)
        return {"psnr_y": sum(values) / len(values)}

    return validate


# Section keys that leave the trained numbers unchanged, so not part of a run's identity: a partial run resumes
# across a change of them. Batches do not depend on the DataLoader workers, a resumed run equals an uninterrupted
# one whatever its checkpoints, logging and validation only read, and max_bad_steps only decides whether a run
# stops (a run it stopped resumes with a higher one). A changed `gpus` reaches the trainer, which refuses a
# checkpoint of another process count with a clear error.
NOT_IDENTITY = ("workers", "log_every", "val_every", "ckpt_every", "cudnn_benchmark", "gpus", "max_bad_steps")


def loop_cfg(cfg: dict, seed: int, **identity) -> dict:
    """The trainer's settings; the run's identity (`config`) is `identity`, the seed and the section's keys that
    change the trained numbers."""
    trained_with = {k: v for k, v in cfg.items() if k not in NOT_IDENTITY}
    return {**{k: cfg[k] for k in ("iters", "batch", "workers", "ckpt_every", "val_every", "log_every",
                                   "max_bad_steps")}, "seed": seed,
            "config": {"cfg": trained_with, "seed": seed, **identity}}


def training_data(cfg: dict, seed: int, real_world: bool, sets: Path = SETS, scale: int = 4) -> PairedPatches:
    """The training stages' HR/LR patches: the sub-images' pairs of `sets`/<train_set> at `scale`, or
    (`real_world`) HR crops of `degrade_size` that the step degrades, flipped only as Real-ESRGAN x4plus
    (options/train_realesrgan_x4plus.yml and train_realesrnet_x4plus.yml: use_hflip true, use_rot false)."""
    if real_world:
        return PairedPatches([sets / s for s in cfg["train_sets"]], cfg["degrade_size"], seed=seed, rotate=False)
    return PairedPatches([sets / cfg["train_set"]], cfg["patch"], scale, lr_dir=f"LR_x{scale}_sub", seed=seed)


def real_world(degradation_cfg: dict | None, model_cfg: dict, device: torch.device):
    """(Real-ESRGAN's degradation on `device`, its pair pool), or (None, None) without a config."""
    if degradation_cfg is None:
        return None, None
    return (RealESRGANDegradation(degradation_cfg, scale=model_cfg["scale"]).to(device),
            PairPool(degradation_cfg["pool_size"]))


def run_pretrain(cfg: dict, model_cfg: dict, seed: int, name: str, backbone: str = "rrdbnet", init: str | None = None,
                 degradation_cfg: dict | None = None, sets: Path = SETS, scale: int = 4) -> Path:
    """Stage 1: train the backbone with its pixel loss (from scratch, or from the generator of run `init`) on the
    pairs of `sets` at `scale`, or verify and convert `init_from`; with `degradation_cfg`, RealESRNet: L1 to the
    sharpened GT on the real-world degradation. `cfg` is train_config's."""
    out = MODELS / name / "generator.safetensors"
    if cfg["init_from"]:
        net = load_generator(Path(cfg["init_from"]), backbone, model_cfg[backbone])
        save_state_dict(out, net.state_dict(), {"source": str(cfg["init_from"])})
        # The stage's other outputs exist too (DVC requires them): no checkpoint, and the converted model's
        # validation in place of a training log.
        (CHECKPOINTS / name).mkdir(parents=True, exist_ok=True)
        (LIVE / name / "plots").mkdir(parents=True, exist_ok=True)
        val = psnr_validator(cfg["val_set"], default_device(), sets, scale)(SimpleNamespace(eval_net=lambda: net))
        write_json(LIVE / name / "metrics.json", {"init_from": str(cfg["init_from"]), "val": val})
        return out
    rank, _ = distributed()
    device = default_device()
    torch.manual_seed(seed)
    generator = load_generator(MODELS / init / "generator.safetensors", backbone, model_cfg[backbone]) if init \
        else new_generator(backbone, model_cfg[backbone])
    degradation, pool = real_world(degradation_cfg, model_cfg, device)
    step = PSNRStep(generator, cfg, device, degradation, pool, seed)
    identity = {"model": model_cfg[backbone], "backbone": backbone,
                **({"init": init, "degradation": degradation_cfg} if init or degradation_cfg else {})}
    train(step, training_data(cfg, seed, degradation_cfg is not None, sets, scale), loop_cfg(cfg, seed, **identity),
          CHECKPOINTS / name, psnr_validator(cfg["val_set"], device, sets, scale) if rank == 0 else None, LIVE / name)
    if rank == 0:
        stage = "pretrain_real" if degradation_cfg else "pretrain_psnr" if scale > 1 else "restore_psnr"
        save_state_dict(out, step.eval_net().state_dict(), {"source": f"trained by {stage}" + ema_note(step)})
    return out


def run_gan(variant: str, cfg: dict, model_cfg: dict, lambdas: dict, seed: int, name: str, init: str,
            degradation_cfg: dict | None = None, backbone: str = "rrdbnet", sets: Path = SETS, scale: int = 4) -> Path:
    """Stage 2: GAN training of a variant from the generator of run `init` on the pairs of `sets` at `scale`; with
    `degradation_cfg`, the real-world model. `cfg` is train_config's."""
    rank, _ = distributed()
    device = default_device()
    torch.manual_seed(seed)
    generator = load_generator(MODELS / init / "generator.safetensors", backbone, model_cfg[backbone])
    degradation, pool = real_world(degradation_cfg, model_cfg, device)
    step = GANStep(variant, generator.train(), model_cfg, lambdas, cfg, device, degradation, pool, seed)
    identity = {"model": model_cfg, "lambdas": step.lambdas, "variant": variant, "degradation": degradation_cfg,
                "backbone": backbone}
    train(step, training_data(cfg, seed, degradation_cfg is not None, sets, scale), loop_cfg(cfg, seed, **identity),
          CHECKPOINTS / name, psnr_validator(cfg["val_set"], device, sets, scale) if rank == 0 else None, LIVE / name)
    if rank == 0:
        export(step, MODELS / name, model_cfg)
    return MODELS / name


def export(step: GANStep, out: Path, model_cfg: dict) -> None:
    """Final weights as plain safetensors state dicts, with a note of which weights CLIP and VGG had."""
    save_state_dict(out / "generator.safetensors", step.eval_net().state_dict())
    if step.image_d is not None:
        save_state_dict(out / "image_d.safetensors", unwrap(step.image_d).state_dict())
    if step.featd is not None and step.lpp is not None:
        save_sfd_iqa(out / "sfd_iqa.safetensors", step.encoder, unwrap(step.featd), unwrap(step.lpp),
                     model_cfg["prompt_logit_scale"])
    write_json(out / "weights.json", {"generator": "the trained weights" + ema_note(step),
                                      "clip": step.encoder.weights_description if step.encoder else "not used",
                                      "vgg19": model_cfg["vgg19"]["weights"], "variant": step.variant})


def ema_note(step) -> str:
    """What the exported generator is, when it is the EMA of the trained one."""
    return f", as their EMA (decay {step.ema_decay})" if step.ema is not None else ""


def train_run(params: dict, stage: str, run: str) -> Path:
    """Train (or, for a PSNR run with `init_from`, convert) the run `runs.<stage>.<run>`; returns models/<run>."""
    entry = run_entry(params, stage, run)
    backbone, model_cfg = entry["backbone"], model_config(params)
    cfg = train_config(params, stage, schedule_key(stage, entry))
    lambdas = None if stage in PSNR_STAGES else run_lambdas(params, stage, run)  # checked before any relaunch
    relaunch_under_torchrun(cfg["gpus"])
    degradation_cfg = params["degradation"] if stage in REAL_WORLD else None
    data = (RESTORE_SETS, 1) if stage in RESTORATION_STAGES else (SETS, params["scale"])
    if stage in PSNR_STAGES:
        return run_pretrain(cfg, model_cfg, params["seed"], run, backbone, entry.get("init"), degradation_cfg,
                            *data).parent
    return run_gan(entry["variant"], cfg, model_cfg, lambdas, params["seed"], run, entry["init"], degradation_cfg,
                   backbone, *data)
