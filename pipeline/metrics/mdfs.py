"""MDFS (Ni et al., IEEE TMM 2024, "Opinion-Unaware Blind Image Quality Assessment using Multi-Scale Deep Feature
Statistics"): patch statistics of multi-scale EfficientNet-B7 features compared, NIQE-like, with a multivariate
Gaussian of high-quality images' features; lower is better.

As eezkni/MDFS's model.py and test.py (commit 22677d0) compute it:
- features: torchvision's ImageNet EfficientNet-B7 (`features[0:2]`, `[2]`, `[3]`, `[4]`, `[5]`: 32, 48, 80, 160
  and 224 channels) on the ImageNet-normalised RGB image; the first four are brought down to the fourth's
  resolution by repeated 3x3 Gaussian (sigma 1, reflection-padded, stride 2) depthwise filtering, bilinear-resized
  (align_corners) where a size differs, and stacked with the fifth: 544 channels at stride 16;
- patches (APL): Gaussian windows of w = max(3, 2 (min(h, w) // 32) + 1) px, sigma w / 3, stride w // 2, no
  padding; each window's mean feature, L2-normalised per stage; its weight sigmoid((s - mean(s)) / std(s)), s the
  channel mean of the window's standard deviations;
- score: with the pristine features' mean m_p and covariance S_p (MDFS_weights.pth, M x 544) and the image's
  window covariance S, each window's sqrt|(x - m_p) ((S + S_p) / 2)^-1 (x - m_p)^T|, averaged with the weights.
`test.py` uses select=0: every window counts. The algebra runs in float32 as upstream's: the pooled covariance is
not regularised, and where it is ill-conditioned another precision gives another number than the paper's lineage.
"""
from __future__ import annotations

import os

import torch
import torch.nn.functional as F
from torch import nn
from kornia.filters import get_gaussian_kernel2d
from torchvision.models import efficientnet_b7

from pipeline.metrics.contentsep import gaussian
from pipeline.metrics.pyiqa_metrics import MetricUnavailable, load_weights, require_file

STAGES = (slice(0, 2), 2, 3, 4, 5)  # of EfficientNet-B7's `features`
CHANNELS = (32, 48, 80, 160, 224)
IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


def gaussian_window(size: int, sigma: float) -> torch.Tensor:
    """(size, size) normalised Gaussian centred on the middle pixel (model.py's create_window)."""
    return get_gaussian_kernel2d((size, size), (sigma, sigma))[0]


def depthwise(f: torch.Tensor, window: torch.Tensor, stride: int) -> torch.Tensor:
    return F.conv2d(f, window.to(f).expand(f.shape[1], 1, *window.shape), stride=stride, groups=f.shape[1])


class MultiScaleFeatures(nn.Module):
    """(1, 3, H, W) RGB in [0, 1] -> (1, 544, H/16, W/16)."""

    def __init__(self, features: nn.Sequential):
        super().__init__()
        self.stages = nn.ModuleList(features[s] for s in STAGES)
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)
        self.window = gaussian_window(3, 1.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, feats = (x - self.mean) / self.std, []
        for stage in self.stages:
            h = stage(h)
            feats.append(h)
        *lower, last = feats
        target = lower[-1].shape[-2:]  # the fourth stage's resolution
        pyramid = []
        for i, f in enumerate(lower):
            for j in range(i + 1, len(lower)):
                f = depthwise(F.pad(f, (1, 1, 1, 1), mode="reflect"), self.window, 2)
                if f.shape[-2:] != lower[j].shape[-2:]:
                    f = F.interpolate(f, lower[j].shape[-2:], mode="bilinear", align_corners=True)
            assert f.shape[-2:] == target
            pyramid.append(f)
        return torch.cat([*pyramid, last], 1)


def window_statistics(f: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """APL: (1, C, h, w) -> each window's stage-normalised mean feature (N, C) and its weight (N,)."""
    size = max(3, (min(f.shape[-2:]) // 32) * 2 + 1)
    window = gaussian_window(size, size / 3)
    mean = depthwise(f, window, size // 2)
    var = depthwise(f ** 2, window, size // 2) - mean ** 2
    spread = F.relu(var).sqrt().mean(1).flatten()  # (N,)
    weight = torch.sigmoid((spread - spread.mean()) / (spread.std() + 1e-12))
    x = mean.flatten(2)[0].T  # (N, C)
    x = torch.cat([c / (c.norm(dim=1, keepdim=True) + 1e-12) for c in torch.split(x, CHANNELS, dim=1)], 1)
    return x, weight


class MDFS(nn.Module):
    """Image (1, 3, H, W) RGB in [0, 1], H and W >= 64 -> the weighted distance to the pristine Gaussian."""

    def __init__(self, features: nn.Sequential, pristine: torch.Tensor):
        super().__init__()
        self.net = MultiScaleFeatures(features).eval()
        mu, sigma = gaussian(pristine.float())
        self.register_buffer("mu_p", mu)
        self.register_buffer("sigma_p", sigma)

    @torch.no_grad()
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feats, weight = window_statistics(self.net(x))
        d = feats - self.mu_p  # (N, D)
        pooled = (gaussian(feats)[1] + self.sigma_p) / 2
        dist = (d * torch.linalg.solve(pooled, d.T).T).sum(1).abs().sqrt()
        return (dist * weight).sum() / weight.sum()


def load_mdfs(backbone: str | os.PathLike, pristine: str | os.PathLike, device="cpu") -> MDFS:
    """MDFS from torchvision's EfficientNet-B7 ImageNet weights and MDFS_weights.pth; MetricUnavailable with the
    reason when either is missing or unusable."""
    require_file(backbone, "registry entry efficientnet_b7")
    require_file(pristine, "registry entry mdfs_pristine")
    net = load_weights(efficientnet_b7(), backbone)
    try:
        feats = torch.load(pristine, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - weights_only refuses pickled objects; other files fail to parse
        raise MetricUnavailable(f"{pristine} is not a weights-only tensor file ({type(e).__name__})") from None
    if not isinstance(feats, torch.Tensor) or feats.ndim != 2 or feats.shape[1] != sum(CHANNELS):
        raise MetricUnavailable(f"{pristine} does not hold MDFS's M x {sum(CHANNELS)} pristine feature tensor")
    return MDFS(net.features, feats).to(device)
