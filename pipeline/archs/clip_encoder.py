"""The frozen CLIP encoder E_i / E_t of SFD: middle features F_m1..F_m3, output feature F_out, text features.

OpenAI CLIP RN50 through open_clip as `RN50-quickgelu` (the OpenAI weights use QuickGELU; plain `RN50` would
differ silently). `clip_tiny` (registered from `clip_tiny.json`, the same classes at a fraction of the size:
ModifiedResNet layers [1, 1, 1, 1] of width 16, a 2-layer width-64 text tower) serves the quick profile and tests.

Weights: `openai` (open_clip's download of the OpenAI weights, RN50-quickgelu only), a local open_clip state dict
(`.safetensors`, or `.pth`/`.bin` read with weights_only), or `none`: a random init drawn with a fixed seed, so that
every process builds the same random CLIP and Feat-D/LPP weights trained on it stay meaningful elsewhere.

Position embedding of the attention pool (`position`, pipeline.param_schema.CLIP_POSITIONS): `none`, as CLIP-IQA
computes its score (pyiqa clipiqa_arch's default pos_embedding=False, at every size), or `interpolate`, CLIP's
7x7(+1) table resized (bicubic) to the feature grid.

The encoder never trains: its parameters have requires_grad False and it stays in eval mode (BatchNorm with running
statistics) even when a parent module calls train(). Gradients still flow to the input image.
"""
from __future__ import annotations

import contextlib
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

import open_clip
import torch
import torch.nn.functional as F
from open_clip.constants import OPENAI_DATASET_MEAN, OPENAI_DATASET_STD
from torch import nn

from pipeline.checkpoint import CheckpointError, key_mismatch, load_state_dict
from pipeline.param_schema import CLIP_POSITIONS as POSITIONS

PAPER_ARCH = "RN50-quickgelu"
TINY_ARCH = "clip_tiny"
RANDOM_SEED = 0
MIN_SIZE = 32  # the ModifiedResNet downsamples by 32 before the attention pool

open_clip.add_model_config(Path(__file__).with_name(f"{TINY_ARCH}.json"))


class CLIPFeatures(NamedTuple):
    m1: torch.Tensor  # layer1 output, C1 x H/4 x W/4 (C1 = 256 for RN50)
    m2: torch.Tensor  # layer2 output, C2 x H/8 x W/8 (512)
    m3: torch.Tensor  # layer3 output, C3 x H/16 x W/16 (1024)
    out: torch.Tensor | None  # attention-pool output F_out (1024-d), None when not asked for


@contextlib.contextmanager
def _quiet_random_init_warning():
    """open_clip logs 'initialized randomly' for every model built without its own weights; ours says so itself."""
    drop = logging.Filter()
    drop.filter = lambda record: not record.getMessage().startswith("No pretrained weights loaded")
    logging.getLogger().addFilter(drop)
    try:
        yield
    finally:
        logging.getLogger().removeFilter(drop)


