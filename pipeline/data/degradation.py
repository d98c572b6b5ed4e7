"""Real-ESRGAN's second-order degradation (Wang et al., ICCVW 2021), batched on any device, and its single ops.

The SFD paper trains its real-world model and the SFD-IQA weights on LR images made by this pipeline with
Real-ESRGAN's official x4plus parameters (the `degradation` section of params.yaml):

    HR -> USM sharpening -> [blur -> random resize -> Gaussian or Poisson noise -> JPEG]           (first order)
       -> [blur (prob.) -> random resize -> noise -> {resize to H/4 + sinc, JPEG} in random order]  (second order)
       -> rounding to 8 bits

Every random parameter (kernels, scales, modes, strengths, qualities, orders) is drawn on the CPU from the
`torch.Generator` the caller passes, so a seed gives the same parameters on any device. The noise fields are drawn
on the image's device, from a generator seeded by that CPU generator: drawing a batch of full-size fields (and
Poisson samples) on the CPU and copying them over took longer than the rest of a GPU training step. A seed thus
gives the same LR images on one device type; a CPU and a GPU run differ in their noise.
Per-sample: blur kernels, noise strength and colour/grey choice, JPEG quality. Per-batch, as in Real-ESRGAN:
resize scale and mode, noise type, whether the second blur runs, the order of the last step. `PairPool` then
mixes samples across batches to break that per-batch correlation.
"""
import math

import kornia
import torch
import torch.nn.functional as F

from pipeline.data.kernels import KERNEL_TYPES, bernoulli, choice, random_blur_kernel, random_final_sinc_kernel, uniform

RESIZE_MODES = ("area", "bilinear", "bicubic")
SINC_THEN_JPEG_PROB = 0.5  # a constant in Real-ESRGAN: the two orders of the last step are equally likely


# ----------------------------------------------------------------------------------------------------------------
# Single ops: batched, on [0, 1] float images of shape (B, 3, H, W); a per-sample argument is a float for the whole
# batch or a tensor of B values.
# ----------------------------------------------------------------------------------------------------------------

def _per_sample(value, img: torch.Tensor) -> torch.Tensor:
    """A float, bool or B-vector as a float tensor of shape (B,) on img's device."""
    value = torch.as_tensor(value, dtype=img.dtype).to(img.device).reshape(-1)
    return value.expand(img.shape[0])


def gaussian_blur(img: torch.Tensor, sigma) -> torch.Tensor:
    """Isotropic Gaussian blur with standard deviation `sigma` px (per sample); kernel size 2*ceil(3*sigma)+1."""
    sigma = _per_sample(sigma, img)
    size = 2 * math.ceil(3 * sigma.max().item()) + 1
    return kornia.filters.gaussian_blur2d(img, size, sigma[:, None].expand(-1, 2), border_type="reflect")


def device_generator(generator: torch.Generator, device: torch.device) -> torch.Generator:
    """A generator on `device` seeded from the CPU `generator` (one draw from it), for noise fields."""
    seed = int(torch.randint(2**62, (1,), generator=generator))
    return torch.Generator(device=device).manual_seed(seed)


def add_gaussian_noise(img: torch.Tensor, sigma, gray, generator: torch.Generator) -> torch.Tensor:
    """Add zero-mean Gaussian noise of standard deviation `sigma` on the 0-255 scale, the same field on all three
    channels where `gray` is true; clipped to [0, 1]. The fields are drawn on img's device (device_generator)."""
    b, _, h, w = img.shape
    field = device_generator(generator, img.device)
    color = torch.randn(img.shape, generator=field, device=img.device, dtype=img.dtype)
    mono = torch.randn((b, 1, h, w), generator=field, device=img.device, dtype=img.dtype)
    gray = _per_sample(gray, img).view(b, 1, 1, 1)
    noise = color * (1 - gray) + mono * gray
    return (img + noise * _per_sample(sigma, img).view(b, 1, 1, 1) / 255.0).clamp(0, 1)


