"""SFD-IQA (Eq. 8-10): opinion-unaware no-reference IQA from SFD's trained Feat-D and LPP, no IQA training.

For an image x: Feat-D's score map [s_ij] from CLIP's F_m1..F_m3 (Eq. 8), s_lp from F_out and the LPP, s_o from
F_out and the fixed prompts "Good photo." / "Bad photo." (both Eq. 3-4), s_aver = alpha1 s_o + alpha2 s_lp
(Eq. 9) and s_d = s_aver * mean(sigmoid([s_ij])) (Eq. 10). Table 4's ablations are the variants `baseline` (s_o),
`featd` (s_o * mean map), `tgd` (s_aver) and `full` (s_d).

The whole image is scored, never a crop. Memory stays bounded for large images (our choice): above `max_pixels`
pixels, the map mean is computed on `tile` x `tile` tiles, each run through the CLIP trunk (up to layer3) and
Feat-D with `tile_margin` extra pixels of context on every side that are cut from its map again, and F_out comes
from the image resized (bicubic, antialiased) to fit `max_pixels` with its aspect ratio kept. Tiles start on
multiples of 32, so their maps align with the whole-image map; where the margin covers the receptive field the
tiled mean equals the whole-image one: exactly for sides that are multiples of 16, while at some other sizes
Feat-D's upsamplings to the skip feature's size are not exactly x2 and the means differ slightly (5e-4 measured).

An SFD-IQA checkpoint is one safetensors file with Feat-D's and the LPP's weights (keys `featd.*`, `lpp.*`) and
metadata naming the CLIP model they were trained on (`clip_arch`, `clip_weights`), `featd_widths`, `n_ctx`,
`class_texts` and `prompt_logit_scale`.
"""
from __future__ import annotations

import json
import math
import os

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import parametrize

from pipeline.archs.clip_encoder import CLIPEncoder
from pipeline.archs.featd import FeatD
from pipeline.archs.lpp import LearnablePromptPairs
from pipeline.checkpoint import CheckpointError, load_into, load_state_dict, save_state_dict
from pipeline.losses import prompt_pair_score

VARIANTS = ("baseline", "featd", "tgd", "full")
FIXED_PROMPTS = ("Good photo.", "Bad photo.")
CHECKPOINT_FORMAT = "sfd-iqa"
ALIGN = 32  # CLIP's total stride: tiles on this grid keep the maps aligned


def combine_scores(variant: str, s_o: torch.Tensor, s_lp: torch.Tensor | None = None,
                   map_mean: torch.Tensor | None = None, alpha1: float = 0.5, alpha2: float = 0.5) -> torch.Tensor:
    """Eq. 9-10 and Table 4's ablations: the score of `variant` from s_o, s_lp and mean(sigmoid(map))."""
    if variant == "baseline":
        return s_o
    if variant == "featd":
        return s_o * map_mean
    s_aver = alpha1 * s_o + alpha2 * s_lp  # Eq. 9
    if variant == "tgd":
        return s_aver
    if variant == "full":
        return s_aver * map_mean  # Eq. 10
    raise ValueError(f"unknown SFD-IQA variant {variant!r}; known: {', '.join(VARIANTS)}")


def resize_to_budget(x: torch.Tensor, max_pixels: int) -> torch.Tensor:
    """`x` shrunk (bicubic, antialiased) to at most `max_pixels` pixels, aspect ratio kept."""
    h, w = x.shape[-2:]
    factor = math.sqrt(max_pixels / (h * w))
    size = (max(ALIGN, int(h * factor)), max(ALIGN, int(w * factor)))
    return F.interpolate(x, size=size, mode="bicubic", align_corners=False, antialias=True).clamp(0, 1)


