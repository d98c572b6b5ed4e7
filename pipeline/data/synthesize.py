"""Test and training pairs in the project's layout, made from HR images.

Layout: `data/sets/<set>/HR/<name>.png` and `data/sets/<set>/LR_x4/<name>.png`; training sets also get
`HR_sub/` and `LR_x4_sub/` sub-images; IQA sets are `data/iqa/<set>/images/` plus `scores.csv`; Table 5's
restoration pairs (scale 1) are `data/restore/<set>/HR/` (clean) and `LR_x1/` (rainy or blurred), with
`HR_sub/` and `LR_x1_sub/` for training.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from pyiqa.matlab_utils import imresize
from tqdm import tqdm

from pipeline.data.iqa_sets import IQARow, convert_iqa_set, write_scores
from pipeline.data.real_pairs import collect_real_pairs
from pipeline.data.restoration import collect_restoration_pairs, write_synthetic_pairs
from pipeline.fileio import list_images, read_image, write_image
from pipeline.tensor_image import to_tensor, to_uint8


def mod_crop(img: np.ndarray, scale: int) -> np.ndarray:
    h, w = img.shape[:2]
    return img[: h - h % scale, : w - w % scale]


def bicubic_down(hr: np.ndarray, scale: int) -> np.ndarray:
    """MATLAB-compatible bicubic downscaling (antialiased), rounded to uint8."""
    return to_uint8(imresize(to_tensor(hr), scale=1 / scale))


def source_images(src: Path) -> list[tuple[Path, str]]:
    """(path, output stem) of every image under `src`, subfolders too (their names join the stem with '_');
    a source without images is an error rather than an empty set."""
    images = list_images(src, recursive=True)
    if not images:
        raise FileNotFoundError(f"no images under {src}")
    return [(path, "_".join(path.relative_to(src).with_suffix("").parts)) for path in images]


def write_classical_set(src: Path, out: Path, scale: int) -> int:
    """HR (mod-cropped) and bicubic LR_x4 pairs for every image under `src`."""
    images = source_images(src)
    for path, stem in tqdm(images, desc=f"bicubic pairs {out.name}", unit="img"):
        hr = mod_crop(read_image(path), scale)
        name = f"{stem}.png"
        write_image(out / "HR" / name, hr)
        write_image(out / f"LR_x{scale}" / name, bicubic_down(hr, scale))
    return len(images)


def subimage_starts(length: int, size: int, step: int) -> list[int]:
    """Crop origins along one axis as BasicSR's extract_subimages: every `step`, plus one flush with the end. An
    axis not longer than `size` gives one crop at 0 (cut_subimages makes it the axis's own length)."""
    if length <= size:
        return [0]
    starts = list(range(0, length - size + 1, step))
    if starts[-1] + size < length:
        starts.append(length - size)
    return starts


def cut_subimages(set_dir: Path, size: int, step: int, scale: int) -> dict[str, int]:
    """Cut HR/LR pairs of `set_dir` into aligned HR_sub (size px) and LR_x4_sub (size/scale px) crops.

    Every image contributes: along a side shorter than `size` (many OST images are) the crops keep that side's
    whole length, so they are smaller than `size` there (PairedPatches pads or refuses them). Returns the number of
    `images`, of `sub-images` and of `small images` (those with a side shorter than `size`).
    """
    if size % scale or step % scale:
        raise ValueError(f"sub-image size {size} and step {step} must be multiples of the scale {scale}")
    counts = {"images": 0, "sub-images": 0, "small images": 0}
    for path in tqdm(list_images(set_dir / "HR"), desc=f"sub-images {set_dir.name}", unit="img"):
        hr = read_image(path)
        lr = read_image(set_dir / f"LR_x{scale}" / path.name)
        h, w = hr.shape[:2]
        if h % scale or w % scale or lr.shape[:2] != (h // scale, w // scale):
            raise ValueError(f"{path}: HR {w}x{h} must be a multiple of {scale} and {scale} x its LR "
                             f"{lr.shape[1]}x{lr.shape[0]}")
        # lengths stay multiples of the scale: h and w are, and so are size and step
        size_y, size_x = min(size, h), min(size, w)
        counts["images"] += 1
        counts["small images"] += (size_y, size_x) != (size, size)
        for y in subimage_starts(h, size_y, step):
            for x in subimage_starts(w, size_x, step):
                counts["sub-images"] += 1
                name = f"{path.stem}_s{counts['sub-images']:06d}.png"
                write_image(set_dir / "HR_sub" / name, hr[y : y + size_y, x : x + size_x])
                ly, lx = y // scale, x // scale
                write_image(set_dir / f"LR_x{scale}_sub" / name,
                            lr[ly : ly + size_y // scale, lx : lx + size_x // scale])
    return counts


def write_realworld_set(src: Path, out: Path, degrade, scale: int, seed: int) -> int:
    """HR (mod-cropped) and LR made by the real-world degradation, one generator seed per image index."""
    images = source_images(src)
    for index, (path, stem) in enumerate(tqdm(images, desc=f"real-world pairs {out.name}", unit="img")):
        hr = mod_crop(read_image(path), scale)
        generator = torch.Generator().manual_seed(seed * 100_003 + index)
        with torch.no_grad():
            lr = degrade(to_tensor(hr), generator)
        write_image(out / "HR" / f"{stem}.png", hr)
        write_image(out / f"LR_x{scale}" / f"{stem}.png", to_uint8(lr))
    return len(images)


def write_distortion_set(src: Path, out: Path, levels: dict, degrade, seed: int) -> int:
    """`quick_distortions`: each source image under five distortion types at graded levels.

    `mos` is the rank of the level (5 = mildest, 1 = strongest): a synthetic ranking check, not human opinion.
    The real-world type blends the image with its degraded-then-bicubic-upscaled version by the level's weight.
    """
    from pipeline.data import degradation as ops

    def realworld(x, weight, generator):
        lr = degrade(x, generator)
        return (1 - weight) * x + weight * imresize(lr, sizes=x.shape[-2:])

    distort = {
        "gaussian_blur": lambda x, v, g: ops.gaussian_blur(x, v),
        "gaussian_noise": lambda x, v, g: ops.add_gaussian_noise(x, v, False, g),
        "jpeg": lambda x, v, g: ops.jpeg(x, v),
        "bicubic": lambda x, v, g: imresize(imresize(x, scale=1 / v), sizes=x.shape[-2:]),
        "realworld": realworld,
    }
    rows = []
    images = source_images(src)
    for index, (path, stem) in enumerate(tqdm(images, desc=f"distortions {out.name}", unit="img")):
        x = to_tensor(read_image(path))
        for kind, values in levels.items():
            for level, value in enumerate(values, start=1):
                generator = torch.Generator().manual_seed(seed * 100_003 + index * 1_000 + level)
                with torch.no_grad():
                    y = distort[kind](x, value, generator)
                name = f"{stem}_{kind}_{level}.png"
                write_image(out / "images" / name, to_uint8(y))
                rows.append(IQARow(name, float(len(values) + 1 - level), kind))
    write_scores(out / "scores.csv", rows)
    return len(rows)


# Where each data group's sets are written (stage synthesize@<group>; the groups of params.yaml `download`).
OUT_ROOTS = {"sr": Path("data/sets"), "real_pairs": Path("data/real_pairs"), "iqa": Path("data/iqa"),
             "restore": Path("data/restore")}


def find_source(set_name: str, registry: dict, quick_root: Path):
    """Where the download stage put `set_name`: a quick-profile folder, or a registry entry's `provides` path(s)."""
    if (quick_root / set_name).is_dir():
        return quick_root / set_name
    for entry in registry.values():
        provided = entry.get("provides", {}).get(set_name)
        if provided is None:
            continue
        target = Path(entry["target"])
        if isinstance(provided, str):
            return target / provided
        return {key: target / value if key in ("images", "scores", "split", "hr", "lr") else value for key, value in provided.items()}
    raise FileNotFoundError(f"no source for set `{set_name}`: run the download stage for this profile first")


def find_set(set_name: str, roots=(OUT_ROOTS["sr"], OUT_ROOTS["real_pairs"])) -> Path:
    """The folder synthesize wrote an SR test set to (`HR/` and `LR_x4/` inside): classical or real pairs."""
    found = [root / set_name for root in roots if (root / set_name).is_dir()]
    if len(found) != 1:
        raise FileNotFoundError(f"set `{set_name}` must be in exactly one of {[str(r) for r in roots]}, found "
                                f"{[str(f) for f in found] or 'none'}: run its synthesize stage")
    return found[0]


def synthesize(group: str, cfg: dict, seed: int, degradation_cfg: dict, registry: dict, out_root: Path,
               quick_root: Path) -> dict[str, int]:
    """The sets of one data group that the profile lists (params.yaml `synthesize`), written under `out_root`;
    returns the number of images of each set (and of each source of a training set)."""
    if group not in OUT_ROOTS:
        raise ValueError(f"unknown data group {group!r}; expected one of {tuple(OUT_ROOTS)}")
    from pipeline.data.degradation import RealESRGANDegradation
    scale = cfg.get("scale")  # the SR groups' (restoration is at scale 1)
    degrade = None if degradation_cfg is None else RealESRGANDegradation(degradation_cfg, scale=scale)
    counts = {}
    if group == "sr":
        for name in cfg["sr_sets"]:
            counts[name] = write_classical_set(find_source(name, registry, quick_root), out_root / name, scale)
        for name, sources in cfg["train_sets"].items():
            for s in sources:
                counts[f"{name} <- {s}"] = write_classical_set(find_source(s, registry, quick_root), out_root / name,
                                                               scale)
            cut = cut_subimages(out_root / name, cfg["subimage_size"], cfg["subimage_step"], scale)
            counts.update({f"{name} {what}": n for what, n in cut.items()})
        for name, source in cfg["real_sets"].items():
            counts[name] = write_realworld_set(find_source(source, registry, quick_root), out_root / name, degrade,
                                               scale, seed)
    if group == "real_pairs":
        for name in cfg["real_pairs"]:
            src = find_source(name, registry, quick_root)
            counts[name] = collect_real_pairs(src["hr"], src.get("lr"), out_root / name, hr_suffix=src["hr_suffix"],
                                              lr_suffix=src["lr_suffix"], scale=scale,
                                              pattern=src.get("pattern", "**/*"), lr_crop=cfg["real_pairs_lr_crop"])
    if group == "iqa":
        for name in cfg["iqa_sets"]:
            if name == "quick_distortions":
                src = find_source(cfg["distortions"]["source"], registry, quick_root)
                levels = {k: v for k, v in cfg["distortions"].items() if k != "source"}
                counts[name] = write_distortion_set(src, out_root / name, levels, degrade, seed)
            else:
                src = find_source(name, registry, quick_root)
                counts[name] = convert_iqa_set(src["format"], src["images"], src["scores"], out_root / name,
                                               src.get("split"))
    if group == "restore":
        for name, spec in cfg["restore_sets"].items():  # the quick profile's synthetic stand-ins
            counts[name] = write_synthetic_pairs(find_source(spec["source"], registry, quick_root), out_root / name,
                                                 spec["kind"], seed)
        for name in cfg["restore_pairs"]:
            src = find_source(name, registry, quick_root)
            counts[name] = collect_restoration_pairs(src["format"], src, out_root / name)
        for name in cfg["restore_train_sets"]:
            cut = cut_subimages(out_root / name, cfg["subimage_size"], cfg["subimage_step"], 1)
            counts.update({f"{name} {what}": n for what, n in cut.items()})
    return counts
