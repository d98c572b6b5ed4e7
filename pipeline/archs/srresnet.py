"""SRResNet x4 without batch norm, RankSRGAN's generator (Zhang et al., ICCV 2019), with its module names.

RankSRGAN's released models (`mmsr_RankSRGAN_NIQE.pth` and its Ma / PI siblings) are plain state dicts of
XPixelGroup/RankSRGAN's `codes/models/archs/RankSRGAN_arch.py` SRResNet (`which_model_G: SRResNet` in
`codes/options/test/test_RankSRGAN.yml`, commit b313c24): `conv_first`, `recon_trunk.N.conv1/conv2`, `LRconv`,
`upconv1`, `upconv2`, `HRconv`, `conv_last`. Unlike BasicSR's MSRResNet it has a conv after the trunk, a long skip
from the first features, ReLU activations and no bilinear skip of the input. RGB in [0, 1] in and out.
"""
from __future__ import annotations

import re

import torch
import torch.nn.functional as F
from torch import nn

from pipeline.checkpoint import CheckpointError


class ResidualBlock(nn.Module):
    """conv-ReLU-conv plus the input."""

    def __init__(self, num_feat: int):
        super().__init__()
        self.conv1 = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
        self.conv2 = nn.Conv2d(num_feat, num_feat, 3, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv2(F.relu(self.conv1(x)))


class SRResNet(nn.Module):
    """x4: a trunk of residual blocks at LR, then two (conv, pixel shuffle x2, ReLU) upsamplings."""

    scale = 4

    def __init__(self, num_in_ch: int = 3, num_out_ch: int = 3, num_feat: int = 64, num_block: int = 16):
        super().__init__()
        self.conv_first = nn.Conv2d(num_in_ch, num_feat, 3, 1, 1)
        self.recon_trunk = nn.Sequential(*(ResidualBlock(num_feat) for _ in range(num_block)))
        self.LRconv = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
        self.upconv1 = nn.Conv2d(num_feat, num_feat * 4, 3, 1, 1)
        self.upconv2 = nn.Conv2d(num_feat, num_feat * 4, 3, 1, 1)
        self.pixel_shuffle = nn.PixelShuffle(2)
        self.HRconv = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
        self.conv_last = nn.Conv2d(num_feat, num_out_ch, 3, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, 3, h, w) -> (B, 3, 4h, 4w)
        feat = self.conv_first(x)
        out = self.LRconv(self.recon_trunk(feat)) + feat
        out = F.relu(self.pixel_shuffle(self.upconv1(out)))  # (B, C, 2h, 2w)
        out = F.relu(self.pixel_shuffle(self.upconv2(out)))  # (B, C, 4h, 4w)
        return self.conv_last(F.relu(self.HRconv(out)))


def srresnet_config_from_state(state: dict[str, torch.Tensor]) -> dict[str, int]:
    """SRResNet constructor arguments read off a state dict's tensor shapes (x4 only)."""
    absent = [k for k in ("conv_first.weight", "conv_last.weight", "upconv1.weight") if k not in state]
    if absent:
        raise CheckpointError(f"not an SRResNet state dict: missing keys {', '.join(absent)}")
    if "upconv2.weight" not in state:
        raise CheckpointError("an x2 or x3 SRResNet checkpoint (no upconv2): only x4 is supported")
    blocks = {int(m.group(1)) for k in state if (m := re.match(r"recon_trunk\.(\d+)\.", k))}
    return {"num_in_ch": state["conv_first.weight"].shape[1], "num_out_ch": state["conv_last.weight"].shape[0],
            "num_feat": state["conv_first.weight"].shape[0], "num_block": max(blocks, default=-1) + 1}
