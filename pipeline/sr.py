"""Super-resolve (RRDBNet, SwinIR, SRResNet, SPSRNet, SFTGAN) or restore (NAFNet, scale 1) images with a generator
checkpoint, whole or in tiles.

    python -m pipeline.sr --weights FILE --input IMAGE_OR_FOLDER --output DIR [--prior FILE] [--tile N]
                          [--tile-overlap M] [--device cpu|cuda]

The network and its sizes are read off the checkpoint (RRDBNet x4 in BasicSR, ESRGAN or old RRDB_Net key names,
with or without a `params`/`params_ema` wrapper; SwinIR in its public layout, classical x2/x4/x8 or real-world x4
with the nearest+conv upsampler; RankSRGAN's SRResNet x4; SPSR's SPSRNet x4; SFTGAN's SFT_Net_torch x4, with its
segmentation network's weights as `--prior`; NAFNet deraining/deblurring, x1, in megvii-research/NAFNet's layout),
so no size flags are needed. Outputs are PNGs named after the input stems
(inputs that share a stem are refused). `--tile N` runs the network on N x N input tiles, each with M extra pixels
of context on every side that are cut away again: memory stays bounded, and the result equals the whole-image one
wherever the overlap covers the network's receptive field (for SwinIR, whose windows follow the tile origin, it is
close but not identical). NAFNet's output depends on the whole input (its channel attention averages over all of
it), and its stride-2 grid and padding follow each tile's origin and size: tiles approximate the whole-image result
unless every tile's context reaches all four borders, i.e. the tile is the whole image.
"""
from __future__ import annotations

import argparse
import os
import re
import sys
from pathlib import Path

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from pipeline.archs.nafnet import NAFNet, nafnet_config_from_state
from pipeline.archs.rrdbnet import RRDBNet, esrgan_to_basicsr, is_esrgan_layout, rrdbnet_config_from_state
from pipeline.archs.sftgan import (SFTGAN, OutdoorSceneSeg, PriorMissing, SFTNet, is_sftgan_layout,
                                   seg_config_from_state, sftnet_config_from_state, with_batch_counts)
from pipeline.archs.spsr import SPSRNet, is_spsr_layout, spsr_config_from_state, spsr_from_upstream
from pipeline.archs.srresnet import SRResNet, srresnet_config_from_state
from pipeline.archs.swinir import SwinIR, swinir_config_from_state
from pipeline.checkpoint import CheckpointError, key_mismatch, load_into, load_state_dict
from pipeline.fileio import ImageError, list_images, output_problem, read_image, write_image
from pipeline.param_schema import flag_problem, integer
from pipeline.tensor_image import to_tensor, to_uint8

RRDBNET_KEY = "body.0.rdb1.conv1.weight"
SWINIR_KEY = "layers.0.residual_group.blocks.0.attn.relative_position_bias_table"
NAFNET_KEY = "intro.weight"  # every NAFNet has it, whatever its block counts
SRRESNET_KEY = "LRconv.weight"  # RankSRGAN's SRResNet; BasicSR's MSRResNet has no conv after its trunk


