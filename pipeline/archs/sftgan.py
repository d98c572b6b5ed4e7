"""SFTGAN x4 (Wang et al., CVPR 2018, "Recovering Realistic Texture in Image Super-resolution by Deep Spatial
Feature Transform"): an SR network whose features are scaled and shifted, pixel by pixel, by maps computed from a
semantic prior, the class probabilities of a segmentation network (OutdoorSceneSeg) run on the bicubic x4
upsampling of the LR image.

Module names, structure and preprocessing follow xinntao/SFTGAN's pytorch_test (commit d98889e):
architectures.py's OutdoorSceneSeg (`feature.N`, flattened by block.py's `sequential`; `deconv`) and SFT_Net_torch
(`conv0`, `sft_branch`, `HR_branch`, `CondNet`), the Torch model of the paper converted to PyTorch, whose released
weights are segmentation_OST_bic.pth and SFTGAN_torch.pth (pretrained_models/README.md). test_segmentation.py feeds
the segmentation net the MATLAB-bicubic x4 upsampling in BGR, 0-255, minus Caffe's ImageNet means;
test_sftgan.py feeds SFT_Net_torch the LR in RGB [0, 1] and those probabilities.
"""
from __future__ import annotations

import re

import torch
import torch.nn.functional as F
from pyiqa.matlab_utils import imresize
from torch import nn

from pipeline.checkpoint import CheckpointError

CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)  # test_segmentation.py subtracts them from the 0-255 BGR image
# OutdoorSceneSeg's four residual stages (ResNet-101's conv2-conv5): each block's 3x3 dilation, the first's stride
STAGE_DILATION, STAGE_STRIDE = (1, 1, 2, 4), (1, 2, 1, 1)


