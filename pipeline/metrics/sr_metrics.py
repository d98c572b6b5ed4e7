"""The SR metrics of Tables 1 and 2 for one output image against its HR image, as SR papers compute them.

- PSNR on the Y channel of YCbCr (ITU-R BT.601, MATLAB's rgb2ycbcr: pyiqa's color_space='ycbcr'), on uint8
  images. pyiqa adds eps = 1e-8 to the MSE, so identical images give a finite PSNR_CAP (80 dB), not inf.
- SSIM on Y in the convention `ssim` names (pipeline/metrics/ssim.py: BasicSR's floating-point Y by default, or
  MATLAB's rounded Y).
- LPIPS (AlexNet, v0.1) and DISTS through pyiqa, when their weight files are present (else n/a with the reason).
- NIQE on Y with the repo's pristine model (BasicSR's, = MATLAB's NIQE); lower is better. It is n/a for an image
  under NIQE_MIN_SIZE pixels per side (no block to fit) or a flat one (its feature fit is undefined).

Every metric sees the images with `crop_border` (= the scale) pixels cut from each side, the SR convention.
Table 5's restoration benchmarks score at scale 1 without a crop, PSNR and SSIM on Y or (`channel="rgb"`, GoPro's
protocol) on RGB.
"""
from __future__ import annotations

import os

import numpy as np
import torch

from pipeline.metrics.pyiqa_metrics import (
    NA,
    Y_CHANNEL,
    MetricUnavailable,
    create_metric,
    score_or_reason,
)
from pipeline.metrics.ssim import ssim_rgb, ssim_y
from pipeline.tensor_image import to_tensor

SR_METRICS = ("psnr", "ssim", "lpips", "dists", "niqe")
PSNR_CAP = 80.0  # 10 log10(1 / 1e-8): pyiqa's PSNR of identical images
NIQE_MIN_SIZE = 96  # NIQE's block size: smaller images have no block to fit the model on


class SRMetrics:
    """Callable (sr, hr) -> {metric: float or "n/a"} for H x W x 3 uint8 RGB images of equal size.

    Metrics that cannot run here at all are listed in `na` (metric -> reason) and are "n/a" in every result.
    """

    def __init__(self, crop_border: int, torch_home: str | os.PathLike, niqe_params: str | os.PathLike,
                 device: str | torch.device = "cpu", ssim: str = "basicsr", channel: str = "y"):
        if channel not in ("y", "rgb"):
            raise ValueError(f"PSNR/SSIM channel must be y or rgb, got {channel!r}")
        self.crop_border, self.device, self.ssim, self.channel = crop_border, device, ssim, channel
        self.metrics, self.na = {}, {}
        options = {"psnr": Y_CHANNEL if channel == "y" else {"test_y_channel": False}}
        for name in (m for m in SR_METRICS if m != "ssim"):
            try:
                self.metrics[name] = create_metric(name, torch_home, device, niqe_params, **options.get(name, {}))
            except MetricUnavailable as e:
                self.na[name] = e.reason

    def crop(self, img: np.ndarray) -> np.ndarray:
        c = self.crop_border
        return img[c:-c, c:-c] if c else img

    def niqe(self, x: torch.Tensor) -> float | str:
        if min(x.shape[-2:]) < NIQE_MIN_SIZE:
            return NA
        value = score_or_reason(self.metrics["niqe"], x)
        return NA if isinstance(value, str) else value

    @torch.no_grad()
    def __call__(self, sr: np.ndarray, hr: np.ndarray) -> dict[str, float | str]:
        if sr.shape != hr.shape:
            raise ValueError(f"SR output {sr.shape} and HR image {hr.shape} differ in size")
        x, y = to_tensor(self.crop(sr)).to(self.device), to_tensor(self.crop(hr)).to(self.device)
        out = {}
        for name in SR_METRICS:
            if name == "ssim":
                out[name] = ssim_y(self.crop(sr), self.crop(hr), self.ssim) if self.channel == "y" else \
                    ssim_rgb(self.crop(sr), self.crop(hr))
            elif name not in self.metrics:
                out[name] = NA
            elif name == "niqe":
                out[name] = self.niqe(x)
            else:
                out[name] = float(self.metrics[name](x, y).item())
        return out
