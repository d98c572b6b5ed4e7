"""The data side on the CPU: decoding and cropping sub-images, Real-ESRGAN's degradation, workers needed."""
from __future__ import annotations

import contextlib
import math
import tempfile
import time
from pathlib import Path

import torch

from bench.timing import TARGETS
from pipeline.data.datasets import PairedPatches
from pipeline.data.degradation import RealESRGANDegradation
SUBIMAGE, SUBIMAGE_STEP = 480, 240  # BasicSR's DF2K sub-images (synthesize.paper)
DATA_SOURCES = ("astronaut", "immunohistochemistry")  # natural images that ship with scikit-image
# The degradation's random draws (parameters, noise fields, Poisson samples), profiled in its CPU timing: the
# share of a CPU worker's time they take.
CPU_RANDOM_OPS = ("aten::poisson", "aten::normal_", "aten::uniform_", "aten::randperm", "aten::bernoulli_")


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
    rates = {"target": TARGETS["sfd_images_per_s"]["value"], **{f"measured_{k}": v for k, v in step_rates.items()}}
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