def _poisson_noise(img: torch.Tensor, field: torch.Generator) -> torch.Tensor:
    """Signal-dependent shot noise: the 8-bit image is scaled by a photon count per sample (its number of distinct
    levels rounded up to a power of two, as Real-ESRGAN does), Poisson-sampled on img's device and scaled back."""
    codes = (img * 255.0).round().clamp(0, 255)
    quantized = codes / 255.0
    b = img.shape[0]
    present = torch.zeros(b, 256, device=img.device).scatter_(1, codes.long().view(b, -1), 1.0)
    levels = torch.exp2(torch.ceil(torch.log2(present.sum(1)))).to(img.dtype).view(b, 1, 1, 1)
    return torch.poisson(quantized * levels, generator=field) / levels - quantized


def add_poisson_noise(img: torch.Tensor, scale, gray, generator: torch.Generator) -> torch.Tensor:
    """Add Poisson noise multiplied by `scale`; where `gray` is true the noise comes from the luma image and is the
    same on all channels. Clipped to [0, 1]."""
    b = img.shape[0]
    field = device_generator(generator, img.device)
    color = _poisson_noise(img, field)
    mono = _poisson_noise(kornia.color.rgb_to_grayscale(img), field)
    gray = _per_sample(gray, img).view(b, 1, 1, 1)
    noise = color * (1 - gray) + mono * gray
    return (img + noise * _per_sample(scale, img).view(b, 1, 1, 1)).clamp(0, 1)


def jpeg(img: torch.Tensor, quality) -> torch.Tensor:
    """JPEG compression and decompression at `quality` (0-100, per sample) with kornia's differentiable codec."""
    # Real-ESRGAN clamps before coding: out-of-range values give strong artefacts in the codec.
    out = kornia.enhance.jpeg_codec_differentiable(img.clamp(0, 1), _per_sample(quality, img).contiguous())
    return out.clamp(0, 1)


def usm_sharp(img: torch.Tensor, weight: float = 0.5, threshold: float = 10, radius: int = 50) -> torch.Tensor:
    """Real-ESRGAN's unsharp mask: img + weight * (img - blur(img)), applied only where the residual exceeds
    `threshold` (on 0-255), through a soft mask (the blurred hard mask) so that flat regions stay untouched.
    The blur is OpenCV's default Gaussian for an odd size `radius` (or radius + 1): sigma = 0.3 (size/2 - 1.5) + 0.8.
    """
    size = radius + 1 if radius % 2 == 0 else radius
    sigma = 0.3 * ((size - 1) * 0.5 - 1) + 0.8
    kernel = kornia.filters.get_gaussian_kernel1d(size, sigma, device=img.device, dtype=img.dtype)
    residual = img - kornia.filters.filter2d_separable(img, kernel, kernel, border_type="reflect")
    mask = (residual.abs() * 255 > threshold).to(img.dtype)
    soft_mask = kornia.filters.filter2d_separable(mask, kernel, kernel, border_type="reflect")
    sharp = (img + weight * residual).clamp(0, 1)
    return soft_mask * sharp + (1 - soft_mask) * img


# ----------------------------------------------------------------------------------------------------------------
# Config: the `degradation` section of params.yaml
# ----------------------------------------------------------------------------------------------------------------

def _check_number(key: str, value, low: float = -math.inf, high: float = math.inf) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high:
        raise ValueError(f"{key}: expected a number in [{low}, {high}], got {value!r}")


def _check_range(key: str, value, low: float = -math.inf, high: float = math.inf, around_one: bool = False) -> None:
    if not isinstance(value, (list, tuple)) or len(value) != 2:
        raise ValueError(f"{key}: expected [low, high], got {value!r}")
    for v in value:
        _check_number(key, v, low, high)
    if value[0] > value[1]:
        raise ValueError(f"{key}: low {value[0]} is above high {value[1]}")
    # Resize scales and kernel shape parameters are drawn below or above 1, so 1 must lie in the range.
    if around_one and not value[0] <= 1 <= value[1]:
        raise ValueError(f"{key}: the range must contain 1, got {value!r}")


