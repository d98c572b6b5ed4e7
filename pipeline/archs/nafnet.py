"""NAFNet, the Nonlinear Activation Free Network (Chen et al., "Simple Baselines for Image Restoration", ECCV 2022),
the restoration backbone of the paper's Table 5 (deraining on Rain100L, deblurring on GoPro; scale 1).

A U-Net of NAFBlocks: `intro` conv, per level an encoder stage and a stride-2 conv `downs` (channels x2), the
`middle_blks`, per level a 1x1 conv + PixelShuffle(2) `ups` (channels /2) whose output is added to the encoder's
skip before the decoder stage, the `ending` conv, and a global residual to the input. Module and parameter names
follow megvii-research/NAFNet's `basicsr/models/archs/NAFNet_arch.py`, so its released `NAFNet-GoPro-width64.pth`
and friends (`{'params': state}`) load with strict=True: `encoders.<i>.<j>`, `downs.<i>`, `middle_blks.<j>`,
`ups.<i>.0`, `decoders.<i>.<j>`, and in each block `norm1`, `conv1`..`conv3`, `sca.1`, `norm2`, `conv4`, `conv5`,
`beta`, `gamma`. Dropout (upstream's `drop_out_rate`, 0 in every released config) is left out.

Upstream's GoPro configs build `NAFNetLocal` (TLSC, Chu et al. ECCV 2022), which has the same weights: on 256 px
training crops it is this network, but at test time its SCA averages over a local window of 1.5x the training
size instead of the whole image. This port always pools globally.
"""
from __future__ import annotations

import re

import torch
import torch.nn.functional as F
from torch import nn

from pipeline.checkpoint import CheckpointError


class LayerNorm2d(nn.Module):
    """LayerNorm over the channels of each pixel of a (B, C, H, W) map, with upstream's eps 1e-6 inside the sqrt
    and the biased variance (upstream writes the same function with a hand-written backward)."""

    def __init__(self, channels: int, eps: float = 1e-6):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))
        self.eps = eps

    def forward(self, x):
        mu = x.mean(1, keepdim=True)  # B, 1, H, W
        var = (x - mu).pow(2).mean(1, keepdim=True)
        y = (x - mu) / (var + self.eps).sqrt()
        return self.weight.view(1, -1, 1, 1) * y + self.bias.view(1, -1, 1, 1)


def simple_gate(x: torch.Tensor) -> torch.Tensor:
    """SimpleGate, NAFNet's replacement for every nonlinear activation: (B, 2C, H, W) -> (B, C, H, W), X1 * X2."""
    x1, x2 = x.chunk(2, dim=1)
    return x1 * x2


class NAFBlock(nn.Module):
    """Two residual branches on c channels, each scaled by a learned per-channel factor (`beta`, `gamma`, zero at
    init, so a new block is the identity): LayerNorm, 1x1 conv to 2c, 3x3 depthwise conv, SimpleGate, simplified
    channel attention (x * W pool(x), no activation), 1x1 conv; then LayerNorm, 1x1 conv to 2c, SimpleGate, 1x1 conv.
    """

    def __init__(self, c: int):
        super().__init__()
        # registered in upstream's order, so parameters() (and an optimizer state over them) line up with theirs
        self.conv1 = nn.Conv2d(c, 2 * c, 1)
        self.conv2 = nn.Conv2d(2 * c, 2 * c, 3, padding=1, groups=2 * c)
        self.conv3 = nn.Conv2d(c, c, 1)
        self.sca = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Conv2d(c, c, 1))  # key `sca.1`: the pool comes first
        self.conv4 = nn.Conv2d(c, 2 * c, 1)
        self.conv5 = nn.Conv2d(c, c, 1)
        self.norm1 = LayerNorm2d(c)
        self.norm2 = LayerNorm2d(c)
        self.beta = nn.Parameter(torch.zeros(1, c, 1, 1))
        self.gamma = nn.Parameter(torch.zeros(1, c, 1, 1))

    def forward(self, inp):
        x = simple_gate(self.conv2(self.conv1(self.norm1(inp))))  # B, c, H, W
        x = self.conv3(x * self.sca(x))  # sca(x): B, c, 1, 1
        y = inp + x * self.beta
        x = self.conv5(simple_gate(self.conv4(self.norm2(y))))
        return y + x * self.gamma


