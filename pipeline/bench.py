"""`python -m pipeline.bench`: the speed of the real training steps, of SFD-IQA and of the data side, as JSON.

Training: the `GANStep` the stages run (pipeline.train_step, with the switches of params.yaml) for the `esrgan`
and `sfd` variants of `train_gan`, and `real`, the `sfd` step of `train_real` with Real-ESRGAN's degradation on the
device. SFD-IQA: Eq. 8-10 on a batch of images, next to CLIP's image tower alone on the same batch, and on single
images (how `pipeline.iqa` and the evaluation score). For each: images/s, seconds per iteration, peak GPU memory,
FLOPs of one iteration (torch.utils.flop_counter: matmuls and convolutions, forward and backward, counted on an
extra eager iteration) and the fraction of the GPU's dense bf16 peak they reach. Warm-up iterations (they include
torch.compile's compilation) are not timed; CUDA is synchronised around the timed region. `--profile N` adds where
the time goes (torch.profiler over N more iterations): kernel time against the timed step, the step's phases, the
costliest kernels and ops. SFD-IQA and the tower run in each of `--iqa-modes` (fp32/bf16, NCHW/channels_last,
eager or with the tower and Feat-D compiled).

Default: paper scale from params.yaml (`model.paper`, `train_gan.paper`, `train_real.paper`) with random CLIP and
VGG19 weights (weights do not change the timing). `--small`: the quick profile's networks (clip_tiny, a small
RRDBNet), batch 2, patch 64: runs on a CPU in under a minute, to keep the benchmark working.

Data side (CPU, paper sizes in both modes): decoding + cropping 480 x 480 PNG sub-images cut the way `synthesize`
cuts them (PairedPatches: 256 px patches with their LR for classical SR, 400 px crops for the real-world model) and
Real-ESRGAN's degradation of a batch of 400 px crops, per image, on one thread as a DataLoader worker runs; from
these, how many workers keep a step fed at the target rate and at the measured one.
"""
from __future__ import annotations

import argparse
import contextlib
import math
import platform
import tempfile
import time
from pathlib import Path

import torch
import yaml
from torch import nn
from torch.autograd import DeviceType
from torch.profiler import ProfilerActivity
from torch.utils.flop_counter import FlopCounterMode

from pipeline.archs.clip_encoder import CLIPEncoder
from pipeline.archs.featd import FeatD
from pipeline.archs.lpp import LearnablePromptPairs
from pipeline.archs.rrdbnet import RRDBNet
from pipeline.data.datasets import PairedPatches
from pipeline.data.degradation import PairPool, RealESRGANDegradation
from pipeline.fileio import write_json
from pipeline.runs import model_config, train_config
from pipeline.sfd_iqa import SFDIQA
from pipeline.train_step import PHASES, SWITCHES, WEIGHTS, GANStep

# SFD-IQA timings: (bf16 autocast, channels_last, torch.compile mode of CLIP's image tower and Feat-D or None) for
# the scorer and the CLIP tower it is compared with
IQA_MODES = {"fp32": (False, False, None), "channels_last": (False, True, None), "bf16": (True, False, None),
             "bf16_channels_last": (True, True, None), "fp32_compiled": (False, False, "default"),
             "bf16_channels_last_compiled": (True, True, "default"),
             "bf16_channels_last_cudagraphs": (True, True, "reduce-overhead")}
STEPS = ("esrgan", "sfd", "real")  # real: train_real's sfd step, LR made on the device by the degradation
TARGETS = {"sfd_images_per_s": 170.0, "sfd_over_esrgan_step_time": 1.3, "iqa_over_clip_throughput": 0.8,
           "peak_memory_gib": 12.0}  # issue 6, for one H100/H200 at batch 16, HR patch 256
