"""The ESRGAN baseline's image discriminator: BasicSR's VGGStyleDiscriminator, for any input size multiple of 32.

Stage i is conv{i}_0 (3x3) and conv{i}_1 (4x4, stride 2), each followed by BatchNorm (except conv0_0) and
LeakyReLU 0.2; widths num_feat * (1, 2, 4, 8, 8, ...). Five stages halve the input 32 times; while the map is
still even and larger than 4, stages are added, so 128 and 256 inputs give exactly BasicSR's layouts (5 and 6
stages, a 4x4 map). Two linear layers (100 hidden units) give one real/fake logit per image.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class VGGStyleDiscriminator(nn.Module):
    def __init__(self, num_in_ch: int = 3, num_feat: int = 64, input_size: int = 128):
        super().__init__()
        if input_size % 32:
            raise ValueError(f"input_size must be a multiple of 32, got {input_size}")
        self.input_size = input_size
        num_stages = 5
        while (input_size >> num_stages) > 4 and (input_size >> num_stages) % 2 == 0:
            num_stages += 1
        self.conv0_0 = nn.Conv2d(num_in_ch, num_feat, 3, 1, 1)
        self.conv_bn_names = []  # (conv, bn) names in forward order; BasicSR's names keep its checkpoints loadable
        ch_prev = num_feat
        for i in range(num_stages):
            ch = num_feat * min(2 ** i, 8)
            if i > 0:
                self.add_module(f"conv{i}_0", nn.Conv2d(ch_prev, ch, 3, 1, 1, bias=False))
                self.add_module(f"bn{i}_0", nn.BatchNorm2d(ch))
                self.conv_bn_names.append((f"conv{i}_0", f"bn{i}_0"))
            self.add_module(f"conv{i}_1", nn.Conv2d(ch, ch, 4, 2, 1, bias=False))
            self.add_module(f"bn{i}_1", nn.BatchNorm2d(ch))
            self.conv_bn_names.append((f"conv{i}_1", f"bn{i}_1"))
            ch_prev = ch
        side = input_size >> num_stages
        self.linear1 = nn.Linear(ch_prev * side * side, 100)
        self.linear2 = nn.Linear(100, 1)

    def features(self, x: torch.Tensor, num_bn: int | None = None) -> torch.Tensor:
        """Conv trunk output; with `num_bn`, stop after the activation that follows the num_bn-th BN layer."""
        feat = F.leaky_relu(self.conv0_0(x), 0.2)
        for conv, bn in self.conv_bn_names[:num_bn]:
            feat = F.leaky_relu(getattr(self, bn)(getattr(self, conv)(feat)), 0.2)
        return feat

    def bn2_features(self, x: torch.Tensor) -> torch.Tensor:
        """Output of the 2nd BN layer (bn1_0) + LeakyReLU, for the t-SNE figure: (B, 2*num_feat, H/2, W/2)."""
        return self.features(x, num_bn=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, input_size, input_size) -> (B, 1) logits."""
        if x.shape[-2:] != (self.input_size, self.input_size):
            raise ValueError(f"expected {self.input_size}x{self.input_size} input, got {tuple(x.shape[-2:])}")
        feat = self.features(x).flatten(1)
        return self.linear2(F.leaky_relu(self.linear1(feat), 0.2))
