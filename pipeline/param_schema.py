"""The declared schema of params.yaml: every key, its type and range, checked before any stage touches its outputs.

`check(params)` checks every key of the schema that `params` has (a stage's declared subset); `check(params,
complete=True)` also requires every key of the shared sections and of the active profile (the `check_params`
stage, upstream of every other, so that a bad value stops the DAG before DVC removes any stage's outputs). Keys
are dotted, with `{p}` for the profile, `{b}` for an SR backbone and `{t}` for a restoration task; each error is
one line naming the key and what it allows.
"""
from __future__ import annotations

import math
import numbers
from collections.abc import Callable

from pipeline.metrics.ssim import CONVENTIONS as SSIM_CONVENTIONS
from pipeline.params import PROFILES, SCALE, ParamError
from pipeline.run_table import SR_BACKBONES, TASKS

# The opinion-unaware methods eval_iqa runs through pyiqa: Table 3's (niqe, ilniqe, clipiqa), then ones the paper
# does not compare with (piqe, 2015; qualiclip, 2024, its MOS-free version; maclip, 2025), the report's last rows.
PYIQA_METHODS = ("niqe", "ilniqe", "clipiqa", "piqe", "qualiclip", "maclip")
# What CLIP's attention pool adds as position embedding (pipeline/archs/clip_encoder.py): `none`, as CLIP-IQA
# (pyiqa clipiqa_arch, pos_embedding=False by default, at every size), or `interpolate`, CLIP's 7x7 table resized.
CLIP_POSITIONS = ("none", "interpolate")
PIXEL_LOSSES = ("l1", "psnr")  # the fidelity models' pixel losses (pipeline.train_step.PIXEL_LOSSES implements them)
COMPILE_MODES = ("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")


class Rule:
    """What a value must be: `allowed` says it in words for the error message."""

    def __init__(self, allowed: str, ok: Callable[[object], bool]):
        self.allowed, self.ok = allowed, ok


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_real(v) -> bool:
    return isinstance(v, numbers.Real) and not isinstance(v, bool) and math.isfinite(v)


def integer(minimum: int = 0, multiple: int = 1) -> Rule:
    words = f"an integer >= {minimum}" + (f", a multiple of {multiple}" if multiple > 1 else "")
    return Rule(words, lambda v: _is_int(v) and v >= minimum and v % multiple == 0)


def real(low: float = 0.0, *, above: bool = False, high: float | None = None) -> Rule:
    words = f"a finite number {'>' if above else '>='} {low:g}" + (f" and <= {high:g}" if high is not None else "")
    return Rule(words, lambda v: _is_real(v) and (v > low if above else v >= low) and (high is None or v <= high))


def one_of(*choices) -> Rule:
    return Rule(f"one of {list(choices)}", lambda v: v in choices)


def optional(rule: Rule) -> Rule:
    return Rule(f"null or {rule.allowed}", lambda v: v is None or rule.ok(v))


def list_of(rule: Rule, length: int | None = None) -> Rule:
    words = f"a list{f' of {length}' if length else ''} of {rule.allowed.removeprefix('a ').removeprefix('an ')}s"
    return Rule(words, lambda v: isinstance(v, list) and (length is None or len(v) == length)
                and all(rule.ok(x) for x in v))


TEXT = Rule("a string", lambda v: isinstance(v, str) and v != "")
FLAG = Rule("true or false", lambda v: isinstance(v, bool))
MAPPING = Rule("a mapping", lambda v: isinstance(v, dict))
WEIGHT = real(0.0)
COUNT = integer(1)
PATCH = integer(SCALE, SCALE)  # HR px: the LR patch is patch / scale

SCHEDULE = {"train_set": TEXT, "val_set": TEXT, "lr": real(0.0, above=True), "iters": COUNT, "batch": COUNT,
            "patch": PATCH, "milestones": list_of(COUNT), "ema_decay": real(0.0, high=0.9999), "workers": integer(0),
            "ckpt_every": COUNT, "val_every": COUNT, "log_every": COUNT}