def _check_distribution(key: str, value, length: int) -> None:
    if not isinstance(value, (list, tuple)) or len(value) != length:
        raise ValueError(f"{key}: expected {length} probabilities, got {value!r}")
    for v in value:
        _check_number(key, v, 0.0, 1.0)
    if abs(sum(value) - 1.0) > 1e-6:
        raise ValueError(f"{key}: probabilities sum to {sum(value)}, not 1")


def _check_keys(key: str, section, expected: set[str]) -> None:
    if not isinstance(section, dict):
        raise ValueError(f"{key}: expected a mapping, got {section!r}")
    missing, unknown = sorted(expected - section.keys()), sorted(section.keys() - expected)
    if missing:
        raise ValueError(f"{key}.{missing[0]}: missing")
    if unknown:
        raise ValueError(f"{key}.{unknown[0]}: unknown key")


def _check_positive_int(key: str, value) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{key}: expected a positive integer, got {value!r}")


STAGE_KEYS = {"blur_prob", "kernel_list", "kernel_prob", "sinc_prob", "blur_sigma", "betag_range", "betap_range",
              "resize_prob", "resize_range", "gaussian_noise_prob", "noise_range", "poisson_scale_range",
              "gray_noise_prob", "jpeg_range"}
CONFIG_KEYS = {"first", "second", "final_sinc_prob", "usm", "pool_size"}
USM_KEYS = {"weight", "threshold", "radius"}


def validate_config(cfg: dict, key: str = "degradation") -> dict:
    """Check the `degradation` section of params.yaml; raise ValueError naming the first bad key. Returns cfg."""
    _check_keys(key, cfg, CONFIG_KEYS)
    for order in ("first", "second"):
        stage, prefix = cfg[order], f"{key}.{order}"
        _check_keys(prefix, stage, STAGE_KEYS)
        kinds = stage["kernel_list"]
        if not isinstance(kinds, (list, tuple)) or not kinds or any(k not in KERNEL_TYPES for k in kinds):
            raise ValueError(f"{prefix}.kernel_list: expected a non-empty list of {KERNEL_TYPES}, got {kinds!r}")
        _check_distribution(f"{prefix}.kernel_prob", stage["kernel_prob"], len(kinds))
        for name in ("blur_prob", "sinc_prob", "gaussian_noise_prob", "gray_noise_prob"):
            _check_number(f"{prefix}.{name}", stage[name], 0.0, 1.0)
        _check_range(f"{prefix}.blur_sigma", stage["blur_sigma"], low=1e-3)
        _check_range(f"{prefix}.betag_range", stage["betag_range"], low=1e-3, around_one=True)
        _check_range(f"{prefix}.betap_range", stage["betap_range"], low=1e-3, around_one=True)
        _check_distribution(f"{prefix}.resize_prob", stage["resize_prob"], 3)
        _check_range(f"{prefix}.resize_range", stage["resize_range"], low=1e-3, around_one=True)
        _check_range(f"{prefix}.noise_range", stage["noise_range"], low=0.0)
        _check_range(f"{prefix}.poisson_scale_range", stage["poisson_scale_range"], low=0.0)
        _check_range(f"{prefix}.jpeg_range", stage["jpeg_range"], low=1.0, high=100.0)
    _check_number(f"{key}.final_sinc_prob", cfg["final_sinc_prob"], 0.0, 1.0)
    _check_keys(f"{key}.usm", cfg["usm"], USM_KEYS)
    _check_number(f"{key}.usm.weight", cfg["usm"]["weight"], 0.0)
    _check_number(f"{key}.usm.threshold", cfg["usm"]["threshold"], 0.0)
    _check_positive_int(f"{key}.usm.radius", cfg["usm"]["radius"])
    _check_positive_int(f"{key}.pool_size", cfg["pool_size"])
    return cfg