class NAFNet(nn.Module):
    """NAFNet on img_channel-channel images in [0, 1] (no mean subtraction); the output has the input's size.

    Defaults are the sizes of the released GoPro deblurring models (`NAFNet-GoPro-width64.pth`; width 32 for the
    small one), not upstream's constructor defaults (width 16, no levels). The input is zero-padded at the bottom
    and right to a multiple of 2 ** levels, as upstream does, and the output cropped back.
    """

    scale = 1  # the SR CLI and the evaluation read net.scale

    def __init__(self, img_channel: int = 3, width: int = 64, middle_blk_num: int = 1,
                 enc_blk_nums: tuple[int, ...] = (1, 1, 1, 28), dec_blk_nums: tuple[int, ...] = (1, 1, 1, 1)):
        super().__init__()
        if len(enc_blk_nums) != len(dec_blk_nums):
            raise ValueError(f"enc_blk_nums {tuple(enc_blk_nums)} and dec_blk_nums {tuple(dec_blk_nums)} must have "
                             f"one entry per level each")
        self.intro = nn.Conv2d(img_channel, width, 3, padding=1)
        self.ending = nn.Conv2d(width, img_channel, 3, padding=1)
        # registered in upstream's order (see NAFBlock)
        self.encoders, self.decoders = nn.ModuleList(), nn.ModuleList()
        self.middle_blks = nn.Sequential()
        self.ups, self.downs = nn.ModuleList(), nn.ModuleList()
        chan = width
        for num in enc_blk_nums:
            self.encoders.append(nn.Sequential(*(NAFBlock(chan) for _ in range(num))))
            self.downs.append(nn.Conv2d(chan, 2 * chan, 2, stride=2))
            chan *= 2
        self.middle_blks.extend(NAFBlock(chan) for _ in range(middle_blk_num))
        for num in dec_blk_nums:
            self.ups.append(nn.Sequential(nn.Conv2d(chan, 2 * chan, 1, bias=False), nn.PixelShuffle(2)))
            chan //= 2
            self.decoders.append(nn.Sequential(*(NAFBlock(chan) for _ in range(num))))
        self.pad_multiple = 2 ** len(enc_blk_nums)

    def forward(self, inp):
        h, w = inp.shape[-2:]
        inp = F.pad(inp, (0, -w % self.pad_multiple, 0, -h % self.pad_multiple))  # B, C, H', W'
        x = self.intro(inp)  # B, width, H', W'
        skips = []
        for encoder, down in zip(self.encoders, self.downs):
            x = encoder(x)
            skips.append(x)
            x = down(x)  # channels x2, size /2
        x = self.middle_blks(x)  # B, width * 2**levels, H'/2**levels, W'/2**levels
        for decoder, up, skip in zip(self.decoders, self.ups, reversed(skips)):
            x = decoder(up(x) + skip)  # channels /2, size x2
        return (self.ending(x) + inp)[..., :h, :w]


def nafnet_config_from_state(state: dict[str, torch.Tensor]) -> dict:
    """NAFNet constructor arguments read off the keys and tensor shapes of a state dict in the upstream layout."""
    needed = ("intro.weight", "ending.weight")
    absent = [k for k in needed if k not in state]
    if absent:
        raise CheckpointError(f"not a NAFNet state dict: missing keys {', '.join(absent)}")

    def indices(pattern: str) -> list[int]:
        return sorted({int(m.group(1)) for k in state if (m := re.match(pattern, k))})

    def blocks(stage: str, levels: int) -> tuple[int, ...]:
        # a level's stage is an nn.Sequential: its blocks are numbered 0..n-1 (none: an empty stage, no keys)
        return tuple(max(indices(rf"{stage}\.{i}\.(\d+)\."), default=-1) + 1 for i in range(levels))

    downs, ups = indices(r"downs\.(\d+)\.weight$"), indices(r"ups\.(\d+)\.0\.weight$")
    if len(downs) != len(ups):
        raise CheckpointError(f"not a NAFNet state dict: {len(downs)} encoder levels (downs.*) but {len(ups)} "
                              f"decoder levels (ups.*)")
    return {
        "img_channel": state["intro.weight"].shape[1],
        "width": state["intro.weight"].shape[0],
        "middle_blk_num": max(indices(r"middle_blks\.(\d+)\."), default=-1) + 1,
        "enc_blk_nums": blocks("encoders", len(downs)),
        "dec_blk_nums": blocks("decoders", len(ups)),
    }
