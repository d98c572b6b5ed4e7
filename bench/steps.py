"""The training steps the stages run (`GANStep` with params.yaml's switches), timed on random batches."""
from __future__ import annotations

import math
from pathlib import Path

import torch
import yaml

from bench.timing import count_flops, profile, throughput, timed
from pipeline.archs.rrdbnet import RRDBNet
from pipeline.data.degradation import PairPool, RealESRGANDegradation
from pipeline.runs import model_config, train_config
from pipeline.train_step import SWITCHES, WEIGHTS, GANStep

STEPS = ("esrgan", "sfd", "real")  # real: train_real's sfd step, LR made on the device by the degradation


def load_config(params_path: Path, small: bool, batch: int | None, compile_: bool, fp32_eager: bool = False,
                compile_mode: str | None = None) -> dict:
    """The networks, training sections and degradation the benchmark runs, from params.yaml.

    `fp32_eager`: every speed switch off, the plain fp32 eager step the issue's baseline figures describe.
    `compile_mode`: torch.compile's mode for the steps, instead of params.yaml's."""
    params = yaml.safe_load(Path(params_path).read_text())
    paper = {**params, "profile": "paper"}
    model = model_config({**params, "profile": "quick" if small else "paper"})
    model = {**model, "clip": {**model["clip"], "weights": "none"}, "vgg19": {"weights": "none"}}
    gan, real = train_config(paper, "train_gan", "rrdbnet"), train_config(paper, "train_real", None)
    data = {"patch": gan["patch"], "degrade_size": real["degrade_size"]}
    if small:
        gan, real = {**gan, "batch": 2, "patch": 64}, {**real, "batch": 2, "patch": 64}
        real["degrade_size"] = params["quick"]["train_real"]["degrade_size"]
    if batch:
        gan, real = {**gan, "batch": batch}, {**real, "batch": batch}
    off = dict.fromkeys(SWITCHES if fp32_eager else () if compile_ else ("compile",), False)
    if compile_mode:
        off["compile_mode"] = compile_mode
    gan, real = {**gan, **off}, {**real, **off}
    degradation = dict(params["degradation"])
    b = real["batch"]
    # the pool must hold whole batches; in small mode one, so that the timed steps soon draw from a full pool
    degradation["pool_size"] = b if small else math.ceil(degradation["pool_size"] / b) * b
    lambdas = {k: params[k] for k in WEIGHTS}
    return {"model": model, "train_gan": gan, "train_real": real, "degradation": degradation, "lambdas": lambdas,
            "data": data}


def build_step(kind: str, config: dict, device: torch.device) -> GANStep:
    torch.manual_seed(0)
    model = config["model"]
    generator = RRDBNet(**model["rrdbnet"]).train()
    if kind == "real":
        degradation = RealESRGANDegradation(config["degradation"], scale=model["scale"]).to(device)
        return GANStep("sfd", generator, model, config["lambdas"], config["train_real"], device, degradation,
                       PairPool(config["degradation"]["pool_size"]))
    return GANStep(kind, generator, model, config["lambdas"], config["train_gan"], device)


def random_batches(kind: str, cfg: dict, scale: int, device: torch.device, count: int = 2) -> list[dict]:
    """`count` batches of uniform noise images, in pinned memory on CUDA as the DataLoader delivers them."""
    g = torch.Generator().manual_seed(0)
    b, p = cfg["batch"], cfg["patch"]
    shapes = {"hr": (b, 3, cfg["degrade_size"], cfg["degrade_size"])} if kind == "real" else \
        {"lr": (b, 3, p // scale, p // scale), "hr": (b, 3, p, p)}
    pin = device.type == "cuda"
    return [{k: (torch.rand(s, generator=g).pin_memory() if pin else torch.rand(s, generator=g))
             for k, s in shapes.items()} for _ in range(count)]


def bench_step(kind: str, config: dict, device: torch.device, warmup: int, iters: int, peak: float | None,
               profile_iters: int = 0) -> dict:
    step = build_step(kind, config, device)
    cfg = config["train_real" if kind == "real" else "train_gan"]
    batches = random_batches(kind, cfg, config["model"]["scale"], device)
    if kind == "real":  # steady state: the pair pool is full before the timed steps
        warmup = max(warmup, config["degradation"]["pool_size"] // cfg["batch"] + 1)
    skipped = []  # the steps' flags, read after the timing: the host does not wait for the GPU within it

    def one(i: int) -> None:
        skipped.append(step.step(batches[i % len(batches)], i + 1)["skipped"])

    timing = timed(one, warmup, iters, device)
    flops = count_flops(lambda: one(warmup + iters))
    out = {**throughput(timing, cfg["batch"], flops, peak), "batch": cfg["batch"], "patch": cfg["patch"],
           "warmup": warmup, "iters": iters, "skipped_steps": int(sum(torch.stack(skipped).tolist())),
           "switches": dict(step.switches),
           "cudnn_benchmark": torch.backends.cudnn.benchmark}
    if profile_iters:
        prof = out["profile"] = profile(one, warmup + iters + 1, profile_iters, device)
        # below 1: the GPU waits for the CPU (kernel launches, or the host waiting for the GPU)
        out["gpu_busy_fraction"] = prof["gpu_kernel_ms"] / (timing["seconds_per_iter"] * 1e3) if prof[
            "gpu_kernel_ms"] is not None else None
    return out
