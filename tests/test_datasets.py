"""PairedPatches on sub-images smaller than the patch: HR-only crops pad as Real-ESRGAN, paired patches refuse."""
import cv2
import numpy as np
import pytest

from pipeline.data.datasets import PairedPatches
from pipeline.fileio import write_image


def _set(root, hr_hw, seed=0):
    rng = np.random.default_rng(seed)
    hr = rng.integers(0, 256, (*hr_hw, 3), dtype=np.uint8)
    write_image(root / "HR_sub" / "a_s000001.png", hr)
    write_image(root / "LR_x4_sub" / "a_s000001.png", hr[::4, ::4])
    return hr


def test_hr_only_pads_a_small_subimage_with_reflect_101_at_bottom_right(tmp_path):
    hr = _set(tmp_path, (10, 12))  # smaller than the 16 px crop both ways: padding leaves one crop position
    # Real-ESRGAN: cv2.copyMakeBorder(img, 0, pad_h, 0, pad_w, cv2.BORDER_REFLECT_101) before its random crop
    padded = cv2.copyMakeBorder(hr, 0, 6, 0, 4, cv2.BORDER_REFLECT_101)
    edge = np.pad(hr, ((0, 6), (0, 4), (0, 0)), mode="edge")
    data = PairedPatches([tmp_path], patch=16, seed=3)
    for epoch in range(4):
        patch = data[(epoch, 0)]["hr"]
        assert patch.shape == (3, 16, 16)
        img = np.rint(patch.permute(1, 2, 0).numpy() * 255).astype(np.uint8)
        # the patch is the padded image under the random flip/rotation of `augment`
        assert any(np.array_equal(img, np.rot90(v, k)) for v in (padded, padded[:, ::-1]) for k in range(4))
        assert not any(np.array_equal(img, np.rot90(v, k)) for v in (edge, edge[:, ::-1]) for k in range(4))
    # sampling stays a pure function of (seed, epoch, index)
    again = PairedPatches([tmp_path], patch=16, seed=3)[(2, 0)]["hr"]
    np.testing.assert_array_equal(data[(2, 0)]["hr"].numpy(), again.numpy())


def test_paired_patches_refuse_a_subimage_smaller_than_the_patch(tmp_path):
    _set(tmp_path, (12, 40))
    data = PairedPatches([tmp_path], patch=16, lr_dir="LR_x4_sub")
    with pytest.raises(ValueError, match=r"a_s000001\.png: sub-image 40x12 is smaller than the 16 px patch"):
        data[(0, 0)]


def test_without_rotate_the_hr_crops_are_only_flipped(tmp_path):
    """Real-ESRGAN's real-world recipe (use_hflip true, use_rot false): every crop of a full-size sub-image is the
    image itself or its mirror, never a rotation; with rotations (the classical recipe) some are rotated."""
    img = np.random.default_rng(0).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    write_image(tmp_path / "set" / "HR_sub" / "a.png", img)
    views = {"same": img, "flipped": img[:, ::-1]}

    def kinds(rotate: bool) -> set[str]:
        data = PairedPatches([tmp_path / "set"], 32, seed=1, rotate=rotate)
        out = set()
        for epoch in range(24):
            hr = (data[(epoch, 0)]["hr"].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
            out.add(next((k for k, v in views.items() if np.array_equal(hr, v)), "rotated"))
        return out

    assert kinds(rotate=False) == {"same", "flipped"}
    assert "rotated" in kinds(rotate=True)
