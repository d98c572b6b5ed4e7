"""Real HR/LR pairing on tiny stand-ins of the RealSR V3 and DRealSR folder layouts and file names."""
import numpy as np
import pytest

from pipeline.data.real_pairs import collect_real_pairs, find_real_pairs
from pipeline.fileio import read_image, write_image

REALSR = {"hr_suffix": "_HR", "lr_suffix": "_LR4"}  # RealSR V3: Canon_001_HR.png beside Canon_001_LR4.png
DREALSR = {"hr_suffix": "_x4", "lr_suffix": "_x1"}  # DRealSR: test_HR/Canon_10_x4.png, test_LR/Canon_10_x1.png


def _pair(hr_path, lr_path, lr_hw, extra=(0, 0), seed=0):
    """Write an LR image and an HR image `extra` pixels larger than 4 x LR; return the HR array."""
    rng = np.random.default_rng(seed)
    hr = rng.integers(0, 256, (4 * lr_hw[0] + extra[0], 4 * lr_hw[1] + extra[1], 3), dtype=np.uint8)
    write_image(hr_path, hr)
    write_image(lr_path, rng.integers(0, 256, (*lr_hw, 3), dtype=np.uint8))
    return hr


def test_realsr_v3_layout(tmp_path):
    root = tmp_path / "RealSR(V3)"
    hrs = {}
    for seed, camera in enumerate(("Canon", "Nikon")):
        folder = root / camera / "Test" / "4"
        hrs[f"{camera}_001"] = _pair(folder / f"{camera}_001_HR.png", folder / f"{camera}_001_LR4.png",
                                     (5, 7), extra=(3, 2), seed=seed)
        # The x2 test pairs must stay out of a x4 collection.
        _pair(root / camera / "Test" / "2" / f"{camera}_001_HR.png",
              root / camera / "Test" / "2" / f"{camera}_001_LR2.png", (9, 9))
    out = tmp_path / "out"
    assert collect_real_pairs(root, None, out, **REALSR, scale=4, pattern="*/Test/4/*") == 2
    assert sorted(p.name for p in (out / "HR").iterdir()) == ["Canon_001.png", "Nikon_001.png"]
    assert sorted(p.name for p in (out / "LR_x4").iterdir()) == ["Canon_001.png", "Nikon_001.png"]
    for key, hr in hrs.items():
        lr = read_image(out / "LR_x4" / f"{key}.png")
        assert lr.shape == (5, 7, 3)
        np.testing.assert_array_equal(read_image(out / "HR" / f"{key}.png"), hr[:20, :28])


def test_drealsr_layout(tmp_path):
    root = tmp_path / "Test_x4"
    hrs = {key: _pair(root / "test_HR" / f"{key}_x4.png", root / "test_LR" / f"{key}_x1.png", (4, 6), seed=seed)
           for seed, key in enumerate(["Canon_10", "panasonic_103"])}
    pairs = find_real_pairs(root / "test_HR", root / "test_LR", **DREALSR)
    assert {k: (hr.name, lr.name) for k, (hr, lr) in pairs.items()} == {
        "Canon_10": ("Canon_10_x4.png", "Canon_10_x1.png"),
        "panasonic_103": ("panasonic_103_x4.png", "panasonic_103_x1.png")}
    assert collect_real_pairs(root / "test_HR", root / "test_LR", tmp_path / "out", **DREALSR) == 2
    np.testing.assert_array_equal(read_image(tmp_path / "out" / "HR" / "Canon_10.png"), hrs["Canon_10"])
    assert read_image(tmp_path / "out" / "LR_x4" / "panasonic_103.png").shape == (4, 6, 3)


