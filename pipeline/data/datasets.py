"""Training datasets: random aligned patches from the sub-images `synthesize` writes."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from pipeline.fileio import list_images, read_image
from pipeline.tensor_image import to_tensor


def augment(arrays: list[np.ndarray], rng: np.random.Generator, rotate: bool = True) -> list[np.ndarray]:
    """The same random horizontal flip and (with `rotate`) 90-degree rotation for every array (BasicSR's
    `augment`, use_hflip and use_rot)."""
    flip = rng.random() < 0.5
    rot = int(rng.integers(4)) if rotate else 0
    return [np.ascontiguousarray(np.rot90(a[:, ::-1] if flip else a, rot)) for a in arrays]


class PairedPatches(Dataset):
    """Aligned (LR, HR) patches from the `HR_sub` (and `lr_dir`) sub-images of one or more training sets: HR
    `patch` px, LR `patch / scale` px, cropped at the same place; without `lr_dir`, HR patches only (the
    real-world run's crops, which the degradation turns into LR), and a sub-image smaller than `patch` is padded
    to it as Real-ESRGAN does. Paired patches never pad: a smaller sub-image is an error.

    Items are fetched by (epoch, index) keys (`trainer.SeededBatches`) and sampling is a pure function of
    (seed, epoch, index), so a resumed run sees the same patches as an uninterrupted one with any number of
    DataLoader workers. `rotate`: 90-degree rotations besides horizontal flips (BasicSR's classical recipe);
    Real-ESRGAN's real-world recipe flips only.
    """

    def __init__(self, set_dirs: list[Path], patch: int, scale: int = 4, lr_dir: str | None = None, seed: int = 0,
                 rotate: bool = True):
        self.hr_paths = [p for d in set_dirs for p in list_images(Path(d) / "HR_sub")]
        if not self.hr_paths:
            raise FileNotFoundError(f"no training sub-images in {[str(d) for d in set_dirs]}: run `synthesize`")
        self.lr_dir = lr_dir
        self.patch, self.scale, self.seed, self.rotate = patch, scale, seed, rotate

    def __len__(self) -> int:
        return len(self.hr_paths)

    def __getitem__(self, key: tuple[int, int]) -> dict[str, torch.Tensor]:
        epoch, index = key
        rng = np.random.default_rng([self.seed, epoch, index])
        path = self.hr_paths[index]
        hr = read_image(path)
        size, lsize = self.patch, self.patch // self.scale
        if hr.shape[0] < size or hr.shape[1] < size:
            if self.lr_dir is not None:
                raise ValueError(f"{path}: sub-image {hr.shape[1]}x{hr.shape[0]} is smaller than the {size} px patch")
            # Real-ESRGAN pads a small HR image to its 400 px crop with reflect-101 at the bottom/right
            # (xinntao/Real-ESRGAN realesrgan/data/realesrgan_dataset.py, cv2.BORDER_REFLECT_101; numpy's "reflect")
            pad_y, pad_x = max(0, size - hr.shape[0]), max(0, size - hr.shape[1])
            hr = np.pad(hr, ((0, pad_y), (0, pad_x), (0, 0)), mode="reflect")
        y = int(rng.integers(hr.shape[0] // self.scale - lsize + 1))
        x = int(rng.integers(hr.shape[1] // self.scale - lsize + 1))
        hr = hr[y * self.scale : y * self.scale + size, x * self.scale : x * self.scale + size]
        if self.lr_dir is None:
            (hr,) = augment([hr], rng, self.rotate)
            return {"hr": to_tensor(hr)[0]}
        lr = read_image(path.parent.parent / self.lr_dir / path.name)[y : y + lsize, x : x + lsize]
        lr, hr = augment([lr, hr], rng, self.rotate)
        return {"lr": to_tensor(lr)[0], "hr": to_tensor(hr)[0]}