def build_generator(state_or_path: dict[str, torch.Tensor] | str | os.PathLike,
                    prior: dict[str, torch.Tensor] | str | os.PathLike | None = None) -> nn.Module:
    """The network a checkpoint holds (RRDBNet, SwinIR, SRResNet, SPSRNet, SFTGAN or NAFNet), sized from its tensors,
    loaded, in eval mode. `prior` is the network whose output conditions the generator: SFTGAN's OutdoorSceneSeg.

    Accepts state dicts or weights files (read safely through pipeline.checkpoint). Raises CheckpointError when
    the weights fit none of the networks, naming the first missing and unexpected keys (and the file).
    """
    if isinstance(state_or_path, (str, os.PathLike)):
        return read_generator(state_or_path, prior=prior)[0]
    state = dict(state_or_path)
    if is_sftgan_layout(state):
        return _build_sftgan(state, prior)
    if prior is not None:
        raise CheckpointError("a prior network was given, but only SFTGAN's generator takes one")
    spsr = is_spsr_layout(state)  # its trunk is in the old RRDB_Net layout too: renamed with its branches
    if spsr:
        state = spsr_from_upstream(state)
    elif is_esrgan_layout(state):
        state = esrgan_to_basicsr(state)
    if spsr:
        net = SPSRNet(**spsr_config_from_state(state))
    elif SWINIR_KEY in state:
        net = SwinIR(**swinir_config_from_state(state))
    elif RRDBNET_KEY in state:
        net = RRDBNet(**rrdbnet_config_from_state(state))
    elif SRRESNET_KEY in state:
        net = SRResNet(**srresnet_config_from_state(state))
    elif NAFNET_KEY in state:
        net = NAFNet(**nafnet_config_from_state(state))
    else:
        reference = list(RRDBNet(num_feat=1, num_grow_ch=1).state_dict())  # key names do not depend on widths
        raise CheckpointError("checkpoint fits none of RRDBNet (BasicSR, ESRGAN or old RRDB_Net key names), SwinIR, "
                              "SRResNet, SPSRNet and NAFNet: " + key_mismatch(reference, list(state)))
    load_into(net, state)
    return net.eval()


def _build_sftgan(state: dict[str, torch.Tensor], prior: dict[str, torch.Tensor] | str | os.PathLike | None) -> SFTGAN:
    if prior is None:
        raise PriorMissing("an SFTGAN generator: it needs its segmentation network's weights (SFTGAN's "
                           "segmentation_OST_bic.pth) as the prior")
    if not isinstance(prior, dict):
        prior = load_state_dict(prior)[0]  # its errors name the file
    seg = OutdoorSceneSeg(**seg_config_from_state(prior))
    net = SFTGAN(seg, SFTNet(**sftnet_config_from_state(state)))
    load_into(net, {**{f"seg.{k}": v for k, v in with_batch_counts(prior, seg).items()},
                    **{f"sr.{k}": v for k, v in state.items()}})
    return net.eval()


def read_generator(path: str | os.PathLike, key: str | None = None,
                   prior: str | os.PathLike | None = None) -> tuple[nn.Module, dict[str, str]]:
    """build_generator of a weights file (its wrapper's `key` state, if given; `prior` a weights file), and the
    file's metadata; every CheckpointError names the file."""
    state, meta = load_state_dict(path, key)  # its errors name the file
    try:
        return build_generator(state, prior), meta
    except CheckpointError as e:
        raise type(e)(f"{path}: {e}") from None

def _tiles(net: nn.Module, lr: torch.Tensor, tile: int, overlap: int):
    """(y, x, output tile) for each tile x tile input tile of `lr`, run with `overlap` px of context and cropped to
    its own region (y, x: its top-left corner in the output, net.scale times the input's; 1 for NAFNet), so no
    blending is needed and seams vanish once `overlap` covers the receptive field (the border tiles see the image
    border exactly as the whole image does)."""
    s = net.scale
    h, w = lr.shape[-2:]
    for y in range(0, h, tile):
        for x in range(0, w, tile):
            y0, x0 = max(y - overlap, 0), max(x - overlap, 0)
            sr = net(lr[..., y0:min(y + tile + overlap, h), x0:min(x + tile + overlap, w)])
            th, tw = min(tile, h - y), min(tile, w - x)
            yield y * s, x * s, sr[..., (y - y0) * s:(y - y0 + th) * s, (x - x0) * s:(x - x0 + tw) * s]


@torch.no_grad()
def upscale(net: nn.Module, lr: torch.Tensor, tile: int = 0, overlap: int = 32) -> torch.Tensor:
    """Run `net` on a (B, C, h, w) batch; with `tile`, on tile x tile input tiles padded by `overlap` px of context."""
    if not tile:
        return net(lr)
    out = None
    for y, x, sr in _tiles(net, lr, tile, overlap):
        if out is None:
            out = sr.new_empty(*sr.shape[:2], lr.shape[-2] * net.scale, lr.shape[-1] * net.scale)
        out[..., y:y + sr.shape[-2], x:x + sr.shape[-1]] = sr
    return out


