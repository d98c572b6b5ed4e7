"""Fig. 9's t-SNE stage: loading the exported discriminators, embedding + silhouette, the figure and its JSON."""
import json

import numpy as np
import pytest
import torch
import yaml
from PIL import Image

from conftest import ROOT

from pipeline.archs.clip_encoder import TINY_ARCH, CLIPEncoder
from pipeline.archs.featd import FeatD
from pipeline.archs.lpp import LearnablePromptPairs
from pipeline.archs.vgg_discriminator import VGGStyleDiscriminator
from pipeline.checkpoint import save_state_dict
from pipeline.fileio import write_image, write_json
from pipeline.sfd_iqa import save_sfd_iqa
from pipeline.tsne import TSNEError, embed, find_category, image_classes, load_image_d, random_crops, run_tsne, silhouette

COLOURS = [(220, 40, 40), (40, 200, 60), (30, 60, 220), (230, 230, 230)]


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """A tiny esrgan image discriminator and a tiny SFD-IQA file (random weights), exported as training does."""
    root = tmp_path_factory.mktemp("models")
    torch.manual_seed(0)
    image_d = VGGStyleDiscriminator(num_feat=4, input_size=64)
    with torch.no_grad():  # non-trivial BN statistics, so eval mode is visible in the features
        image_d.bn1_0.running_mean.uniform_(-0.5, 0.5)
    save_state_dict(root / "esrgan" / "image_d.safetensors", image_d.state_dict())
    write_json(root / "esrgan" / "weights.json", {"clip": "not used", "vgg19": "none", "variant": "esrgan"})
    encoder = CLIPEncoder(TINY_ARCH, "none")
    featd = FeatD(encoder.mid_channels, (8, 8, 8, 8))
    save_sfd_iqa(root / "sfd" / "sfd_iqa.safetensors", encoder, featd, LearnablePromptPairs(encoder, n_ctx=8), 100.0)
    return {"root": root, "image_d": image_d.eval()}


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    """Four 80 x 96 images: one flat colour each plus mild noise."""
    folder = tmp_path_factory.mktemp("images")
    rng = np.random.default_rng(0)
    for i, colour in enumerate(COLOURS):
        img = np.clip(np.array(colour) + rng.normal(0, 8, (80, 96, 3)), 0, 255).astype(np.uint8)
        write_image(folder / f"img{i}.png", img)
    return folder


def config(models, images, **over):
    return {"image_d": str(models["root"] / "esrgan" / "image_d.safetensors"),
            "featd": str(models["root"] / "sfd" / "sfd_iqa.safetensors"), "max_iter": 250,
            "source": str(images), "categories": None, "images_per_class": None, "crops_per_image": 5,
            "crop": 48, "perplexity": 5.0, **over}


def blobs(n_classes=3, per_class=20, dim=10, spread=0.3, seed=0):
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 5, (n_classes, dim))
    labels = np.repeat(np.arange(n_classes), per_class)
    return centres[labels] + rng.normal(0, spread, (len(labels), dim)), labels


def test_silhouette_of_embedding_high_for_separable_low_for_random():
    features, labels = blobs()
    assert silhouette(embed(features, 10.0, 500, seed=0), labels) > 0.7
    noise = np.random.default_rng(1).normal(size=features.shape)
    assert abs(silhouette(embed(noise, 10.0, 500, seed=0), labels)) < 0.15
    assert silhouette(features, labels) > 0.8


def test_embedding_is_deterministic_for_a_seed():
    features, _ = blobs(seed=2)
    first = embed(features, 10.0, 300, seed=3)
    assert first.shape == (len(features), 2)
    np.testing.assert_array_equal(first, embed(features, 10.0, 300, seed=3))
    with pytest.raises(TSNEError, match="perplexity"):
        embed(features, float(len(features)), 300, seed=3)


