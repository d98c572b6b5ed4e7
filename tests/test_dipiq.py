"""dipIQ against a line-by-line transcription of the release's dipIQ.m and cornia_feature.m (NTIA/NRMetricFramework
commit 4816527, reports/nrff_dipIQ.m), on stand-ins of its four .mat files in their variables, types and shapes."""
import io

import numpy as np
import pytest
import scipy.io
import torch

from paper_standins import dipiq_files
from pipeline.metrics.dipiq import load_dipiq
from pipeline.metrics.pyiqa_metrics import MetricUnavailable

ROLES = ("codebook", "whitening", "normalization", "network")


def upstream_dipiq(rgb: np.ndarray, files: dict[str, bytes], seed: int = 1) -> float:
    """dipIQ(img, seed) for a uint8 H x W x 3 (or H x W) image; randperm after rng(seed) is numpy's permutation."""
    mat = {role: scipy.io.loadmat(io.BytesIO(data)) for role, data in files.items()}
    img = rgb
    if img.ndim == 3:  # rgb2gray on uint8: the weighted sum, rounded and saturated to uint8
        img = np.clip(np.floor(img[..., 0] * 0.298936021293775 + img[..., 1] * 0.587043074451121 +
                               img[..., 2] * 0.114020904255103 + 0.5), 0, 255).astype(np.uint8)
    d = mat["codebook"]["codebook0"]
    dim = d.shape[0]
    bs = int(np.sqrt(dim))
    h, w = img.shape
    patches = np.stack([img[r:r + bs, c:c + bs].flatten(order="F")  # im2col: one patch per column, column-major
                        for c in range(w - bs + 1) for r in range(h - bs + 1)], axis=1)
    j = np.random.RandomState(seed).permutation(patches.shape[1])
    patches = patches[:, j[:min(10000, len(j))]].astype(np.float64)
    patches = (patches - patches.mean(0)) / np.sqrt(patches.var(0, ddof=1) + 10)
    patches = (patches.T - mat["whitening"]["M"]) @ mat["whitening"]["P"]
    d = d / (np.sqrt((d ** 2).sum(0)) + 1e-20)
    z = patches @ d
    f = np.concatenate([np.maximum(z, 0), np.maximum(-z, 0)], axis=1).max(0)[None]
    f = (f.astype(np.float32) - mat["normalization"]["trainMu"]) / mat["normalization"]["trainStd"]  # single
    net = [np.asarray(v) for v in mat["network"]["netPara"]["value"].ravel()]
    for i in range(0, len(net) - 2, 2):
        f = np.maximum(0, f @ net[i] + net[i + 1].T)
    return float((f @ net[-2] + net[-1].T)[0, 0])


@pytest.fixture(scope="module")
def release(tmp_path_factory):
    folder = tmp_path_factory.mktemp("dipiq")
    files = dipiq_files(codewords=96)
    for role, data in files.items():
        (folder / f"{role}.mat").write_bytes(data)
    return folder, files


def paths(folder):
    return {role: folder / f"{role}.mat" for role in ROLES}


@pytest.mark.parametrize("h, w, channels", [(30, 41, 3), (113, 107, 3), (24, 20, 1)])
def test_score_is_the_releases(release, h, w, channels):
    """(113 - 6) x (107 - 6) = 10,807 patches: the 10,000 sampled must be the release's, in im2col's order."""
    folder, files = release
    u8 = np.random.default_rng(h).integers(0, 256, (h, w, channels), dtype=np.uint8)
    x = torch.from_numpy(u8).permute(2, 0, 1)[None].float() / 255
    ours = load_dipiq(**paths(folder))(x).item()
    assert ours == pytest.approx(upstream_dipiq(u8 if channels == 3 else u8[..., 0], files), rel=1e-5, abs=1e-6)


def test_a_different_patch_order_changes_the_score(release):
    """The transcription's check has teeth: sampling with another seed gives another score."""
    folder, files = release
    u8 = np.random.default_rng(113).integers(0, 256, (113, 107, 3), dtype=np.uint8)
    assert upstream_dipiq(u8, files) != pytest.approx(upstream_dipiq(u8, files, seed=2), rel=1e-5)


def test_missing_or_unfitting_files_name_the_file(release, tmp_path):
    folder, files = release
    with pytest.raises(MetricUnavailable, match=r"weights not available: .*network.mat \(registry entry "
                                                r"dipiq_network\)"):
        load_dipiq(**{**paths(folder), "network": tmp_path / "network.mat"})
    wrong = tmp_path / "whitening.mat"
    scipy.io.savemat(wrong, {"W": np.eye(49)})
    with pytest.raises(MetricUnavailable, match=r"whitening.mat holds no M, P \(it holds W\)"):
        load_dipiq(**{**paths(folder), "whitening": wrong})
    other = tmp_path / "normalization.mat"
    other.write_bytes(dipiq_files(codewords=8)["normalization"])
    with pytest.raises(MetricUnavailable, match=r"normalization.mat: trainMu \(1, 16\) and trainStd \(1, 16\) are "
                                                r"not the 192 features of 96 codewords"):
        load_dipiq(**{**paths(folder), "normalization": other})
    net = np.empty((1, 2), dtype=[("value", object)])
    net[0, 0]["value"], net[0, 1]["value"] = np.ones((192, 8), np.float32), np.ones((4, 1), np.float32)
    scipy.io.savemat(tmp_path / "network.mat", {"netPara": net})
    with pytest.raises(MetricUnavailable, match=r"network.mat: netPara layer 1 has a \(192, 8\) weight and \(4, 1\) "
                                                r"biases, not an in x out weight and out biases"):
        load_dipiq(**{**paths(folder), "network": tmp_path / "network.mat"})
    hdf5 = tmp_path / "v73.mat"  # MATLAB -v7.3: a 128-byte header, version 0x0200, then HDF5
    hdf5.write_bytes(b"MATLAB 7.3 MAT-file".ljust(116) + bytes(8) + b"\x00\x02IM" + bytes(384))
    with pytest.raises(MetricUnavailable, match=r"v73.mat is a MATLAB v7.3 \(HDF5\) file; scipy.io reads v5 and v7"):
        load_dipiq(**{**paths(folder), "codebook": hdf5})
    garbage = tmp_path / "codebook.mat"
    garbage.write_bytes(b"not a mat file")
    with pytest.raises(MetricUnavailable, match=r"codebook.mat is not a readable .mat file"):
        load_dipiq(**{**paths(folder), "codebook": garbage})


def test_an_image_without_a_patch_is_na(release):
    folder, _ = release
    with pytest.raises(MetricUnavailable, match="a 6 x 9 image holds no 7 x 7 patch for dipIQ"):
        load_dipiq(**paths(folder))(torch.rand(1, 3, 9, 6))