def build_clip_model(arch: str, weights: str) -> tuple[nn.Module, str]:
    """The open_clip model for `arch` with `weights` ('openai', 'none' or a file path) and a description of them."""
    choices = f"an open_clip model with a ModifiedResNet image tower, e.g. {PAPER_ARCH} (the paper's) or {TINY_ARCH}"
    if arch not in open_clip.list_models():
        raise ValueError(f"unknown CLIP model {arch!r}; use {choices}")
    if not isinstance(open_clip.get_model_config(arch)["vision_cfg"].get("layers"), (list, tuple)):
        raise ValueError(f"CLIP model {arch!r} has no ModifiedResNet image tower (SFD takes its middle features from "
                         f"one); use {choices}")
    if weights == "openai":
        if arch != PAPER_ARCH:
            raise ValueError(f"CLIP weights 'openai' exist only for {PAPER_ARCH}, not {arch}")
        try:
            return open_clip.create_model(arch, pretrained="openai"), "openai"
        except (OSError, RuntimeError) as e:  # open_clip reports a failed download as a RuntimeError
            raise CheckpointError(
                f"cannot get the OpenAI CLIP weights for {arch} (open_clip downloads them from the Hugging Face "
                f"Hub, timm/resnet50_clip.openai, into HF_HOME; offline they must be cached there already, or "
                f"pass a local file): {type(e).__name__}: {e}") from None
    with torch.random.fork_rng(devices=[]), _quiet_random_init_warning():
        torch.manual_seed(RANDOM_SEED)
        model = open_clip.create_model(arch)
    if weights == "none":
        return model, f"random (seed {RANDOM_SEED})"
    state, _ = load_state_dict(weights)  # readable, weights only: our errors before open_clip's
    try:
        # open_clip's own loader, so a file is accepted exactly when open_clip accepts it (converted third-party
        # layouts, BatchNorm files without num_batches_tracked, a differently sized position table).
        open_clip.load_checkpoint(model, str(weights), strict=True)
    except RuntimeError as e:
        mismatch = key_mismatch([k for k in model.state_dict() if not k.endswith("num_batches_tracked")], list(state))
        raise CheckpointError(f"{weights} does not fit open_clip {arch}: "
                              f"{mismatch or ' '.join(str(e).split())[:300]}") from None
    return model, f"file {Path(weights).name}"


