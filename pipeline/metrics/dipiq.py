"""dipIQ (Ma, Liu, Liu, Wang and Tao, IEEE TIP 2017, "dipIQ: Blind Image Quality Assessment by Learning-to-Rank
Discriminable Image Pairs"), opinion-unaware: an MLP trained with RankNet on CORNIA features of quality-discriminable
image pairs; higher is better (RankNet scores the better image of each pair above the other).

As the authors' MATLAB release computes it (dipIQ.m and cornia_feature.m, carried by NTIA/NRMetricFramework as
reports/nrff_dipIQ.m with its four .mat files, commit 4816527):
- the grey image is MATLAB's rgb2gray of the uint8 RGB image (rounded back to uint8), which the release's
  dipIQ(img, 1) takes (NTIA's wrapper passes its own luma plane instead);
- its 7 x 7 patches at stride 1 (im2col: positions and pixels column-major), 10,000 of them sampled;
- each patch less its mean, over sqrt(var + 10) (unbiased variance), whitened: (p - M) P
  (CSIQ_whitening_param.mat);
- soft encoding against the column-normalised codewords (CSIQ_codebook_BS7.mat, codebook0, 49 x 10,000): the
  largest positive and the largest negative response of any patch to each codeword, 20,000 features;
- standardised by trainMu and trainStd (normalizationParaCORNIA.mat, single precision, so MATLAB computes in single
  from here) and passed through netPara.mat's layers: ReLU(f W + b') for every (W, b) but the last, then f W + b'.
Upstream draws the sample with MATLAB's rng(1); randperm, which numpy does not reproduce: here each image takes the
first 10,000 of numpy RandomState(1).permutation (an image with fewer patches uses them all, as upstream does).
"""
from __future__ import annotations

import os

import numpy as np
import scipy.io
import torch
from scipy.io.matlab import MatReadError, matfile_version
from torch import nn

from pipeline.checkpoint import CheckpointError
from pipeline.metrics.pyiqa_metrics import MetricUnavailable, require_file

RGB2GRAY = (0.298936021293775, 0.587043074451121, 0.114020904255103)  # MATLAB rgb2gray's weights
PATCHES, SEED, VAR_EPS, CHUNK = 10000, 1, 10.0, 2048  # cornia_feature.m's numPatch, dipIQ(img, 1), var + 10; ours
# What dipIQ.m and cornia_feature.m load from each file (load netPara, normalizationParaCORNIA, ...)
VARIABLES = {"codebook": ("codebook0",), "whitening": ("M", "P"), "normalization": ("trainMu", "trainStd"),
             "network": ("netPara",)}


def read_mat(path: str | os.PathLike, names: tuple[str, ...]) -> dict[str, np.ndarray]:
    """The named variables of a MATLAB v5/v7 .mat file; CheckpointError naming the file and what is wrong."""
    try:
        if matfile_version(path)[0] == 2:  # MAT v7.3, an HDF5 file
            raise CheckpointError(f"{path} is a MATLAB v7.3 (HDF5) file; scipy.io reads v5 and v7 files only")
        mat = scipy.io.loadmat(path)
    except (MatReadError, ValueError, OSError, TypeError) as e:
        raise CheckpointError(f"{path} is not a readable .mat file ({e})") from None
    missing = [name for name in names if name not in mat]
    if missing:
        held = ", ".join(k for k in mat if not k.startswith("__")) or "no variables"
        raise CheckpointError(f"{path} holds no {', '.join(missing)} (it holds {held})")
    return {name: mat[name] for name in names}


def layers_of(net_para: np.ndarray, path) -> list[tuple[np.ndarray, np.ndarray]]:
    """netPara, a 1 x 2L struct array with field 'value', as L (W: in x out, b: out values) pairs."""
    if net_para.dtype.names is None or "value" not in net_para.dtype.names or net_para.size % 2:
        raise CheckpointError(f"{path}: netPara must be a struct array of weight and bias values, in pairs")
    values = [np.asarray(v) for v in net_para["value"].ravel(order="F")]
    layers = list(zip(values[0::2], values[1::2]))
    width = None
    for i, (w, b) in enumerate(layers):
        if w.ndim != 2 or b.size != w.shape[1] or (width is not None and w.shape[0] != width):
            expected = "an in x out weight and out biases" + ("" if width is None else f", {width} inputs")
            raise CheckpointError(f"{path}: netPara layer {i + 1} has a {w.shape} weight and {b.shape} biases, not "
                                  f"{expected}")
        width = w.shape[1]
    if width != 1:
        raise CheckpointError(f"{path}: netPara's last layer has {width} outputs, not dipIQ's one score")
    return layers


def matlab_dtype(*arrays: np.ndarray) -> torch.dtype:
    """MATLAB's type of an expression: single once any operand is single."""
    return torch.float32 if any(a.dtype == np.float32 for a in arrays) else torch.float64


