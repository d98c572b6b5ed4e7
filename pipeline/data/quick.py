"""The quick profile's mini datasets, built offline from images that ship inside installed packages.

Names are `skimage.data` functions (e.g. `astronaut`) or files of matplotlib's sample data (e.g.
`grace_hopper.jpg`). Grey images are replicated to RGB so every set is 3-channel.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from pipeline.data.registry import group_folder
from pipeline.fileio import read_image, write_image


def quick_root(group: str) -> Path:
    """Where the download stage writes a data group's bundled sets in the quick profile."""
    return group_folder(group) / "quick"


def load_package_image(name: str) -> np.ndarray:
    """An H x W x 3 uint8 image from scikit-image's or matplotlib's bundled sample data."""
    if "." in name:
        from matplotlib import cbook

        with cbook.get_sample_data(name) as f:
            return read_image(f)
    import skimage.data

    loader = getattr(skimage.data, name, None)
    if loader is None:
        raise ValueError(f"skimage.data has no image `{name}`")
    img = np.asarray(loader())
    if img.dtype != np.uint8:
        raise ValueError(f"skimage.data.{name} is {img.dtype}, not an 8-bit image")
    if img.ndim == 2:
        img = np.repeat(img[..., None], 3, axis=2)
    return np.ascontiguousarray(img[..., :3])


def build_quick_sets(sets: dict[str, list[str]], out_root: Path) -> dict[str, int]:
    """Write each set's images as `out_root/<set>/<name>.png`; a name may belong to one set only."""
    seen: dict[str, str] = {}
    for set_name, names in sets.items():
        for name in names:
            if name in seen:
                raise ValueError(f"image `{name}` is in both {seen[name]} and {set_name}: test sets must be held out")
            seen[name] = set_name
    for set_name, names in sets.items():
        for name in names:
            write_image(out_root / set_name / f"{Path(name).stem}.png", load_package_image(name))
    return {set_name: len(names) for set_name, names in sets.items()}
