"""ContentSep: its files in the upstream layouts load, and the score is upstream's NIQE distance on ResNet-50
features."""
import h5py
import numpy as np
import pytest
import torch
from torchvision.models import resnet50

from pipeline.metrics.contentsep import ContentSep, load_contentsep, patches
from pipeline.metrics.pyiqa_metrics import MetricUnavailable


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """auth_ft_cd.pth (evaluate_model.py's nn.Sequential of resnet50's children but fc, random weights with random
    batch-norm statistics) and pristine_patches_096_0.75_0.80.hdf5 (`data`, N x 3 x 96 x 96 float32)."""
    folder = tmp_path_factory.mktemp("contentsep")
    torch.manual_seed(0)
    model = torch.nn.Sequential(*list(resnet50().children())[:-1]).eval()
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.1, 0.1), m.running_var.uniform_(0.5, 1.5)
    torch.save(model.state_dict(), folder / "auth_ft_cd.pth")
    pristine = torch.rand(6, 3, 96, 96, generator=torch.Generator().manual_seed(1))
    with h5py.File(folder / "pristine_patches_096_0.75_0.80.hdf5", "w") as f:
        f.create_dataset("data", data=pristine.numpy())
    return model, pristine, folder / "auth_ft_cd.pth", folder / "pristine_patches_096_0.75_0.80.hdf5"


def upstream_score(model, pristine, x):
    """evaluate_model.py and niqe_compute.py: unfold into 96 px patches at stride 48, features, then
    sqrt(d ((S_r + S_t) / 2 + 0.001 I)^-1 d^T) with unbiased covariances."""
    ps = 96
    x = x.unfold(-3, x.size(-3), x.size(-3)).unfold(-3, ps, ps // 2).unfold(-3, ps, ps // 2).squeeze(1)
    x = x.contiguous().view(x.size(0), x.size(1) * x.size(2), x.size(3), x.size(4), x.size(5))
    feats = model(x.view(-1, 3, ps, ps)).view(x.size(0), x.size(1), -1)
    ref = model(pristine).squeeze()[None]

    def cov(t, mu):
        t = t - mu
        return t.transpose(-1, -2) @ t / (t.shape[-2] - 1)
    mu_r, mu_t = ref.mean(-2, keepdim=True), feats.mean(-2, keepdim=True)
    pooled = (cov(ref, mu_r) + cov(feats, mu_t)) / 2 + 0.001 * torch.eye(2048)[None]
    d = mu_r - mu_t
    return torch.sqrt(d @ torch.linalg.inv(pooled) @ d.transpose(-2, -1)).squeeze()


def test_score_is_upstreams_distance(files):
    model, pristine, weights, hdf5 = files
    metric = load_contentsep(weights, hdf5)
    assert isinstance(metric, ContentSep)
    x = torch.rand(1, 3, 150, 200, generator=torch.Generator().manual_seed(2))
    assert patches(x).shape == (2 * 3, 3, 96, 96)  # rows (150 - 96) // 48 + 1, columns (200 - 96) // 48 + 1
    with torch.no_grad():
        ours, theirs = metric(x).item(), upstream_score(model, pristine, x).item()
    assert np.isfinite(ours) and ours > 0
    assert ours == pytest.approx(theirs, rel=1e-5)
    smooth = torch.nn.functional.avg_pool2d(x, 9, 1, 4)  # another image, another distance
    assert metric(smooth).item() != pytest.approx(ours, rel=1e-2)
    with pytest.raises(MetricUnavailable, match="a 120 x 100 image holds fewer than two of ContentSep's 96 px "
                                                "patches at stride 48"):  # one patch: no covariance
        metric(x[..., :100, :120])


def test_missing_or_wrong_files_are_n_a_with_the_reason(files, tmp_path):
    _, _, weights, hdf5 = files
    with pytest.raises(MetricUnavailable, match="weights not available: .*auth_ft_cd.pth .*contentsep_auth_ft_cd"):
        load_contentsep(tmp_path / "auth_ft_cd.pth", hdf5)
    with pytest.raises(MetricUnavailable, match="weights not available: .*contentsep_pristine"):
        load_contentsep(weights, tmp_path / "none.hdf5")
    with h5py.File(tmp_path / "wrong.hdf5", "w") as f:
        f.create_dataset("data", data=np.zeros((4, 3, 64, 64), np.float32))
    with pytest.raises(MetricUnavailable, match=r"`data` is \(4, 3, 64, 64\), expected N x 3 x 96 x 96"):
        load_contentsep(weights, tmp_path / "wrong.hdf5")
    torch.save({"fc.weight": torch.zeros(2, 2)}, tmp_path / "other.pth")
    with pytest.raises(MetricUnavailable, match="other.pth: checkpoint does not fit Sequential"):
        load_contentsep(tmp_path / "other.pth", hdf5)
