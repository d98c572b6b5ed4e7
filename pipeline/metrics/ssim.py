"""SSIM on the Y channel (Wang et al. 2004: an 11 x 11 Gaussian window of sigma 1.5, K1 = 0.01, K2 = 0.03,
L = 255, the mean over the window positions inside the image), in the two conventions SR papers use:

- `basicsr` (the default): BT.601 Y in floating point, as BasicSR's `calculate_ssim` (basicsr/metrics/psnr_ssim.py,
  `test_y_channel=True`) computes it, the code base of ESRGAN, Real-ESRGAN and most PyTorch SR papers.
- `matlab`: Y rounded to integers first, as MATLAB's rgb2ycbcr returns it for uint8 images (pyiqa's SSIM too).

The two differ in the third decimal on natural images, the decimal SR tables report. `ssim_rgb` is the mean over the
R, G and B channels of uint8 values, as BasicSR's `calculate_ssim` with `test_y_channel=False` (GoPro's protocol).
"""
from __future__ import annotations

import cv2
import numpy as np

CONVENTIONS = ("basicsr", "matlab")
WINDOW, SIGMA = 11, 1.5
C1, C2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2


def y_channel(img: np.ndarray, rounded: bool) -> np.ndarray:
    """BT.601 Y (16-235) of an H x W x 3 uint8 RGB image, as float64; rounded to integers for MATLAB's."""
    rgb = img.astype(np.float64)
    y = 16.0 + (65.481 * rgb[..., 0] + 128.553 * rgb[..., 1] + 24.966 * rgb[..., 2]) / 255.0
    return np.round(y) if rounded else y


def ssim_y(sr: np.ndarray, hr: np.ndarray, convention: str = "basicsr") -> float:
    """SSIM of two H x W x 3 uint8 RGB images (already border-cropped) on Y, in `convention`."""
    if convention not in CONVENTIONS:
        raise ValueError(f"SSIM convention must be one of {CONVENTIONS}, got {convention!r}")
    return _ssim(*(y_channel(img, convention == "matlab") for img in (sr, hr)))


def ssim_rgb(sr: np.ndarray, hr: np.ndarray) -> float:
    """SSIM of two H x W x 3 uint8 RGB images (already border-cropped): the mean of the three channels' SSIM."""
    return float(np.mean([_ssim(sr[..., c].astype(np.float64), hr[..., c].astype(np.float64)) for c in range(3)]))


def _ssim(x: np.ndarray, y: np.ndarray) -> float:
    """SSIM of two H x W float64 planes on 0-255."""
    kernel = cv2.getGaussianKernel(WINDOW, SIGMA)
    window = kernel @ kernel.T
    h = WINDOW // 2

    def mean(a: np.ndarray) -> np.ndarray:  # the window's weighted mean at each position inside the image
        return cv2.filter2D(a, -1, window)[h:-h, h:-h]

    mu_x, mu_y = mean(x), mean(y)
    var_x, var_y, cov = mean(x * x) - mu_x ** 2, mean(y * y) - mu_y ** 2, mean(x * y) - mu_x * mu_y
    ssim_map = ((2 * mu_x * mu_y + C1) * (2 * cov + C2)) / ((mu_x ** 2 + mu_y ** 2 + C1) * (var_x + var_y + C2))
    return float(ssim_map.mean())