# Dense bf16 tensor-core peaks from the vendor's data sheets, TFLOP/s; the first name found in the device's wins.
BF16_PEAK_TFLOPS = (("H100 PCIe", 756.0), ("H100", 989.4), ("H200", 989.4), ("A100", 312.0))
SUBIMAGE, SUBIMAGE_STEP = 480, 240  # BasicSR's DF2K sub-images (synthesize.paper)
DATA_SOURCES = ("astronaut", "immunohistochemistry")  # natural images that ship with scikit-image
# The degradation's random draws (parameters, noise fields, Poisson samples), profiled in its CPU timing: the
# share of a CPU worker's time they take.
CPU_RANDOM_OPS = ("aten::poisson", "aten::normal_", "aten::uniform_", "aten::randperm", "aten::bernoulli_")


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn, warmup: int, iters: int, device: torch.device) -> dict:
    """Seconds per call of `fn(i)` over `iters` calls after `warmup` untimed ones (the mean, and the median and
    slowest single call: a mean far above the median means one-time work, such as compiling or recording a CUDA
    graph, fell into the timed calls), and peak GPU memory (GiB), allocated and reserved by PyTorch's allocator,
    warm-up included: CUDA graphs take their memory when they are recorded there and allocate nothing when
    replayed. On CUDA single calls are timed by events between them, so the host never waits inside the loop."""
    cuda = device.type == "cuda"
    if cuda:
        synchronize(device)
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)
    for i in range(warmup):
        fn(i)
    synchronize(device)

    def mark():
        if not cuda:
            return time.perf_counter()
        event = torch.cuda.Event(enable_timing=True)
        event.record()
        return event

    start = time.perf_counter()
    marks = [mark()]
    for i in range(warmup, warmup + iters):
        fn(i)
        marks.append(mark())
    synchronize(device)
    seconds = (time.perf_counter() - start) / iters
    calls = sorted((a.elapsed_time(b) / 1e3 if cuda else b - a) for a, b in zip(marks, marks[1:]))
    return {"seconds_per_iter": seconds, "median_seconds_per_iter": calls[len(calls) // 2],
            "slowest_seconds_per_iter": calls[-1],
            "peak_memory_gib": torch.cuda.max_memory_allocated(device) / 2**30 if cuda else None,
            "peak_reserved_gib": torch.cuda.max_memory_reserved(device) / 2**30 if cuda else None}


def profile(fn, first: int, iters: int, device: torch.device, top: int = 25) -> dict:
    """Where the time of `iters` calls of `fn(i)` goes, per call in ms: the GPU's kernel time (kernels, copies and
    memsets), the CPU time of the step's named phases (train_step's profiler ranges), and the `top` costliest
    kernels and ops (with their input shapes, which tell the networks apart). The profiler slows the CPU side, so
    its wall time is longer than the timed one. On a CPU the op times are CPU times and there is no kernel time."""
    cuda = device.type == "cuda"
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else [])
    synchronize(device)
    with torch.profiler.profile(activities=activities, record_shapes=True) as prof:
        start = time.perf_counter()
        for i in range(first, first + iters):
            fn(i)
        synchronize(device)
        wall = (time.perf_counter() - start) / iters
    self_time = "self_device_time_total" if cuda else "self_cpu_time_total"
    kernel_ms: dict[str, list[float]] = {}
    for e in prof.events():
        if e.device_type == DeviceType.CUDA and not getattr(e, "is_user_annotation", False):
            kernel_ms.setdefault(e.name, []).append(e.time_range.elapsed_us() / 1e3 / iters)
    kernels = sorted(kernel_ms.items(), key=lambda kv: -sum(kv[1]))
    ops = sorted((e for e in prof.key_averages(group_by_input_shape=True)
                  if e.device_type == DeviceType.CPU and e.key.startswith("aten::") and getattr(e, self_time) > 0),
                 key=lambda e: -getattr(e, self_time))
    return {
        "iters": iters, "profiled_wall_ms": wall * 1e3,
        "gpu_kernel_ms": sum(sum(v) for v in kernel_ms.values()) if cuda else None,
        "phases_cpu_ms": {e.key: e.cpu_time_total / 1e3 / iters for e in prof.key_averages() if e.key in PHASES
                          and e.device_type == DeviceType.CPU},
        "top_kernels": [{"name": name[:160], "calls": len(v) / iters, "ms": sum(v)} for name, v in kernels[:top]],
        "top_ops": [{"op": e.key, "input_shapes": str(e.input_shapes)[:200], "calls": e.count / iters,
                     "ms": getattr(e, self_time) / 1e3 / iters} for e in ops[:top]],
    }


