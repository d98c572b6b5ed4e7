from pathlib import Path

import numpy as np
import pytest
import yaml

from conftest import ROOT
from pipeline.data.degradation import RealESRGANDegradation
from pipeline.data.quick import build_quick_sets, load_package_image
from pipeline.data.registry import load_registry
from pipeline.data.synthesize import (bicubic_down, cut_subimages, mod_crop, subimage_starts, synthesize,
                                      write_classical_set, write_distortion_set, write_realworld_set)
from pipeline.fileio import list_images, read_image, write_image


def test_constant_image_stays_constant_and_size_is_exact():
    hr = np.full((37, 50, 3), 173, np.uint8)
    cropped = mod_crop(hr, 4)
    assert cropped.shape == (36, 48, 3)
    lr = bicubic_down(cropped, 4)
    assert lr.shape == (9, 12, 3)
    assert (lr == 173).all()


def test_bicubic_is_antialiased_downscaling():
    rng = np.random.default_rng(0)
    hr = rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)
    lr = bicubic_down(hr, 4).astype(float)
    # A MATLAB antialiased bicubic averages 4x4 blocks (nearly): far smoother than the noise it came from.
    assert lr.std() < hr.std() / 3
    assert abs(lr.mean() - hr.mean()) < 3


def test_subimage_starts_cover_the_image_like_basicsr():
    assert subimage_starts(1000, 480, 240) == [0, 240, 480, 520]
    assert subimage_starts(960, 480, 240) == [0, 240, 480]
    assert subimage_starts(480, 480, 240) == [0]
    assert subimage_starts(100, 480, 240) == [0]  # a short axis gives one crop (of its own length)


def test_subimages_are_aligned(tmp_path):
    rng = np.random.default_rng(1)
    write_image(tmp_path / "src" / "a.png", rng.integers(0, 256, (70, 90, 3), dtype=np.uint8))
    write_classical_set(tmp_path / "src", tmp_path / "set", 4)
    assert cut_subimages(tmp_path / "set", 32, 16, 4) == {"images": 1, "sub-images": 4 * 5, "small images": 0}
    hr, lr = read_image(tmp_path / "set" / "HR" / "a.png"), read_image(tmp_path / "set" / "LR_x4" / "a.png")
    subs = list_images(tmp_path / "set" / "HR_sub")
    last_hr, last_lr = read_image(subs[-1]), read_image(tmp_path / "set" / "LR_x4_sub" / subs[-1].name)
    assert (last_hr == hr[-32:, -32:]).all() and (last_lr == lr[-8:, -8:]).all()


def test_images_smaller_than_the_subimage_still_contribute(tmp_path):
    """An OST-like image shorter than the sub-image size: one crop of its own height, aligned with its LR."""
    rng = np.random.default_rng(2)
    write_image(tmp_path / "src" / "short.png", rng.integers(0, 256, (40, 88, 3), dtype=np.uint8))
    write_image(tmp_path / "src" / "tiny.png", rng.integers(0, 256, (20, 28, 3), dtype=np.uint8))
    write_image(tmp_path / "src" / "big.png", rng.integers(0, 256, (48, 48, 3), dtype=np.uint8))
    write_classical_set(tmp_path / "src", tmp_path / "set", 4)
    counts = cut_subimages(tmp_path / "set", 48, 24, 4)
    # short: rows [0] x columns [0, 24, 40] (88 = 40 + 48); tiny: one 20 x 28 crop; big: one 48 x 48 crop
    assert counts == {"images": 3, "sub-images": 3 + 1 + 1, "small images": 2}
    sizes = {p.name: read_image(p).shape[:2] for p in list_images(tmp_path / "set" / "HR_sub")}
    assert sorted(sizes.values()) == [(20, 28), (40, 48), (40, 48), (40, 48), (48, 48)]
    hr, lr = read_image(tmp_path / "set" / "HR" / "short.png"), read_image(tmp_path / "set" / "LR_x4" / "short.png")
    last = sorted(n for n in sizes if n.startswith("short"))[-1]
    np.testing.assert_array_equal(read_image(tmp_path / "set" / "HR_sub" / last), hr[:, 40:88])
    np.testing.assert_array_equal(read_image(tmp_path / "set" / "LR_x4_sub" / last), lr[:, 10:22])