def test_drealsr_with_suffixes_swapped_names_the_file(tmp_path):
    """The old guess (HR `_x1`, LR `_x4`) on DRealSR's real names: the first HR file is named as not an HR file."""
    root = tmp_path / "Test_x4"
    _pair(root / "test_HR" / "Canon_10_x4.png", root / "test_LR" / "Canon_10_x1.png", (4, 4))
    with pytest.raises(ValueError, match=r"Canon_10_x4\.png: expected a HR file name ending in `_x1`"):
        find_real_pairs(root / "test_HR", root / "test_LR", hr_suffix="_x1", lr_suffix="_x4")


def test_unpaired_files_are_listed(tmp_path):
    root = tmp_path / "Test_x4"
    _pair(root / "test_HR" / "a_x4.png", root / "test_LR" / "a_x1.png", (4, 4))
    _pair(root / "test_HR" / "b_x4.png", root / "test_LR" / "c_x1.png", (4, 4))
    with pytest.raises(ValueError, match=r"2 files have no HR/LR partner: .*b_x4\.png.*c_x1\.png"):
        collect_real_pairs(root / "test_HR", root / "test_LR", tmp_path / "out", **DREALSR)
    assert not (tmp_path / "out").exists()


def test_hr_smaller_than_scale_times_lr_is_an_error(tmp_path):
    folder = tmp_path / "Canon" / "Test" / "4"
    _pair(folder / "Canon_001_HR.png", folder / "Canon_001_LR4.png", (5, 5))
    write_image(folder / "Canon_002_HR.png", np.zeros((20, 20, 3), np.uint8))
    write_image(folder / "Canon_002_LR4.png", np.zeros((20, 20, 3), np.uint8))  # RealSR V1/V2: LR at HR size
    with pytest.raises(ValueError, match=r"1 pairs cannot be used: \['Canon_002: HR 20x20 is smaller than 4 x LR"):
        collect_real_pairs(tmp_path, None, tmp_path / "out", **REALSR)


def test_centre_crop_keeps_lr_and_hr_aligned(tmp_path):
    root = tmp_path / "Test_x4"
    rng = np.random.default_rng(0)
    lr = rng.integers(0, 256, (9, 12, 3), dtype=np.uint8)
    hr = np.repeat(np.repeat(lr, 4, axis=0), 4, axis=1)  # HR pixel (y, x) is LR pixel (y // 4, x // 4)
    write_image(root / "test_HR" / "a_x4.png", np.pad(hr, ((0, 3), (0, 1), (0, 0))))  # a few spare HR rows/cols
    write_image(root / "test_LR" / "a_x1.png", lr)
    assert collect_real_pairs(root / "test_HR", root / "test_LR", tmp_path / "out", **DREALSR, lr_crop=4) == 1
    lr_out, hr_out = read_image(tmp_path / "out" / "LR_x4" / "a.png"), read_image(tmp_path / "out" / "HR" / "a.png")
    np.testing.assert_array_equal(lr_out, lr[2:6, 4:8])  # (9 - 4) // 2, (12 - 4) // 2
    np.testing.assert_array_equal(hr_out, hr[8:24, 16:32])
    with pytest.raises(ValueError, match=r"a: LR 12x9 is smaller than the 10 px centre crop"):
        collect_real_pairs(root / "test_HR", root / "test_LR", tmp_path / "out2", **DREALSR, lr_crop=10)


def test_same_folder_file_without_role_suffix_is_an_error(tmp_path):
    folder = tmp_path / "Canon" / "Test" / "4"
    _pair(folder / "Canon_001_HR.png", folder / "Canon_001_LR4.png", (5, 5))
    write_image(folder / "Canon_001.png", np.zeros((8, 8, 3), np.uint8))
    with pytest.raises(ValueError, match=r"neither HR \(`_HR`\) nor LR \(`_LR4`\): \['Canon_001\.png'\]"):
        find_real_pairs(tmp_path, None, **REALSR)
    with pytest.raises(ValueError, match="cannot tell files in one folder apart"):
        find_real_pairs(tmp_path, None, hr_suffix="_x4", lr_suffix="4")
