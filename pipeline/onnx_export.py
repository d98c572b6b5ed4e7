"""Export a generator checkpoint to ONNX for deployment.

    python -m pipeline.onnx_export --weights FILE --output MODEL.onnx [--opset N]

Any checkpoint `python -m pipeline.sr` loads (RRDBNet, SwinIR, NAFNet; sizes read off the file) but SFTGAN's, whose
segmentation input is a MATLAB-bicubic upsampling with weights computed for one image size (a traced graph would
keep those of the example input). The graph takes `input`, N x 3 x H x W RGB in [0, 1], and gives `output`,
N x 3 x sH x sW (s: the network's scale), with batch, height and width dynamic; clamp and round the output to 8 bits
as the SR CLI does.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch
from torch import nn

from pipeline.archs.sftgan import PriorMissing
from pipeline.checkpoint import CheckpointError
from pipeline.fileio import atomic_path
from pipeline.sr import read_generator

OPSET = 17
SAMPLE = 64  # px of the traced example input; any size runs afterwards


def export_onnx(net: nn.Module, out: str | Path, opset: int = OPSET) -> Path:
    """Write `net` (eval mode) as an ONNX graph with dynamic batch, height and width to `out`, atomically."""
    x = torch.rand(1, 3, SAMPLE, SAMPLE, generator=torch.Generator().manual_seed(0))
    axes = {"input": {0: "batch", 2: "height", 3: "width"}, "output": {0: "batch", 2: "out_height", 3: "out_width"}}
    with atomic_path(out) as tmp, torch.no_grad():
        torch.onnx.export(net.eval(), (x,), str(tmp), input_names=["input"], output_names=["output"],
                          dynamic_axes=axes, opset_version=opset, dynamo=False)
    return Path(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pipeline.onnx_export", description=__doc__.splitlines()[0])
    parser.add_argument("--weights", required=True, help="generator checkpoint (.safetensors or .pth)")
    parser.add_argument("--output", required=True, help="ONNX file to write")
    parser.add_argument("--opset", type=int, default=OPSET, help=f"ONNX opset (default {OPSET})")
    args = parser.parse_args(argv)
    try:
        net, _ = read_generator(args.weights)
    except PriorMissing:
        print(f"error: {args.weights}: SFTGAN is not exported: its segmentation input, a MATLAB-bicubic upsampling, "
              f"has weights for one image size, which an ONNX graph cannot keep dynamic", file=sys.stderr)
        return 2
    except CheckpointError as e:
        print(f"error: {str(e).splitlines()[0]}", file=sys.stderr)
        return 2
    print("wrote", export_onnx(net, args.output, args.opset))
    return 0


if __name__ == "__main__":
    sys.exit(main())
