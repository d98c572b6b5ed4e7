"""DualFormer's two critics (Luo et al., ICCV 2023, "On the Effectiveness of Spectral Discriminators for Perceptual
Quality Improvement"), as Luciennnnnnn/DualFormer (commit 54d911a) builds them from an experiment's options:

- the spatial critic, `SwinDiscriminator`: a Swin Transformer classifier on the image
  (basicsr/archs/swin_transformer_arch.py SwinTransformer);
- the spectral critic, `SpectralDiscriminator2D`: the same network on the image's patchwise spectra
  (basicsr/archs/discriminator_arch.py SpectralDiscriminator2D, basicsr/utils/spectrum.py spectrum_transform).

Module and buffer names are upstream's, so its net_d.pth and net_spectral_d.pth load strictly (after
pipeline.metrics.dualformer's conversions). The blocks are SwinIR's (pipeline.archs.swinir), which are Swin's.
As in upstream's SwinTransformerBlock, a stage whose token grid is no larger than the window attends over the
whole grid, without a shift. Stochastic depth, dropout and the fused window kernel (the same arithmetic as
torch.roll) are left out, since they only matter in training. Inputs are RGB in [0, 1]; the token grid is square.
"""
from __future__ import annotations

import torch
from kornia.color import rgb_to_grayscale
from torch import nn

from pipeline.archs.swinir import SwinTransformerBlock, to_tokens

SPEC_TYPES = ("power", "magnitude")
REDUCTIONS = ("none", "mean", "gray")


def stage_window(side: int, window_size: int) -> tuple[int, int]:
    """(window, shift) of a stage's shifted blocks on a side x side grid: the whole grid, unshifted, when the
    window does not fit inside it."""
    if side <= window_size:
        return side, 0
    if side % window_size:
        raise ValueError(f"a {side} x {side} token grid does not split into {window_size} x {window_size} windows")
    return window_size, window_size // 2


class PatchMerging(nn.Module):
    """(B, side*side, C) -> (B, side/2*side/2, 2C): each 2 x 2 neighbourhood (x00, x10, x01, x11) concatenated,
    normalised and projected."""

    def __init__(self, dim: int):
        super().__init__()
        self.reduction = nn.Linear(4 * dim, 2 * dim, bias=False)
        self.norm = nn.LayerNorm(4 * dim)

    def forward(self, x: torch.Tensor, side: int) -> torch.Tensor:
        b, _, c = x.shape
        x = x.view(b, side, side, c)
        x = torch.cat([x[:, 0::2, 0::2], x[:, 1::2, 0::2], x[:, 0::2, 1::2], x[:, 1::2, 1::2]], dim=-1)
        return self.reduction(self.norm(x.view(b, -1, 4 * c)))


class Stage(nn.Module):
    """`depth` Swin blocks on a side x side grid, alternately unshifted and shifted, then patch merging (all but
    the last stage); upstream's BasicLayer."""

    def __init__(self, dim: int, side: int, depth: int, num_heads: int, window_size: int, mlp_ratio: float,
                 downsample: bool):
        super().__init__()
        self.side = side
        window, shift = stage_window(side, window_size)
        self.blocks = nn.ModuleList(
            SwinTransformerBlock(dim, side, num_heads, window, 0 if i % 2 == 0 else shift, mlp_ratio)
            for i in range(depth))
        self.downsample = PatchMerging(dim) if downsample else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for block in self.blocks:
            x = block(x, (self.side, self.side))
        return x if self.downsample is None else self.downsample(x, self.side)


class PatchEmbed(nn.Module):
    """(B, C, H, W) -> (B, H/p * W/p, dim): non-overlapping p x p patches projected by a strided conv, then
    layer-normalised (patch_norm)."""

    def __init__(self, patch_size: int, in_chans: int, dim: int, patch_norm: bool):
        super().__init__()
        self.proj = nn.Conv2d(in_chans, dim, kernel_size=patch_size, stride=patch_size)
        self.norm = nn.LayerNorm(dim) if patch_norm else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = to_tokens(self.proj(x))
        return x if self.norm is None else self.norm(x)


def square(img_size) -> int:
    """An options file's img_size (an int, or [H, W] as test_iqa.py's --img_size sets it) as one side."""
    h, w = (img_size, img_size) if isinstance(img_size, int) else tuple(img_size)
    if h != w:
        raise ValueError(f"img_size {h} x {w}: only square inputs are built")
    return int(h)


