"""Conversions between H x W x 3 uint8 RGB arrays and 1 x 3 x H x W float tensors in [0, 1]."""
from __future__ import annotations

import numpy as np
import torch


def to_tensor(img: np.ndarray, device: str | torch.device = "cpu") -> torch.Tensor:
    """H x W x 3 uint8 -> 1 x 3 x H x W float in [0, 1] on `device`."""
    return torch.from_numpy(img).permute(2, 0, 1)[None].float().div(255).to(device)


def to_uint8(t: torch.Tensor) -> np.ndarray:
    """1 x 3 x H x W float in [0, 1] -> H x W x 3 uint8, clamped and rounded as MATLAB's im2uint8."""
    return t[0].clamp(0, 1).mul(255).round().byte().permute(1, 2, 0).cpu().numpy()
