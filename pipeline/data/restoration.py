"""Deraining and deblurring pairs for Table 5 (NAFNet on Rain100L and GoPro, scale 1).

A set is written as `<out>/HR/<key>.png` (the clean ground truth) and `<out>/LR_x1/<key>.png` (the rainy or
blurred input, the same size): the layout of the SR sets, with the input at scale 1.

`collect_restoration_pairs` reads a set in its upstream layout; `src` is what synthesize.find_source makes of the
registry's `provides` (`format` = the layout, `hr` and an optional `lr` joined to the target; without `lr` the
inputs lie under `hr` too):
- `rain100l`: Rain100L (Yang et al. CVPR 2017), the original 200/100 release as csdwren/PReNet redistributes it
  (names from its DerainDataset.py, statistic/statistic_rain100L.m and test_Rain100L.sh, commit 6d908d1e):
  training `RainTrainL/norain-<i>.png` beside the rainy `rain-<i>.png` (i = 1..200; the JORDER masks
  `rainstreak-<i>.png` and `rainregion-<i>.png` lie there too, PReNet issue #32, and are skipped); test
  `Rain100L/norain-<iii>.png` with the rainy `Rain100L/rainy/rain-<iii>.png` (iii = 001..100). Key: the number
  as written.
- `gopro`: GOPRO_Large (Nah et al. CVPR 2017; SeungjunNah/DeepDeblur_release README and code/data.lua)
  `<split>/<sequence>/{blur,blur_gamma,sharp}/<frame>.png`, blur and sharp sharing the frame name. The input is
  `blur/`, from which MPRNet built the GoPro set that NAFNet trains and tests on (swz30/MPRNet issues #24, #75;
  NAFNet docs/GoPro.md), not DeepDeblur's own `blur_gamma/`. Key: `<sequence>_<frame>`, as MIMO-UNet's
  data/preprocessing.py flattens the set.

For the offline quick profile, `write_synthetic_pairs` degrades bundled clean images with `synthetic_rain`
(Rain100L-like thin streaks) or `synthetic_motion_blur` (a random camera-shake kernel).
"""
from __future__ import annotations

import re
from pathlib import Path

import cv2
import numpy as np
from PIL import Image
from tqdm import tqdm

from pipeline.fileio import list_images, read_image, write_image

LR_FOLDER = "LR_x1"  # the input at scale 1, named as the SR sets' LR_x4

RAIN_DENSITY = (0.001, 0.003)  # streak seeds per pixel: sparse light rain (inputs at 25-31 dB PSNR on 512 px photos)
RAIN_LENGTH = (8.0, 20.0)  # streak length, px
RAIN_TILT = 20.0  # largest angle of the streaks from vertical, degrees (one angle per image)
RAIN_BRIGHTNESS = (0.6, 1.0)  # brightness of one seed on 0..1
RAIN_OPACITY = (0.5, 0.8)  # weight of the streak layer, screened onto the image (brightens, never darkens)

BLUR_LENGTH = (5.0, 15.0)  # length of the camera path, px
BLUR_CURVED_PROB = 0.5  # chance that the path bends instead of being straight
BLUR_BEND = 0.15  # largest sideways bow at the path's middle, as a fraction of its length

SAMPLES_PER_PX = 4  # points drawn per px of path, so that the drawn path has no gaps


def _numbered(folder: Path, prefix: str) -> dict[str, Path]:
    """Number (as written) -> image `<prefix><number>.<ext>` in `folder`; other files are not this role's."""
    if not folder.is_dir():
        raise FileNotFoundError(f"folder not found: {folder}")
    pattern = re.compile(rf"{re.escape(prefix)}(\d+)")
    found: dict[str, Path] = {}
    for path in list_images(folder):
        match = pattern.fullmatch(path.stem)
        if match is None:
            continue
        if match.group(1) in found:
            raise ValueError(f"two images share the number {match.group(1)}: {found[match.group(1)]} and {path}")
        found[match.group(1)] = path
    return found