class SwinDiscriminator(nn.Module):
    """Swin Transformer critic: (B, in_chans, img_size, img_size) -> (B, num_classes, 1), or (B, num_classes, L)
    per token when `patch_output`. Defaults are upstream's SwinTransformer's."""

    def __init__(self, img_size=224, patch_size: int = 4, in_chans: int = 3, num_classes: int = 1000,
                 embed_dim: int = 96, depths=(2, 2, 6, 2), num_heads=(3, 6, 12, 24), window_size: int = 7,
                 mlp_ratio: float = 4.0, ape: bool = False, patch_norm: bool = True, patch_output: bool = False):
        super().__init__()
        self.img_size = square(img_size)
        side = self.img_size // patch_size  # tokens per side
        self.patch_embed = PatchEmbed(patch_size, in_chans, embed_dim, patch_norm)
        if ape:
            self.absolute_pos_embed = nn.Parameter(torch.zeros(1, side * side, embed_dim))
        self.ape = ape
        self.layers = nn.ModuleList(
            Stage(embed_dim * 2 ** i, side // 2 ** i, depth, heads, window_size, mlp_ratio, i < len(depths) - 1)
            for i, (depth, heads) in enumerate(zip(depths, num_heads)))
        features = embed_dim * 2 ** (len(depths) - 1)
        self.norm = nn.LayerNorm(features)
        self.patch_output = patch_output
        self.head = nn.Conv1d(features, num_classes, 1) if num_classes > 0 else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-2:] != (self.img_size, self.img_size):
            raise ValueError(f"input {tuple(x.shape[-2:])} does not match img_size {self.img_size}")
        x = self.patch_embed(x)  # (B, L, C)
        if self.ape:
            x = x + self.absolute_pos_embed
        for layer in self.layers:
            x = layer(x)
        x = self.norm(x).transpose(1, 2)  # (B, C, L)
        return self.head(x if self.patch_output else x.mean(dim=2, keepdim=True))


def normalize(x: torch.Tensor, per_patch: bool) -> torch.Tensor:
    """Min-max to [0, 1): over each patch's spectra (fix_normalize) or over the whole tensor."""
    if not per_patch:
        return (x - x.min()) / (x.max() - x.min() + 1e-5)
    low, high = x.amin(dim=(1, 2, 3), keepdim=True), x.amax(dim=(1, 2, 3), keepdim=True)
    return (x - low) / (high - low + 1e-5)


def patch_spectra(x: torch.Tensor, patch: int, spec_type: str = "power", reduction: str = "none",
                  fix_normalize: bool = False, scale: str = "linear") -> torch.Tensor:
    """spectrum_transform: (B, C, H, W) -> (B, C', H, W), each patch x patch block replaced by its centred 2-D
    power spectrum |F|^2 (10 log10(|F|^2 + 1e-7) for scale 'log') or magnitude sqrt(|F|^2 + 1e-7), per channel;
    C' = 1 when the channels are averaged (reduction 'mean', after the spectrum) or turned to BT.601 gray ('gray',
    before it); then min-max normalised."""
    b, c, h, w = x.shape
    rows, cols = h // patch, w // patch
    p = x.reshape(b, c, rows, patch, cols, patch).permute(0, 2, 4, 1, 3, 5).reshape(-1, c, patch, patch)
    if reduction == "gray":
        p = rgb_to_grayscale(p)  # BT.601
    f = torch.fft.fftshift(torch.fft.fftn(p, dim=(-2, -1)), dim=(-2, -1))
    power = f.real ** 2 + f.imag ** 2
    if spec_type == "magnitude":
        s = torch.sqrt(power + 1e-7)
    else:
        s = 10 * torch.log10(power + 1e-7) if scale == "log" else power
    if reduction == "mean":
        s = s.mean(dim=1, keepdim=True)
    s = normalize(s, fix_normalize)
    c = s.shape[1]
    return s.view(b, rows, cols, c, patch, patch).permute(0, 3, 1, 4, 2, 5).reshape(b, c, h, w)


class SpectralDiscriminator2D(nn.Module):
    """The spectral critic: patch_spectra of the image (patch_size px patches), then a SwinDiscriminator whose
    tokens are those patches (`net`, built with the remaining options)."""

    def __init__(self, img_size, patch_size: int = 32, version: str = "swin", spec_type: str = "power",
                 scale: str = "linear", reduction: str = "none", fix_normalize: bool = False,
                 after_mean: bool = False, **swin):
        super().__init__()
        if version != "swin" or spec_type not in SPEC_TYPES or reduction not in REDUCTIONS or after_mean:
            raise ValueError(f"SpectralDiscriminator2D version {version!r}, spec_type {spec_type!r}, reduction "
                             f"{reduction!r}, after_mean {after_mean!r}: this port builds version 'swin', spec_type "
                             f"{'/'.join(SPEC_TYPES)}, reduction {'/'.join(REDUCTIONS)}, after_mean false")
        self.patch_size, self.spec_type, self.scale = patch_size, spec_type, scale
        self.reduction, self.fix_normalize = reduction, fix_normalize
        self.net = SwinDiscriminator(img_size, patch_size, in_chans=3 if reduction == "none" else 1, **swin)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(patch_spectra(x, self.patch_size, self.spec_type, self.reduction, self.fix_normalize,
                                      self.scale))
