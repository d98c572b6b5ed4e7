"""Blur kernels of Real-ESRGAN's degradation (Wang et al., ICCVW 2021: Sec. 3.1 blur kernels, Sec. 3.3 sinc
filters): the kernel formulas and their random sampling.

Kernels are built in float64 on the CPU from parameters drawn from an explicit `torch.Generator`, so a seed gives
the same kernels on every device. Every sampled kernel is zero-padded to MAX_KERNEL_SIZE so that a batch of
kernels of different sizes stacks into one (B, 21, 21) tensor for `kornia.filters.filter2d`.
"""
import math

import torch

KERNEL_TYPES = ("iso", "aniso", "generalized_iso", "generalized_aniso", "plateau_iso", "plateau_aniso")
# Real-ESRGAN draws the kernel size uniformly from the odd sizes 7..21; these and the sinc cut-off ranges below are
# constants in its code, not options (its sinc cut-offs are tuned for exactly this size range).
KERNEL_SIZES = tuple(range(7, 22, 2))
MAX_KERNEL_SIZE = KERNEL_SIZES[-1]
SINC_CUTOFF_SMALL = (math.pi / 3, math.pi)  # blur-stage sinc kernels smaller than 13
SINC_CUTOFF_LARGE = (math.pi / 5, math.pi)  # blur-stage sinc kernels of size 13 and more
FINAL_SINC_CUTOFF = (math.pi / 3, math.pi)
ROTATION_RANGE = (-math.pi, math.pi)


def uniform(generator: torch.Generator, low: float, high: float) -> float:
    """One float drawn uniformly from [low, high)."""
    return low + (high - low) * torch.rand((), generator=generator, dtype=torch.float64).item()


def bernoulli(generator: torch.Generator, p: float) -> bool:
    return torch.rand((), generator=generator, dtype=torch.float64).item() < p


def choice(generator: torch.Generator, probs) -> int:
    """Index drawn with the given probabilities."""
    return int(torch.multinomial(torch.tensor(probs, dtype=torch.float64), 1, generator=generator))


def _mahalanobis_sq(size: int, sigma_x: float, sigma_y: float, theta: float) -> torch.Tensor:
    """Squared Mahalanobis distance of each kernel tap from the centre, for the covariance with standard
    deviations sigma_x, sigma_y along axes rotated by theta (radians). x runs along columns, y along rows."""
    ax = torch.arange(size, dtype=torch.float64) - size // 2
    yy, xx = torch.meshgrid(ax, ax, indexing="ij")
    grid = torch.stack([xx, yy], dim=-1)
    c, s = math.cos(theta), math.sin(theta)
    rotation = torch.tensor([[c, -s], [s, c]], dtype=torch.float64)
    covariance = rotation @ torch.diag(torch.tensor([sigma_x**2, sigma_y**2], dtype=torch.float64)) @ rotation.T
    return torch.einsum("...i,ij,...j->...", grid, torch.linalg.inv(covariance), grid)


def gaussian_kernel(size: int, sigma_x: float, sigma_y: float, theta: float) -> torch.Tensor:
    """Bivariate Gaussian, exp(-d/2) with d the squared Mahalanobis distance; normalised to sum 1."""
    kernel = torch.exp(-0.5 * _mahalanobis_sq(size, sigma_x, sigma_y, theta))
    return kernel / kernel.sum()


def generalized_gaussian_kernel(size: int, sigma_x: float, sigma_y: float, theta: float, beta: float) -> torch.Tensor:
    """Generalised Gaussian, exp(-d^beta / 2): beta < 1 gives heavier tails, beta > 1 a flatter top."""
    kernel = torch.exp(-0.5 * _mahalanobis_sq(size, sigma_x, sigma_y, theta).pow(beta))
    return kernel / kernel.sum()


def plateau_kernel(size: int, sigma_x: float, sigma_y: float, theta: float, beta: float) -> torch.Tensor:
    """Plateau-shaped kernel, 1 / (d^beta + 1)."""
    kernel = 1.0 / (_mahalanobis_sq(size, sigma_x, sigma_y, theta).pow(beta) + 1.0)
    return kernel / kernel.sum()


