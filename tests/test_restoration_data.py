"""Table 5 data: Rain100L and GoPro read in their upstream layouts; the quick profile's synthetic rain and blur."""
import copy
import zipfile
from pathlib import Path

import cv2
import numpy as np
import pytest

import paper_standins as standins
from pipeline.data.registry import RESTORATION_FORMATS, load_registry, validate_entry
from pipeline.data.restoration import (LAYOUTS, collect_restoration_pairs, synthetic_motion_blur, synthetic_rain,
                                       write_synthetic_pairs)
from pipeline.data.synthesize import find_source
from pipeline.fileio import read_image, write_image

REGISTRY = Path(__file__).resolve().parents[1] / "data/registry.yaml"
NO_QUICK = Path("no-quick-sets")


@pytest.fixture(scope="module")
def registry():
    return load_registry(REGISTRY)


def _image(rng, h=24, w=32):
    return rng.integers(0, 256, (h, w, 3), dtype=np.uint8)


def _psnr(a, b):
    return 10 * np.log10(255.0 ** 2 / np.mean((a.astype(np.float64) - b) ** 2))


def _laplacian_var(img):
    return cv2.Laplacian(img.astype(np.float64).mean(axis=2), cv2.CV_64F).var()


def _bright(img):
    return int((img.min(axis=2) > 200).sum())


def _texture(h=64, w=80):
    """A mid-grey image with fine detail everywhere, so that blur and bright streaks both show."""
    return np.clip(128 + np.random.default_rng(7).normal(0, 30, (h, w, 3)), 0, 255).astype(np.uint8)


def _place_rain100l(root: Path, rng) -> dict[str, np.ndarray]:
    """PReNet's layout: RainTrainL/norain-<i>.png + rain-<i>.png (+ JORDER masks), Rain100L/norain-<iii>.png +
    Rain100L/rainy/rain-<iii>.png. Returns each written image by its path relative to `root`."""
    written = {}
    for i in (1, 2):
        for role in ("norain", "rain", "rainstreak", "rainregion"):
            written[f"RainTrainL/{role}-{i}.png"] = _image(rng)
        written[f"Rain100L/norain-{i:03d}.png"] = _image(rng)
        written[f"Rain100L/rainy/rain-{i:03d}.png"] = _image(rng)
    for rel, img in written.items():
        write_image(root / rel, img)
    return written


def _place_gopro(root: Path, rng) -> dict[str, np.ndarray]:
    """GOPRO_Large: <split>/<sequence>/{blur,blur_gamma,sharp}/<frame>.png."""
    written = {}
    for split, frames in standins.GOPRO_FRAMES.items():
        for sequence, frame in frames:
            for role in ("blur", "blur_gamma", "sharp"):
                written[f"{split}/{sequence}/{role}/{frame}.png"] = _image(rng)
    for rel, img in written.items():
        write_image(root / rel, img)
    return written


def _collect(name, registry, out):
    src = find_source(name, registry, NO_QUICK)
    return collect_restoration_pairs(src["format"], src, out / name)


def _outputs(out: Path) -> tuple[list[str], list[str]]:
    return sorted(p.name for p in (out / "HR").iterdir()), sorted(p.name for p in (out / "LR_x1").iterdir())


def test_rain100l_pairs_clean_to_hr_and_rainy_to_lr(tmp_path, monkeypatch, registry):
    monkeypatch.chdir(tmp_path)
    written = _place_rain100l(Path(registry["Rain100L"]["target"]), np.random.default_rng(0))
    assert _collect("Rain100L_train", registry, tmp_path / "out") == 2
    assert _collect("Rain100L", registry, tmp_path / "out") == 2
    train, test = tmp_path / "out/Rain100L_train", tmp_path / "out/Rain100L"
    assert _outputs(train) == (["1.png", "2.png"], ["1.png", "2.png"])  # the rain masks are not pairs
    assert _outputs(test) == (["001.png", "002.png"], ["001.png", "002.png"])
    for i in (1, 2):
        assert np.array_equal(read_image(train / f"HR/{i}.png"), written[f"RainTrainL/norain-{i}.png"])
        assert np.array_equal(read_image(train / f"LR_x1/{i}.png"), written[f"RainTrainL/rain-{i}.png"])
        assert np.array_equal(read_image(test / f"HR/{i:03d}.png"), written[f"Rain100L/norain-{i:03d}.png"])
        assert np.array_equal(read_image(test / f"LR_x1/{i:03d}.png"), written[f"Rain100L/rainy/rain-{i:03d}.png"])