class SFDIQA(nn.Module):
    """Scores RGB images in [0, 1] (3 x H x W or N x 3 x H x W, any size >= 32) with SFD-IQA; higher is better.

    `featd` and `lpp` may be None when only the variants that do not use them are asked for (`baseline` needs
    neither). Building it puts Feat-D and the LPP in eval mode.
    """

    def __init__(self, encoder: CLIPEncoder, featd: FeatD | None = None, lpp: LearnablePromptPairs | None = None,
                 alpha1: float = 0.5, alpha2: float = 0.5, prompt_logit_scale: float = 100.0,
                 max_pixels: int = 1024 * 1024, tile: int = 512, tile_margin: int = 64):
        super().__init__()
        if tile < ALIGN or tile % ALIGN or tile_margin < ALIGN or tile_margin % ALIGN:
            raise ValueError(f"tile ({tile}) and tile_margin ({tile_margin}) must be positive multiples of {ALIGN}")
        if max_pixels < ALIGN * ALIGN:
            raise ValueError(f"max_pixels must be at least {ALIGN * ALIGN}, got {max_pixels}")
        self.encoder, self.featd, self.lpp = encoder, featd, lpp
        self.alpha1, self.alpha2, self.prompt_logit_scale = alpha1, alpha2, prompt_logit_scale
        self.max_pixels, self.tile, self.tile_margin = max_pixels, tile, tile_margin
        self._lpp_cache: tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]] | None = None
        self.eval()

    def _lpp_features(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The LPP's (F_t+, F_t-). A pass of CLIP's text tower costs about a quarter of the image tower on a
        384 x 512 image, so it is kept and redone only when the learned context changes (value, device or dtype)."""
        ctx, cached = self.lpp.ctx, self._lpp_cache
        if cached is None or cached[0].device != ctx.device or cached[0].dtype != ctx.dtype or \
                not torch.equal(cached[0], ctx):
            self._lpp_cache = cached = (ctx.detach().clone(), self.lpp(self.encoder))
        return cached[1]

    def _tiled_map_mean(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        t, m = self.tile, self.tile_margin
        total, count = x.new_zeros(x.shape[0]), 0
        for y0 in range(0, h, t):
            for x0 in range(0, w, t):
                py0, px0 = max(0, y0 - m), max(0, x0 - m)
                patch = x[..., py0:min(h, y0 + t + m), px0:min(w, x0 + t + m)]
                feats = self.encoder(patch, with_output=False)
                prob = torch.sigmoid(self.featd(feats.m1, feats.m2, feats.m3))
                # the map is at half resolution: keep the rows/columns of this tile's own pixels
                core = prob[..., (y0 - py0) // 2:(y0 + t - py0) // 2, (x0 - px0) // 2:(x0 + t - px0) // 2]
                total += core.sum(dim=(1, 2, 3))
                count += core.shape[-2] * core.shape[-1]
        return total / count

    @torch.no_grad()
    def parts(self, img: torch.Tensor, need_map: bool = True, need_lp: bool = True) -> dict[str, torch.Tensor]:
        """{"s_o", and "s_lp" if need_lp, "map_mean" (mean sigmoid of Feat-D's map) if need_map}, each of size N."""
        if (need_map and self.featd is None) or (need_lp and self.lpp is None):
            raise ValueError("this SFD-IQA variant needs the trained Feat-D and LPP (an SFD-IQA checkpoint)")
        x = img[None] if img.dim() == 3 else img
        whole = x.shape[-2] * x.shape[-1] <= self.max_pixels
        feats = self.encoder(x if whole else resize_to_budget(x, self.max_pixels))
        out = {"s_o": prompt_pair_score(feats.out, *self.encoder.encode_text(FIXED_PROMPTS), self.prompt_logit_scale)}
        if need_lp:
            out["s_lp"] = prompt_pair_score(feats.out, *self._lpp_features(), self.prompt_logit_scale)
        if need_map:
            with parametrize.cached():  # Feat-D's spectral-normalised weights, computed once per call, not per tile
                out["map_mean"] = (torch.sigmoid(self.featd(feats.m1, feats.m2, feats.m3)).mean(dim=(1, 2, 3))
                                   if whole else self._tiled_map_mean(x))
        return out

    def scores(self, img: torch.Tensor, variants=VARIANTS) -> dict[str, torch.Tensor]:
        """{variant: N scores} for several variants from one pass over the image."""
        unknown = set(variants) - set(VARIANTS)
        if unknown:
            raise ValueError(f"unknown SFD-IQA variants {sorted(unknown)}; known: {', '.join(VARIANTS)}")
        p = self.parts(img, need_map=bool({"featd", "full"} & set(variants)),
                       need_lp=bool({"tgd", "full"} & set(variants)))
        return {v: combine_scores(v, p["s_o"], p.get("s_lp"), p.get("map_mean"), self.alpha1, self.alpha2)
                for v in variants}

    def forward(self, img: torch.Tensor, variant: str = "full") -> torch.Tensor:
        return self.scores(img, (variant,))[variant]


def save_sfd_iqa(path: str | os.PathLike, encoder: CLIPEncoder, featd: FeatD, lpp: LearnablePromptPairs,
                 prompt_logit_scale: float) -> None:
    """Write Feat-D + LPP weights and what is needed to rebuild them as one safetensors file (atomically)."""
    state = {f"featd.{k}": v for k, v in featd.state_dict().items()}
    state.update({f"lpp.{k}": v for k, v in lpp.state_dict().items()})
    meta = {"format": CHECKPOINT_FORMAT, "clip_arch": encoder.arch, "clip_weights": encoder.weights,
            "featd_widths": json.dumps(list(featd.widths)), "n_ctx": str(lpp.n_ctx),
            "class_texts": json.dumps(list(lpp.class_texts)), "prompt_logit_scale": repr(float(prompt_logit_scale))}
    save_state_dict(path, state, meta)


def load_sfd_iqa(path: str | os.PathLike, clip_weights: str | None = None, clip_position: str = "none",
                 **sfd_iqa_kwargs) -> SFDIQA:
    """SFDIQA (on the CPU) from a checkpoint of save_sfd_iqa; CheckpointError if the file is not one or does not fit.

    `clip_weights` overrides the CLIP weights named in the file (e.g. a local copy of the OpenAI weights);
    `clip_position` is CLIP's attention-pool position embedding (CLIPEncoder; `none`, CLIP-IQA's, by default);
    `sfd_iqa_kwargs` go to SFDIQA (alpha1, alpha2, max_pixels, tile, tile_margin).
    """
    state, meta = load_state_dict(path)
    if meta.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(f"{path} is not an SFD-IQA checkpoint (its metadata lacks format={CHECKPOINT_FORMAT})")
    try:
        arch, widths, n_ctx = meta["clip_arch"], json.loads(meta["featd_widths"]), int(meta["n_ctx"])
        class_texts, scale = json.loads(meta["class_texts"]), float(meta["prompt_logit_scale"])
        weights = clip_weights or meta["clip_weights"]
        if len(widths) != 4 or len(class_texts) != 2:
            raise ValueError("featd_widths needs 4 values and class_texts 2")
    except (KeyError, ValueError) as e:
        raise CheckpointError(f"{path}: incomplete or invalid SFD-IQA metadata ({type(e).__name__}: {e})") from None
    if not clip_weights and weights not in ("openai", "none") and not os.path.isfile(weights):
        raise CheckpointError(f"the CLIP weights file that the SFD-IQA checkpoint {path} names is not found: {weights} "
                              f"(a relative path is relative to the current directory, {os.getcwd()}); "
                              f"`python -m pipeline.iqa --clip-weights FILE` overrides it")
    encoder = CLIPEncoder(arch, weights, clip_position)
    featd = FeatD(encoder.mid_channels, widths)
    lpp = LearnablePromptPairs(encoder, n_ctx, class_texts)
    for prefix, module in (("featd.", featd), ("lpp.", lpp)):
        load_into(module, {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)})
    return SFDIQA(encoder, featd, lpp, prompt_logit_scale=scale, **sfd_iqa_kwargs)
