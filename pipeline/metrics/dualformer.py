"""DualFormer as an opinion-unaware IQA method (Luo et al., ICCV 2023): the spatial and the spectral
critic of an SR GAN (pipeline.archs.swin_discriminator) score an image, and the score is the sum of their means over
crops. Higher is better: the critics are trained to score real images above SR ones, and test_iqa.py correlates
the raw sum with the MOS.

As Luciennnnnnn/DualFormer's scripts/test_iqa.py computes it (commit 54d911a), with the arguments that
scripts/test/test_iqa_dual_former.sh passes for each set (SETS):
- an experiment folder of its Google Drive release holds one options file (*.yml: `network_d`, `net_spectral_d`),
  models/net_d.pth and models/net_spectral_d.pth ({'params': ...}, BasicSR's save_network). The critics are built
  from the options, with `img_size` (and, where given, `window_size`) replaced by the test's arguments;
- loading follows SwinTransformer.load_state_dict: relative_position_index and attn_mask are rebuilt, not read,
  and a relative-position bias table (or absolute position embedding) of another size is resized bicubically
  (align_corners=False) to the test's window. SpectralDiscriminator2D's keys may carry a `net.` prefix;
- the image (PIL RGB, to_tensor, [0, 1]) is cut into img_size patches at stride 64 ("patchify", the remainder
  dropped), or img_size crops are taken at n_ensemble random positions ("random"): np.random.randint(0, H - size)
  and (0, W - size), first the spatial critic's n, then the spectral critic's, from numpy's generator seeded 23
  (seed_everything(23)). The critic's output is averaged over patches or crops.
Upstream scores batches of 20 images, which share their crop positions, in its own list order; here each image
draws its own positions from the set's stream, in the set's order. A score is still the same n-crop mean, but a
different draw of crops. An image too small for the set's crops is n/a (upstream stops with an error).
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
import yaml
from torch import nn

from pipeline.archs.swin_discriminator import SpectralDiscriminator2D, SwinDiscriminator
from pipeline.checkpoint import load_state_dict
from pipeline.metrics.contentsep import patches
from pipeline.metrics.pyiqa_metrics import MetricUnavailable, load_weights, require_file

SEED = 23  # test_iqa.py --seed
STRIDE = 64  # test_iqa.py --stride, the patchify stride
# load_dualformer's arguments: the experiment folders of the Drive release (experiments/pretrained_models/<name>)
EXPERIMENTS = {"pipal": "NRIQA_dual_former_PIPAL", "clive_koniq": "NRIQA_dual_former_CLIVE_KonIQ-10k"}
ENTRIES = {"pipal": "dualformer_iqa_pipal", "clive_koniq": "dualformer_iqa_clive_koniq"}  # registry entry prefixes
CRITICS = {"network_d": ("SwinTransformer", SwinDiscriminator, "net_d.pth"),
           "net_spectral_d": ("SpectralDiscriminator2D", SpectralDiscriminator2D, "net_spectral_d.pth")}
# SwinTransformer arguments that change nothing at inference (dropout, stochastic depth, checkpointing, the fused
# window kernel) and those this port builds only at their defaults
INFERENCE_FREE = ("drop_rate", "attn_drop_rate", "drop_path_rate", "use_checkpoint", "fused_window_process")
FIXED = {"qkv_bias": True, "qk_scale": None}


@dataclass(frozen=True)
class SetConfig:
    """The test_iqa.py arguments of one set: its experiment (an EXPERIMENTS key), --img_size, the protocol
    ("patchify" or "random"), --n_ensemble, and --spatial_window_size / --spectral_window_size (0: the options')."""
    experiment: str
    img_size: int
    protocol: str
    n_ensemble: int = 0
    spatial_window: int = 0
    spectral_window: int = 0


SETS = {
    # the PIPAL loop: NRIQA_dual_former_PIPAL, --img_size 192 192, patchify for both critics (stride 64)
    "PIPAL": SetConfig("pipal", 192, "patchify"),
    # the CLIVE / KonIQ-10k loop: NRIQA_dual_former_CLIVE_KonIQ-10k, --img_size 384 384, random for both critics,
    # windows 24 and 6, --n_ensemble 30, which test_iqa.py raises to 40 for KonIQ-10k
    "KonIQ-10k": SetConfig("clive_koniq", 384, "random", 40, 24, 6),
    "LIVE-itW": SetConfig("clive_koniq", 384, "random", 30, 24, 6),
}


def set_config(set_name: str) -> SetConfig:
    if set_name not in SETS:
        raise ValueError(f"DualFormer has no configuration for IQA set `{set_name}` (known: {', '.join(SETS)})")
    return SETS[set_name]


def read_options(folder: Path) -> tuple[dict, Path]:
    """The experiment's options and their file: exactly one *.yml in its folder, as test_iqa.py requires."""
    found = sorted(folder.glob("*.yml"))
    if len(found) != 1:
        raise MetricUnavailable(f"{folder} must hold exactly one options file (*.yml) of the Drive release, "
                                f"found {len(found)}")
    try:
        opt = yaml.safe_load(found[0].read_text())
    except yaml.YAMLError as e:
        raise MetricUnavailable(f"{found[0]} is not readable YAML ({type(e).__name__})") from None
    if not isinstance(opt, dict) or not isinstance(opt.get("network_d"), dict):
        raise MetricUnavailable(f"{found[0]} has no `network_d` options")
    return opt, found[0]


def critic_options(opt: dict, role: str, config: SetConfig, source: Path) -> dict:
    """A critic's constructor arguments: `opt[role]` without `type`, with test_iqa.py's replacements."""
    options = dict(opt[role])
    expected = CRITICS[role][0]
    if options.pop("type", None) != expected:
        raise MetricUnavailable(f"{source}: {role}.type is {opt[role].get('type')!r}; this port builds {expected}")
    window = config.spatial_window if role == "network_d" else config.spectral_window
    if window and "window_size" in options:
        options["window_size"] = window
    options["img_size"] = config.img_size
    for key, value in FIXED.items():
        if options.pop(key, value) != value:
            raise MetricUnavailable(f"{source}: {role}.{key} is {opt[role][key]!r}; this port builds {value!r}")
    if "norm_layer" in options:
        raise MetricUnavailable(f"{source}: {role}.norm_layer is set; this port builds LayerNorm")
    for key in INFERENCE_FREE:
        options.pop(key, None)
    return options


def resize_table(table: torch.Tensor, size: int) -> torch.Tensor:
    """(S1*S1, heads) relative-position bias table -> (size, heads), bicubic on the S1 x S1 grid."""
    s1, s2 = int(table.shape[0] ** 0.5), int(size ** 0.5)
    grid = F.interpolate(table.permute(1, 0).reshape(1, -1, s1, s1), size=(s2, s2), mode="bicubic")
    return grid.view(-1, size).permute(1, 0)


def resize_position_embedding(embed: torch.Tensor, tokens: int) -> torch.Tensor:
    """(1, S1*S1, C) absolute position embedding -> (1, tokens, C), bicubic on the S1 x S1 grid."""
    s1, s2 = int(embed.shape[1] ** 0.5), int(tokens ** 0.5)
    grid = embed.reshape(-1, s1, s1, embed.shape[2]).permute(0, 3, 1, 2)
    return F.interpolate(grid, size=(s2, s2), mode="bicubic").permute(0, 2, 3, 1).flatten(1, 2)


def critic_state(path: Path, net: nn.Module) -> dict[str, torch.Tensor]:
    """net_d.pth / net_spectral_d.pth's `params` as `net`'s state dict, converted as upstream's load_state_dict."""
    state = load_state_dict(path, key="params")[0]
    ours = net.state_dict()
    prefix = "net." if isinstance(net, SpectralDiscriminator2D) else ""
    state = {k if k.startswith(prefix) else prefix + k: v for k, v in state.items()
             if not k.endswith(("relative_position_index", "relative_coords_table", "attn_mask"))}
    for key, value in state.items():
        if key in ours and value.shape != ours[key].shape:
            if key.endswith("relative_position_bias_table") and value.shape[1] == ours[key].shape[1]:
                state[key] = resize_table(value, ours[key].shape[0])
            elif key.endswith("absolute_pos_embed") and value.shape[2] == ours[key].shape[2]:
                state[key] = resize_position_embedding(value, ours[key].shape[1])
    rebuilt = {k: v for k, v in ours.items() if k.endswith(("relative_position_index", "attn_mask"))}
    return {**rebuilt, **state}


class DualFormerIQA(nn.Module):
    """forward(x, set_name): image (1, 3, H, W) RGB in [0, 1] -> 0-dim score with `set_name`'s SETS
    configuration; each set draws its random crops from its own generator, seeded 23 at its first image."""

    def __init__(self, critics: dict[str, tuple[nn.Module, nn.Module | None]]):
        super().__init__()
        self.spatial = nn.ModuleDict({s: pair[0] for s, pair in critics.items()}).eval()
        self.spectral = nn.ModuleDict({s: pair[1] for s, pair in critics.items() if pair[1] is not None}).eval()
        self.rngs: dict[str, np.random.RandomState] = {}

    def crop_mean(self, critic: nn.Module, x: torch.Tensor, config: SetConfig, rng) -> torch.Tensor:
        size = config.img_size
        if config.protocol == "patchify":
            return critic(patches(x, size, STRIDE)).view(1, -1).mean(dim=1)
        score = 0
        for _ in range(config.n_ensemble):
            top = rng.randint(0, x.shape[2] - size)
            left = rng.randint(0, x.shape[3] - size)
            score += critic(x[:, :, top:top + size, left:left + size]).view(1, -1).mean(dim=1)
        return score / config.n_ensemble

    @torch.no_grad()
    def forward(self, x: torch.Tensor, set_name: str) -> torch.Tensor:
        config = set_config(set_name)
        if x.ndim != 4 or x.shape[0] != 1:
            raise ValueError(f"DualFormer scores one (1, 3, H, W) image, got {tuple(x.shape)}")
        h, w = x.shape[-2:]
        smallest = config.img_size + (config.protocol == "random")  # randint(0, 0) has no value to draw
        if min(h, w) < smallest:
            raise MetricUnavailable(f"a {w} x {h} image is smaller than DualFormer's {config.img_size} px "
                                    f"{'crops' if config.protocol == 'random' else 'patches'} on {set_name}")
        x = x.to(next(self.spatial.parameters()).device, torch.float32)
        rng = self.rngs.setdefault(set_name, np.random.RandomState(SEED))
        score = self.crop_mean(self.spatial[set_name], x, config, rng)
        if set_name in self.spectral:
            score = score + self.crop_mean(self.spectral[set_name], x, config, rng)
        return score[0]


def load_critics(folder: Path, entry: str, config: SetConfig) -> tuple[nn.Module, nn.Module | None]:
    """The spatial critic and, when the options have one, the spectral critic of an experiment folder."""
    if not folder.is_dir():
        raise MetricUnavailable(f"weights not available: {folder} (by hand: registry entries {entry}_d and "
                                f"{entry}_spectral_d, with the folder's options file)")
    opt, source = read_options(folder)
    nets = []
    for role, (_, build, file_name) in CRITICS.items():
        if role not in opt:
            nets.append(None)
            continue
        path = folder / "models" / file_name
        require_file(path, f"by hand: registry entry {entry}_{'d' if role == 'network_d' else 'spectral_d'}")
        try:
            net = build(**critic_options(opt, role, config, source))
        except (TypeError, ValueError) as e:
            raise MetricUnavailable(f"{source}: {role} cannot be built for {config.img_size} px inputs: {e}") from None
        nets.append(load_weights(net, path, lambda p, net=net: critic_state(p, net)))
    return nets[0], nets[1]


def load_dualformer(pipal: str | os.PathLike, clive_koniq: str | os.PathLike, device="cpu") -> DualFormerIQA:
    """DualFormer's critics for every SETS entry from the two experiment folders of its Drive release
    (EXPERIMENTS); MetricUnavailable with the reason when a file is missing or does not fit."""
    folders = {"pipal": Path(pipal), "clive_koniq": Path(clive_koniq)}
    built, critics = {}, {}
    for set_name, config in SETS.items():
        key = (config.experiment, config.img_size, config.spatial_window, config.spectral_window)
        if key not in built:
            built[key] = load_critics(folders[config.experiment], ENTRIES[config.experiment], config)
        critics[set_name] = built[key]
    return DualFormerIQA(critics).to(device)