SCHEMA: dict[str, Rule] = {
    "profile": one_of(*PROFILES), "seed": integer(0), "scale": one_of(SCALE),
    **{k: WEIGHT for k in ("lambda1", "lambda2", "lambda3", "lambda4", "image_gan_weight", "alpha1", "alpha2")},
    "prompt_logit_scale": real(0.0, above=True),
    "runs": MAPPING,
    "speed.gpus": COUNT, **{f"speed.{k}": FLAG for k in ("bf16", "channels_last", "compile", "fused_adam",
                                                          "cudnn_benchmark")},
    "speed.compile_mode": one_of(*COMPILE_MODES),
    "optim.betas": list_of(real(0.0, high=0.9999), 2), "optim.gamma": real(0.0, above=True, high=1.0),
    "optim.max_bad_steps": COUNT,
    "download_mirror": optional(TEXT),
    "degradation.pool_size": COUNT, "degradation.final_sinc_prob": real(0.0, high=1.0),
    "{p}.download.images": MAPPING, "{p}.download.groups": MAPPING,
    "{p}.synthesize.sr_sets": list_of(TEXT), "{p}.synthesize.train_sets": MAPPING,
    "{p}.synthesize.subimage_size": PATCH, "{p}.synthesize.subimage_step": COUNT,
    "{p}.synthesize.real_sets": MAPPING, "{p}.synthesize.real_pairs": list_of(TEXT),
    "{p}.synthesize.real_pairs_lr_crop": optional(COUNT), "{p}.synthesize.iqa_sets": list_of(TEXT),
    "{p}.synthesize.restore_sets": MAPPING, "{p}.synthesize.restore_pairs": list_of(TEXT),
    "{p}.synthesize.restore_train_sets": list_of(TEXT),
    **{f"{{p}}.model.rrdbnet.{k}": COUNT for k in ("num_feat", "num_block", "num_grow_ch")},
    **{f"{{p}}.model.swinir.{k}": COUNT for k in ("img_size", "embed_dim", "window_size", "num_feat")},
    "{p}.model.swinir.depths": list_of(COUNT), "{p}.model.swinir.num_heads": list_of(COUNT),
    "{p}.model.swinir.mlp_ratio": real(0.0, above=True),
    "{p}.model.clip.arch": TEXT, "{p}.model.clip.weights": TEXT,
    "{p}.model.clip.position": one_of(*CLIP_POSITIONS), "{p}.model.vgg19.weights": TEXT,
    "{p}.model.nafnet.width": COUNT, "{p}.model.nafnet.middle_blk_num": integer(0),
    "{p}.model.nafnet.enc_blk_nums": list_of(integer(0)), "{p}.model.nafnet.dec_blk_nums": list_of(integer(0)),
    "{p}.model.featd.widths": list_of(COUNT, 4), "{p}.model.lpp.n_ctx": COUNT, "{p}.model.image_d.num_feat": COUNT,
    **{f"{{p}}.pretrain_psnr.{{b}}.{k}": rule for k, rule in SCHEDULE.items()},
    "{p}.pretrain_psnr.{b}.init_from": optional(TEXT),
    **{f"{{p}}.train_gan.{{b}}.{k}": rule for k, rule in SCHEDULE.items()},
    **{f"{{p}}.{stage}.{k}": rule for stage in ("pretrain_real", "train_real") for k, rule in SCHEDULE.items()
       if k != "train_set"},
    **{f"{{p}}.{stage}.{k}": rule for stage in ("pretrain_real", "train_real")
       for k, rule in (("train_sets", list_of(TEXT)), ("degrade_size", PATCH))},
    "{p}.pretrain_real.init_from": optional(TEXT),
    **{f"{{p}}.{stage}.{{t}}.{k}": rule for stage in ("restore_psnr", "restore_gan") for k, rule in SCHEDULE.items()},
    "{p}.restore_psnr.{t}.init_from": optional(TEXT), "{p}.restore_psnr.{t}.pixel_loss": one_of(*PIXEL_LOSSES),
    "{p}.tsne.image_d": TEXT, "{p}.tsne.featd": TEXT, "{p}.tsne.source": TEXT,
    "{p}.tsne.categories": optional(list_of(TEXT)), "{p}.tsne.images_per_class": optional(integer(2)),
    "{p}.tsne.crops_per_image": COUNT, "{p}.tsne.crop": COUNT, "{p}.tsne.perplexity": real(0.0, above=True),
    "{p}.tsne.max_iter": integer(250),  # scikit-learn's minimum
    "{p}.eval_sr.table1.sets": list_of(TEXT), "{p}.eval_sr.table2.sets": list_of(TEXT),
    "{p}.eval_sr.external": Rule("a list", lambda v: isinstance(v, list)),
    "{p}.eval_sr.tile": integer(0), "{p}.eval_sr.tile_overlap": integer(0),
    "{p}.eval_sr.ssim": one_of(*SSIM_CONVENTIONS),
    "{p}.eval_sr.crops.table1": list_of(TEXT, 2), "{p}.eval_sr.crops.table2": list_of(TEXT, 2),
    "{p}.eval_sr.crops.size": integer(16), "{p}.eval_restore.{t}.sets": list_of(TEXT),
    "{p}.eval_restore.tile": integer(0), "{p}.eval_restore.tile_overlap": integer(0),
    "{p}.eval_restore.ssim": one_of(*SSIM_CONVENTIONS),
    "{p}.eval_iqa.sets": list_of(TEXT), "{p}.eval_iqa.sfd_iqa": TEXT,
    "{p}.eval_iqa.pyiqa_methods": list_of(one_of(*PYIQA_METHODS)),
    "{p}.eval_iqa.contentsep.weights": TEXT, "{p}.eval_iqa.contentsep.pristine": TEXT,
    "{p}.eval_iqa.mdfs.backbone": TEXT, "{p}.eval_iqa.mdfs.pristine": TEXT,
    **{f"{{p}}.eval_iqa.recycled.{role}": TEXT for role in ("image_gan_sr", "image_gan_auth", "patch_gan_sr",
                                                           "patch_gan_auth", "basnet", "u2net")},
    "{p}.eval_iqa.dualformer.pipal": TEXT, "{p}.eval_iqa.dualformer.clive_koniq": TEXT,
    "{p}.eval_iqa.rankiqa.weights": TEXT,
    **{f"{{p}}.eval_iqa.dipiq.{role}": TEXT for role in ("codebook", "whitening", "normalization", "network")},
    "{p}.eval_iqa.clip_position": one_of(*CLIP_POSITIONS),
    "{p}.eval_iqa.max_pixels": COUNT, "{p}.eval_iqa.tile": integer(32, 32), "{p}.eval_iqa.tile_margin": integer(0, 32),
}


