"""ContentSep (Babu, Kannan and Soundararajan, WACV 2023, "No Reference Opinion Unaware Quality Assessment of
Authentically Distorted Images"): NIQE's distance in a learnt feature space. A multivariate Gaussian fitted to the
ResNet-50 features of pristine patches is compared with one fitted to the test image's patches; lower is better.

As nithincbabu7/iqa-ContentSep's evaluate_model.py and modules/niqe_compute.py (commit 3dd4c34) compute it:
- the feature network is torchvision's ResNet-50 without its classifier, `nn.Sequential(*list(resnet50().children())
  [:-1])` (keys `0.weight`, `1.running_mean`, `4.0.conv1.weight` ... `7.2.bn3.running_var`), in eval mode, fed RGB
  in [0, 1] without normalisation (ToTensor only); its released weights are auth_ft_cd.pth;
- the pristine patches are pristine_patches_096_0.75_0.80.hdf5's `data`, N x 3 x 96 x 96 float32;
- the test image is cut into 96 x 96 patches at stride 48 (a remainder at the right or bottom is dropped);
- score = sqrt(d ((S_r + S_t) / 2 + 0.001 I)^-1 d^T), d the difference of the feature means, S the unbiased
  covariances.
The algebra runs in float32 as upstream's (the paper's lineage). Upstream's LIVE-itW loader
resizes two of its images (1024.JPG, 1113.JPG) to 500 x 500; here every method scores the same images.
"""
from __future__ import annotations

import os

import h5py
import torch
from torch import nn
from torchvision.models import resnet50

from pipeline.metrics.pyiqa_metrics import MetricUnavailable, load_weights, require_file

PATCH, STRIDE = 96, 48
STABILITY = 0.001  # niqe_compute.py's stabilitiy_scale, added to the pooled covariance's diagonal
BATCH = 64  # patches per forward pass


def feature_network() -> nn.Sequential:
    """ResNet-50 up to its global average pool: (N, 3, H, W) -> (N, 2048, 1, 1)."""
    return nn.Sequential(*list(resnet50().children())[:-1])


def patches(x: torch.Tensor, size: int = PATCH, stride: int = STRIDE) -> torch.Tensor:
    """(1, 3, H, W) -> (N, 3, size, size), every size x size window at `stride` that fits."""
    return x.unfold(2, size, stride).unfold(3, size, stride).permute(0, 2, 3, 1, 4, 5).reshape(-1, x.shape[1], size,
                                                                                                  size)


def gaussian(feats: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(N, D) -> mean (D,), unbiased covariance (D, D)."""
    mu = feats.mean(0)
    centred = feats - mu
    return mu, centred.T @ centred / (len(feats) - 1)


class ContentSep(nn.Module):
    """Image (1, 3, H, W) RGB in [0, 1] -> the distance to the pristine Gaussian; MetricUnavailable below two patches
    (H and W >= 96, one of them >= 144), where upstream divides by zero."""

    def __init__(self, net: nn.Sequential, pristine: torch.Tensor):
        super().__init__()
        self.net = net.eval()
        mu, sigma = gaussian(self.features(pristine))
        self.register_buffer("mu_r", mu)
        self.register_buffer("sigma_r", sigma)

    @torch.no_grad()
    def features(self, x: torch.Tensor) -> torch.Tensor:  # (N, 3, 96, 96) -> (N, 2048)
        x = x.to(next(self.net.parameters()).device)
        return torch.cat([self.net(x[i:i + BATCH]).flatten(1) for i in range(0, len(x), BATCH)])

    @torch.no_grad()
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        p = patches(x)
        if len(p) < 2:  # no covariance
            h, w = x.shape[-2:]
            raise MetricUnavailable(f"a {w} x {h} image holds fewer than two of ContentSep's {PATCH} px patches at "
                                    f"stride {STRIDE}")
        mu_t, sigma_t = gaussian(self.features(p))
        d = self.mu_r - mu_t
        pooled = (self.sigma_r + sigma_t) / 2 + STABILITY * torch.eye(len(d), dtype=d.dtype, device=d.device)
        return torch.sqrt(d @ torch.linalg.inv(pooled) @ d)


def read_pristine(path: str | os.PathLike) -> torch.Tensor:
    """pristine_patches_096_0.75_0.80.hdf5's `data` as a (N, 3, 96, 96) float tensor; MetricUnavailable if the file
    is missing or not that."""
    require_file(path, "by hand: registry entry contentsep_pristine")
    try:
        with h5py.File(path, "r") as f:
            data = torch.from_numpy(f["data"][:]).float()
    except (OSError, KeyError) as e:
        raise MetricUnavailable(f"{path} is not ContentSep's pristine patches (an HDF5 file with `data`): {e}") \
            from None
    if data.ndim != 4 or tuple(data.shape[1:]) != (3, PATCH, PATCH) or len(data) < 2:
        raise MetricUnavailable(f"{path}: `data` is {tuple(data.shape)}, expected N x 3 x {PATCH} x {PATCH}, N >= 2")
    return data


def load_contentsep(weights: str | os.PathLike, pristine: str | os.PathLike, device="cpu") -> ContentSep:
    """ContentSep from its feature network's weights (auth_ft_cd.pth) and pristine patches; MetricUnavailable with
    the reason when either is missing or unusable."""
    require_file(weights, "by hand: registry entry contentsep_auth_ft_cd")
    net = load_weights(feature_network(), weights)
    return ContentSep(net.to(device), read_pristine(pristine))