def _paired(clean: dict[str, Path], degraded: dict[str, Path], root: Path) -> dict[str, tuple[Path, Path]]:
    unpaired = [str(clean[k]) for k in sorted(clean.keys() - degraded.keys())]
    unpaired += [str(degraded[k]) for k in sorted(degraded.keys() - clean.keys())]
    if unpaired:
        raise ValueError(f"{len(unpaired)} files have no clean/degraded partner: {unpaired[:10]}")
    if not clean:
        raise ValueError(f"no image pairs under {root}")
    return {k: (clean[k], degraded[k]) for k in sorted(clean)}


def _rain100l_pairs(hr_root: Path, lr_root: Path) -> dict[str, tuple[Path, Path]]:
    return _paired(_numbered(hr_root, "norain-"), _numbered(lr_root, "rain-"), hr_root)


def _gopro_pairs(hr_root: Path, lr_root: Path) -> dict[str, tuple[Path, Path]]:
    for root in (hr_root, lr_root):
        if not root.is_dir():
            raise FileNotFoundError(f"folder not found: {root}")
    sharp, blur = {}, {}
    for sequence in sorted({p.name for root in (hr_root, lr_root) for p in root.iterdir() if p.is_dir()}):
        for role, root, found in (("sharp", hr_root, sharp), ("blur", lr_root, blur)):
            images = root / sequence / role
            found.update({f"{sequence}_{p.stem}": p for p in (list_images(images) if images.is_dir() else [])})
    return _paired(sharp, blur, hr_root)


# Upstream layout -> reader of its (clean, degraded) pairs by key; the registry's `format` of restoration pairs
# (pipeline.data.registry.RESTORATION_FORMATS).
LAYOUTS = {"rain100l": _rain100l_pairs, "gopro": _gopro_pairs}


def collect_restoration_pairs(layout: str, src: dict, out: Path) -> int:
    """Write every pair of a set in its upstream `layout` as `out/HR/<key>.png` (clean) and `out/LR_x1/<key>.png`
    (rainy or blurred); returns the number of pairs. Nothing is written unless every pair is complete and the
    two images of each have the same size."""
    if layout not in LAYOUTS:
        raise ValueError(f"unknown restoration layout {layout!r}; expected one of {tuple(LAYOUTS)}")
    hr_root = Path(src["hr"])
    pairs = LAYOUTS[layout](hr_root, Path(src.get("lr", hr_root)))
    problems = []
    for clean_path, degraded_path in pairs.values():
        with Image.open(clean_path) as clean, Image.open(degraded_path) as degraded:
            if clean.size != degraded.size:
                problems.append(f"{degraded_path} is {degraded.width}x{degraded.height}, its clean image "
                                f"{clean_path} {clean.width}x{clean.height}")
    if problems:
        raise ValueError(f"{len(problems)} pairs differ in size: {problems[:10]}")
    out = Path(out)
    for key, (clean_path, degraded_path) in tqdm(pairs.items(), desc=f"{layout} pairs {out.name}", unit="pair"):
        write_image(out / "HR" / f"{key}.png", read_image(clean_path))
        write_image(out / LR_FOLDER / f"{key}.png", read_image(degraded_path))
    return len(pairs)


# --- offline stand-ins ------------------------------------------------------------------------------------

def _check_rgb(img: np.ndarray) -> None:
    if img.dtype != np.uint8 or img.ndim != 3 or img.shape[2] != 3:
        raise ValueError(f"expected an H x W x 3 uint8 image, got {img.dtype} {img.shape}")