def sinc_kernel(size: int, cutoff: float) -> torch.Tensor:
    """Circular lowpass (2-D sinc) kernel with angular cut-off frequency `cutoff` in (0, pi]: the ideal lowpass
    response cutoff * J1(cutoff * r) / (2 pi r), with its limit cutoff^2 / (4 pi) at r = 0; normalised to sum 1."""
    ax = torch.arange(size, dtype=torch.float64) - size // 2
    yy, xx = torch.meshgrid(ax, ax, indexing="ij")
    r = torch.sqrt(xx**2 + yy**2)
    safe_r = torch.where(r > 0, r, torch.ones_like(r))
    kernel = torch.where(
        r > 0, cutoff * torch.special.bessel_j1(cutoff * safe_r) / (2 * math.pi * safe_r), cutoff**2 / (4 * math.pi)
    )
    return kernel / kernel.sum()


def pad_kernel(kernel: torch.Tensor, size: int = MAX_KERNEL_SIZE) -> torch.Tensor:
    """Zero-pad an odd square kernel to size x size, keeping it centred."""
    pad = (size - kernel.shape[-1]) // 2
    return torch.nn.functional.pad(kernel, (pad, pad, pad, pad))


def _random_beta(generator: torch.Generator, beta_range) -> float:
    # Real-ESRGAN draws the shape parameter below or above 1 with equal chance.
    if bernoulli(generator, 0.5):
        return uniform(generator, beta_range[0], 1.0)
    return uniform(generator, 1.0, beta_range[1])


def random_mixed_kernel(size: int, stage: dict, generator: torch.Generator) -> torch.Tensor:
    """One kernel of a type drawn from stage['kernel_list'] with stage['kernel_prob'], its standard deviations
    from stage['blur_sigma'] and its shape parameter from stage['betag_range'] / stage['betap_range']."""
    kind = stage["kernel_list"][choice(generator, stage["kernel_prob"])]
    sigma_x = uniform(generator, *stage["blur_sigma"])
    if kind.endswith("aniso"):
        sigma_y = uniform(generator, *stage["blur_sigma"])
        theta = uniform(generator, *ROTATION_RANGE)
    else:
        sigma_y, theta = sigma_x, 0.0
    if kind.startswith("generalized"):
        return generalized_gaussian_kernel(size, sigma_x, sigma_y, theta, _random_beta(generator, stage["betag_range"]))
    if kind.startswith("plateau"):
        return plateau_kernel(size, sigma_x, sigma_y, theta, _random_beta(generator, stage["betap_range"]))
    return gaussian_kernel(size, sigma_x, sigma_y, theta)


def random_blur_kernel(stage: dict, generator: torch.Generator) -> torch.Tensor:
    """A blur-stage kernel: random odd size 7..21; a sinc kernel with stage['sinc_prob'], else a mixed kernel.
    Returned as float32, zero-padded to 21 x 21."""
    size = KERNEL_SIZES[choice(generator, [1.0] * len(KERNEL_SIZES))]
    if bernoulli(generator, stage["sinc_prob"]):
        cutoff_range = SINC_CUTOFF_SMALL if size < 13 else SINC_CUTOFF_LARGE
        kernel = sinc_kernel(size, uniform(generator, *cutoff_range))
    else:
        kernel = random_mixed_kernel(size, stage, generator)
    return pad_kernel(kernel).float()


def random_final_sinc_kernel(prob: float, generator: torch.Generator) -> torch.Tensor:
    """The last filter of the second order: with probability `prob` a sinc kernel of random size and cut-off,
    else the identity (a unit pulse). float32, 21 x 21."""
    if bernoulli(generator, prob):
        size = KERNEL_SIZES[choice(generator, [1.0] * len(KERNEL_SIZES))]
        return pad_kernel(sinc_kernel(size, uniform(generator, *FINAL_SINC_CUTOFF))).float()
    pulse = torch.zeros(MAX_KERNEL_SIZE, MAX_KERNEL_SIZE)
    pulse[MAX_KERNEL_SIZE // 2, MAX_KERNEL_SIZE // 2] = 1.0
    return pulse
