"""SPSRNet x4, SPSR's generator (Ma et al., CVPR 2020, "Structure-Preserving Super Resolution with Gradient
Guidance"): ESRGAN's RRDB trunk (the SR branch) beside a gradient branch that super-resolves the LR image's gradient
map from the trunk's features after every fifth block; one more RRDB fuses both into the SR image.

The SR branch has BasicSR's RRDBNet names (conv_first, body.N.rdbM, conv_body, conv_up1, conv_up2, conv_hr), the
branches SPSR's own (b_fea_conv, b_block_K, b_concat_K, b_LR_conv, f_block, f_concat). `spsr_from_upstream`
renames the keys of SPSR's released `spsr.pth`, the bare state dict of Maclory/SPSR's
code/models/modules/architecture.py SPSRNet (commit 881e7811; nf 64, nb 23, gc 32 in code/options/test/
test_spsr.json), whose SR branch is the old BasicSR RRDB_Net's `model.N` Sequential.
"""
from __future__ import annotations

import re

import torch
import torch.nn.functional as F
from kornia.models.rrdbnet import RRDB
from torch import nn

from pipeline.archs.rrdbnet import esrgan_to_basicsr, rrdbnet_config_from_state
from pipeline.checkpoint import CheckpointError

# The gradient operator's fixed kernels, stored in upstream's state dict as get_g_nopadding.weight_v / weight_h.
KERNEL_V = torch.tensor([[0.0, -1.0, 0.0], [0.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
KERNEL_H = KERNEL_V.t().contiguous()


def gradient_map(x: torch.Tensor) -> torch.Tensor:
    """Per channel sqrt(dv^2 + dh^2 + 1e-6), dv and dh the central differences with zero padding (SPSR's G(.))."""
    p = F.pad(x, (1, 1, 1, 1))
    dv = p[..., 2:, 1:-1] - p[..., :-2, 1:-1]
    dh = p[..., 1:-1, 2:] - p[..., 1:-1, :-2]
    return torch.sqrt(dv ** 2 + dh ** 2 + 1e-6)


def conv(c_in: int, c_out: int) -> nn.Conv2d:
    return nn.Conv2d(c_in, c_out, 3, 1, 1)


class SPSRNet(nn.Module):
    """x4 SR branch (RRDBs at LR, two nearest x2 + conv upsamplings) and gradient branch, fused at HR."""

    scale = 4

    def __init__(self, num_in_ch: int = 3, num_out_ch: int = 3, num_feat: int = 64, num_block: int = 23,
                 num_grow_ch: int = 32):
        super().__init__()
        nf = num_feat
        if num_block < 20:
            raise ValueError(f"SPSRNet taps its trunk after blocks 5, 10, 15 and 20: {num_block} blocks are too few")
        self.conv_first = conv(num_in_ch, nf)
        self.body = nn.Sequential(*(RRDB(nf, num_grow_ch) for _ in range(num_block)))
        self.conv_body, self.conv_up1, self.conv_up2, self.conv_hr, self.conv_hr2 = (conv(nf, nf) for _ in range(5))
        self.b_fea_conv = conv(num_in_ch, nf)
        for k in range(1, 5):  # the gradient branch's four stages (SPSR's blocks use gc 32 whatever the trunk's)
            setattr(self, f"b_block_{k}", RRDB(2 * nf, 32))
            setattr(self, f"b_concat_{k}", conv(2 * nf, nf))
        self.b_LR_conv, self.b_up1, self.b_up2, self.b_hr, self.b_hr2 = (conv(nf, nf) for _ in range(5))
        self.f_block = RRDB(2 * nf, 32)
        self.f_concat = conv(2 * nf, nf)
        self.f_hr = conv(nf, nf)
        self.conv_last = conv(nf, num_out_ch)

    @staticmethod
    def _up(x: torch.Tensor, layer: nn.Conv2d) -> torch.Tensor:
        return F.leaky_relu(layer(F.interpolate(x, scale_factor=2, mode="nearest")), 0.2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, 3, h, w) -> (B, 3, 4h, 4w)
        grad = gradient_map(x)
        feat = self.conv_first(x)
        taps, out = [], feat
        for i, block in enumerate(self.body):
            out = block(out)
            if i in (4, 9, 14, 19):
                taps.append(out)  # after blocks 5, 10, 15, 20: what the gradient branch reads
        sr = feat + self.conv_body(out)
        sr = self._up(self._up(sr, self.conv_up1), self.conv_up2)
        sr = self.conv_hr2(F.leaky_relu(self.conv_hr(sr), 0.2))  # (B, nf, 4h, 4w)

        b_feat = self.b_fea_conv(grad)
        b = b_feat
        for k, tap in enumerate(taps, start=1):
            b = getattr(self, f"b_concat_{k}")(getattr(self, f"b_block_{k}")(torch.cat([b, tap], 1)))
        b = self.b_LR_conv(b) + b_feat
        b = self._up(self._up(b, self.b_up1), self.b_up2)
        b = self.b_hr2(F.leaky_relu(self.b_hr(b), 0.2))  # (B, nf, 4h, 4w): the SR gradient's features

        out = self.f_concat(self.f_block(torch.cat([b, sr], 1)))
        return self.conv_last(F.leaky_relu(self.f_hr(out), 0.2))


# upstream top-level names -> ours; b_module is (Upsample, conv, LeakyReLU) x 2, conv, LeakyReLU, conv
_RENAMES = {"HR_conv1_new": "conv_hr2", "b_module.1": "b_up1", "b_module.4": "b_up2", "b_module.6": "b_hr",
            "b_module.8": "b_hr2", "f_HR_conv0.0": "f_hr", "f_HR_conv1": "conv_last"}
# in upstream's state dict but not in this network: HR_conv0_new is model.8 again (one module, two paths), conv_w
# maps the branch to SPSR's gradient loss, the kernels are fixed
_DROPPED = ("HR_conv0_new.", "conv_w.", "get_g_nopadding.")


def is_spsr_layout(state: dict[str, torch.Tensor]) -> bool:
    return "b_fea_conv.weight" in state


def spsr_from_upstream(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Rename an upstream SPSRNet state dict to SPSRNet's names; raise CheckpointError when its gradient kernels
    are not SPSR's."""
    for name, kernel in (("weight_v", KERNEL_V), ("weight_h", KERNEL_H)):
        stored = state.get(f"get_g_nopadding.{name}")
        if stored is not None and not torch.equal(stored.reshape(3, 3).float(), kernel):
            raise CheckpointError(f"get_g_nopadding.{name} is not SPSR's fixed gradient kernel")
    out = {}
    for key, value in state.items():
        if key.startswith(_DROPPED):
            continue
        key = re.sub(r"^(b_block_\d|f_block)\.RDB(\d)\.conv(\d)(?:\.0)?\.", r"\1.rdb\2.conv\3.", key)
        head = next((h for h in _RENAMES if key.startswith(h + ".")), None)
        out[_RENAMES[head] + key[len(head):] if head else key] = value
    trunk = {k: v for k, v in out.items() if k.startswith("model.")}
    return {**{k: v for k, v in out.items() if not k.startswith("model.")}, **esrgan_to_basicsr(trunk)}


def spsr_config_from_state(state: dict[str, torch.Tensor]) -> dict[str, int]:
    """SPSRNet constructor arguments read off a renamed state dict's tensor shapes: its trunk's, as RRDBNet's."""
    config = rrdbnet_config_from_state(state)
    if config["num_block"] < 20:
        raise CheckpointError(f"an SPSRNet with {config['num_block']} trunk blocks: its branch needs at least 20")
    return config
