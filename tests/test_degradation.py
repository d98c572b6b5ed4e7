"""Real-ESRGAN degradation: kernels, single ops, the full second-order pipeline, the pair pool, config checks."""
import copy
import math
from pathlib import Path

import pytest
import torch
import yaml
from kornia.filters import filter2d

from pipeline.data import kernels
from pipeline.data.degradation import (PairPool, RealESRGANDegradation, add_gaussian_noise, add_poisson_noise,
                                       gaussian_blur, jpeg, usm_sharp, validate_config)

KINDS = ["iso", "aniso", "generalized_iso", "generalized_aniso", "plateau_iso", "plateau_aniso"]
STAGE = dict(blur_prob=1.0, kernel_list=KINDS, kernel_prob=[0.45, 0.25, 0.12, 0.03, 0.12, 0.03], sinc_prob=0.1,
             blur_sigma=[0.2, 3.0], betag_range=[0.5, 4.0], betap_range=[1.0, 2.0], resize_prob=[0.2, 0.7, 0.1],
             resize_range=[0.15, 1.5], gaussian_noise_prob=0.5, noise_range=[1.0, 30.0],
             poisson_scale_range=[0.05, 3.0], gray_noise_prob=0.4, jpeg_range=[30.0, 95.0])
# Real-ESRGAN's official x4plus values, as in params.yaml.
CFG = dict(first=STAGE,
           second={**STAGE, "blur_prob": 0.8, "blur_sigma": [0.2, 1.5], "resize_prob": [0.3, 0.4, 0.3],
                   "resize_range": [0.3, 1.2], "noise_range": [1.0, 25.0], "poisson_scale_range": [0.05, 2.5]},
           final_sinc_prob=0.8, usm=dict(weight=0.5, threshold=10.0, radius=50), pool_size=180)


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