def test_image_d_loaded_with_sizes_inferred(models):
    net = load_image_d(models["root"] / "esrgan" / "image_d.safetensors")
    assert net.input_size == 64 and net.conv0_0.out_channels == 4 and not net.training
    x = torch.rand(2, 3, 40, 56, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        got, expected = net.bn2_features(x), models["image_d"].bn2_features(x)
    assert got.shape == (2, 8, 20, 28)
    torch.testing.assert_close(got, expected)


def test_random_crops_sizes_and_range():
    img = np.arange(50 * 70 * 3, dtype=np.uint8).reshape(50, 70, 3)
    crops = random_crops(img, 32, 3, np.random.default_rng(0))
    assert crops.shape == (3, 3, 32, 32) and 0 <= crops.min() and crops.max() <= 1
    assert random_crops(img, 64, 2, np.random.default_rng(0)).shape == (2, 3, 50, 50)  # capped at the short side
    row = crops[0, 0, 0] * 255
    assert torch.all(row.diff() == 3)  # a real crop of the image: neighbouring pixels of one row


def test_categories_found_below_an_unknown_top_folder(tmp_path):
    for cat in ("bear", "sky"):
        (tmp_path / "OST_v2" / cat).mkdir(parents=True)
        for i in range(3):
            Image.new("RGB", (40, 40)).save(tmp_path / "OST_v2" / cat / f"{i}.png")
    assert find_category(tmp_path, "SKY") == tmp_path / "OST_v2" / "sky"
    classes = image_classes({"source": str(tmp_path), "categories": ["bear", "sky"], "images_per_class": 2},
                            np.random.default_rng(0))
    assert [c for c, _ in classes] == ["bear", "sky"] and all(len(imgs) == 2 for _, imgs in classes)
    assert all(p.parent.name == c for c, imgs in classes for p in imgs)
    with pytest.raises(TSNEError, match="'cat'.*found 0"):
        find_category(tmp_path, "cat")
    with pytest.raises(TSNEError, match="fewer than images_per_class"):
        image_classes({"source": str(tmp_path), "categories": ["bear"], "images_per_class": 4},
                      np.random.default_rng(0))


def test_stage_writes_figure_and_contract_json(models, images, tmp_path):
    png, out = tmp_path / "figures" / "tsne.png", tmp_path / "metrics" / "tsne.json"
    result = run_tsne(config(models, images), seed=0, profile="quick", out_png=png, out_json=out)
    saved = json.loads(out.read_text())
    assert saved == result
    assert saved["profile"] == "quick" and saved["n_points"] == 20 and saved["n_classes"] == 4
    assert saved["classes"] == ["img0", "img1", "img2", "img3"] and saved["categories"] is None
    assert set(saved["silhouette"]) == {"image_d", "featd"}
    assert all(-1 <= v <= 1 for v in saved["silhouette"].values())
    # crops of one flat-colour image are near-identical to either network: the classes separate in feature space
    assert all(v > 0.5 for v in saved["silhouette_features"].values())
    assert "vgg19: none" in saved["weights"]["image_d"] and "random" in saved["weights"]["clip"]
    assert "image_d.safetensors" in saved["source"] and "sfd_iqa.safetensors" in saved["source"]
    with Image.open(png) as im:
        assert im.format == "PNG" and im.width > im.height > 300


def test_paper_categories_on_an_ost_layout(models, tmp_path):
    """OST's seven upstream folders: the paper profile's six categories are read, `plant` is left out, and the JSON
    states the categories used beside the paper's (whose bear/cat/dog OST's `animal` stands in for)."""
    categories = yaml.safe_load((ROOT / "params.yaml").read_text())["paper"]["tsne"]["categories"]
    assert categories == ["animal", "building", "grass", "mountain", "sky", "water"]
    root = tmp_path / "OST" / "OutdoorSceneTrain_v2"
    rng = np.random.default_rng(1)
    for k, name in enumerate(("animal", "building", "grass", "mountain", "plant", "sky", "water")):
        colour = rng.integers(0, 256, 3)
        for i in range(3):
            img = np.clip(colour + rng.normal(0, 8, (56, 64, 3)), 0, 255).astype(np.uint8)
            write_image(root / name / f"{name}_{i:04d}.png", img)
    cfg = config(models, root, categories=categories, images_per_class=2, crops_per_image=1)
    result = run_tsne(cfg, seed=0, profile="paper", out_png=tmp_path / "tsne.png", out_json=tmp_path / "tsne.json")
    saved = json.loads((tmp_path / "tsne.json").read_text())
    assert saved == result
    assert saved["classes"] == saved["categories"] == categories
    assert saved["paper_categories"] == ["bear", "building", "cat", "dog", "grass", "mountain", "sky", "water"]
    assert saved["n_classes"] == 6 and saved["n_points"] == 12  # 2 images x 1 crop per category; no plant
    assert "6 category folders" in saved["source"]


def test_stage_is_deterministic_for_a_seed(models, images, tmp_path):
    cfg = config(models, images)
    first = run_tsne(cfg, seed=1, profile="quick", out_png=tmp_path / "a.png", out_json=tmp_path / "a.json")
    second = run_tsne(cfg, seed=1, profile="quick", out_png=tmp_path / "b.png", out_json=tmp_path / "b.json")
    assert first == second
    assert (tmp_path / "a.png").read_bytes() == (tmp_path / "b.png").read_bytes()
