"""SwinIR for classical x4 SR (Liang et al., ICCVW 2021), the paper's second backbone (Table 1), and for real-world
SR (RealSwinIR, a Table 2 comparison model).

Module and buffer names follow the public `001_classicalSR_DF2K_s64w8_SwinIR-M_x4.pth` (upsampler 'pixelshuffle')
and `003_realSR_BSRGAN_DFO_s64w8_SwinIR-M_x4_GAN.pth` (upsampler 'nearest+conv'), so both load with strict=True.
Both store two deterministic buffers (upstream's main_test_swinir.py loads them strictly into models/network_swinir.py,
which registers them): each attention's `relative_position_index` and, in every shifted block, the `attn_mask` for
the training patch size (`img_size`, 64 LR pixels); other input sizes get their mask computed on the fly.
Stochastic depth (drop path) is left out: it is the identity at inference.
"""
from __future__ import annotations

import math
import re

import torch
import torch.nn.functional as F
from torch import nn

from pipeline.checkpoint import CheckpointError

DIV2K_RGB_MEAN = (0.4488, 0.4371, 0.4040)  # SwinIR subtracts it from the input and adds it back to the output
# SwinIR's `upsampler` options this port builds (classical and real-world SR) and the others, which it does not
UPSAMPLERS = ("pixelshuffle", "nearest+conv")
OTHER_UPSAMPLERS = {"pixelshuffledirect": "lightweight SR", "": "x1: denoising, JPEG artefact removal"}