def flag_problem(values: dict[str, object], rules: dict[str, Rule]) -> str | None:
    """The CLIs' check of their flags by the same rules: the first `--flag must be ..., got ...`, or None."""
    for flag, rule in rules.items():
        if not rule.ok(values[flag]):
            return f"{flag} must be {rule.allowed}, got {values[flag]!r}"
    return None


def _expand(key: str, profile: str) -> list[str]:
    key = key.replace("{p}", profile)
    if "{b}" in key:
        return [key.replace("{b}", b) for b in SR_BACKBONES]
    return [key.replace("{t}", t) for t in TASKS] if "{t}" in key else [key]


def _get(params: dict, key: str):
    node = params
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            return _MISSING
        node = node[part]
    return node


_MISSING = object()


def check(params: dict, complete: bool = False) -> None:
    """Raise ParamError for the first value the schema refuses (or, with `complete`, the first key it misses)."""
    profile = params.get("profile")
    if profile not in PROFILES:
        raise ParamError(f"`profile` must be one of {list(PROFILES)}, got {profile!r}")
    for pattern, rule in SCHEMA.items():
        for key in _expand(pattern, profile):
            value = _get(params, key)
            if value is _MISSING:
                section = key.rsplit(".", 1)[0]
                if complete or ("." in key and _get(params, section) is not _MISSING):
                    raise ParamError(f"missing param `{key}` ({rule.allowed})")
                continue
            if not rule.ok(value):
                raise ParamError(f"`{key}` must be {rule.allowed}, got {value!r}")
    _check_across(params, profile)


def _check_across(params: dict, profile: str) -> None:
    """Rules between keys."""
    if "alpha1" in params and "alpha2" in params and not params["alpha1"] + params["alpha2"] > 0:
        raise ParamError("`alpha1` and `alpha2` must not both be 0 (Eq. 9 would score every image alike)")
    real_cfg = _get(params, f"{profile}.train_real")
    if isinstance(real_cfg, dict) and {"patch", "degrade_size"} <= set(real_cfg) \
            and real_cfg["degrade_size"] < real_cfg["patch"]:
        raise ParamError(f"`{profile}.train_real.degrade_size` must be >= `{profile}.train_real.patch` "
                         f"({real_cfg['patch']}), got {real_cfg['degrade_size']}")