def _path_kernel(length: float, angle: float, bend: float) -> np.ndarray:
    """A 1 px wide path of `length` px at `angle` degrees (0: along +x, 90: along +y, i.e. down), bowed sideways by
    `bend` x length at its middle (a parabola), drawn with bilinear weights into an odd square kernel whose centre
    is the path's centroid (so filtering does not shift the image)."""
    t = np.linspace(-0.5, 0.5, max(int(np.ceil(length * SAMPLES_PER_PX)), 2))
    a = np.deg2rad(angle)
    points = np.outer(t * length, (np.cos(a), np.sin(a))) + np.outer(bend * length * (1 - 4 * t ** 2),
                                                                      (-np.sin(a), np.cos(a)))
    points -= points.mean(axis=0)
    radius = int(np.ceil(np.abs(points).max())) + 1
    kernel = np.zeros((2 * radius + 1, 2 * radius + 1))
    x, y = points[:, 0] + radius, points[:, 1] + radius
    x0, y0 = np.floor(x).astype(int), np.floor(y).astype(int)
    fx, fy = x - x0, y - y0
    for dx, dy, weight in ((0, 0, (1 - fx) * (1 - fy)), (1, 0, fx * (1 - fy)), (0, 1, (1 - fx) * fy), (1, 1, fx * fy)):
        np.add.at(kernel, (y0 + dy, x0 + dx), weight)
    return kernel / kernel.sum()


def _convolve(img: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """True convolution (filter2D correlates, hence the flip) with mirrored borders, in float64."""
    return cv2.filter2D(img.astype(np.float64), -1, kernel[::-1, ::-1].copy(), borderType=cv2.BORDER_REFLECT)


def synthetic_rain(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Rain100L-style light rain: sparse bright seeds smeared into thin streaks at one random angle near vertical
    (a motion blur along it, scaled so that a streak keeps its seed's brightness), screened onto the image."""
    _check_rgb(img)
    h, w = img.shape[:2]
    seeds = np.zeros((h, w))
    count = round(rng.uniform(*RAIN_DENSITY) * h * w)
    seeds[rng.integers(0, h, count), rng.integers(0, w, count)] = rng.uniform(*RAIN_BRIGHTNESS, count)
    length = rng.uniform(*RAIN_LENGTH)
    streaks = np.clip(_convolve(seeds, _path_kernel(length, 90 + rng.uniform(-RAIN_TILT, RAIN_TILT), 0.0)) * length,
                      0, 1)
    layer = rng.uniform(*RAIN_OPACITY) * streaks[..., None]
    rainy = 1 - (1 - img / 255.0) * (1 - layer)
    return np.clip(np.rint(rainy * 255), 0, 255).astype(np.uint8)


def synthetic_motion_blur(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Camera-shake blur: a straight or slightly curved path of random length and angle, normalised to sum 1 (a
    flat image stays flat), convolved with mirrored borders."""
    _check_rgb(img)
    bend = rng.uniform(-BLUR_BEND, BLUR_BEND) if rng.random() < BLUR_CURVED_PROB else 0.0
    kernel = _path_kernel(rng.uniform(*BLUR_LENGTH), rng.uniform(0, 180), bend)
    return np.clip(np.rint(_convolve(img, kernel)), 0, 255).astype(np.uint8)


SYNTHETIC = {"rain": synthetic_rain, "blur": synthetic_motion_blur}


def write_synthetic_pairs(src_dir: Path, out: Path, kind: str, seed: int) -> int:
    """Every image of `src_dir` as the clean `out/HR/<stem>.png` and its `kind` (rain | blur) degraded
    `out/LR_x1/<stem>.png`; image i of the sorted folder draws from its own generator seeded by (seed, i), so no
    image's result depends on another's. Returns the number of pairs."""
    if kind not in SYNTHETIC:
        raise ValueError(f"unknown synthetic degradation {kind!r}; expected one of {tuple(SYNTHETIC)}")
    images = list_images(src_dir)
    if not images:
        raise FileNotFoundError(f"no images in {src_dir}")
    stems = [p.stem for p in images]
    if len(set(stems)) != len(stems):
        raise ValueError(f"{src_dir}: images share a name stem: {sorted({s for s in stems if stems.count(s) > 1})}")
    out = Path(out)
    for index, path in enumerate(tqdm(images, desc=f"synthetic {kind} pairs {out.name}", unit="img")):
        clean = read_image(path)
        write_image(out / "HR" / f"{path.stem}.png", clean)
        write_image(out / LR_FOLDER / f"{path.stem}.png", SYNTHETIC[kind](clean, np.random.default_rng([seed, index])))
    return len(images)