def count_flops(fn) -> int:
    """FLOPs of one call of `fn`, run eagerly (compiled code hides its ops from the counter)."""
    counter = FlopCounterMode(display=False)
    with torch.compiler.set_stance("force_eager"), counter:
        fn()
    return counter.get_total_flops()


def bf16_peak_tflops(device_name: str) -> float | None:
    """The dense bf16 peak of a GPU named `device_name` (as torch.cuda.get_device_name gives it), if known."""
    return next((peak for key, peak in BF16_PEAK_TFLOPS if key in device_name), None)


def throughput(timing: dict, batch: int, flops: int, peak: float | None) -> dict:
    seconds = timing["seconds_per_iter"]
    achieved = flops / seconds / 1e12
    return {**timing, "images_per_s": batch / seconds, "flops_per_iter": flops, "achieved_tflops": achieved,
            "fraction_of_bf16_peak": achieved / peak if peak else None}


def load_config(params_path: Path, small: bool, batch: int | None, compile_: bool, fp32_eager: bool = False,
                compile_mode: str | None = None) -> dict:
    """The networks, training sections and degradation the benchmark runs, from params.yaml.

    `fp32_eager`: every speed switch off, the plain fp32 eager step the issue's baseline figures describe.
    `compile_mode`: torch.compile's mode for the steps, instead of params.yaml's."""
    params = yaml.safe_load(Path(params_path).read_text())
    paper = {**params, "profile": "paper"}
    model = model_config({**params, "profile": "quick" if small else "paper"})
    model = {**model, "clip": {**model["clip"], "weights": "none"}, "vgg19": {"weights": "none"}}
    gan, real = train_config(paper, "train_gan", "rrdbnet"), train_config(paper, "train_real", "rrdbnet")
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


def bench_forward(net: nn.Module, x: torch.Tensor, warmup: int, iters: int, peak: float | None,
                  profile_iters: int = 0) -> dict:
    def call(i: int = 0):
        torch.compiler.cudagraph_mark_step_begin()  # under reduce-overhead each call is a new CUDA-graph iteration
        return net(x)

    with torch.no_grad():
        out = throughput(timed(call, warmup, iters, x.device), x.shape[0], count_flops(call), peak)
        if profile_iters:
            out["profile"] = profile(call, 0, profile_iters, x.device)
        return out


def bench_iqa(config: dict, device: torch.device, batch: int, size: tuple[int, int], warmup: int, iters: int,
              peak: float | None, modes=("fp32",), profile_iters: int = 0) -> dict:
    """SFD-IQA's full score (Eq. 10) and CLIP's image tower alone, on `batch` images and on single images, in each
    of `modes` (IQA_MODES: precision, memory format and compilation, the same for both); the targets judge the
    first."""
    model = config["model"]
    out = {"size": list(size), "target_mode": modes[0], "modes": {}}
    for mode in modes:
        bf16, channels_last, compile_mode = IQA_MODES[mode]
        torch.manual_seed(0)  # the same weights in every mode, and new modules: compiling stays in its mode
        encoder = CLIPEncoder(**model["clip"])
        featd = FeatD(encoder.mid_channels, model["featd"]["widths"])
        if compile_mode:
            encoder.compile(mode=compile_mode)
            featd.compile(mode=compile_mode)
        iqa = SFDIQA(encoder, featd, LearnablePromptPairs(encoder, model["lpp"]["n_ctx"]),
                     prompt_logit_scale=model["prompt_logit_scale"]).to(device)
        memory_format = torch.channels_last if channels_last else torch.contiguous_format
        iqa.to(memory_format=memory_format)
        autocast = torch.autocast(device.type, dtype=torch.bfloat16) if bf16 else contextlib.nullcontext()
        out["modes"][mode] = by_batch = {}
        for n in dict.fromkeys((batch, 1)):
            x = torch.rand(n, 3, *size, generator=torch.Generator().manual_seed(0)).to(device)
            x = x.contiguous(memory_format=memory_format)
            with autocast:
                results = {name: bench_forward(net, x, warmup, iters, peak, profile_iters)
                           for name, net in (("sfd_iqa", iqa), ("clip_image_tower", encoder))}
            results["iqa_over_clip_throughput"] = (results["sfd_iqa"]["images_per_s"]
                                                   / results["clip_image_tower"]["images_per_s"])
            by_batch[f"batch_{n}"] = results
    return out