def test_subimages_refuse_hr_that_is_not_scale_times_lr(tmp_path):
    write_image(tmp_path / "set" / "HR" / "a.png", np.zeros((40, 40, 3), np.uint8))
    write_image(tmp_path / "set" / "LR_x4" / "a.png", np.zeros((9, 10, 3), np.uint8))
    with pytest.raises(ValueError, match=r"a\.png: HR 40x40 must be a multiple of 4 and 4 x its LR 10x9"):
        cut_subimages(tmp_path / "set", 32, 16, 4)


def test_realworld_set_is_deterministic_for_a_seed(tmp_path):
    cfg = yaml.safe_load((ROOT / "params.yaml").read_text())["degradation"]
    degrade = RealESRGANDegradation(cfg, scale=4)
    write_image(tmp_path / "src" / "a.png", (load_package_image("chelsea")[:128, :128]))
    outs = []
    for run, seed in enumerate((3, 3, 4)):
        write_realworld_set(tmp_path / "src", tmp_path / f"out{run}", degrade, 4, seed)
        outs.append(read_image(tmp_path / f"out{run}" / "LR_x4" / "a.png"))
    assert outs[0].shape == (32, 32, 3)
    assert (outs[0] == outs[1]).all() and not (outs[0] == outs[2]).all()


def test_nested_sources_keep_their_images_and_an_empty_source_is_an_error(tmp_path):
    cfg = yaml.safe_load((ROOT / "params.yaml").read_text())["degradation"]
    degrade = RealESRGANDegradation(cfg, scale=4)
    write_image(tmp_path / "src" / "x" / "a.png", load_package_image("chelsea")[:96, :96])
    write_image(tmp_path / "src" / "y" / "a.png", load_package_image("chelsea")[96:192, :96])
    assert write_realworld_set(tmp_path / "src", tmp_path / "rw", degrade, 4, 0) == 2
    assert [p.name for p in list_images(tmp_path / "rw" / "LR_x4")] == ["x_a.png", "y_a.png"]
    assert write_distortion_set(tmp_path / "src", tmp_path / "iqa", {"jpeg": [90, 30]}, degrade, 0) == 4
    (tmp_path / "empty" / "sub").mkdir(parents=True)
    for write in (lambda: write_classical_set(tmp_path / "empty", tmp_path / "c", 4),
                  lambda: write_realworld_set(tmp_path / "empty", tmp_path / "r", degrade, 4, 0)):
        with pytest.raises(FileNotFoundError, match="no images under"):
            write()


def test_quick_sets_refuse_an_image_in_train_and_test(tmp_path):
    with pytest.raises(ValueError, match="held out"):
        build_quick_sets({"train": ["camera"], "test": ["camera"]}, tmp_path)


def test_quick_images_load_from_packages():
    assert load_package_image("moon").shape == (512, 512, 3)  # grey, replicated to RGB
    assert load_package_image("grace_hopper.jpg").shape == (600, 512, 3)


def test_paper_profile_centre_crops_the_real_pairs(tmp_path, monkeypatch):
    """The paper's synthesize config on a stand-in of DRealSR where the registry puts it: 128 px LR centre crops."""
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    cfg = {**params["paper"]["synthesize"], "scale": params["scale"], "sr_sets": [], "train_sets": {}, "real_sets": {},
           "real_pairs": ["DRealSR"], "iqa_sets": []}
    monkeypatch.chdir(tmp_path)
    rng = np.random.default_rng(0)
    lr = rng.integers(0, 256, (130, 140, 3), dtype=np.uint8)
    write_image(Path("data/raw/real_pairs/DRealSR/Test_x4/test_LR/a_x1.png"), lr)  # DRealSR's names: LR _x1, HR _x4
    write_image(Path("data/raw/real_pairs/DRealSR/Test_x4/test_HR/a_x4.png"), np.repeat(np.repeat(lr, 4, 0), 4, 1))
    counts = synthesize("real_pairs", cfg, 0, params["degradation"], load_registry(ROOT / "data/registry.yaml"),
                        Path("sets"), Path("data/raw/real_pairs/quick"))
    assert counts == {"DRealSR": 1}
    lr_out, hr_out = read_image("sets/DRealSR/LR_x4/a.png"), read_image("sets/DRealSR/HR/a.png")
    np.testing.assert_array_equal(lr_out, lr[1:129, 6:134])
    assert hr_out.shape == (512, 512, 3)
    np.testing.assert_array_equal(hr_out[::4, ::4], lr_out)
