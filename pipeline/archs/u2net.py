"""Full-size U^2-Net (Qin et al., Pattern Recognition 2020, "U^2-Net: Going Deeper with Nested U-Structure for
Salient Object Detection"), the salient-object detector of RecycleD's "SOD U2Net + SR residual" weighting, with the
module names of YunanZhu/RecycleD's models/archs/sod.py U2NET (commit 8db90dc; copied there from xuebinqin/U-2-Net
model/u2net.py, the same names at commit ac7e1c8), so that u2net.pth loads strictly.

Every block is a residual U-block RSU-L (`RSU7` ... `RSU4`, `RSU4F`): `rebnconvin` maps to out_ch, then encoder
convs `rebnconv1` ... `rebnconv{L-1}` (a ceil-mode max-pool after each but the last), `rebnconv{L}` dilated 2, and
decoder convs `rebnconv{L-1}d` ... `rebnconv1d` on the concatenation with the encoder's feature, bilinearly
upsampled to the next skip's size; output + the `rebnconvin` feature. RSU-4F does not pool and dilates 1, 2, 4, 8
instead. Each conv is a REBNCONV: `conv_s1` (3x3) + `bn_s1` + ReLU. The outer U has stages 1-6 and 5d-1d, six
3x3 side convs to one channel each, upsampled to H x W and fused by the 1x1 `outconv`; its sigmoid is the SOD map,
the first of upstream's seven outputs.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

# stage -> (height L, dilated, in, mid, out channels), U2NET's __init__
STAGES = {"stage1": (7, False, 3, 32, 64), "stage2": (6, False, 64, 32, 128), "stage3": (5, False, 128, 64, 256),
          "stage4": (4, False, 256, 128, 512), "stage5": (4, True, 512, 256, 512), "stage6": (4, True, 512, 256, 512),
          "stage5d": (4, True, 1024, 256, 512), "stage4d": (4, False, 1024, 128, 256),
          "stage3d": (5, False, 512, 64, 128), "stage2d": (6, False, 256, 32, 64), "stage1d": (7, False, 128, 16, 64)}
SIDES = {"side1": "stage1d", "side2": "stage2d", "side3": "stage3d", "side4": "stage4d", "side5": "stage5d",
         "side6": "stage6"}  # side conv -> the stage whose output it reads


def _up_like(x: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    return F.interpolate(x, size=like.shape[-2:], mode="bilinear", align_corners=False)


def _pool(x: torch.Tensor) -> torch.Tensor:
    return F.max_pool2d(x, 2, 2, ceil_mode=True)


class REBNCONV(nn.Module):
    def __init__(self, in_ch: int, out_ch: int, dirate: int = 1):
        super().__init__()
        self.conv_s1 = nn.Conv2d(in_ch, out_ch, 3, padding=dirate, dilation=dirate)
        self.bn_s1 = nn.BatchNorm2d(out_ch)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.bn_s1(self.conv_s1(x)))


class RSU(nn.Module):
    """RSU-L (`dilated`: RSU-LF): (N, in_ch, H, W) -> (N, out_ch, H, W)."""

    def __init__(self, height: int, in_ch: int, mid_ch: int, out_ch: int, dilated: bool = False):
        super().__init__()
        self.height, self.dilated = height, dilated
        rates = [2 ** i for i in range(height)] if dilated else [1] * (height - 1) + [2]
        self.rebnconvin = REBNCONV(in_ch, out_ch)
        for i in range(1, height + 1):
            self.add_module(f"rebnconv{i}", REBNCONV(out_ch if i == 1 else mid_ch, mid_ch, rates[i - 1]))
        for i in range(height - 1, 0, -1):
            self.add_module(f"rebnconv{i}d", REBNCONV(2 * mid_ch, out_ch if i == 1 else mid_ch, rates[i - 1]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        hxin = self.rebnconvin(x)
        h, skips = hxin, []
        for i in range(1, self.height):
            skips.append(getattr(self, f"rebnconv{i}")(h))
            h = skips[-1] if self.dilated or i == self.height - 1 else _pool(skips[-1])
        h = getattr(self, f"rebnconv{self.height}")(h)
        for i in range(self.height - 1, 0, -1):
            h = getattr(self, f"rebnconv{i}d")(torch.cat((h, skips[i - 1]), 1))
            if i > 1 and not self.dilated:
                h = _up_like(h, skips[i - 2])
        return h + hxin


class U2NET(nn.Module):
    """(N, 3, H, W) ImageNet-normalised RGB -> (N, 1, H, W) saliency in (0, 1) (upstream's first output, the fused
    map). RecycleD feeds 320 x 320."""

    def __init__(self, in_ch: int = 3, out_ch: int = 1):
        super().__init__()
        for name, (height, dilated, c_in, mid, c_out) in STAGES.items():
            self.add_module(name, RSU(height, in_ch if name == "stage1" else c_in, mid, c_out, dilated))
        for side, stage in SIDES.items():
            self.add_module(side, nn.Conv2d(STAGES[stage][4], out_ch, 3, padding=1))
        self.outconv = nn.Conv2d(6 * out_ch, out_ch, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        encoded, h = [], x
        for i in range(1, 6):  # stages 1-5 at H, H/2, ... H/16, each pooled for the next
            encoded.append(getattr(self, f"stage{i}")(h))
            h = _pool(encoded[-1])
        h = self.stage6(h)  # H/32
        out = {"stage6": h}
        for i in range(5, 0, -1):
            h = getattr(self, f"stage{i}d")(torch.cat((_up_like(h, encoded[i - 1]), encoded[i - 1]), 1))
            out[f"stage{i}d"] = h
        d1 = self.side1(out["stage1d"])
        sides = [d1] + [_up_like(getattr(self, side)(out[SIDES[side]]), d1) for side in list(SIDES)[1:]]
        return torch.sigmoid(self.outconv(torch.cat(sides, 1)))  # (N, 1, H, W)
