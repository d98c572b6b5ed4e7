"""`python -m bench`: the speed of the real training steps, of SFD-IQA and of the data side, as JSON.

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

Default: paper scale from params.yaml (`paper.model`, `paper.train_gan.rrdbnet`, `paper.train_real`) with random CLIP
and VGG19 weights (weights do not change the timing). `--small`: the quick profile's networks (clip_tiny, a small
RRDBNet), batch 2, patch 64: runs on a CPU in under a minute, to keep the benchmark working.

Data side (CPU, paper sizes in both modes): decoding + cropping 480 x 480 PNG sub-images cut the way `synthesize`
cuts them (PairedPatches: 256 px patches with their LR for classical SR, 400 px crops for the real-world model) and
Real-ESRGAN's degradation of a batch of 400 px crops, per image, on one thread as a DataLoader worker runs; from
these, how many workers keep a step fed at the target rate and at the measured one.
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from bench.data import bench_data
from bench.iqa import IQA_MODES, bench_iqa
from bench.steps import STEPS, bench_step, load_config
from bench.timing import TARGETS, bf16_peak_tflops, environment
from pipeline.fileio import write_json


def check_targets(results: dict) -> dict:
    """Each target of targets.yaml with the measured value; `met` only for a paper-scale run of the fast path on a
    GPU."""
    steps, iqa = results.get("train_step", {}), results.get("sfd_iqa", {})
    measured = {
        "sfd_images_per_s": steps.get("sfd", {}).get("images_per_s"),
        "sfd_over_esrgan_step_time": results.get("sfd_over_esrgan_step_time"),
        "iqa_over_clip_throughput": iqa.get("modes", {}).get(iqa.get("target_mode"), {}).get(
            f"batch_{iqa.get('batch')}", {}).get("iqa_over_clip_throughput"),
        "peak_memory_gib": steps.get("sfd", {}).get("peak_memory_gib"),
    }
    judged = results["mode"] == "paper" and results["env"]["device_type"] == "cuda" and not results["fp32_eager"]
    met = {"min": lambda v, t: v >= t, "max": lambda v, t: v <= t}
    return {k: {"target": TARGETS[k]["value"], "measured": v,
                "met": None if not judged or v is None else met[TARGETS[k]["bound"]](v, TARGETS[k]["value"])}
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
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0])
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
