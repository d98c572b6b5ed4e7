"""Collect the real HR/LR test pairs of RealSR and DRealSR (Table 2) into `<out>/HR/<key>.png`, `<out>/LR_x4/<key>.png`.

Layouts (both with LR at the real low resolution, a `scale` times smaller than HR). Each dataset names its HR and
LR files with its own role suffixes, declared in its registry entry (`hr_suffix`, `lr_suffix`):
- RealSR V3 (csjcai/RealSR): HR and LR side by side, `Canon/Test/4/Canon_001_HR.png` and `Canon_001_LR4.png`
  (suffixes `_HR`, `_LR4`); call with `lr_root=None` and e.g. `pattern="*/Test/4/*"` under the `RealSR(V3)`
  folder. (V1/V2 store LR upsampled to the HR size; they fail the size check below.)
- DRealSR: separate folders, `Test_x4/test_HR/Canon_10_x4.png` and `Test_x4/test_LR/Canon_10_x1.png`: HR files
  end in `_x4`, LR files in `_x1`, as the released x4 test set names them (also `panasonic_103_x4.png`).

Pairs are matched by the file name without its role suffix; a file without its folder's suffix is an error. HR is
cropped at the top-left to exactly `scale` x the LR size, so that SR output and HR align. With `lr_crop`, each pair
is then centre-cropped to `lr_crop` x `lr_crop` LR pixels and the HR region they cover (the paper's
"center-cropped" RealSR and DRealSR, following StableSR and SeeSR: LR 128, HR 512).
"""
from __future__ import annotations

from pathlib import Path

from PIL import Image

from pipeline.fileio import IMAGE_SUFFIXES, read_image, write_image

def _strip(stem: str, suffix: str) -> str | None:
    return stem[: -len(suffix)] if stem.endswith(suffix) and len(stem) > len(suffix) else None


def _images(root: Path, pattern: str) -> list[Path]:
    if not root.is_dir():
        raise ValueError(f"folder not found: {root}")
    return sorted(p for p in root.glob(pattern) if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def _by_key(files: list[Path], suffix: str, role: str) -> dict[str, Path]:
    """Key (the stem without `suffix`) -> file; a file without the suffix is an error."""
    keys: dict[str, Path] = {}
    for path in files:
        key = _strip(path.stem, suffix)
        if key is None:
            raise ValueError(f"{path}: expected a {role} file name ending in `{suffix}`")
        if key in keys:
            raise ValueError(f"two {role} files share the key `{key}`: {keys[key]} and {path}")
        keys[key] = path
    return keys


def find_real_pairs(hr_root: Path, lr_root: Path | None, hr_suffix: str, lr_suffix: str,
                    pattern: str = "**/*") -> dict[str, tuple[Path, Path]]:
    """Key -> (HR file, LR file). `lr_root=None`: HR and LR files lie together and their suffixes tell them apart."""
    hr_root = Path(hr_root)
    if lr_root is None:
        if hr_suffix.endswith(lr_suffix) or lr_suffix.endswith(hr_suffix):
            raise ValueError(f"{hr_root}: HR suffix `{hr_suffix}` and LR suffix `{lr_suffix}` cannot tell files "
                             f"in one folder apart")
        files = _images(hr_root, pattern)
        hr_files = [p for p in files if _strip(p.stem, hr_suffix) is not None]
        lr_files = [p for p in files if _strip(p.stem, lr_suffix) is not None]
        other = [p.name for p in files if p not in hr_files and p not in lr_files]
        if other:
            raise ValueError(f"{hr_root}: {len(other)} files are neither HR (`{hr_suffix}`) nor "
                             f"LR (`{lr_suffix}`): {other[:10]}")
    else:
        hr_files, lr_files = _images(hr_root, pattern), _images(Path(lr_root), pattern)
    hr, lr = _by_key(hr_files, hr_suffix, "HR"), _by_key(lr_files, lr_suffix, "LR")
    if not hr:
        raise ValueError(f"no HR images match `{pattern}` under {hr_root}")
    unpaired = [str(hr[k]) for k in sorted(hr.keys() - lr.keys())] + [str(lr[k]) for k in sorted(lr.keys() - hr.keys())]
    if unpaired:
        raise ValueError(f"{len(unpaired)} files have no HR/LR partner: {unpaired[:10]}")
    return {k: (hr[k], lr[k]) for k in sorted(hr)}


def collect_real_pairs(hr_root: Path, lr_root: Path | None, out_dir: Path, *, hr_suffix: str, lr_suffix: str,
                       scale: int = 4, pattern: str = "**/*", lr_crop: int | None = None) -> int:
    """Write every pair as PNG: `out_dir/HR/<key>.png` (cropped to scale x LR) and `out_dir/LR_x<scale>/<key>.png`,
    both centre-cropped to `lr_crop` LR pixels (and scale x that HR pixels) if it is given."""
    pairs = find_real_pairs(hr_root, lr_root, hr_suffix, lr_suffix, pattern)
    problems = []
    for key, (hr_path, lr_path) in pairs.items():
        with Image.open(hr_path) as hr, Image.open(lr_path) as lr:
            if hr.width < scale * lr.width or hr.height < scale * lr.height:
                problems.append(f"{key}: HR {hr.width}x{hr.height} is smaller than {scale} x LR "
                                f"{lr.width}x{lr.height}")
            elif lr_crop and min(lr.size) < lr_crop:
                problems.append(f"{key}: LR {lr.width}x{lr.height} is smaller than the {lr_crop} px centre crop")
    if problems:
        raise ValueError(f"{len(problems)} pairs cannot be used: {problems[:10]}")
    out_dir = Path(out_dir)
    for key, (hr_path, lr_path) in pairs.items():
        lr = read_image(lr_path)
        top, left, h, w = 0, 0, *lr.shape[:2]
        if lr_crop:
            top, left, h, w = (h - lr_crop) // 2, (w - lr_crop) // 2, lr_crop, lr_crop
            lr = lr[top : top + h, left : left + w]
        hr = read_image(hr_path)[scale * top : scale * (top + h), scale * left : scale * (left + w)]
        write_image(out_dir / "HR" / f"{key}.png", hr)
        write_image(out_dir / f"LR_x{scale}" / f"{key}.png", lr)
    return len(pairs)