@torch.no_grad()
def upscale_image(net: nn.Module, img: np.ndarray, tile: int = 0, overlap: int = 32,
                  device: str | torch.device = "cpu") -> np.ndarray:
    """H x W x 3 uint8 RGB -> sH x sW x 3 uint8 RGB, s = net.scale (clamped to [0, 1], then rounded). With `tile`,
    each output tile goes to a uint8 array on the host as it is made: memory holds the output image in uint8 and
    one tile's tensors, never a float copy of the whole output on the device."""
    lr = to_tensor(img, device)
    if not tile:
        return to_uint8(net(lr))
    out = np.empty((img.shape[0] * net.scale, img.shape[1] * net.scale, 3), np.uint8)
    for y, x, sr in _tiles(net, lr, tile, overlap):
        out[y:y + sr.shape[-2], x:x + sr.shape[-1]] = to_uint8(sr)
    return out


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m pipeline.sr", description=__doc__.split("\n\n")[0])
    parser.add_argument("--weights", required=True, help="generator weights (.safetensors or weights-only .pth)")
    parser.add_argument("--prior", help="the weights of the network that conditions the generator (SFTGAN: "
                        "segmentation_OST_bic.pth)")
    parser.add_argument("--input", required=True, help="an image or a folder of images")
    parser.add_argument("--output", required=True, help="folder for the PNG outputs")
    parser.add_argument("--tile", type=int, default=0, help="input tile size in pixels (0: whole image); for NAFNet "
                        "tiles approximate the whole-image result (its channel attention pools the whole input)")
    parser.add_argument("--tile-overlap", type=int, default=32, help="input context pixels around each tile")
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args(argv)
    problem = flag_problem({"--tile": args.tile, "--tile-overlap": args.tile_overlap},
                           {"--tile": integer(0), "--tile-overlap": integer(0)})
    if problem:
        parser.error(problem)
    return args


def main(argv: list[str] | None = None) -> int:
    """CLI entry; problems with the inputs print one `error:` line and return 2."""
    args = parse_args(argv)

    def fail(message: str) -> int:
        # one line, without the terminal colour codes torch puts in its unpickling errors
        print("error: " + re.sub(r"\x1b\[[0-9;]*m", "", message.splitlines()[0]), file=sys.stderr)
        return 2

    source, out_dir = Path(args.input), Path(args.output)
    if not source.exists():
        return fail(f"input not found: {source}")
    paths = list_images(source) if source.is_dir() else [source]
    if not paths:
        return fail(f"no images in {source}")
    if out_dir.exists() and not out_dir.is_dir():
        return fail(f"--output {out_dir} is a file; give a folder for the PNG outputs")
    if out_dir.exists() and out_dir.resolve() == paths[0].parent.resolve():
        return fail("the output folder must differ from the input folder (outputs would replace inputs)")
    problem = output_problem([out_dir / f"{path.stem}.png" for path in paths], paths)
    if problem:
        return fail(f"--output: {problem}")
    by_stem: dict[str, list[str]] = {}
    for path in paths:
        by_stem.setdefault(path.stem, []).append(path.name)
    clashes = [f"{' and '.join(names)} -> {stem}.png" for stem, names in by_stem.items() if len(names) > 1]
    if clashes:
        return fail(f"inputs with the same stem would write the same output: {'; '.join(clashes)}")
    if args.device == "cuda" and not torch.cuda.is_available():
        return fail("--device cuda requested but CUDA is not available")
    try:
        net = build_generator(args.weights, args.prior).to(args.device)
    except CheckpointError as e:
        return fail(str(e))
    skipped = []
    for path in tqdm(paths, desc="restoring" if net.scale == 1 else "super-resolving", unit="img"):
        try:
            img = read_image(path)
        except ImageError as e:  # reported and skipped: the rest of the folder is still super-resolved
            skipped.append(str(e))
            continue
        write_image(out_dir / f"{path.stem}.png", upscale_image(net, img, args.tile, args.tile_overlap, args.device))
    if skipped:
        print(f"warning: skipped {len(skipped)} of {len(paths)} image(s): {'; '.join(skipped)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