def test_gopro_pairs_sharp_to_hr_and_blur_not_blur_gamma_to_lr(tmp_path, monkeypatch, registry):
    monkeypatch.chdir(tmp_path)
    written = _place_gopro(Path(registry["GoPro"]["target"]), np.random.default_rng(1))
    assert _collect("GoPro_train", registry, tmp_path / "out") == 2
    assert _collect("GoPro", registry, tmp_path / "out") == 2
    test = tmp_path / "out/GoPro"
    keys = ["GOPR0384_11_00_000001.png", "GOPR0384_11_05_004001.png"]
    assert _outputs(test) == (keys, keys)
    assert _outputs(tmp_path / "out/GoPro_train")[0] == ["GOPR0372_07_00_000048.png", "GOPR0372_07_00_000076.png"]
    lr = read_image(test / "LR_x1/GOPR0384_11_05_004001.png")
    assert np.array_equal(read_image(test / "HR/GOPR0384_11_05_004001.png"),
                          written["test/GOPR0384_11_05/sharp/004001.png"])
    assert np.array_equal(lr, written["test/GOPR0384_11_05/blur/004001.png"])
    assert not np.array_equal(lr, written["test/GOPR0384_11_05/blur_gamma/004001.png"])


def test_a_missing_partner_is_named(tmp_path):
    _place_rain100l(tmp_path, np.random.default_rng(2))
    (tmp_path / "RainTrainL/rain-2.png").unlink()
    with pytest.raises(ValueError, match=r"no clean/degraded partner: .*RainTrainL/norain-2\.png"):
        collect_restoration_pairs("rain100l", {"hr": tmp_path / "RainTrainL"}, tmp_path / "out")
    (tmp_path / "Rain100L/norain-001.png").unlink()  # a rainy test image without its clean one
    with pytest.raises(ValueError, match=r"rainy/rain-001\.png"):
        collect_restoration_pairs("rain100l", {"hr": tmp_path / "Rain100L", "lr": tmp_path / "Rain100L/rainy"},
                                  tmp_path / "out")
    _place_gopro(tmp_path / "gopro", np.random.default_rng(3))
    (tmp_path / "gopro/test/GOPR0384_11_00/blur/000001.png").unlink()
    with pytest.raises(ValueError, match=r"GOPR0384_11_00/sharp/000001\.png"):
        collect_restoration_pairs("gopro", {"hr": tmp_path / "gopro/test"}, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_a_size_mismatch_is_named_and_nothing_is_written(tmp_path):
    _place_gopro(tmp_path, np.random.default_rng(4))
    write_image(tmp_path / "train/GOPR0372_07_00/blur/000076.png", _image(np.random.default_rng(5), 24, 30))
    with pytest.raises(ValueError, match=r"blur/000076\.png is 30x24, its clean image .*sharp/000076\.png 32x24"):
        collect_restoration_pairs("gopro", {"hr": tmp_path / "train"}, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_unknown_layout_empty_or_missing_folders_are_refused(tmp_path):
    with pytest.raises(ValueError, match="unknown restoration layout 'rain100h'"):
        collect_restoration_pairs("rain100h", {"hr": tmp_path}, tmp_path / "out")
    with pytest.raises(ValueError, match="no image pairs under"):
        collect_restoration_pairs("gopro", {"hr": tmp_path}, tmp_path / "out")
    with pytest.raises(FileNotFoundError, match="RainTrainL"):
        collect_restoration_pairs("rain100l", {"hr": tmp_path / "RainTrainL"}, tmp_path / "out")


def test_registry_formats_are_the_readers_and_are_validated(registry):
    assert set(RESTORATION_FORMATS) == set(LAYOUTS)
    entry = copy.deepcopy(registry["GoPro"])
    entry["provides"]["GoPro"]["format"] = "gopro_gamma"
    with pytest.raises(ValueError, match=r"'g': field 'provides\.GoPro\.format' must be one of"):
        validate_entry("g", entry)
    entry["provides"]["GoPro"] = {"format": "gopro", "hr": "test", "pattern": "*"}
    with pytest.raises(ValueError, match=r"'g': field 'provides\.GoPro' restoration pairs need format, hr"):
        validate_entry("g", entry)


def test_paper_standins_are_read_through_the_registry(tmp_path, monkeypatch, registry):
    """The rehearsal's stand-ins (GOPRO_Large.zip in the mirror, Rain100L placed by hand) fill what the registry
    provides, two pairs per set."""
    monkeypatch.chdir(tmp_path)
    rng = np.random.default_rng(standins.RNG_SEED)
    standins.restore_datasets(tmp_path / "mirror", rng)
    standins.place_rain100l(tmp_path, rng)
    with zipfile.ZipFile(tmp_path / "mirror/GoPro/GOPRO_Large.zip") as zf:
        zf.extractall(registry["GoPro"]["target"])
    for name in ("Rain100L_train", "Rain100L", "GoPro_train", "GoPro"):
        assert _collect(name, registry, tmp_path / "out") == 2, name


def test_synthetic_rain_is_seeded_thin_bright_streaks():
    clean = _texture()
    rainy = synthetic_rain(clean, np.random.default_rng([0, 0]))
    assert rainy.shape == clean.shape and rainy.dtype == np.uint8
    assert np.array_equal(rainy, synthetic_rain(clean, np.random.default_rng([0, 0])))
    assert not np.array_equal(rainy, synthetic_rain(clean, np.random.default_rng([1, 0])))
    assert np.all(rainy >= clean)  # screened on: rain only brightens
    assert _bright(rainy) > _bright(clean) + 20
    assert 15 < _psnr(rainy, clean) < 35
    changed = (rainy != clean).any(axis=2).mean()
    assert 0.01 < changed < 0.5  # sparse streaks, not a veil over the image


def test_synthetic_motion_blur_is_seeded_removes_detail_and_keeps_flat_flat():
    sharp = _texture()
    blurred = synthetic_motion_blur(sharp, np.random.default_rng([0, 0]))
    assert blurred.shape == sharp.shape and blurred.dtype == np.uint8
    assert np.array_equal(blurred, synthetic_motion_blur(sharp, np.random.default_rng([0, 0])))
    assert not np.array_equal(blurred, synthetic_motion_blur(sharp, np.random.default_rng([1, 0])))
    for seed in range(5):
        blurred = synthetic_motion_blur(sharp, np.random.default_rng([seed, 0]))
        assert _laplacian_var(blurred) < _laplacian_var(sharp) / 5, seed
        assert abs(blurred.astype(np.float64).mean() - sharp.mean()) < 1.0  # the kernel sums to 1
    flat = np.full((40, 56, 3), (30, 128, 250), np.uint8)
    assert np.array_equal(synthetic_motion_blur(flat, np.random.default_rng(3)), flat)


def test_synthetic_degradations_need_rgb_uint8():
    with pytest.raises(ValueError, match="H x W x 3 uint8"):
        synthetic_rain(np.zeros((8, 8), np.uint8), np.random.default_rng(0))
    with pytest.raises(ValueError, match="H x W x 3 uint8"):
        synthetic_motion_blur(np.zeros((8, 8, 3)), np.random.default_rng(0))


@pytest.mark.parametrize("kind, degrade", [("rain", synthetic_rain), ("blur", synthetic_motion_blur)])
def test_write_synthetic_pairs_seeds_each_image_by_its_index(tmp_path, kind, degrade):
    rng = np.random.default_rng(8)
    clean = {name: np.clip(_image(rng, 40, 48).astype(np.int16) // 2 + 64, 0, 255).astype(np.uint8)
             for name in ("a", "b", "c")}
    for name, img in clean.items():
        write_image(tmp_path / "src" / f"{name}.png", img)
    assert write_synthetic_pairs(tmp_path / "src", tmp_path / "out", kind, seed=5) == 3
    assert _outputs(tmp_path / "out") == (["a.png", "b.png", "c.png"],) * 2
    for index, name in enumerate(("a", "b", "c")):
        assert np.array_equal(read_image(tmp_path / f"out/HR/{name}.png"), clean[name])
        assert np.array_equal(read_image(tmp_path / f"out/LR_x1/{name}.png"),
                              degrade(clean[name], np.random.default_rng([5, index])))
    write_synthetic_pairs(tmp_path / "src", tmp_path / "other", kind, seed=6)
    assert not np.array_equal(read_image(tmp_path / "other/LR_x1/b.png"), read_image(tmp_path / "out/LR_x1/b.png"))


def test_write_synthetic_pairs_refuses_bad_input(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="no images in"):
        write_synthetic_pairs(tmp_path / "empty", tmp_path / "out", "rain", 0)
    with pytest.raises(ValueError, match="unknown synthetic degradation 'snow'"):
        write_synthetic_pairs(tmp_path / "empty", tmp_path / "out", "snow", 0)