# ----------------------------------------------------------------------------------------------------------------
# The pipeline
# ----------------------------------------------------------------------------------------------------------------

def _random_scale(stage: dict, generator: torch.Generator) -> float:
    """Resize factor: up in [1, high], down in [low, 1] or keep, with stage['resize_prob']."""
    direction = choice(generator, stage["resize_prob"])
    low, high = stage["resize_range"]
    return (uniform(generator, 1.0, high), uniform(generator, low, 1.0), 1.0)[direction]


def _random_mode(generator: torch.Generator) -> str:
    return RESIZE_MODES[choice(generator, [1.0] * len(RESIZE_MODES))]


def _uniform_batch(generator: torch.Generator, b: int, value_range) -> torch.Tensor:
    low, high = value_range
    return low + (high - low) * torch.rand(b, generator=generator, dtype=torch.float64)


def _random_blur(img: torch.Tensor, stage: dict, generator: torch.Generator) -> torch.Tensor:
    if not bernoulli(generator, stage["blur_prob"]):
        return img
    kernels = torch.stack([random_blur_kernel(stage, generator) for _ in range(img.shape[0])])
    return kornia.filters.filter2d(img, kernels.to(img), border_type="reflect")


def _random_noise(img: torch.Tensor, stage: dict, generator: torch.Generator) -> torch.Tensor:
    b = img.shape[0]
    gray = torch.rand(b, generator=generator, dtype=torch.float64) < stage["gray_noise_prob"]
    if bernoulli(generator, stage["gaussian_noise_prob"]):
        return add_gaussian_noise(img, _uniform_batch(generator, b, stage["noise_range"]), gray, generator)
    return add_poisson_noise(img, _uniform_batch(generator, b, stage["poisson_scale_range"]), gray, generator)


def _random_jpeg(img: torch.Tensor, stage: dict, generator: torch.Generator) -> torch.Tensor:
    return jpeg(img, _uniform_batch(generator, img.shape[0], stage["jpeg_range"]))