@contextlib.contextmanager
def one_thread():
    """Torch on one thread, as in a DataLoader worker."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def write_subimages(root: Path) -> Path:
    """480 px HR sub-images and their bicubic LR, made from package images as `synthesize` makes DF2K's."""
    from pipeline.data.quick import build_quick_sets
    from pipeline.data.synthesize import cut_subimages, write_classical_set

    build_quick_sets({"source": list(DATA_SOURCES)}, root)
    write_classical_set(root / "source", root / "set", scale=4)
    cut_subimages(root / "set", SUBIMAGE, SUBIMAGE_STEP, scale=4)
    return root / "set"


def workers_needed(images_per_s: float, per_worker_images_per_s: float) -> int:
    """DataLoader workers that deliver `images_per_s` when each delivers `per_worker_images_per_s`."""
    return math.ceil(images_per_s / per_worker_images_per_s)


def bench_data(config: dict, batch: int, repeats: int, step_rates: dict[str, float]) -> dict:
    """Per-worker data throughput at paper sizes, and workers needed at the target and the measured step rates."""
    patch, degrade_size = config["data"]["patch"], config["data"]["degrade_size"]
    with tempfile.TemporaryDirectory() as tmp, one_thread():
        set_dir = write_subimages(Path(tmp))
        classical = PairedPatches([set_dir], patch, lr_dir="LR_x4_sub")
        real = PairedPatches([set_dir], degrade_size)
        keys = [(epoch, i) for epoch in range(4) for i in range(len(classical))]

        def per_item(dataset) -> float:
            dataset[keys[0]]
            start = time.perf_counter()
            for key in keys:
                dataset[key]
            return (time.perf_counter() - start) / len(keys)

        t_classical, t_real = per_item(classical), per_item(real)
        hr = torch.stack([real[keys[i % len(keys)]]["hr"] for i in range(batch)])
        degradation = RealESRGANDegradation(config["degradation"], scale=config["model"]["scale"])
        generator = torch.Generator().manual_seed(0)
        degradation(hr, generator)
        with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
            start = time.perf_counter()
            for _ in range(repeats):
                degradation(hr, generator)
            t_batch = (time.perf_counter() - start) / repeats
        random_ms = sum(e.self_cpu_time_total for e in prof.key_averages() if e.key in CPU_RANDOM_OPS) / 1e3
    per_worker = {"classical": 1 / t_classical, "real": 1 / t_real, "real_degradation_in_workers":
                  1 / (t_real + t_batch / batch)}
    rates = {"target": TARGETS["sfd_images_per_s"], **{f"measured_{k}": v for k, v in step_rates.items()}}
    measured_for = {"classical": "measured_sfd", "real": "measured_real", "real_degradation_in_workers":
                    "measured_real"}
    return {
        "sub_images": {"count": len(classical), "size": SUBIMAGE, "sources": list(DATA_SOURCES)},
        "patch": patch, "degrade_size": degrade_size, "threads": 1,
        "decode_crop_seconds_per_image": {"classical": t_classical, "real": t_real},
        "degradation": {"batch": batch, "repeats": repeats, "seconds_per_batch": t_batch,
                        "seconds_per_image": t_batch / batch,
                        "cpu_random_draws_ms_per_batch": random_ms / repeats},
        "images_per_s_per_worker": per_worker,
        "workers_needed": {path: {name: workers_needed(rate, per_worker[path]) for name, rate in rates.items()
                                  if name in ("target", measured_for[path])} for path in per_worker},
    }


