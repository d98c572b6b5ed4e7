"""Feat-D, the feature discriminator of SFD (Eq. 1-2; its score map is Eq. 8 of SFD-IQA).

The paper gives no layer list: it discriminates CLIP's pixel-wise middle features F_m1, F_m2, F_m3 into a score
matrix [s_ij], and its t-SNE reads "features after the 3rd upsampling layer". Our design (method.md): a top-down
decoder with spectral-normalised convolutions, as in Real-ESRGAN's U-Net discriminator. Each F_mi is projected by
a 1x1 conv; from F_m3 (H/16) it upsamples x2 and fuses F_m2's projection (concatenation, 3x3 conv), upsamples x2
and fuses F_m1's (H/4), upsamples x2 a third time (H/2) with a 3x3 conv, and a last plain 3x3 conv gives one logit
per pixel of an H/2 x W/2 map. LeakyReLU 0.2 throughout. Upsampling goes to the skip feature's exact size, so odd
input sizes work.
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm


def _sn_conv(in_ch: int, out_ch: int, kernel: int) -> nn.Module:
    return spectral_norm(nn.Conv2d(in_ch, out_ch, kernel, padding=kernel // 2))


def _up(x: torch.Tensor, size) -> torch.Tensor:
    return F.interpolate(x, size=size, mode="bilinear", align_corners=False)


class FeatD(nn.Module):
    """Score map (N x 1 x H/2 x W/2 logits) from CLIP's F_m1, F_m2, F_m3.

    in_channels: channels of (F_m1, F_m2, F_m3), read from the encoder (`CLIPEncoder.mid_channels`).
    widths: (c3, c2, c1, c0), the decoder's channels at H/16, H/8, H/4 and H/2.
    """

    def __init__(self, in_channels: Sequence[int] = (256, 512, 1024), widths: Sequence[int] = (512, 256, 128, 64)):
        super().__init__()
        (in1, in2, in3), (c3, c2, c1, c0) = in_channels, widths
        self.in_channels, self.widths = tuple(in_channels), tuple(widths)
        self.proj3 = _sn_conv(in3, c3, 1)
        self.proj2 = _sn_conv(in2, c2, 1)
        self.proj1 = _sn_conv(in1, c1, 1)
        self.fuse2 = _sn_conv(c3 + c2, c2, 3)  # after the 1st upsampling
        self.fuse1 = _sn_conv(c2 + c1, c1, 3)  # after the 2nd
        self.conv0 = _sn_conv(c1, c0, 3)  # after the 3rd
        self.head = nn.Conv2d(c0, 1, 3, padding=1)
        self.act = nn.LeakyReLU(0.2)

    def forward_features(self, m1: torch.Tensor, m2: torch.Tensor, m3: torch.Tensor) -> torch.Tensor:
        """Features after the 3rd upsampling layer (N x c0 x H/2 x W/2), the ones the paper's t-SNE shows."""
        # channels_last: PyTorch's bilinear upsampling of NCHW tensors runs one thread per output pixel looping over
        # all images and channels (2.4 of SFD-IQA's 4.6 ms over CLIP at batch 16 on an H200, measured)
        m1, m2, m3 = (m.contiguous(memory_format=torch.channels_last) for m in (m1, m2, m3))
        x = self.act(self.proj3(m3))
        x = self.act(self.fuse2(torch.cat([_up(x, m2.shape[-2:]), self.act(self.proj2(m2))], dim=1)))
        x = self.act(self.fuse1(torch.cat([_up(x, m1.shape[-2:]), self.act(self.proj1(m1))], dim=1)))
        return self.act(self.conv0(_up(x, (2 * m1.shape[-2], 2 * m1.shape[-1]))))

    def forward(self, m1: torch.Tensor, m2: torch.Tensor, m3: torch.Tensor) -> torch.Tensor:
        """Logits [s_ij] (Eq. 8); sigmoid gives D's probability that a pixel's features come from an HR image."""
        return self.head(self.forward_features(m1, m2, m3))