def textured(b=2, size=64, seed=0):
    """Smooth random texture with edges: a stand-in for a natural image."""
    img = torch.rand(b, 3, size // 8, size // 8, generator=gen(seed))
    img = torch.nn.functional.interpolate(img, size=(size, size), mode="bicubic").clamp(0, 1)
    return (0.7 * img + 0.3 * torch.rand(b, 3, size, size, generator=gen(seed + 1))).clamp(0, 1)


def hf_energy(img):
    """Mean squared response of the Laplacian, per sample."""
    centre = img[..., 1:-1, 1:-1]
    lap = 4 * centre - img[..., :-2, 1:-1] - img[..., 2:, 1:-1] - img[..., 1:-1, :-2] - img[..., 1:-1, 2:]
    return lap.pow(2).mean(dim=(1, 2, 3))


# ------------------------------------------------------------------ kernels

@pytest.mark.parametrize("size", [7, 13, 21])
def test_kernels_sum_to_one_and_have_requested_size(size):
    for kernel in (kernels.gaussian_kernel(size, 2.0, 1.0, 0.3),
                   kernels.generalized_gaussian_kernel(size, 2.0, 1.0, 0.3, 0.7),
                   kernels.plateau_kernel(size, 2.0, 1.0, 0.3, 1.5),
                   kernels.sinc_kernel(size, math.pi / 3)):
        assert kernel.shape == (size, size)
        assert kernel.sum().item() == pytest.approx(1.0, abs=1e-9)


def test_isotropic_kernels_are_symmetric_and_anisotropic_are_not():
    for kernel in (kernels.gaussian_kernel(15, 2.0, 2.0, 0.0),
                   kernels.generalized_gaussian_kernel(15, 2.0, 2.0, 0.0, 2.5),
                   kernels.plateau_kernel(15, 2.0, 2.0, 0.0, 1.2),
                   kernels.sinc_kernel(15, math.pi / 4)):
        torch.testing.assert_close(kernel, kernel.T)
        torch.testing.assert_close(kernel, kernel.flip(0))
        torch.testing.assert_close(kernel, kernel.flip(1))
        assert kernel.argmax().item() == 15 * 7 + 7  # peak at the centre
    aniso = kernels.gaussian_kernel(15, 3.0, 1.0, 0.5)
    assert (aniso - aniso.T).abs().max() > 1e-3
    torch.testing.assert_close(aniso, aniso.flip(0).flip(1))  # still point-symmetric
    # sigma_x along columns: an unrotated wide-x kernel spreads along the row
    wide_x = kernels.gaussian_kernel(15, 3.0, 1.0, 0.0)
    assert wide_x[7, 10] > wide_x[10, 7]


def test_sinc_kernel_is_lowpass():
    kernel = kernels.sinc_kernel(21, math.pi / 3)
    response = torch.fft.fft2(kernels.pad_kernel(kernel, 63)).abs()
    assert response[0, 0].item() == pytest.approx(1.0, abs=1e-9)
    freqs = torch.fft.fftfreq(63) * 2 * math.pi
    radius = torch.sqrt(freqs[:, None] ** 2 + freqs[None, :] ** 2)
    assert response[radius < math.pi / 6].min() > 0.85  # passband (truncation ripple)
    assert response[radius > math.pi / 2].max() < 0.1  # stopband
    # a checkerboard (the Nyquist frequency) is almost removed
    board = (torch.arange(32)[:, None] + torch.arange(32)[None, :]) % 2
    img = board.float().expand(1, 3, 32, 32)
    out = filter2d(img, kernel[None].float())
    assert out[..., 10:-10, 10:-10].std() < 0.05 * img.std()


def test_random_blur_kernels_are_padded_normalised_and_vary_per_sample():
    g = gen(3)
    batch = [kernels.random_blur_kernel(STAGE, g) for _ in range(20)]
    supports = set()
    for kernel in batch:
        assert kernel.shape == (21, 21) and kernel.dtype == torch.float32
        assert kernel.sum().item() == pytest.approx(1.0, abs=1e-5)
        rows = torch.nonzero(kernel.abs().sum(1) > 0).flatten()
        supports.add(int(rows[-1] - rows[0] + 1))
    assert supports <= set(kernels.KERNEL_SIZES) and len(supports) > 1
    assert len({tuple(k.flatten().tolist()) for k in batch}) == 20
    pulse = kernels.random_final_sinc_kernel(0.0, g)
    assert pulse.sum() == 1 and pulse[10, 10] == 1


# ------------------------------------------------------------------ single ops

def test_gaussian_noise_raises_variance_of_flat_image():
    flat = torch.full((2, 3, 64, 64), 0.5)
    noisy = add_gaussian_noise(flat, torch.tensor([5.0, 20.0]), False, gen())
    std = (noisy - flat).std(dim=(1, 2, 3))
    assert std[0].item() == pytest.approx(5 / 255, rel=0.05)
    assert std[1].item() == pytest.approx(20 / 255, rel=0.05)
    gray = add_gaussian_noise(flat, 10.0, torch.tensor([True, False]), gen())
    assert torch.equal(gray[0, 0], gray[0, 1]) and torch.equal(gray[0, 1], gray[0, 2])
    assert not torch.equal(gray[1, 0], gray[1, 1])


def test_poisson_noise_raises_variance_and_grows_with_scale():
    flat = torch.full((1, 3, 64, 64), 0.5)
    assert add_poisson_noise(flat, 1.0, False, gen()).var() > 1e-3
    ramp = torch.linspace(0.2, 0.8, 64).expand(2, 3, 64, 64).contiguous()
    noisy = add_poisson_noise(ramp, torch.tensor([0.5, 2.0]), False, gen())
    var = (noisy - ramp).var(dim=(1, 2, 3))
    assert var[0] > 1e-6
    assert var[1] / var[0] == pytest.approx(16.0, rel=0.2)  # noise scales linearly with `scale`
    gray = add_poisson_noise(ramp, 1.0, True, gen())
    torch.testing.assert_close(gray[:, 0] - ramp[:, 0], gray[:, 1] - ramp[:, 1])


def test_poisson_photon_count_is_the_distinct_levels_rounded_up_to_a_power_of_two():
    """Real-ESRGAN's count: 1 level -> 1 photon level, 3 -> 4, 200 -> 256; noisy values are multiples of 1/count."""
    from pipeline.data.degradation import _poisson_noise

    one = torch.full((3, 16, 16), 128 / 255)
    three = torch.tensor([10, 20, 30.0]).div(255).repeat_interleave(256)[:3 * 256].view(3, 16, 16)
    many = torch.arange(200.0).repeat(4)[:768].div(255).view(3, 16, 16)
    img = torch.stack([one, three, many])
    counts = (_poisson_noise(img, gen()) + img) * torch.tensor([1.0, 4.0, 256.0]).view(3, 1, 1, 1)
    torch.testing.assert_close(counts, counts.round(), atol=1e-3, rtol=0)
    assert not torch.allclose(counts[2] * 0.5, (counts[2] * 0.5).round(), atol=1e-3)  # not a coarser count


def test_gaussian_blur_lowers_high_frequency_energy():
    img = textured()
    blurred = gaussian_blur(img, torch.tensor([0.8, 2.5]))
    energy, blurred_energy = hf_energy(img), hf_energy(blurred)
    assert (blurred_energy < 0.5 * energy).all()
    assert blurred_energy[1] / energy[1] < blurred_energy[0] / energy[0]
    flat = torch.full((1, 3, 32, 32), 0.3)
    torch.testing.assert_close(gaussian_blur(flat, 2.0), flat)


def test_jpeg_error_grows_as_quality_falls():
    img = textured(b=1)
    errors = [(jpeg(img, q) - img).abs().mean().item() for q in (95, 60, 30)]
    assert errors[0] < errors[1] < errors[2]
    per_sample = jpeg(img.expand(3, -1, -1, -1), torch.tensor([95.0, 60.0, 30.0]))
    torch.testing.assert_close(per_sample[2:], jpeg(img, 30))
    assert 0 <= per_sample.min() and per_sample.max() <= 1


def test_usm_increases_edge_contrast_and_keeps_flat_image():
    step = torch.full((1, 3, 64, 64), 0.3)
    step[..., 32:] = 0.7
    sharp = usm_sharp(step, weight=0.5, threshold=10, radius=50)
    assert sharp[..., 31].mean() < 0.3 - 0.01 and sharp[..., 32].mean() > 0.7 + 0.01  # overshoot at the edge
    assert sharp.min() >= 0 and sharp.max() <= 1
    flat = torch.full((1, 3, 64, 64), 0.42)
    torch.testing.assert_close(usm_sharp(flat), flat)
    # residuals under the threshold are left alone: a faint step stays as it is
    faint = torch.full((1, 3, 64, 64), 0.5)
    faint[..., 32:] += 5 / 255
    torch.testing.assert_close(usm_sharp(faint, threshold=10), faint)


# ------------------------------------------------------------------ full pipeline

def test_pipeline_output_size_range_and_8bit_levels():
    deg = RealESRGANDegradation(CFG, scale=4)
    hr = textured(b=2, size=96)
    for seed in range(4):
        lr = deg(hr, gen(seed))
        assert lr.shape == (2, 3, 24, 24)
        assert lr.min() >= 0 and lr.max() <= 1
        torch.testing.assert_close(lr * 255, (lr * 255).round(), atol=1e-4, rtol=0)


def test_pipeline_is_deterministic_for_a_seed():
    deg = RealESRGANDegradation(CFG)
    hr = textured(b=2, size=96)
    assert torch.equal(deg(hr, gen(7)), deg(hr, gen(7)))
    assert not torch.equal(deg(hr, gen(7)), deg(hr, gen(8)))


def test_constant_grey_stays_constant_without_noise():
    quiet = copy.deepcopy(CFG)
    for order in ("first", "second"):
        quiet[order].update(gaussian_noise_prob=1.0, noise_range=[0.0, 0.0], jpeg_range=[95.0, 95.0])
    deg = RealESRGANDegradation(quiet)
    grey = torch.full((2, 3, 96, 96), 0.5)
    for seed in range(4):
        lr = deg(grey, gen(seed))
        assert (lr - 0.5).abs().max() <= 2.5 / 255


def test_pipeline_input_checks_and_odd_sizes():
    deg = RealESRGANDegradation(CFG)
    with pytest.raises(ValueError, match=">= 74"):
        deg(torch.rand(1, 3, 48, 96), gen())
    assert deg(torch.rand(1, 3, 98, 101), gen()).shape == (1, 3, 24, 25)  # floor, as Real-ESRGAN


def test_sharpen_is_the_usm_of_the_config():
    deg = RealESRGANDegradation(CFG)
    hr = textured(b=1, size=64)
    torch.testing.assert_close(deg.sharpen(hr), usm_sharp(hr, 0.5, 10.0, 50))


# ------------------------------------------------------------------ pair pool

def run_pool(seed):
    pool, g, outputs = PairPool(6), gen(seed), []
    for step in range(8):
        ids = torch.arange(step * 2, step * 2 + 2, dtype=torch.float32)
        lr = ids.view(2, 1, 1, 1).expand(2, 3, 4, 4).clone()
        hr = ids.view(2, 1, 1, 1).expand(2, 3, 16, 16).clone()
        outputs.append(pool(lr, hr, g))
    return outputs


def test_pair_pool_shapes_pairing_and_determinism():
    outputs = run_pool(0)
    for lr, hr in outputs:
        assert lr.shape == (2, 3, 4, 4) and hr.shape == (2, 3, 16, 16)
        torch.testing.assert_close(lr[:, :, 0, 0], hr[:, :, 0, 0])  # LR and HR stay paired
    first_ids = [lr[:, 0, 0, 0].tolist() for lr, _ in outputs]
    assert first_ids[:3] == [[0, 1], [2, 3], [4, 5]]  # pass-through while the pool fills
    later = [i for ids in first_ids[3:] for i in ids]
    assert all(i < 16 for i in later) and later != list(range(6, 16))  # drawn from the pool, mixed
    assert all(torch.equal(a[0], b[0]) for a, b in zip(outputs, run_pool(0)))
    assert any(not torch.equal(a[0], b[0]) for a, b in zip(outputs, run_pool(1)))


def test_pair_pool_rejects_batch_not_dividing_size():
    with pytest.raises(ValueError, match="multiple"):
        PairPool(5)(torch.zeros(2, 3, 4, 4), torch.zeros(2, 3, 16, 16), gen())


# ------------------------------------------------------------------ config

@pytest.mark.parametrize("path, value, match", [
    (("first", "jpeg_range"), [30.0, 120.0], "degradation.first.jpeg_range"),
    (("second", "kernel_prob"), [0.5, 0.5], "degradation.second.kernel_prob"),
    (("second", "resize_range"), [1.1, 1.5], "degradation.second.resize_range"),
    (("first", "kernel_list"), ["iso", "box"] + KINDS[2:], "degradation.first.kernel_list"),
    (("first", "gray_noise_prob"), "0.4", "degradation.first.gray_noise_prob"),
    (("usm", "radius"), 50.5, "degradation.usm.radius"),
    (("pool_size",), 0, "degradation.pool_size"),
])
def test_config_rejects_bad_values(path, value, match):
    cfg = copy.deepcopy(CFG)
    section = cfg
    for key in path[:-1]:
        section = section[key]
    section[path[-1]] = value
    with pytest.raises(ValueError, match=match):
        validate_config(cfg)


def test_config_rejects_missing_and_unknown_keys():
    cfg = copy.deepcopy(CFG)
    del cfg["second"]["noise_range"]
    with pytest.raises(ValueError, match=r"degradation\.second\.noise_range: missing"):
        validate_config(cfg)
    cfg = copy.deepcopy(CFG)
    cfg["first"]["noise_rang"] = [1.0, 2.0]
    with pytest.raises(ValueError, match=r"degradation\.first\.noise_rang: unknown"):
        validate_config(cfg)


def test_params_yaml_degradation_section_is_the_official_one():
    params = yaml.safe_load((Path(__file__).resolve().parents[1] / "params.yaml").read_text())
    # Real-ESRGAN's pool of 180 goes with its batch 12; ours holds 192, a multiple of the paper batch 16.
    assert validate_config(params["degradation"]) == {**CFG, "pool_size": 192}
