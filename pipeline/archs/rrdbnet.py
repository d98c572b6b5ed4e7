"""RRDBNet x4, the ESRGAN generator (Wang et al., ECCVW 2018), with BasicSR's module names.

Public checkpoints come in three key layouts: BasicSR's (`body.N.rdb1.conv1`, `conv_body`, `conv_up1`, `conv_up2`,
`conv_hr`), the ESRGAN/KAIR names (`RRDB_trunk.N.RDB1.conv1`, `trunk_conv`, `upconv1`, `upconv2`, `HRconv`) and
the old BasicSR `RRDB_Net`'s one flat nn.Sequential (`model.0`, `model.1.sub.N.RDB1.conv1.0`, `model.1.sub.<nb>`,
`model.3`, `model.6`, `model.8`, `model.10`: the ESRGAN repository's `*_old_arch.pth`, and WGSR's and SPSR's
code bases); `esrgan_to_basicsr` reads both others, `basicsr_to_esrgan` writes the ESRGAN/KAIR names.
"""
from __future__ import annotations

import re

import torch
from kornia.models.rrdbnet import RRDBNet as KorniaRRDBNet

from pipeline.checkpoint import CheckpointError

# old ESRGAN top-level names -> BasicSR names (conv_first and conv_last are the same in both)
_TOP_LEVEL_RENAMES = {"trunk_conv": "conv_body", "upconv1": "conv_up1", "upconv2": "conv_up2", "HRconv": "conv_hr"}


class RRDBNet(KorniaRRDBNet):
    """x4 RRDBNet: RRDB trunk at LR, then two nearest-neighbour x2 upsamplings each followed by a conv.

    kornia's port of BasicSR's network (same module names, same arithmetic and initialisation), with the paper's
    16.7 M-parameter sizes as defaults. Input and output are RGB in [0, 1] (no mean subtraction, as in ESRGAN).
    """

    def __init__(self, num_in_ch: int = 3, num_out_ch: int = 3, num_feat: int = 64, num_block: int = 23,
                 num_grow_ch: int = 32):
        super().__init__(num_in_ch, num_out_ch, scale=4, num_feat=num_feat, num_block=num_block,
                         num_grow_ch=num_grow_ch)


# the old RRDB_Net's nn.Sequential: fea_conv, ShortcutBlock(RRDBs + LR_conv), (Upsample, conv, LeakyReLU) x 2,
# HR_conv0 (conv, LeakyReLU), HR_conv1 -> the indices of its convolutions
_OLD_ARCH_RENAMES = {"0": "conv_first", "3": "conv_up1", "6": "conv_up2", "8": "conv_hr", "10": "conv_last"}


def is_esrgan_layout(state: dict[str, torch.Tensor]) -> bool:
    """True for a state dict with the ESRGAN/KAIR key names or the old RRDB_Net's."""
    return any(k.startswith(("RRDB_trunk.", "model.1.sub.")) for k in state)


def esrgan_to_basicsr(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Rename ESRGAN/KAIR keys (`RRDB_trunk.0.RDB1.conv1.weight`, `HRconv.bias`, ...) or the old RRDB_Net's
    (`model.1.sub.0.RDB1.conv1.0.weight`, `model.8.bias`, ...) to BasicSR's."""
    trunk = {int(m.group(1)) for k in state if (m := re.match(r"model\.1\.sub\.(\d+)\.RDB", k))}
    lr_conv = f"model.1.sub.{max(trunk) + 1}." if trunk else None  # LR_conv follows the RRDBs in the shortcut

    def rename(key: str) -> str:
        if lr_conv and key.startswith(lr_conv):
            return "conv_body." + key[len(lr_conv):]
        key = re.sub(r"^model\.1\.sub\.(\d+)\.RDB(\d)\.conv(\d)(?:\.0)?\.", r"body.\1.rdb\2.conv\3.", key)
        key = re.sub(r"^model\.(\d+)\.", lambda m: f"{_OLD_ARCH_RENAMES.get(m.group(1), m.group(0)[:-1])}.", key)
        key = re.sub(r"^RRDB_trunk\.(\d+)\.RDB(\d)\.", r"body.\1.rdb\2.", key)
        head, _, rest = key.partition(".")
        return f"{_TOP_LEVEL_RENAMES[head]}.{rest}" if head in _TOP_LEVEL_RENAMES else key
    return {rename(k): v for k, v in state.items()}


def basicsr_to_esrgan(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Rename BasicSR keys (`body.0.rdb1.conv1.weight`, `conv_hr.bias`, ...) to the original ESRGAN/KAIR ones."""
    to_esrgan = {new: old for old, new in _TOP_LEVEL_RENAMES.items()}

    def rename(key: str) -> str:
        key = re.sub(r"^body\.(\d+)\.rdb(\d)\.", r"RRDB_trunk.\1.RDB\2.", key)
        head, _, rest = key.partition(".")
        return f"{to_esrgan[head]}.{rest}" if head in to_esrgan else key
    return {rename(k): v for k, v in state.items()}


def rrdbnet_config_from_state(state: dict[str, torch.Tensor]) -> dict[str, int]:
    """RRDBNet constructor arguments read off the tensor shapes of a BasicSR-layout state dict (x4 only)."""
    needed = ("conv_first.weight", "conv_last.weight", "body.0.rdb1.conv1.weight")
    absent = [k for k in needed if k not in state]
    if absent:
        raise CheckpointError(f"not an RRDBNet state dict: missing keys {', '.join(absent)}")
    num_in_ch, num_out_ch = state["conv_first.weight"].shape[1], state["conv_last.weight"].shape[0]
    # BasicSR's x2 and x1 RRDBNets pixel-unshuffle the input (by 2 or 4) before conv_first; their state dicts differ
    # from an x4 net's only in conv_first's input channels
    scale = {4 * num_out_ch: 2, 16 * num_out_ch: 1}.get(num_in_ch, 4)
    if scale != 4:
        raise CheckpointError(f"an x{scale} RRDBNet checkpoint (conv_first takes {num_in_ch} pixel-unshuffled "
                              f"channels): scale x{scale} is not supported, only x4")
    blocks = {int(m.group(1)) for k in state if (m := re.match(r"body\.(\d+)\.", k))}
    return {
        "num_in_ch": num_in_ch,
        "num_out_ch": num_out_ch,
        "num_feat": state["conv_first.weight"].shape[0],
        "num_block": max(blocks) + 1,
        "num_grow_ch": state["body.0.rdb1.conv1.weight"].shape[0],
    }