class RealESRGANDegradation(torch.nn.Module):
    """HR (B, 3, H, W) in [0, 1] -> LR (B, 3, H // scale, W // scale) on 8-bit levels, Real-ESRGAN's second-order
    model (mod-crop the HR to a multiple of `scale` first when the pair must align).

    `sharpen(hr)` gives the USM-sharpened GT that Real-ESRGAN uses as the L1 and perceptual target; the
    degradation itself starts from that sharpened image too, as Real-ESRGAN's code does: `forward(hr)` is
    `degrade(sharpen(hr))`, and `degrade` runs the two orders on the image as given.
    """

    def __init__(self, cfg: dict, scale: int = 4):
        super().__init__()
        self.cfg = validate_config(cfg)
        self.scale = scale

    def min_size(self) -> int:
        """Smallest HR side the pipeline accepts: reflect padding needs every image it blurs to be larger than
        half the kernel (21 px kernels; the USM's kernel on the HR image)."""
        half = max(10, self.cfg["usm"]["radius"] // 2)
        return max(half + 1, math.ceil((10 + 1) / self.cfg["first"]["resize_range"][0]), (10 + 1) * self.scale)

    def sharpen(self, hr: torch.Tensor) -> torch.Tensor:
        return usm_sharp(hr, **self.cfg["usm"])

    @torch.no_grad()
    def forward(self, hr: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        return self.degrade(self.sharpen(hr), generator)

    @torch.no_grad()
    def degrade(self, hr: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """The first and second order on `hr` as it is (no sharpening)."""
        if generator.device.type != "cpu":
            raise ValueError("pass a CPU torch.Generator: parameters are drawn on the CPU for device independence")
        b, _, h, w = hr.shape
        if min(h, w) < self.min_size():
            raise ValueError(f"HR size {h}x{w}: both sides must be >= {self.min_size()}")
        first, second = self.cfg["first"], self.cfg["second"]
        lr_size = (h // self.scale, w // self.scale)

        out = _random_blur(hr, first, generator)
        out = F.interpolate(out, scale_factor=_random_scale(first, generator), mode=_random_mode(generator))
        out = _random_noise(out, first, generator)
        out = _random_jpeg(out, first, generator)

        out = _random_blur(out, second, generator)
        scale = _random_scale(second, generator)
        out = F.interpolate(out, size=(int(h / self.scale * scale), int(w / self.scale * scale)),
                            mode=_random_mode(generator))
        out = _random_noise(out, second, generator)
        sinc = torch.stack([random_final_sinc_kernel(self.cfg["final_sinc_prob"], generator) for _ in range(b)])
        if bernoulli(generator, SINC_THEN_JPEG_PROB):
            out = F.interpolate(out, size=lr_size, mode=_random_mode(generator))
            out = kornia.filters.filter2d(out, sinc.to(out), border_type="reflect")
            out = _random_jpeg(out, second, generator)
        else:
            out = _random_jpeg(out, second, generator)
            out = F.interpolate(out, size=lr_size, mode=_random_mode(generator))
            out = kornia.filters.filter2d(out, sinc.to(out), border_type="reflect")
        return (out * 255.0).round().clamp(0, 255) / 255.0


class PairPool:
    """Real-ESRGAN's training-pair pool: a queue of `size` (LR, HR) pairs that mixes samples across batches, since
    within one batch the resize scale, noise type and step order are shared.

    While the pool fills, a batch passes through unchanged and is stored; once full, each call shuffles the pool,
    returns its first B pairs and puts the incoming batch in their place. `size` must be a multiple of B.
    """

    def __init__(self, size: int):
        self.size = size
        self.lr: torch.Tensor | None = None
        self.hr: torch.Tensor | None = None
        self.shapes: tuple[torch.Size, torch.Size] | None = None
        self.filled = 0

    @torch.no_grad()
    def __call__(self, lr: torch.Tensor, hr: torch.Tensor, generator: torch.Generator):
        b = lr.shape[0]
        if self.lr is None:
            if self.size % b:
                raise ValueError(f"pool size {self.size} is not a multiple of the batch size {b}")
            self.lr = lr.new_zeros((self.size, *lr.shape[1:]))
            self.hr = hr.new_zeros((self.size, *hr.shape[1:]))
            self.shapes = (lr.shape[1:], hr.shape[1:])
        if (lr.shape[1:], hr.shape[1:]) != self.shapes:
            raise ValueError(f"batch shapes {tuple(lr.shape)}, {tuple(hr.shape)} differ from the first batch's")
        self.lr, self.hr = self.lr.to(lr.device), self.hr.to(hr.device)  # a resumed pool is loaded on the CPU
        if self.filled < self.size:
            self.lr[self.filled:self.filled + b] = lr
            self.hr[self.filled:self.filled + b] = hr
            self.filled += b
            return lr, hr
        order = torch.randperm(self.size, generator=generator).to(self.lr.device)
        self.lr, self.hr = self.lr[order], self.hr[order]
        out = self.lr[:b].clone(), self.hr[:b].clone()
        self.lr[:b], self.hr[:b] = lr, hr
        return out

    def state_dict(self) -> dict:
        """The pool's contents, so a resumed run mixes batches exactly as an uninterrupted one."""
        return {"filled": self.filled, **({"lr": self.lr.cpu(), "hr": self.hr.cpu()} if self.lr is not None else {})}

    def load_state_dict(self, state: dict) -> None:
        self.filled = state["filled"]
        if "lr" in state:
            self.lr, self.hr = state["lr"].clone(), state["hr"].clone()
            self.shapes = (self.lr.shape[1:], self.hr.shape[1:])
