"""SR metrics: Y-PSNR/SSIM against hand computations, the border crop, NIQE, and LPIPS/DISTS n/a offline."""
import datetime
import math
import os

import numpy as np
import pyiqa
import pytest
import scipy.io
import torch

from pipeline.checkpoint import CheckpointError
from pipeline.metrics.niqe_params import write_niqe_mat
from pipeline.metrics.pyiqa_metrics import (
    NA,
    MetricUnavailable,
    create_metric,
    torch_home,
)
from pipeline.metrics.ssim import ssim_y, y_channel
from pipeline.metrics.sr_metrics import PSNR_CAP, SR_METRICS, SRMetrics
from pipeline.tensor_image import to_tensor

LPIPS_FILE = "hub/pyiqa/LPIPS_v0.1_alex-df73285e.pth"
ALEXNET_FILE = "hub/checkpoints/alexnet-owt-7be5be79.pth"


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("sr_metrics")
    home, niqe = root / "torch", write_niqe_mat(root / "niqe.mat")
    home.mkdir()
    return home, niqe, SRMetrics(4, home, niqe, "cpu")


def rgb(h, w, low=20, high=200, seed=0):
    return np.random.default_rng(seed).integers(low, high, (h, w, 3), dtype=np.uint8)


def test_niqe_model_file_is_the_same_on_every_run(tmp_path):
    data = write_niqe_mat(tmp_path / "niqe.mat").read_bytes()
    assert b"Created on" not in data[:116]  # scipy writes the time there
    mat = scipy.io.loadmat(tmp_path / "niqe.mat")
    assert mat["mu_prisparam"].shape == (1, 36) and mat["cov_prisparam"].shape == (36, 36)
    assert np.isfinite(mat["cov_prisparam"]).all()


def test_identical_images_give_the_finite_cap(setup):
    img = rgb(64, 64)
    out = setup[2](img, img)
    assert out["psnr"] == pytest.approx(PSNR_CAP) and math.isfinite(out["psnr"])
    assert out["ssim"] == pytest.approx(1.0)


def test_constant_offset_psnr_on_bt601_y(setup):
    hr = rgb(64, 64)
    sr = hr + np.uint8(10)
    # BT.601: Y = 16 + (65.481 R + 128.553 G + 24.966 B) / 255, the weights sum to 219: +10 on RGB is +10 * 219 / 255
    # on Y (0-255), so the MSE on [0, 1] is (10 * 219 / 255^2)^2
    expected = 10 * math.log10(1 / (10 * 219 / 255 ** 2) ** 2)
    assert setup[2](sr, hr)["psnr"] == pytest.approx(expected, abs=1e-4)


def test_ssim_of_two_flat_images_by_hand(setup):
    # flat images: no variance, so SSIM = (2 a b + C1) / (a^2 + b^2 + C1), C1 = (0.01 * 255)^2: on Y in floating
    # point (BasicSR's convention, the default) and on Y rounded to integers (MATLAB's)
    a, b = np.full((48, 48, 3), 100, np.uint8), np.full((48, 48, 3), 110, np.uint8)
    c1 = (0.01 * 255) ** 2
    for convention, rnd in (("basicsr", float), ("matlab", round)):
        ya, yb = rnd(16 + 100 * 219 / 255), rnd(16 + 110 * 219 / 255)
        expected = (2 * ya * yb + c1) / (ya ** 2 + yb ** 2 + c1)
        assert ssim_y(a, b, convention) == pytest.approx(expected, rel=1e-9), convention
    assert setup[2](a, b)["ssim"] == pytest.approx(ssim_y(a, b, "basicsr"), rel=1e-12)


def _ssim_by_loops(x: np.ndarray, y: np.ndarray) -> float:
    """SSIM of two Y images by its definition: each 11 x 11 window inside the image, Gaussian-weighted (sigma 1.5)."""
    g = np.exp(-((np.arange(11) - 5) ** 2) / (2 * 1.5 ** 2))
    w = np.outer(g, g) / np.outer(g, g).sum()
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    values = []
    for i in range(x.shape[0] - 10):
        for j in range(x.shape[1] - 10):
            a, b = x[i:i + 11, j:j + 11], y[i:i + 11, j:j + 11]
            ma, mb = (w * a).sum(), (w * b).sum()
            va, vb, cov = (w * a * a).sum() - ma ** 2, (w * b * b).sum() - mb ** 2, (w * a * b).sum() - ma * mb
            values.append((2 * ma * mb + c1) * (2 * cov + c2) / ((ma ** 2 + mb ** 2 + c1) * (va + vb + c2)))
    return float(np.mean(values))


