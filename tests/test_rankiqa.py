"""RankIQA: .caffemodel files written by a real protobuf encoder (both layer formats) read back blob for blob; the
score is src/eval/Rank_eval_all_tid2013.py's (xialeiliu/RankIQA commit 346f22f) on deploy_vgg.prototxt's net,
transcribed with the blobs as Caffe holds them; unusable files and images give one-line reasons."""
import numpy as np
import pytest
import torch
import torch.nn.functional as nn_f

from paper_standins import caffemodel, rankiqa_layers
from pipeline.caffemodel import CaffeModelError, read_caffemodel
from pipeline.metrics.pyiqa_metrics import MetricUnavailable
from pipeline.metrics.rankiqa import CONVS, load_rankiqa


@pytest.mark.parametrize("v1", [False, True])
def test_caffemodel_blobs_read_back_in_both_layer_formats(v1, tmp_path):
    layers = rankiqa_layers()
    path = tmp_path / "Rank_tid2013.caffemodel"
    path.write_bytes(caffemodel(layers, v1=v1))
    read = read_caffemodel(path)
    assert list(read) == list(layers)
    for name, blobs in layers.items():
        got = read[name]
        # the legacy 4-D dims hold a weight matrix as 1 x 1 x out x in and a bias as 1 x 1 x 1 x n
        assert [b.size for b in got] == [b.size for b in blobs]
        assert all(np.array_equal(g.reshape(b.shape), b) for g, b in zip(got, blobs))
        if not v1:
            assert [g.shape for g in got] == [b.shape for b in blobs]


def deploy_vgg(layers, crop):
    """deploy_vgg.prototxt on one (1, 3, 224, 224) BGR crop, layer by layer as Caffe runs it."""
    x = torch.from_numpy(crop).float()[None]
    for stage in range(1, 6):
        for name in [c for c in CONVS if c.startswith(f"conv{stage}_")]:
            w, b = (torch.from_numpy(a) for a in layers[name])
            x = torch.relu(nn_f.conv2d(x, w, b, padding=1))
        x = nn_f.max_pool2d(x, 2, 2)
    x = x.flatten()
    for name in ("fc6", "fc7", "fc8_m"):
        w, b = (torch.from_numpy(a) for a in layers[name])
        x = w @ x + b
        if name != "fc8_m":
            x = torch.relu(x)  # drop6 / drop7: the identity in TEST
    return x.item()


def test_the_score_is_rank_evals_mean_over_its_30_crops(tmp_path):
    layers = rankiqa_layers(seed=1)
    path = tmp_path / "Rank_tid2013.caffemodel"
    path.write_bytes(caffemodel(layers))
    metric = load_rankiqa(path)
    np.random.seed(0)  # the stream RankIQA seeds at load; upstream's is unseeded
    for seed in (2, 3):  # the stream continues from image to image
        im = np.random.default_rng(seed).integers(0, 256, (240, 260, 3), dtype=np.uint8)  # RGB, H x W x 3
        bgr = im[:, :, ::-1]  # what cv2.imread returns
        pre = 0.0
        for _ in range(30):
            x_p = np.random.randint(bgr.shape[0] - 224, size=1)[0]
            y_p = np.random.randint(bgr.shape[1] - 224, size=1)[0]
            pre += deploy_vgg(layers, np.ascontiguousarray(bgr[x_p:x_p + 224, y_p:y_p + 224, :].transpose(2, 0, 1)))
        x = torch.from_numpy(im.copy()).permute(2, 0, 1)[None].float() / 255
        assert metric(x).item() == pytest.approx(pre / 30, rel=1e-5, abs=1e-5)


def test_unusable_files_and_images_give_one_line_reasons(tmp_path):
    with pytest.raises(MetricUnavailable, match=r"weights not available: .*Rank_tid2013.caffemodel \(by hand: "
                                                r"registry entry rankiqa_rank_tid2013\)"):
        load_rankiqa(tmp_path / "Rank_tid2013.caffemodel")
    layers = rankiqa_layers()
    path = tmp_path / "partial.caffemodel"
    path.write_bytes(caffemodel({k: v for k, v in layers.items() if k != "fc7"}))
    with pytest.raises(MetricUnavailable, match=r"partial.caffemodel has no weight and bias for layer\(s\) fc7 of "
                                                r"RankIQA's deploy_vgg.prototxt"):
        load_rankiqa(path)
    path.write_bytes(caffemodel({**layers, "fc6": [layers["fc6"][0][:, :-1], layers["fc6"][1]]}))
    with pytest.raises(MetricUnavailable, match=r"partial.caffemodel: layer fc6's weight holds 6256 values"):
        load_rankiqa(path)
    path.write_bytes(b"\x0a\xff\xff\xff\x0f")  # a length running past the end of the file
    with pytest.raises(MetricUnavailable, match="partial.caffemodel is not a readable .caffemodel: truncated"):
        load_rankiqa(path)
    with pytest.raises(CaffeModelError, match="cannot be read"):
        read_caffemodel(tmp_path)
    path.write_bytes(caffemodel(layers))
    with pytest.raises(MetricUnavailable, match="a 300 x 224 image has no room for RankIQA's 224 px crops"):
        load_rankiqa(path)(torch.rand(1, 3, 224, 300))
