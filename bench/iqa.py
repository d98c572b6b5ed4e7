"""SFD-IQA (Eq. 8-10) on batches and single images, next to CLIP's image tower alone."""
from __future__ import annotations

import contextlib

import torch
from torch import nn

from bench.timing import count_flops, profile, throughput, timed
from pipeline.archs.clip_encoder import CLIPEncoder
from pipeline.archs.featd import FeatD
from pipeline.archs.lpp import LearnablePromptPairs
from pipeline.sfd_iqa import SFDIQA

# SFD-IQA timings: (bf16 autocast, channels_last, torch.compile mode of CLIP's image tower and Feat-D or None) for
# the scorer and the CLIP tower it is compared with
IQA_MODES = {"fp32": (False, False, None), "channels_last": (False, True, None), "bf16": (True, False, None),
             "bf16_channels_last": (True, True, None), "fp32_compiled": (False, False, "default"),
             "bf16_channels_last_compiled": (True, True, "default"),
             "bf16_channels_last_cudagraphs": (True, True, "reduce-overhead")}


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