def window_partition(x: torch.Tensor, ws: int) -> torch.Tensor:
    """(B, H, W, C) -> (B * H/ws * W/ws, ws*ws, C): non-overlapping windows, row-major."""
    b, h, w, c = x.shape
    x = x.view(b, h // ws, ws, w // ws, ws, c).permute(0, 1, 3, 2, 4, 5)
    return x.reshape(-1, ws * ws, c)


def window_reverse(windows: torch.Tensor, ws: int, h: int, w: int) -> torch.Tensor:
    """Inverse of window_partition: (B * nW, ws*ws, C) -> (B, H, W, C)."""
    c = windows.shape[-1]
    x = windows.view(-1, h // ws, w // ws, ws, ws, c).permute(0, 1, 3, 2, 4, 5)
    return x.reshape(-1, h, w, c)


def relative_position_index(ws: int) -> torch.Tensor:
    """(ws*ws, ws*ws) index into the (2ws-1)^2 bias table for every pair of positions inside a window."""
    coords = torch.stack(torch.meshgrid(torch.arange(ws), torch.arange(ws), indexing="ij")).flatten(1)  # 2, N
    rel = coords[:, :, None] - coords[:, None, :] + (ws - 1)  # 2, N, N, each in [0, 2ws-2]
    return rel[0] * (2 * ws - 1) + rel[1]


def shifted_window_mask(h: int, w: int, ws: int, shift: int) -> torch.Tensor:
    """(nW, ws*ws, ws*ws) additive mask: -100 between tokens that the cyclic shift brought from different regions."""
    region = torch.zeros(1, h, w, 1)
    bands = (slice(0, -ws), slice(-ws, -shift), slice(-shift, None))
    for i, rows in enumerate(bands):
        for j, cols in enumerate(bands):
            region[:, rows, cols, :] = 3 * i + j
    region = window_partition(region, ws).squeeze(-1)  # nW, N
    different = region[:, None, :] != region[:, :, None]
    return torch.zeros(different.shape).masked_fill(different, -100.0)


class WindowAttention(nn.Module):
    """Multi-head self-attention inside each window, with a learned relative position bias."""

    def __init__(self, dim: int, window_size: int, num_heads: int):
        super().__init__()
        self.num_heads = num_heads
        self.scale = (dim // num_heads) ** -0.5
        self.relative_position_bias_table = nn.Parameter(torch.zeros((2 * window_size - 1) ** 2, num_heads))
        self.register_buffer("relative_position_index", relative_position_index(window_size))
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        nn.init.normal_(self.relative_position_bias_table, std=0.02)  # see SwinIR._init_weights

    def forward(self, x, mask=None):
        bw, n, c = x.shape  # (batch * windows, tokens per window, channels)
        q, k, v = self.qkv(x).view(bw, n, 3, self.num_heads, c // self.num_heads).permute(2, 0, 3, 1, 4)
        attn = (q * self.scale) @ k.transpose(-2, -1)
        bias = self.relative_position_bias_table[self.relative_position_index.view(-1)]
        attn = attn + bias.view(n, n, self.num_heads).permute(2, 0, 1)
        if mask is not None:  # the same mask for every image of the batch, one per window position
            nw = mask.shape[0]
            attn = (attn.view(-1, nw, self.num_heads, n, n) + mask[None, :, None]).view(bw, self.num_heads, n, n)
        x = (attn.softmax(dim=-1) @ v).transpose(1, 2).reshape(bw, n, c)
        return self.proj(x)


class Mlp(nn.Module):
    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x):
        return self.fc2(F.gelu(self.fc1(x)))


class SwinTransformerBlock(nn.Module):
    """Pre-norm (shifted-)window attention and MLP, each with a residual connection; tokens are (B, H*W, C)."""

    def __init__(self, dim: int, input_resolution: int, num_heads: int, window_size: int, shift: int,
                 mlp_ratio: float):
        super().__init__()
        self.input_resolution, self.window_size, self.shift = input_resolution, window_size, shift
        self.norm1 = nn.LayerNorm(dim)
        self.attn = WindowAttention(dim, window_size, num_heads)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))
        mask = shifted_window_mask(input_resolution, input_resolution, window_size, shift) if shift else None
        self.register_buffer("attn_mask", mask)

    def forward(self, x, x_size: tuple[int, int]):
        h, w = x_size
        b, _, c = x.shape
        ws, s = self.window_size, self.shift
        y = self.norm1(x).view(b, h, w, c)
        mask = None
        if s:
            y = torch.roll(y, shifts=(-s, -s), dims=(1, 2))
            same_size = x_size == (self.input_resolution, self.input_resolution)
            mask = self.attn_mask if same_size else shifted_window_mask(h, w, ws, s).to(x.device)
        y = window_reverse(self.attn(window_partition(y, ws), mask), ws, h, w)
        if s:
            y = torch.roll(y, shifts=(s, s), dims=(1, 2))
        x = x + y.reshape(b, h * w, c)
        return x + self.mlp(self.norm2(x))


class BasicLayer(nn.Module):
    """`depth` Swin blocks, alternating regular and half-window-shifted windows."""

    def __init__(self, dim, input_resolution, depth, num_heads, window_size, mlp_ratio):
        super().__init__()
        self.blocks = nn.ModuleList(
            SwinTransformerBlock(dim, input_resolution, num_heads, window_size,
                                 shift=0 if i % 2 == 0 else window_size // 2, mlp_ratio=mlp_ratio)
            for i in range(depth))

    def forward(self, x, x_size):
        for block in self.blocks:
            x = block(x, x_size)
        return x


def to_tokens(x: torch.Tensor) -> torch.Tensor:
    """(B, C, H, W) -> (B, H*W, C)."""
    return x.flatten(2).transpose(1, 2)


def to_image(x: torch.Tensor, x_size: tuple[int, int]) -> torch.Tensor:
    """(B, H*W, C) -> (B, C, H, W)."""
    return x.transpose(1, 2).reshape(x.shape[0], x.shape[2], *x_size)


class RSTB(nn.Module):
    """Residual Swin Transformer block: Swin blocks, a 3x3 conv on the image-shaped tokens, plus the input."""

    def __init__(self, dim, input_resolution, depth, num_heads, window_size, mlp_ratio):
        super().__init__()
        self.residual_group = BasicLayer(dim, input_resolution, depth, num_heads, window_size, mlp_ratio)
        self.conv = nn.Conv2d(dim, dim, 3, 1, 1)

    def forward(self, x, x_size):
        return to_tokens(self.conv(to_image(self.residual_group(x, x_size), x_size))) + x


class PatchEmbed(nn.Module):
    """Pixels as tokens (patch size 1), layer-normalised."""

    def __init__(self, dim: int):
        super().__init__()
        self.norm = nn.LayerNorm(dim)

    def forward(self, x):
        return self.norm(to_tokens(x))


class SwinIR(nn.Module):
    """SwinIR with the pixel-shuffle upsampler (classical SR) or the nearest+conv one (real-world SR); defaults are
    SwinIR-M x4 classical SR (11.9 M parameters).

    `upsampler` 'nearest+conv' (SwinIR's models/network_swinir.py) upsamples the features by nearest x2 steps, each
    followed by a conv and LeakyReLU(0.2) (`conv_up1`, and `conv_up2` for x4; x2 and x4 only, as upstream), then
    `conv_hr` + LeakyReLU(0.2) and `conv_last`. Input and output are RGB in [0, 1]. `img_size` is the training patch
    size (it fixes the stored shifted-window masks); any input size works: it is reflect-padded to a multiple of the
    window and the output cropped back.
    """

    def __init__(self, img_size: int = 64, in_chans: int = 3, embed_dim: int = 180,
                 depths: tuple[int, ...] = (6, 6, 6, 6, 6, 6), num_heads: tuple[int, ...] = (6, 6, 6, 6, 6, 6),
                 window_size: int = 8, mlp_ratio: float = 2.0, upscale: int = 4, img_range: float = 1.0,
                 num_feat: int = 64, upsampler: str = "pixelshuffle"):
        super().__init__()
        if img_size <= window_size:
            raise ValueError(f"img_size ({img_size}) must exceed window_size ({window_size})")
        if upsampler not in UPSAMPLERS:
            raise ValueError(f"upsampler must be one of {UPSAMPLERS}, got {upsampler!r}")
        if upsampler == "nearest+conv" and upscale not in (2, 4):
            raise ValueError(f"the nearest+conv upsampler is x2 or x4, got x{upscale}")
        if upscale & (upscale - 1):
            raise ValueError(f"upscale must be a power of 2, got {upscale}")
        self.scale, self.window_size, self.img_range, self.upsampler = upscale, window_size, img_range, upsampler
        mean = DIV2K_RGB_MEAN if in_chans == 3 else (0.0,) * in_chans
        self.register_buffer("mean", torch.tensor(mean).view(1, in_chans, 1, 1), persistent=False)

        self.conv_first = nn.Conv2d(in_chans, embed_dim, 3, 1, 1)
        self.patch_embed = PatchEmbed(embed_dim)
        self.layers = nn.ModuleList(
            RSTB(embed_dim, img_size, depth, heads, window_size, mlp_ratio) for depth, heads in zip(depths, num_heads))
        self.norm = nn.LayerNorm(embed_dim)
        self.conv_after_body = nn.Conv2d(embed_dim, embed_dim, 3, 1, 1)

        # SwinIR's LeakyReLU here has PyTorch's default slope 0.01 (both upsamplers)
        self.conv_before_upsample = nn.Sequential(nn.Conv2d(embed_dim, num_feat, 3, 1, 1), nn.LeakyReLU())
        if upsampler == "pixelshuffle":
            ups = []
            for _ in range(int(math.log2(upscale))):
                ups += [nn.Conv2d(num_feat, 4 * num_feat, 3, 1, 1), nn.PixelShuffle(2)]
            self.upsample = nn.Sequential(*ups)
        else:  # upstream's order of creation: conv_up1, conv_up2 (x4 only), conv_hr, conv_last
            self.conv_up1 = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
            if upscale == 4:
                self.conv_up2 = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
            self.conv_hr = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
        self.conv_last = nn.Conv2d(num_feat, in_chans, 3, 1, 1)
        self.apply(self._init_weights)

    @staticmethod
    def _init_weights(m):
        # SwinIR uses trunc_normal_(std=0.02) with the default bounds +-2, i.e. 100 std: never reached, so a plain
        # normal is the same distribution (and much faster to draw)
        if isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, std=0.02)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.LayerNorm):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)

    def forward_features(self, x):
        x_size = (x.shape[2], x.shape[3])
        tokens = self.patch_embed(x)
        for layer in self.layers:
            tokens = layer(tokens, x_size)
        return to_image(self.norm(tokens), x_size)

    def nearest_conv(self, feat: torch.Tensor) -> torch.Tensor:
        """The real-world upsampler before conv_last: per x2, nearest upsampling, a conv and LeakyReLU(0.2); then
        conv_hr and LeakyReLU(0.2)."""
        for conv in [self.conv_up1] + ([self.conv_up2] if self.scale == 4 else []):
            feat = F.leaky_relu(conv(F.interpolate(feat, scale_factor=2, mode="nearest")), 0.2)
        return F.leaky_relu(self.conv_hr(feat), 0.2)

    def forward(self, x):
        h, w = x.shape[2:]
        pad_h, pad_w = (-h) % self.window_size, (-w) % self.window_size
        x = F.pad(x, (0, pad_w, 0, pad_h), mode="reflect")
        x = (x - self.mean) * self.img_range
        feat = self.conv_first(x)
        feat = self.conv_after_body(self.forward_features(feat)) + feat
        feat = self.conv_before_upsample(feat)
        x = self.conv_last(self.upsample(feat) if self.upsampler == "pixelshuffle" else self.nearest_conv(feat))
        x = x / self.img_range + self.mean
        return x[:, :, :h * self.scale, :w * self.scale]


