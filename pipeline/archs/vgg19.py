"""Frozen VGG19 feature extractor phi of the perceptual loss in Eq. 7 (ESRGAN / BasicSR convention).

Returns conv1_2, conv2_2, conv3_4, conv4_4 and conv5_4 before their ReLU, from RGB in [0, 1] normalised with the
ImageNet mean/std. Only torchvision's `features` up to the last needed layer are built (no classifier).
Weights: `imagenet` (torchvision's IMAGENET1K_V1, `vgg19-dcbb9e9d.pth`, downloaded into $TORCH_HOME/hub/checkpoints
or read from there offline), a local file with torchvision's key names (`features.N.weight`), or `none` (a random
init drawn with a fixed seed).
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch
from open_clip.constants import IMAGENET_MEAN, IMAGENET_STD
from torch import nn
from torchvision.models import VGG19_Weights
from torchvision.models.vgg import cfgs, make_layers

from pipeline.checkpoint import CheckpointError, load_into, load_state_dict

# index of each conv in torchvision's vgg19().features
VGG19_CONV_INDEX = {"conv1_2": 2, "conv2_2": 7, "conv3_4": 16, "conv4_4": 25, "conv5_4": 34}
RANDOM_SEED = 0


def _imagenet_state() -> dict[str, torch.Tensor]:
    try:
        return VGG19_Weights.IMAGENET1K_V1.get_state_dict(progress=False, check_hash=True, weights_only=True)
    except (OSError, RuntimeError) as e:  # URLError when offline, RuntimeError for a corrupt cached file
        raise CheckpointError(
            f"cannot get torchvision's ImageNet VGG19 weights (vgg19-dcbb9e9d.pth; downloaded into "
            f"$TORCH_HOME/hub/checkpoints, offline it must be there already, or pass a local file): "
            f"{type(e).__name__}: {e}") from None


class VGG19Features(nn.Module):
    """`forward(img)` -> {layer name: pre-ReLU feature map} for `layers` (a subset of VGG19_CONV_INDEX)."""

    def __init__(self, weights: str = "imagenet", layers: Sequence[str] = tuple(VGG19_CONV_INDEX)):
        super().__init__()
        unknown = set(layers) - set(VGG19_CONV_INDEX)
        if unknown:
            raise ValueError(f"unknown VGG19 layers {sorted(unknown)}; known: {list(VGG19_CONV_INDEX)}")
        self.weights = str(weights)
        self._taps = {VGG19_CONV_INDEX[name]: name for name in layers}
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(RANDOM_SEED)
            self.features = make_layers(cfgs["E"])[: max(self._taps) + 1]
        for m in self.features:
            if isinstance(m, nn.ReLU):
                m.inplace = False  # an in-place ReLU would overwrite the pre-ReLU maps we return
        if self.weights == "none":
            self.weights_description = f"random (seed {RANDOM_SEED})"
        else:
            state = _imagenet_state() if self.weights == "imagenet" else load_state_dict(self.weights)[0]
            prefix = "features."
            kept = {k[len(prefix):]: v for k, v in state.items()
                    if k.startswith(prefix) and int(k[len(prefix):].split(".")[0]) < len(self.features)}
            load_into(self.features, kept)
            self.weights_description = "imagenet" if self.weights == "imagenet" else f"file {Path(self.weights).name}"
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)
        self.requires_grad_(False)
        self.train(False)

    def train(self, mode: bool = True) -> VGG19Features:
        return super().train(False)

    def forward(self, img: torch.Tensor) -> dict[str, torch.Tensor]:
        x = (img - self.mean) / self.std
        out = {}
        for i, layer in enumerate(self.features):
            x = layer(x)
            if i in self._taps:
                out[self._taps[i]] = x
        return out
