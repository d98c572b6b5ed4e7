"""MDFS: its files in the upstream layouts load, and the score is eezkni/MDFS test.py's on the same features."""
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torchvision.models import efficientnet_b7

from pipeline.metrics.mdfs import MDFS, MultiScaleFeatures, load_mdfs, window_statistics
from pipeline.metrics.pyiqa_metrics import MetricUnavailable


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """torchvision's efficientnet_b7 state dict (random weights and batch-norm statistics) and MDFS_weights.pth
    (test.py's torch.load: one M x 544 tensor), here the window features of three smooth random images, jittered so
    that their covariance is well-conditioned."""
    folder = tmp_path_factory.mktemp("mdfs")
    torch.manual_seed(0)
    net = efficientnet_b7().eval()
    for m in net.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.1, 0.1), m.running_var.uniform_(0.5, 1.5)
    torch.save(net.state_dict(), folder / "efficientnet_b7_lukemelas-c5b4e57e.pth")
    images = F.avg_pool2d(torch.rand(3, 3, 256, 352, generator=torch.Generator().manual_seed(1)), 9, 1, 4)
    with torch.no_grad():
        features = MultiScaleFeatures(net.features)
        pristine = torch.cat([window_statistics(features(img[None]))[0] for img in images])  # 3 x 280 windows
    pristine = pristine + 0.02 * torch.randn(pristine.shape, generator=torch.Generator().manual_seed(4))  # full rank
    torch.save(pristine, folder / "MDFS_weights.pth")
    return net, pristine, folder / "efficientnet_b7_lukemelas-c5b4e57e.pth", folder / "MDFS_weights.pth"


def _window(size, sigma):
    g = torch.Tensor([math.exp(-(x - size // 2) ** 2 / float(2 * sigma ** 2)) for x in range(size)])
    g = (g / g.sum()).unsqueeze(1)
    return g.mm(g.t()).float().unsqueeze(0).unsqueeze(0)


def _cov(m):
    m = m.t()
    m = m - torch.mean(m, dim=1, keepdim=True)
    return (1.0 / (m.size(1) - 1)) * m.matmul(m.t()).squeeze()


def upstream_score(net, pristine, img):
    """model.py's EffNet and APL(select=0) and test.py's mvg, transcribed, in float32."""
    model = net.features
    stages = [model[0:2], model[2], model[3], model[4], model[5]]
    h = (img - torch.tensor([0.485, 0.456, 0.406]).view(1, -1, 1, 1)) / torch.tensor([0.229, 0.224, 0.225]).view(
        1, -1, 1, 1)
    feats = []
    for stage in stages:
        h = stage(h)
        feats.append(h)
    last, feats = feats[-1], feats[:-1]
    win3 = _window(3, 1.0)
    f_pyr = [[] for _ in feats]
    for i in range(len(feats)):
        f = feats[i]
        f_pyr[i].append(f)
        for j in range(i, len(feats) - 1):
            win = win3.expand(f.shape[1], -1, -1, -1)
            f = F.conv2d(torch.nn.ReflectionPad2d(1)(f), win, stride=2, groups=win.shape[0])
            if f.shape[2] != feats[j + 1].shape[2] or f.shape[3] != feats[j + 1].shape[3]:
                f = F.interpolate(f, [feats[j + 1].shape[2], feats[j + 1].shape[3]], mode="bilinear",
                                  align_corners=True)
            f_pyr[j + 1].append(f)
    f = torch.cat([torch.cat(f_pyr[-1], dim=1), last], dim=1)
    win_size = max(3, (min(f.shape[2], f.shape[3]) // 32) * 2 + 1)
    win = _window(win_size, win_size / 3).expand(f.shape[1], -1, -1, -1)
    f_mean = F.conv2d(f, win, stride=win_size // 2, groups=f.shape[1])
    f_var = F.conv2d(f ** 2, win, stride=win_size // 2, groups=f.shape[1]) - f_mean ** 2
    x_std = torch.mean(F.relu(f_var).sqrt(), dim=1, keepdim=True).squeeze()
    f_mean = f_mean.reshape(f_mean.shape[1], -1).permute(1, 0)
    ps = 1 / (1 + torch.exp(-(x_std - x_std.mean()) / (x_std.std() + 1e-12)))
    f_mean = list(torch.split(f_mean, [32, 48, 80, 160, 224], dim=1))
    x = torch.cat([c / (c.norm(dim=1, keepdim=True) + 1e-12) for c in f_mean], dim=1)
    y_mean, y_cov = pristine.mean(0, keepdim=True), _cov(pristine)
    s = torch.linalg.solve((_cov(x) + y_cov) / 2, (x - y_mean).t())
    s = torch.diagonal((x - y_mean).mm(s)).abs().sqrt().reshape(ps.shape)
    return (s * ps).sum() / ps.sum()


def test_score_is_upstreams(files):
    net, pristine, backbone, feats = files
    metric = load_mdfs(backbone, feats)
    assert isinstance(metric, MDFS)
    img = torch.rand(1, 3, 128, 176, generator=torch.Generator().manual_seed(2))
    img = F.avg_pool2d(img, 5, 1, 2)  # some structure, so the windows' spreads differ
    with torch.no_grad():
        ours, theirs = metric(img).item(), upstream_score(net, pristine, img).item()
    assert np.isfinite(ours) and ours > 0
    assert ours == pytest.approx(theirs, rel=1e-5)
    assert metric(torch.rand(1, 3, 128, 176, generator=torch.Generator().manual_seed(3))).item() > 1.1 * ours


def test_missing_or_wrong_files_are_n_a_with_the_reason(files, tmp_path):
    _, _, backbone, feats = files
    with pytest.raises(MetricUnavailable, match="weights not available: .*registry entry efficientnet_b7"):
        load_mdfs(tmp_path / "none.pth", feats)
    with pytest.raises(MetricUnavailable, match="weights not available: .*registry entry mdfs_pristine"):
        load_mdfs(backbone, tmp_path / "none.pth")
    torch.save(torch.zeros(10, 512), tmp_path / "wrong.pth")
    with pytest.raises(MetricUnavailable, match="M x 544 pristine feature tensor"):
        load_mdfs(backbone, tmp_path / "wrong.pth")