def test_ssim_conventions_against_their_definitions_and_pyiqa():
    rng = np.random.default_rng(5)
    hr = rng.integers(0, 256, (20, 23, 3), dtype=np.uint8)
    sr = np.clip(hr.astype(int) + rng.integers(-3, 4, hr.shape), 0, 255).astype(np.uint8)
    for convention in ("basicsr", "matlab"):
        x, y = (y_channel(img, convention == "matlab") for img in (sr, hr))
        assert ssim_y(sr, hr, convention) == pytest.approx(_ssim_by_loops(x, y), abs=1e-9)
    assert abs(ssim_y(sr, hr, "basicsr") - ssim_y(sr, hr, "matlab")) > 1e-5  # the rounding is visible
    reference = pyiqa.create_metric("ssim", test_y_channel=True, color_space="ycbcr", device="cpu")
    assert ssim_y(sr, hr, "matlab") == pytest.approx(float(reference(to_tensor(sr), to_tensor(hr))), abs=1e-6)
    with pytest.raises(ValueError, match="basicsr"):
        ssim_y(sr, hr, "skimage")


def test_border_of_scale_pixels_is_ignored(setup):
    home, niqe, metrics = setup
    hr = rgb(64, 64)
    sr = hr.copy()
    sr[:4] = 255 - sr[:4]
    sr[:, -4:] = 0
    cropped = metrics(sr, hr)
    assert cropped["psnr"] == pytest.approx(PSNR_CAP) and cropped["ssim"] == pytest.approx(1.0)
    uncropped = SRMetrics(0, home, niqe, "cpu")(sr, hr)
    assert uncropped["psnr"] < 20 and uncropped["ssim"] < 0.99


def test_niqe_needs_96_pixels_after_the_crop(setup):
    metrics = setup[2]
    small, large = rgb(100, 120), rgb(104, 104, seed=1)
    assert metrics(small, small)["niqe"] == NA  # 92 px high after the 4 px crop
    value = metrics(large, large)["niqe"]
    assert isinstance(value, float) and math.isfinite(value) and value > 0


@pytest.mark.filterwarnings("ignore:cov\\(\\)")  # pyiqa's covariance of the flat image's features
def test_niqe_of_a_flat_image_is_na(setup):
    flat = np.full((128, 128, 3), 90, np.uint8)
    out = setup[2](flat, flat)
    assert out["niqe"] == NA and out["psnr"] == pytest.approx(PSNR_CAP)


def test_lpips_and_dists_are_na_without_weights(setup):
    home, _, metrics = setup
    assert metrics.na == {
        "lpips": f"weights not available: {home / LPIPS_FILE} (run the paper profile's download stage online)",
        "dists": f"weights not available: {home / 'hub/pyiqa/DISTS_weights-f5e65c96.pth'} "
                 f"(run the paper profile's download stage online)",
    }
    out = metrics(rgb(64, 64), rgb(64, 64, seed=1))
    assert list(out) == list(SR_METRICS)
    assert out["lpips"] == NA and out["dists"] == NA
    assert all(isinstance(out[k], float) for k in ("psnr", "ssim"))


def test_each_missing_file_is_named_and_pickled_files_are_refused(tmp_path):
    lpips = tmp_path / LPIPS_FILE
    lpips.parent.mkdir(parents=True)
    torch.save({"lin0.model.1.weight": torch.zeros(1, 64, 1, 1)}, lpips)
    with pytest.raises(MetricUnavailable, match="alexnet-owt-7be5be79.pth"):
        create_metric("lpips", tmp_path)
    (tmp_path / ALEXNET_FILE).parent.mkdir(parents=True)
    (tmp_path / ALEXNET_FILE).write_bytes(b"")
    torch.save({"made": datetime.date(2020, 1, 1)}, lpips)  # a pickled object, not tensors
    with pytest.raises(CheckpointError, match="pickled objects"):
        create_metric("lpips", tmp_path)


def test_clipiqa_with_another_rn50_file_is_na_before_pyiqa_goes_online(tmp_path, monkeypatch):
    """pyiqa re-downloads an RN50.pt whose sha256 differs from its URL's; offline that must be an n/a reason."""
    path = tmp_path / "hub/clip/RN50.pt"
    path.parent.mkdir(parents=True)
    path.write_bytes(b"not OpenAI's file")
    monkeypatch.setattr("pyiqa.create_metric", lambda *a, **k: pytest.fail("pyiqa must not be reached"))
    with pytest.raises(MetricUnavailable, match="RN50.pt is not OpenAI's RN50.pt .*afeb0e10f9e5a86d"):
        create_metric("clipiqa", tmp_path)


def test_niqe_without_its_model_is_na(tmp_path):
    with pytest.raises(MetricUnavailable, match="weights not available: .*missing.mat"):
        create_metric("niqe", tmp_path, niqe_params=tmp_path / "missing.mat")


def test_torch_home_is_restored(tmp_path):
    before = os.environ.get("TORCH_HOME")
    with torch_home(tmp_path):
        assert os.environ["TORCH_HOME"] == str(tmp_path.resolve())
    assert os.environ.get("TORCH_HOME") == before


def test_size_mismatch_raises(setup):
    with pytest.raises(ValueError, match="differ in size"):
        setup[2](rgb(64, 64), rgb(64, 68))