class DipIQ(nn.Module):
    """forward(x): image (1, C, H, W) in [0, 1], C = 3 (RGB) or 1, H and W >= 7 -> 0-dim score."""

    def __init__(self, codebook: np.ndarray, mean: np.ndarray, whiten: np.ndarray, mu: np.ndarray, std: np.ndarray,
                 layers: list[tuple[np.ndarray, np.ndarray]]):
        super().__init__()
        d = torch.from_numpy(np.asarray(codebook, np.float64))  # (49, K)
        self.size = int(round(d.shape[0] ** 0.5))
        self.register_buffer("codebook", d / (d.square().sum(0).sqrt() + 1e-20))  # soft_encoding_func
        self.register_buffer("mean", torch.from_numpy(np.asarray(mean, np.float64)).reshape(1, -1))
        self.register_buffer("whiten", torch.from_numpy(np.asarray(whiten, np.float64)))
        self.dtypes = [matlab_dtype(mu, std)]
        self.register_buffer("mu", torch.from_numpy(mu.reshape(1, -1)).to(self.dtypes[0]))
        self.register_buffer("std", torch.from_numpy(std.reshape(1, -1)).to(self.dtypes[0]))
        for i, (w, b) in enumerate(layers):
            self.dtypes.append(matlab_dtype(w, b) if self.dtypes[-1] == torch.float64 else torch.float32)
            self.register_buffer(f"w{i}", torch.from_numpy(np.asarray(w)).to(self.dtypes[-1]))
            self.register_buffer(f"b{i}", torch.from_numpy(np.asarray(b).reshape(1, -1)).to(self.dtypes[-1]))
        self.depth = len(layers)

    def patches(self, grey: torch.Tensor) -> torch.Tensor:
        """cornia_feature.m's sample: (n, 49) patches of grey (H, W), each in im2col's column-major order."""
        h, w = grey.shape
        rows, cols = h - self.size + 1, w - self.size + 1
        picked = np.random.RandomState(SEED).permutation(rows * cols)[:PATCHES]  # im2col's column-major positions
        r, c = torch.from_numpy(picked % rows), torch.from_numpy(picked // rows)
        e = torch.arange(self.size ** 2)
        return grey[(r[:, None] + e % self.size).to(grey.device), (c[:, None] + e // self.size).to(grey.device)]

    def features(self, grey: torch.Tensor) -> torch.Tensor:
        """cornia_feature.m: grey (H, W) float64 0-255 -> (2K,) soft-encoded CORNIA features."""
        p = self.patches(grey)
        p = (p - p.mean(1, keepdim=True)) / (p.var(1, keepdim=True) + VAR_EPS).sqrt()
        p = (p - self.mean) @ self.whiten
        high = torch.full((self.codebook.shape[1],), -torch.inf, dtype=p.dtype, device=p.device)
        low = -high
        for chunk in p.split(CHUNK):  # the n x K responses, a chunk of patches at a time
            z = chunk @ self.codebook
            high, low = torch.maximum(high, z.amax(0)), torch.minimum(low, z.amin(0))
        return torch.cat([high.clamp(min=0), (-low).clamp(min=0)])

    @torch.no_grad()
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 4 or x.shape[0] != 1 or x.shape[1] not in (1, 3):
            raise ValueError(f"dipIQ scores one (1, 3, H, W) or (1, 1, H, W) image, got {tuple(x.shape)}")
        h, w = x.shape[-2:]
        if min(h, w) < self.size:
            raise MetricUnavailable(f"a {w} x {h} image holds no {self.size} x {self.size} patch for dipIQ")
        u8 = (x[0].to(self.codebook.device, torch.float64) * 255).round()  # the uint8 image upstream reads
        grey = u8[0] if len(u8) == 1 else \
            torch.floor(sum(k * c for k, c in zip(RGB2GRAY, u8)) + 0.5).clamp(0, 255)  # uint8 rounds half up
        f = self.features(grey)[None].to(self.dtypes[0])
        f = (f - self.mu) / self.std
        for i in range(self.depth):
            f = f.to(self.dtypes[i + 1]) @ getattr(self, f"w{i}") + getattr(self, f"b{i}")
            if i < self.depth - 1:
                f = f.clamp(min=0)
        return f[0, 0].double()


def load_dipiq(codebook: str | os.PathLike, whitening: str | os.PathLike, normalization: str | os.PathLike,
               network: str | os.PathLike, device="cpu") -> DipIQ:
    """dipIQ from its release's four .mat files; MetricUnavailable with the reason when one is missing or does not
    fit the others."""
    paths = {"codebook": codebook, "whitening": whitening, "normalization": normalization, "network": network}
    for role, path in paths.items():
        require_file(path, f"registry entry dipiq_{role}")
    try:
        mats = {role: read_mat(path, VARIABLES[role]) for role, path in paths.items()}
        d, (m, p) = mats["codebook"]["codebook0"], (mats["whitening"][k] for k in ("M", "P"))
        mu, std = (mats["normalization"][k] for k in ("trainMu", "trainStd"))
        layers = layers_of(mats["network"]["netPara"], network)
        dim, k = d.shape
        checks = [(round(dim ** 0.5) ** 2 == dim, codebook, f"codebook0 is {d.shape}, not (patch pixels, codewords)"),
                  (m.size == dim and p.shape == (dim, dim), whitening,
                   f"M {m.shape} and P {p.shape} do not whiten the codebook's {dim}-pixel patches"),
                  (mu.size == std.size == 2 * k, normalization,
                   f"trainMu {mu.shape} and trainStd {std.shape} are not the {2 * k} features of {k} codewords"),
                  (layers[0][0].shape[0] == 2 * k, network,
                   f"netPara's first layer takes {layers[0][0].shape[0]} features, not {2 * k}")]
        for ok, path, why in checks:
            if not ok:
                raise CheckpointError(f"{path}: {why}")
    except CheckpointError as e:
        raise MetricUnavailable(str(e)) from None
    return DipIQ(d, m, p, mu, std, layers).to(device)
