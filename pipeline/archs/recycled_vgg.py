"""RecycleD's WGAN critics (Zhu et al., ACM MM 2021): the "VGG" (ImageGAN) and "PatchVGG" (PatchGAN) choices of
YunanZhu/RecycleD's models/srgan.py define_discriminator, i.e. VggDiscriminator and PatchVggDiscriminator of
models/archs/discriminator.py (commit 8db90dc).

Both start with four blocks of conv 3x3 + LeakyReLU 0.2 + conv 4x4 stride 2 + LeakyReLU 0.2 (64, 128, 256, 512
channels, with biases, no normalisation; H -> floor(H / 2) per block). Every layer sits in one nn.Sequential
`model`, so the state dict's keys are its indices: the trunk's eight convs are `model.0`, `model.2`, ...
`model.14`. The ImageGAN critic adds an adaptive average pool to 4 x 4 and a 8192 -> 100 -> 1 MLP (`model.18`,
`model.20`); the PatchGAN critic two 3x3 convs, 512 -> 192 -> 1 (`model.16`, `model.18`): one score per 140 px
receptive field at stride 16.
"""
from __future__ import annotations

import torch
from torch import nn

WIDTHS = (64, 128, 256, 512)


def trunk(in_channels: int = 3) -> list[nn.Module]:
    """discriminator.py's four discriminator_block()s, flattened: (N, C, H, W) -> (N, 512, H/16, W/16)."""
    layers = []
    for c_in, c_out in zip((in_channels, *WIDTHS[:-1]), WIDTHS):
        layers += [nn.Conv2d(c_in, c_out, 3, 1, 1), nn.LeakyReLU(0.2),
                   nn.Conv2d(c_out, c_out, 4, 2, 1), nn.LeakyReLU(0.2)]
    return layers


class VggDiscriminator(nn.Module):
    """ImageGAN critic: (N, 3, H, W) RGB in [0, 1], H and W >= 16 -> (N, 1) scores (higher: more like an HR image)."""

    def __init__(self, in_channels: int = 3):
        super().__init__()
        self.model = nn.Sequential(*trunk(in_channels), nn.AdaptiveAvgPool2d(4), nn.Flatten(),
                                   nn.Linear(WIDTHS[-1] * 4 * 4, 100), nn.LeakyReLU(0.2), nn.Linear(100, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


class PatchVggDiscriminator(nn.Module):
    """PatchGAN critic: (N, 3, H, W) RGB in [0, 1], H and W >= 16 -> (N, 1, H/16, W/16) score matrix, upstream's
    `forward(x, patch_result=True, shape="mat4d")` (its plain forward is this matrix's mean)."""

    def __init__(self, in_channels: int = 3):
        super().__init__()
        self.model = nn.Sequential(*trunk(in_channels), nn.Conv2d(WIDTHS[-1], 192, 3, 1, 1), nn.LeakyReLU(0.2),
                                   nn.Conv2d(192, 1, 3, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)