def resize_position_table(table: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """A g x g x C position table resized (bicubic, align_corners False) to h x w x C.

    Bicubic resizing is separable, so it is two small matrix products with the 1-D resize matrices (the identity
    resized); the same numbers as F.interpolate, whose CUDA kernel runs one thread per output position looping over
    all 2048 channels (1.3 ms per call on an H200, a tenth of the whole image tower at batch 16)."""
    g = table.shape[0]
    eye = torch.eye(g, device=table.device, dtype=table.dtype)[None, None]
    rows = F.interpolate(eye, size=(h, g), mode="bicubic", align_corners=False)[0, 0]  # h x g
    cols = F.interpolate(eye, size=(w, g), mode="bicubic", align_corners=False)[0, 0]  # w x g
    return torch.einsum("hi,ijc,wj->hwc", rows, table, cols)


def attention_pool(pool: nn.Module, x: torch.Tensor, position: str) -> torch.Tensor:
    """open_clip's AttentionPool2d on an N x C x h x w grid, with the position embedding `position` says (POSITIONS).

    `none` is CLIP-IQA's pool (pyiqa clipiqa_arch with its default pos_embedding=False); `interpolate` resizes the
    7x7(+1) table to the grid (bicubic), which at the native 224 px is open_clip's computation exactly.
    """
    if position not in POSITIONS:
        raise ValueError(f"position must be one of {POSITIONS}, got {position!r}")
    _, c, h, w = x.shape
    pos = pool.positional_embedding
    grid = round((pos.shape[0] - 1) ** 0.5)
    if position == "interpolate" and (h, w) != (grid, grid):
        pos = torch.cat([pos[:1], resize_position_table(pos[1:].reshape(grid, grid, c), h, w).reshape(h * w, c)])
    x = x.flatten(2).permute(2, 0, 1)  # (HW, N, C)
    x = torch.cat([x.mean(dim=0, keepdim=True), x])
    if position == "interpolate":
        x = x + pos[:, None, :].to(x.dtype)
    x, _ = F.multi_head_attention_forward(
        query=x, key=x, value=x, embed_dim_to_check=c, num_heads=pool.num_heads,
        q_proj_weight=pool.q_proj.weight, k_proj_weight=pool.k_proj.weight, v_proj_weight=pool.v_proj.weight,
        in_proj_weight=None, in_proj_bias=torch.cat([pool.q_proj.bias, pool.k_proj.bias, pool.v_proj.bias]),
        bias_k=None, bias_v=None, add_zero_attn=False, dropout_p=0.0,
        out_proj_weight=pool.c_proj.weight, out_proj_bias=pool.c_proj.bias,
        use_separate_proj_weight=True, training=False, need_weights=False)
    return x[0]


class CLIPEncoder(nn.Module):
    """Frozen CLIP: `forward(img)` gives CLIPFeatures of an RGB batch in [0, 1]; `encode_text` gives prompt features.

    Attributes others read: `mid_channels` (C1, C2, C3) for Feat-D, `embed_dim` (size of F_out and text features),
    `text_width` and `context_length` for the LPP, `weights_description` and `random_weights` for reports.
    """

    def __init__(self, arch: str = PAPER_ARCH, weights: str = "openai", position: str = "none"):
        super().__init__()
        if position not in POSITIONS:
            raise ValueError(f"CLIP position must be one of {POSITIONS}, got {position!r}")
        model, self.weights_description = build_clip_model(arch, str(weights))
        self.arch, self.weights, self.position = arch, str(weights), position
        self.random_weights = self.weights == "none"
        self.visual = model.visual
        self.token_embedding = model.token_embedding
        self.positional_embedding = model.positional_embedding
        self.transformer = model.transformer
        self.ln_final = model.ln_final
        self.text_projection = model.text_projection
        self.register_buffer("attn_mask", model.attn_mask, persistent=False)
        self.register_buffer("mean", torch.tensor(OPENAI_DATASET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(OPENAI_DATASET_STD).view(1, 3, 1, 1), persistent=False)
        self.tokenizer = open_clip.get_tokenizer(arch)
        self.mid_channels = tuple(layer[-1].conv3.out_channels for layer in
                                  (self.visual.layer1, self.visual.layer2, self.visual.layer3))
        self.embed_dim = self.visual.output_dim
        self.text_width = self.token_embedding.embedding_dim
        self.context_length = self.positional_embedding.shape[0]
        self._text_cache: dict[tuple[str, ...], torch.Tensor] = {}
        self.requires_grad_(False)
        self.train(False)

    def train(self, mode: bool = True) -> CLIPEncoder:
        """Always eval: the BatchNorms must keep CLIP's running statistics."""
        return super().train(False)

    def forward(self, img: torch.Tensor, with_output: bool = True) -> CLIPFeatures:
        """F_m1, F_m2, F_m3 and (unless `with_output` is False, which skips layer4 and the pool) F_out.

        `img`: N x 3 x H x W RGB in [0, 1], H and W >= 32 (any size; `position` says what the pool adds).
        """
        if min(img.shape[-2:]) < MIN_SIZE:
            raise ValueError(f"CLIP needs images of at least {MIN_SIZE} x {MIN_SIZE} pixels, got "
                             f"{tuple(img.shape[-2:])}")
        v = self.visual
        x = v.stem((img - self.mean) / self.std)
        m1 = v.layer1(x)
        m2 = v.layer2(m1)
        m3 = v.layer3(m2)
        out = attention_pool(v.attnpool, v.layer4(m3), self.position) if with_output else None
        return CLIPFeatures(m1, m2, m3, out)

    def encode_token_embeddings(self, x: torch.Tensor, eot_index: torch.Tensor) -> torch.Tensor:
        """The text tower on token embeddings (P x context_length x width): causal transformer, ln_final, the
        end-of-text token's feature, text_projection. Shared by fixed prompts and the learnable prompt pairs."""
        x = self.transformer(x + self.positional_embedding, attn_mask=self.attn_mask)  # batch-first
        x = self.ln_final(x)[torch.arange(x.shape[0], device=x.device), eot_index]
        return self.text_projection(x) if isinstance(self.text_projection, nn.Linear) else x @ self.text_projection

    def encode_text(self, prompts: Sequence[str]) -> torch.Tensor:
        """Features (P x embed_dim) of fixed prompts; computed once per prompt list, then served from a cache."""
        key = tuple(prompts)
        if key not in self._text_cache:
            # a plain tensor even when first asked for under inference_mode, so training code can use it later
            with torch.inference_mode(False), torch.no_grad():
                tokens = self.tokenizer(list(key)).to(self.positional_embedding.device)
                self._text_cache[key] = self.encode_token_embeddings(self.token_embedding(tokens),
                                                                     tokens.argmax(dim=-1))
        return self._text_cache[key].to(self.positional_embedding.device)