def _conv_bn(c_in: int, c_out: int, k: int, stride: int = 1, dilation: int = 1, relu: bool = True) -> list[nn.Module]:
    """block.py's conv_block(..., bias=False, 'zero', 'batch'): conv, batch norm, ReLU unless `relu` is False."""
    layers = [nn.Conv2d(c_in, c_out, k, stride, (k - 1) * dilation // 2, dilation, bias=False), nn.BatchNorm2d(c_out)]
    return layers + [nn.ReLU(inplace=True)] if relu else layers


class Res131(nn.Module):
    """Bottleneck 1x1 -> 3x3 (stride, dilation) -> 1x1 with batch norm, plus the input (1x1-projected where the widths
    differ), then ReLU."""

    def __init__(self, c_in: int, c_mid: int, c_out: int, dilation: int = 1, stride: int = 1):
        super().__init__()
        self.res = nn.Sequential(*_conv_bn(c_in, c_mid, 1), *_conv_bn(c_mid, c_mid, 3, stride, dilation),
                                 *_conv_bn(c_mid, c_out, 1, relu=False))
        self.proj = nn.Sequential(*_conv_bn(c_in, c_out, 1, stride, relu=False)) if c_in != c_out else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.res(x) + (self.proj(x) if self.proj is not None else x))


class OutdoorSceneSeg(nn.Module):
    """Dilated ResNet-101 at stride 8, a 3x3 head, per-class logits, a grouped x8 deconvolution and a softmax:
    (B, 3, H, W) Caffe-normalised BGR -> (B, classes, H, W) probabilities, H and W multiples of 8."""

    def __init__(self, stem: tuple[int, int, int] = (64, 64, 128),
                 stages: tuple[tuple[int, int, int], ...] = ((64, 256, 3), (128, 512, 4), (256, 1024, 23),
                                                             (512, 2048, 3)),
                 head: int = 512, classes: int = 8):
        super().__init__()
        layers = [*_conv_bn(3, stem[0], 3, 2), *_conv_bn(stem[0], stem[1], 3), *_conv_bn(stem[1], stem[2], 3),
                  nn.MaxPool2d(3, stride=2, padding=0, ceil_mode=True)]  # (B, stem[2], H/4, W/4)
        c_in = stem[2]
        for (c_mid, c_out, blocks), dilation, stride in zip(stages, STAGE_DILATION, STAGE_STRIDE):
            layers += [Res131(c_in if i == 0 else c_out, c_mid, c_out, dilation, stride if i == 0 else 1)
                       for i in range(blocks)]
            c_in = c_out  # (B, c_out, H/8, W/8) from the second stage on
        layers += [*_conv_bn(c_in, head, 3), nn.Dropout(0.1), nn.Conv2d(head, classes, 1)]
        self.feature = nn.Sequential(*layers)
        self.deconv = nn.ConvTranspose2d(classes, classes, 16, 8, 4, groups=classes, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.deconv(self.feature(x)), 1)


class SFTLayer(nn.Module):
    """Spatial feature transform of the Torch model: fea * scale(cond) + shift(cond), each map two 1x1 convs with a
    LeakyReLU 0.01 between."""

    def __init__(self, num_feat: int = 64, num_cond: int = 32):
        super().__init__()
        self.SFT_scale_conv0 = nn.Conv2d(num_cond, num_cond, 1)
        self.SFT_scale_conv1 = nn.Conv2d(num_cond, num_feat, 1)
        self.SFT_shift_conv0 = nn.Conv2d(num_cond, num_cond, 1)
        self.SFT_shift_conv1 = nn.Conv2d(num_cond, num_feat, 1)

    def forward(self, fea: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        scale = self.SFT_scale_conv1(F.leaky_relu(self.SFT_scale_conv0(cond), 0.01))
        shift = self.SFT_shift_conv1(F.leaky_relu(self.SFT_shift_conv0(cond), 0.01))
        return fea * scale + shift


class ResBlockSFT(nn.Module):
    """SFT, ReLU, conv, SFT, ReLU, conv, plus the input."""

    def __init__(self, num_feat: int, num_cond: int):
        super().__init__()
        self.sft0 = SFTLayer(num_feat, num_cond)
        self.conv0 = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
        self.sft1 = SFTLayer(num_feat, num_cond)
        self.conv1 = nn.Conv2d(num_feat, num_feat, 3, 1, 1)

    def forward(self, fea: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        out = self.conv0(F.relu(self.sft0(fea, cond)))
        return fea + self.conv1(F.relu(self.sft1(out, cond)))


class SFTNet(nn.Module):
    """SFT_Net_torch: (LR RGB (B, 3, h, w), probabilities (B, classes, 4h, 4w)) -> SR RGB (B, 3, 4h, 4w)."""

    def __init__(self, num_feat: int = 64, num_block: int = 16, num_cond: int = 32, cond_feat: int = 128,
                 classes: int = 8):
        super().__init__()
        self.conv0 = nn.Conv2d(3, num_feat, 3, 1, 1)
        self.sft_branch = nn.ModuleList([*(ResBlockSFT(num_feat, num_cond) for _ in range(num_block)),
                                         SFTLayer(num_feat, num_cond), nn.Conv2d(num_feat, num_feat, 3, 1, 1)])
        up = lambda: [nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(num_feat, num_feat, 3, 1, 1),  # noqa: E731
                      nn.ReLU()]
        self.HR_branch = nn.Sequential(*up(), *up(), nn.Conv2d(num_feat, num_feat, 3, 1, 1), nn.ReLU(),
                                       nn.Conv2d(num_feat, 3, 3, 1, 1))
        self.CondNet = nn.Sequential(nn.Conv2d(classes, cond_feat, 4, 4), nn.LeakyReLU(0.1),  # (B, cf, h, w)
                                     nn.Conv2d(cond_feat, cond_feat, 1), nn.LeakyReLU(0.1),
                                     nn.Conv2d(cond_feat, cond_feat, 1), nn.LeakyReLU(0.1),
                                     nn.Conv2d(cond_feat, cond_feat, 1), nn.LeakyReLU(0.1),
                                     nn.Conv2d(cond_feat, num_cond, 1))

    def forward(self, x: torch.Tensor, prob: torch.Tensor) -> torch.Tensor:
        cond = self.CondNet(prob)
        fea = out = self.conv0(x)
        *blocks, sft, conv = self.sft_branch
        for block in blocks:
            out = block(out, cond)
        return self.HR_branch(fea + conv(sft(out, cond)))


class SFTGAN(nn.Module):
    """The two networks as one x4 generator: LR RGB [0, 1] (B, 3, h, w) -> SR RGB (B, 3, 4h, 4w).

    The segmentation works at stride 8, so upstream crops the HR image to a multiple of 8 (an even LR size); here an
    odd LR side is padded by one replicated row or column and the SR image cropped back, so the whole image is
    super-resolved as with every other model."""

    scale = 4

    def __init__(self, seg: OutdoorSceneSeg, sr: SFTNet):
        super().__init__()
        self.seg, self.sr = seg, sr
        self.register_buffer("mean_bgr", torch.tensor(CAFFE_MEAN_BGR).view(1, 3, 1, 1), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        x = F.pad(x, (0, w % 2, 0, h % 2), mode="replicate")
        up = imresize(x, scale=4)  # MATLAB bicubic, as test_segmentation.py's util.imresize
        prob = self.seg(up.flip(1) * 255 - self.mean_bgr)  # RGB -> BGR, 0-255, Caffe means off
        return self.sr(x, prob)[..., :4 * h, :4 * w]


class PriorMissing(CheckpointError):
    """An SFTGAN generator given without its segmentation network's weights."""


def is_sftgan_layout(state: dict[str, torch.Tensor]) -> bool:
    return "CondNet.0.weight" in state


def sftnet_config_from_state(state: dict[str, torch.Tensor]) -> dict[str, int]:
    """SFTNet constructor arguments read off SFT_Net_torch's tensor shapes; the PyTorch-trained SFT_Net (pixel-shuffle
    upsampling, `HR_branch.0`) is refused."""
    if "HR_branch.0.weight" in state:
        raise CheckpointError("an SFT_Net checkpoint (SFTGAN's PyTorch-trained SFTGAN_noBN_OST_bg.pth): only "
                              "SFT_Net_torch, the paper's SFTGAN_torch.pth, is supported")
    blocks = {int(m.group(1)) for k in state if (m := re.match(r"sft_branch\.(\d+)\.sft0\.", k))}
    cond = state["CondNet.0.weight"]
    return {"num_feat": state["conv0.weight"].shape[0], "num_block": len(blocks),
            "num_cond": state["CondNet.8.weight"].shape[0], "cond_feat": cond.shape[0], "classes": cond.shape[1]}


def seg_config_from_state(state: dict[str, torch.Tensor]) -> dict:
    """OutdoorSceneSeg constructor arguments read off its tensor shapes: a stage starts at each block with a
    projection."""
    if "deconv.weight" not in state or "feature.0.weight" not in state:
        raise CheckpointError("the prior is not OutdoorSceneSeg's state dict (SFTGAN's segmentation_OST_bic.pth): "
                              "no feature.0.weight or deconv.weight")
    blocks = sorted({int(m.group(1)) for k in state if (m := re.match(r"feature\.(\d+)\.res\.0\.weight$", k))})
    stages: list[list[int]] = []
    for i in blocks:
        if f"feature.{i}.proj.0.weight" in state or not stages:
            stages.append([state[f"feature.{i}.res.0.weight"].shape[0], state[f"feature.{i}.res.6.weight"].shape[0], 0])
        stages[-1][2] += 1
    if len(stages) != len(STAGE_DILATION):
        raise CheckpointError(f"an OutdoorSceneSeg with {len(stages)} residual stages: it has {len(STAGE_DILATION)}")
    head = state[f"feature.{blocks[-1] + 1}.weight"]
    return {"stem": tuple(state[f"feature.{i}.weight"].shape[0] for i in (0, 3, 6)),
            "stages": tuple(map(tuple, stages)), "head": head.shape[0], "classes": state["deconv.weight"].shape[0]}


def with_batch_counts(state: dict[str, torch.Tensor], net: nn.Module) -> dict[str, torch.Tensor]:
    """`state` plus any batch-norm `num_batches_tracked` it lacks (files from PyTorch before 0.4.1 have none; only
    training reads them)."""
    counts = {k: v for k, v in net.state_dict().items() if k.endswith("num_batches_tracked") and k not in state}
    return {**state, **counts}
