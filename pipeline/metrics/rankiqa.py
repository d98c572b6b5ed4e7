"""RankIQA (Liu, van de Weijer and Bagdanov, ICCV 2017, "RankIQA: Learning from Rankings for No-Reference Image
Quality Assessment"), opinion-unaware: the Siamese ranking network before any fine-tuning on MOS, a VGG-16 whose
fc8_m output ranks the distortion levels of synthetic images; higher is better (MyLossLayer's hinge pushes a less
distorted image's output above a more distorted one's by the margin).

As xialeiliu/RankIQA's src/eval/Rank_eval_all_tid2013.py and Rank_eval_all_live.py compute it with Caffe (commits
346f22f, 886ad1f):
- the network is src/RankIQA/<set>/deploy_vgg.prototxt: VGG-16's 13 3 x 3 convolutions (pad 1, ReLU, 2 x 2 max
  pooling after each of the 5 stages), fc6, fc7 (ReLU; dropout, the identity at test) and fc8_m (one output), its
  layers read by name from the released Rank_*.caffemodel (pipeline.caffemodel); the widths are read from the
  file, so a narrower stand-in of the same layers loads too;
- the image is cv2.imread's BGR uint8 as float, 0-255, no mean subtracted (the deploy net has no transform);
- 30 crops of 224 x 224 at np.random.randint(H - 224), np.random.randint(W - 224); the score is their mean.
Upstream's crops are unseeded; here they come from one numpy stream seeded 0 when the metric is loaded, in the
order images are scored. An image without a 225 px side is n/a (upstream stops with an error).
"""
from __future__ import annotations

import os

import numpy as np
import torch
from torch import nn

from pipeline.caffemodel import read_caffemodel
from pipeline.checkpoint import CheckpointError
from pipeline.metrics.pyiqa_metrics import MetricUnavailable, load_weights, require_file

STAGES = ((1, 2), (2, 2), (3, 3), (4, 3), (5, 3))  # (stage, convolutions): conv<stage>_<i>
CONVS = tuple(f"conv{s}_{i}" for s, n in STAGES for i in range(1, n + 1))
FCS = ("fc6", "fc7", "fc8_m")
CROP, CROPS, SEED = 224, 30, 0  # Rank_eval_all_*.py: 224 px patches, Num_Patch = 30; ours: the seed


class RankIQANet(nn.Module):
    """deploy_vgg.prototxt: (N, 3, 224, 224) BGR in 0-255 -> (N,) fc8_m; `widths` of the 5 conv stages, `hidden`
    the width of fc6 and fc7 (VGG-16's are (64, 128, 256, 512, 512) and 4096)."""

    def __init__(self, widths=(64, 128, 256, 512, 512), hidden: int = 4096):
        super().__init__()
        layers, c_in = [], 3
        for (_, n), width in zip(STAGES, widths):
            for _ in range(n):
                layers += [nn.Conv2d(c_in, width, 3, padding=1), nn.ReLU(inplace=True)]
                c_in = width
            layers.append(nn.MaxPool2d(2, 2))
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Sequential(nn.Linear(c_in * 7 * 7, hidden), nn.ReLU(inplace=True),
                                        nn.Linear(hidden, hidden), nn.ReLU(inplace=True), nn.Linear(hidden, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x).flatten(1))[:, 0]


def caffe_layers(path: str | os.PathLike) -> dict[str, list[np.ndarray]]:
    """The deploy net's layers from a Rank_*.caffemodel, each [weight, bias]; CheckpointError naming the file."""
    layers = read_caffemodel(path)
    missing = [name for name in (*CONVS, *FCS) if len(layers.get(name, ())) != 2]
    if missing:
        raise CheckpointError(f"{path} has no weight and bias for layer(s) {', '.join(missing)} of RankIQA's "
                              f"deploy_vgg.prototxt (it has {', '.join(sorted(layers)[:6]) or 'no layers'})")
    return layers


def net_for(layers: dict[str, list[np.ndarray]]) -> RankIQANet:
    """The RankIQANet whose widths are those of the file's layers."""
    widths = [layers[f"conv{s}_1"][0].shape[0] for s, _ in STAGES]
    return RankIQANet(widths, layers["fc6"][1].size)


def rankiqa_state(layers: dict[str, list[np.ndarray]], net: RankIQANet) -> dict[str, torch.Tensor]:
    """The caffemodel's blobs under `net`'s keys, each weight in the shape of its parameter (Caffe's legacy 4-D
    blobs hold an InnerProduct weight as 1 x 1 x out x in)."""
    convs = [i for i, m in enumerate(net.features) if isinstance(m, nn.Conv2d)]
    linears = [i for i, m in enumerate(net.classifier) if isinstance(m, nn.Linear)]
    names = {**{f"features.{i}": name for i, name in zip(convs, CONVS)},
             **{f"classifier.{i}": name for i, name in zip(linears, FCS)}}
    ours, state = net.state_dict(), {}
    for prefix, name in names.items():
        for kind, blob in zip(("weight", "bias"), layers[name]):
            key = f"{prefix}.{kind}"
            if blob.size != ours[key].numel():
                raise CheckpointError(f"layer {name}'s {kind} holds {blob.size} values, the network's "
                                      f"{tuple(ours[key].shape)} ones")
            state[key] = torch.from_numpy(blob.copy()).view_as(ours[key])
    return state


class RankIQA(nn.Module):
    """forward(x): image (1, 3, H, W) RGB in [0, 1], H and W > 224 -> 0-dim mean fc8_m over CROPS random crops."""

    def __init__(self, net: RankIQANet):
        super().__init__()
        self.net = net.eval()
        self.rng = np.random.RandomState(SEED)

    @torch.no_grad()
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 4 or x.shape[0] != 1:
            raise ValueError(f"RankIQA scores one (1, 3, H, W) image, got {tuple(x.shape)}")
        h, w = x.shape[-2:]
        if min(h, w) <= CROP:
            raise MetricUnavailable(f"a {w} x {h} image has no room for RankIQA's {CROP} px crops")
        bgr = (x.to(next(self.net.parameters()).device, torch.float32).flip(1) * 255).round()
        crops = []
        for _ in range(CROPS):
            top = self.rng.randint(h - CROP, size=1)[0]
            left = self.rng.randint(w - CROP, size=1)[0]
            crops.append(bgr[:, :, top:top + CROP, left:left + CROP])
        return self.net(torch.cat(crops)).double().mean()


def load_rankiqa(weights: str | os.PathLike, device="cpu") -> RankIQA:
    """RankIQA from a Rank_*.caffemodel of its release; MetricUnavailable with the reason when it is missing or
    does not fit."""
    require_file(weights, "by hand: registry entry rankiqa_rank_tid2013")
    try:
        layers = caffe_layers(weights)
        net = net_for(layers)
    except CheckpointError as e:
        raise MetricUnavailable(str(e)) from None
    return RankIQA(load_weights(net, weights, lambda _: rankiqa_state(layers, net))).to(device)