def upsampler_of(state: dict[str, torch.Tensor]) -> str:
    """SwinIR's `upsampler` option that a public-layout state dict was built with, read off its module names."""
    if "conv_up1.weight" in state:
        return "nearest+conv"
    if "conv_before_upsample.0.weight" in state:
        return "pixelshuffle"
    return "pixelshuffledirect" if "upsample.0.weight" in state else ""


def swinir_config_from_state(state: dict[str, torch.Tensor]) -> dict:
    """SwinIR constructor arguments read off the tensor shapes of a state dict in the public layout.

    Everything is inferable except `img_range` (1.0, as in all classical- and real-world-SR checkpoints) and, when no
    block is shifted (every depth 1), `img_size` (64). `upsampler` is given only for the real-world 'nearest+conv'
    (the constructor's default is classical SR's 'pixelshuffle').
    """
    upsampler = upsampler_of(state)
    if upsampler not in UPSAMPLERS:
        raise CheckpointError(f"SwinIR with upsampler {upsampler or 'none'!r} ({OTHER_UPSAMPLERS[upsampler]}) is not "
                              f"supported, only classical SR's 'pixelshuffle' and real-world SR's 'nearest+conv'")
    upsampler_keys = ("upsample.0.weight",) if upsampler == "pixelshuffle" else ("conv_up1.weight", "conv_hr.weight")
    needed = ("conv_first.weight", "conv_before_upsample.0.weight", *upsampler_keys,
              "layers.0.residual_group.blocks.0.attn.relative_position_bias_table",
              "layers.0.residual_group.blocks.0.mlp.fc1.weight")
    absent = [k for k in needed if k not in state]
    if absent:
        raise CheckpointError(f"not a SwinIR state dict: missing keys {', '.join(absent)}")
    num_feat = state["conv_before_upsample.0.weight"].shape[0]
    if upsampler == "pixelshuffle":
        upsample_convs = [k for k in state if re.fullmatch(r"upsample\.\d+\.weight", k)]
        # each conv feeds a PixelShuffle(r), so it has r * r * num_feat outputs: r = 2 for x2, x4, x8; one r = 3 for x3
        shuffles = [math.isqrt(state[k].shape[0] // num_feat) for k in upsample_convs]
        if set(shuffles) != {2}:
            raise CheckpointError(f"SwinIR x{math.prod(shuffles)} (pixel shuffle by {shuffles[0]}) is not supported, "
                                  f"only scales that are powers of 2")
        upscale = 2 ** len(upsample_convs)
    else:  # upstream builds conv_up2 for x4 only
        upscale = 4 if "conv_up2.weight" in state else 2
    blocks: dict[int, int] = {}
    for key in state:
        if m := re.match(r"layers\.(\d+)\.residual_group\.blocks\.(\d+)\.", key):
            layer, block = int(m.group(1)), int(m.group(2))
            blocks[layer] = max(blocks.get(layer, 0), block + 1)
    depths = tuple(blocks[i] for i in range(len(blocks)))
    num_heads = tuple(state[f"layers.{i}.residual_group.blocks.0.attn.relative_position_bias_table"].shape[1]
                      for i in range(len(depths)))
    table_size = state["layers.0.residual_group.blocks.0.attn.relative_position_bias_table"].shape[0]
    window_size = (math.isqrt(table_size) + 1) // 2
    embed_dim = state["conv_first.weight"].shape[0]
    masks = [v for k, v in state.items() if k.endswith(".attn_mask")]
    img_size = window_size * math.isqrt(masks[0].shape[0]) if masks else 64
    return {
        "img_size": img_size,
        "in_chans": state["conv_first.weight"].shape[1],
        "embed_dim": embed_dim,
        "depths": depths,
        "num_heads": num_heads,
        "window_size": window_size,
        "mlp_ratio": state["layers.0.residual_group.blocks.0.mlp.fc1.weight"].shape[0] / embed_dim,
        "upscale": upscale,
        "num_feat": num_feat,
        **({} if upsampler == "pixelshuffle" else {"upsampler": upsampler}),
    }
