"""BASNet (Qin et al., CVPR 2019, "BASNet: Boundary-Aware Salient Object Detection"), the salient-object detector
of RecycleD's "SOD BASNet + SR residual" weighting, with the module names of YunanZhu/RecycleD's
models/archs/sod.py BASNet (commit 8db90dc; copied there from xuebinqin/BASNet model/BASNet.py, the same names at
commit 5639381), so that basnet.pth loads strictly.

- encoder: `inconv` (3x3, 64) + `inbn` at full resolution, torchvision ResNet-34's layer1-4 as `encoder1`-`encoder4`
  (H, H/2, H/4, H/8), then max-pool and three BasicBlocks twice (`resb5_*` at H/16, `resb6_*` at H/32);
- bridge: three dilated (2) 3x3 convs `convbg_1`, `convbg_m`, `convbg_2` with batch norms;
- decoder: stages 6d ... 1d, each three conv + BN + ReLU (`conv{s}d_1`, `conv{s}d_m`, `conv{s}d_2`) on the
  concatenation with the encoder's feature at that scale, bilinear x2 between them;
- `outconv1` gives the coarse map, which `refunet` (a residual U-Net over four max-pools) refines: its sigmoid is
  the SOD map, the first of upstream's eight outputs. The other side outputs' convs (`outconvb`, `outconv2`-`6`)
  are kept only so that the file loads; the SOD map does not use them.
Bilinear upsampling by 2 throughout, align_corners=False, as upstream; H and W must be multiples of 32 (RecycleD
feeds 256 x 256).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.models import resnet34
from torchvision.models.resnet import BasicBlock

# decoder stage -> (in, mid, out) channels and the dilation of its 2nd and 3rd convs
DECODER = {6: (1024, 512, 512, 2), 5: (1024, 512, 512, 1), 4: (1024, 512, 256, 1), 3: (512, 256, 128, 1),
           2: (256, 128, 64, 1), 1: (128, 64, 64, 1)}
SIDE_CHANNELS = {"outconvb": 512, "outconv6": 512, "outconv5": 512, "outconv4": 256, "outconv3": 128,
                 "outconv2": 64, "outconv1": 64}


def _up2(x: torch.Tensor) -> torch.Tensor:
    return F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)


def _pool(x: torch.Tensor) -> torch.Tensor:
    return F.max_pool2d(x, 2, 2, ceil_mode=True)


def add_conv_bn(owner: nn.Module, name: str, c_in: int, c_out: int, dilation: int = 1) -> str:
    """Register upstream's flat `conv{name}` (3x3) and `bn{name}` on `owner`; return `name` for `conv_bn_relu`."""
    owner.add_module(f"conv{name}", nn.Conv2d(c_in, c_out, 3, padding=dilation, dilation=dilation))
    owner.add_module(f"bn{name}", nn.BatchNorm2d(c_out))
    return name


def conv_bn_relu(owner: nn.Module, name: str, x: torch.Tensor) -> torch.Tensor:
    return F.relu(getattr(owner, f"bn{name}")(getattr(owner, f"conv{name}")(x)))


class RefUnet(nn.Module):
    """sod.py's RefUnet(1, 64): (N, 1, H, W) coarse map logits -> refined logits, same size."""

    def __init__(self, in_ch: int = 1, inc_ch: int = 64):
        super().__init__()
        self.conv0 = nn.Conv2d(in_ch, inc_ch, 3, padding=1)
        self.down = [add_conv_bn(self, str(i), inc_ch if i == 1 else 64, 64) for i in range(1, 6)]  # H ... H/16
        self.up = [add_conv_bn(self, f"_d{i}", 128, 64) for i in range(4, 0, -1)]  # H/8 ... H
        self.conv_d0 = nn.Conv2d(64, 1, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, skips = self.conv0(x), []
        for name in self.down[:-1]:
            skips.append(conv_bn_relu(self, name, h))
            h = _pool(skips[-1])
        h = conv_bn_relu(self, self.down[-1], h)
        for name, skip in zip(self.up, reversed(skips)):
            h = conv_bn_relu(self, name, torch.cat((_up2(h), skip), 1))
        return x + self.conv_d0(h)


class BASNet(nn.Module):
    """(N, 3, H, W) ImageNet-normalised RGB -> (N, 1, H, W) saliency in (0, 1), the refined map (upstream's
    first output)."""

    def __init__(self, n_channels: int = 3):
        super().__init__()
        resnet = resnet34()
        self.inconv = nn.Conv2d(n_channels, 64, 3, padding=1)
        self.inbn = nn.BatchNorm2d(64)
        self.encoder1, self.encoder2, self.encoder3, self.encoder4 = (resnet.layer1, resnet.layer2, resnet.layer3,
                                                                      resnet.layer4)
        for stage in (5, 6):
            for i in (1, 2, 3):
                self.add_module(f"resb{stage}_{i}", BasicBlock(512, 512))
        self.bridge = [add_conv_bn(self, f"bg_{i}", 512, 512, dilation=2) for i in ("1", "m", "2")]
        self.decoder = {s: [add_conv_bn(self, f"{s}d_1", c_in, mid), add_conv_bn(self, f"{s}d_m", mid, mid, dil),
                            add_conv_bn(self, f"{s}d_2", mid, out, dil)]
                        for s, (c_in, mid, out, dil) in DECODER.items()}
        for name, ch in SIDE_CHANNELS.items():
            self.add_module(name, nn.Conv2d(ch, 1, 3, padding=1))
        self.refunet = RefUnet(1, 64)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h1 = self.encoder1(F.relu(self.inbn(self.inconv(x))))  # H
        h2 = self.encoder2(h1)  # H/2
        h3 = self.encoder3(h2)  # H/4
        h4 = self.encoder4(h3)  # H/8
        h5 = self.resb5_3(self.resb5_2(self.resb5_1(_pool(h4))))  # H/16
        h6 = self.resb6_3(self.resb6_2(self.resb6_1(_pool(h5))))  # H/32
        h = h6
        for name in self.bridge:
            h = conv_bn_relu(self, name, h)
        for stage, skip in zip(DECODER, (h6, h5, h4, h3, h2, h1)):
            if stage != 6:
                h = _up2(h)
            h = torch.cat((h, skip), 1)
            for name in self.decoder[stage]:
                h = conv_bn_relu(self, name, h)
        return torch.sigmoid(self.refunet(self.outconv1(h)))  # (N, 1, H, W)