def environment(device: torch.device) -> dict:
    env = {"device": torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or "cpu",
           "device_type": device.type, "torch": torch.__version__, "cuda": torch.version.cuda,
           "cpu_threads": torch.get_num_threads()}
    if device.type == "cuda":
        env.update(cudnn=torch.backends.cudnn.version(), tf32_matmul=torch.backends.cuda.matmul.allow_tf32,
                   tf32_cudnn=torch.backends.cudnn.allow_tf32)
    return env


def check_targets(results: dict) -> dict:
    """Each target of issue 6 with the measured value; `met` only for a paper-scale run of the fast path on a GPU."""
    steps, iqa = results.get("train_step", {}), results.get("sfd_iqa", {})
    measured = {
        "sfd_images_per_s": steps.get("sfd", {}).get("images_per_s"),
        "sfd_over_esrgan_step_time": results.get("sfd_over_esrgan_step_time"),
        "iqa_over_clip_throughput": iqa.get("modes", {}).get(iqa.get("target_mode"), {}).get(
            f"batch_{iqa.get('batch')}", {}).get("iqa_over_clip_throughput"),
        "peak_memory_gib": steps.get("sfd", {}).get("peak_memory_gib"),
    }
    judged = results["mode"] == "paper" and results["env"]["device_type"] == "cuda" and not results["fp32_eager"]
    upper = ("sfd_over_esrgan_step_time", "peak_memory_gib")
    return {k: {"target": TARGETS[k], "measured": v,
                "met": None if not judged or v is None else (v <= TARGETS[k] if k in upper else v >= TARGETS[k])}
            for k, v in measured.items()}


def run(args: argparse.Namespace, save=lambda results: None) -> dict:
    """All the timings `args` asks for; `save(results)` after each, so a crash or a time limit keeps the rest."""
    start = time.perf_counter()
    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    config = load_config(args.params, args.small, args.batch, not args.no_compile, args.fp32_eager,
                         args.compile_mode)
    env = environment(device)
    peak = args.peak_tflops or (bf16_peak_tflops(env["device"]) if device.type == "cuda" else None)
    iters = args.iters or (2 if args.small else 20)
    warmup = args.warmup if args.warmup is not None else (1 if args.small else 5)
    iqa_size = tuple(args.iqa_size or ((192, 256) if args.small else (384, 512)))
    data_repeats = args.data_repeats or (1 if args.small else 3)
    results = {"mode": "small" if args.small else "paper", "fp32_eager": args.fp32_eager, "env": env,
               "bf16_peak_tflops": peak, "config": config, "train_step": {}}
    for kind in args.steps:
        results["train_step"][kind] = bench_step(kind, config, device, warmup, iters, peak, args.profile)
        torch.compiler.reset()  # each step's networks are new objects: keep their graphs from filling dynamo's cache
        if device.type == "cuda":
            torch.cuda.empty_cache()
        save(results)
    steps = results["train_step"]
    if "sfd" in steps and "esrgan" in steps:
        results["sfd_over_esrgan_step_time"] = steps["sfd"]["seconds_per_iter"] / steps["esrgan"]["seconds_per_iter"]
    if args.iqa:
        iqa_batch = args.iqa_batch or (2 if args.small else 16)
        results["sfd_iqa"] = {"batch": iqa_batch, **bench_iqa(config, device, iqa_batch, iqa_size, warmup, iters,
                                                              peak, args.iqa_modes, args.profile)}
        save(results)
    if args.data:
        rates = {k: steps[k]["images_per_s"] for k in ("sfd", "real") if k in steps}
        results["data"] = bench_data(config, args.data_batch, data_repeats, rates)
    results["targets"] = check_targets(results)
    results["wall_seconds"] = time.perf_counter() - start
    return results


