"""Timing, profiling and FLOP counting of a callable on a device; the device's environment and bf16 peak."""
from __future__ import annotations

import platform
import time
from pathlib import Path

import torch
import yaml
from torch.autograd import DeviceType
from torch.profiler import ProfilerActivity
from torch.utils.flop_counter import FlopCounterMode

from pipeline.train_step import PHASES

TARGETS = yaml.safe_load(Path(__file__).with_name("targets.yaml").read_text())  # {name: {value, bound, what}}
# Dense bf16 tensor-core peaks from the vendor's data sheets, TFLOP/s; the first name found in the device's wins.
BF16_PEAK_TFLOPS = (("H100 PCIe", 756.0), ("H100", 989.4), ("H200", 989.4), ("A100", 312.0))


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


def environment(device: torch.device) -> dict:
    env = {"device": torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or "cpu",
           "device_type": device.type, "torch": torch.__version__, "cuda": torch.version.cuda,
           "cpu_threads": torch.get_num_threads()}
    if device.type == "cuda":
        env.update(cudnn=torch.backends.cudnn.version(), tf32_matmul=torch.backends.cuda.matmul.allow_tf32,
                   tf32_cudnn=torch.backends.cudnn.allow_tf32)
    return env