def summary(results: dict) -> str:
    lines = [f"{results['mode']} on {results['env']['device']} (torch {results['env']['torch']})"]
    for kind, r in results["train_step"].items():
        memory = f", peak {r['peak_memory_gib']:.2f} GiB" if r["peak_memory_gib"] is not None else ""
        lines.append(f"step {kind:7s} {r['images_per_s']:9.2f} img/s  {r['seconds_per_iter']:.4f} s/step "
                     f"(median {r['median_seconds_per_iter']:.4f}, slowest {r['slowest_seconds_per_iter']:.4f})  "
                     f"{r['flops_per_iter'] / 1e9:.1f} GFLOP/step{memory}")
        prof = r.get("profile")
        if prof:
            busy = f"GPU kernels {prof['gpu_kernel_ms']:.1f} ms/step ({r['gpu_busy_fraction']:.0%} of the timed " \
                   f"step); " if prof["gpu_kernel_ms"] is not None else ""
            lines.append(f"  profile: {busy}CPU in phases " + ", ".join(
                f"{k} {v:.1f}" for k, v in prof["phases_cpu_ms"].items()) + " ms")
    iqa = results.get("sfd_iqa")
    if iqa:
        for mode, key, r in ((m, k, r) for m, by_batch in iqa["modes"].items() for k, r in by_batch.items()):
            lines.append(f"sfd-iqa {mode} {key}: {r['sfd_iqa']['images_per_s']:.2f} img/s, CLIP image tower "
                         f"{r['clip_image_tower']['images_per_s']:.2f} img/s "
                         f"(ratio {r['iqa_over_clip_throughput']:.2f})")
    data = results.get("data")
    if data:
        lines.append("data per worker (img/s): " + ", ".join(f"{k} {v:.1f}" for k, v in
                                                              data["images_per_s_per_worker"].items()))
        lines.append(f"workers needed: {data['workers_needed']}")
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m pipeline.bench", description=__doc__.split("\n\n")[0])
    p.add_argument("--small", action="store_true", help="tiny networks, batch 2, patch 64 (CPU, under a minute)")
    p.add_argument("--output", type=Path, default=Path("bench.json"), help="JSON file to write (default bench.json)")
    p.add_argument("--params", type=Path, default=Path("params.yaml"))
    p.add_argument("--device", help="default: cuda if available, else cpu")
    p.add_argument("--steps", nargs="*", choices=STEPS, default=list(STEPS), help="training steps to time")
    p.add_argument("--batch", type=int, help="override the training batch size")
    p.add_argument("--iters", type=int, help="timed iterations (default 20, small 2)")
    p.add_argument("--warmup", type=int, help="untimed iterations first (default 5, small 1)")
    p.add_argument("--no-compile", action="store_true", help="time the steps with compile: false")
    p.add_argument("--compile-mode", help="torch.compile mode of the steps, e.g. reduce-overhead (CUDA graphs)")
    p.add_argument("--fp32-eager", action="store_true",
                   help="every speed switch off (bf16, channels_last, compile, fused Adam): the baseline")
    p.add_argument("--iqa", action=argparse.BooleanOptionalAction, default=True, help="time SFD-IQA")
    p.add_argument("--iqa-batch", type=int, help="SFD-IQA batch (default 16, small 2)")
    p.add_argument("--iqa-modes", nargs="+", choices=IQA_MODES, default=["fp32"],
                   help="precision/memory format of the SFD-IQA timing (targets judge the first; default fp32)")
    p.add_argument("--iqa-size", type=int, nargs=2, metavar=("H", "W"), help="default 384 512, small 192 256")
    p.add_argument("--data", action=argparse.BooleanOptionalAction, default=True, help="time the data side")
    p.add_argument("--data-batch", type=int, default=16, help="batch of the degradation timing")
    p.add_argument("--data-repeats", type=int, help="degradation batches timed (default 3, small 1)")
    p.add_argument("--profile", type=int, default=0, metavar="N",
                   help="also profile N iterations of each timing: GPU kernel time, phases, costliest kernels and ops")
    p.add_argument("--peak-tflops", type=float, help="the device's dense bf16 peak, if not in the table")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    results = run(args, save=lambda partial: write_json(args.output, partial))
    write_json(args.output, results)
    print(summary(results))
    print("wrote", args.output)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
