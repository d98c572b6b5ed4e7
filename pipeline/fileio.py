"""Crash-safe file writing and uint8 RGB image I/O shared by every stage.

Every file the pipeline produces goes through `atomic_path`: it is written under a temporary name in the same
folder and renamed into place only when complete, so a crash never leaves a half file that looks finished.
"""
from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path
from typing import BinaryIO

import numpy as np
from PIL import Image, ImageOps

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")


def usual_mode(mode: int) -> int:
    """`mode` (0o666 for files, 0o777 for folders) less the process umask: what open() or mkdir() would give.
    mkstemp and mkdtemp make private 0600/0700 entries, which must not keep that mode once renamed into place."""
    umask = os.umask(0)
    os.umask(umask)
    return mode & ~umask


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike):
    """Yield a temporary path beside `path`; rename it onto `path` only if the block succeeds.

    The data reach the disk before the rename and the rename before return (fsync), so even after a power loss
    `path` is either the old file or the complete new one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp)
    tmp.chmod(usual_mode(0o666))
    try:
        yield tmp
        _fsync(tmp)
        os.replace(tmp, path)
        if os.name == "posix":  # folders cannot be opened for fsync elsewhere
            _fsync(path.parent)
    finally:
        tmp.unlink(missing_ok=True)


def write_text(path: str | os.PathLike, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def write_json(path: str | os.PathLike, obj) -> None:
    write_text(path, json.dumps(obj, indent=2, sort_keys=True) + "\n")


# The largest image read, in pixels: PIL's own bomb limit, stated here so that every reader refuses the same images
# with one message (PIL only warns below twice this).
MAX_PIXELS = Image.MAX_IMAGE_PIXELS


class ImageError(ValueError):
    """An image that cannot be read as it is: unreadable, or larger than MAX_PIXELS."""


def read_image(path: str | os.PathLike | BinaryIO) -> np.ndarray:
    """Read an image (a path or an open binary file) as an H x W x 3 uint8 RGB array, as it is meant to be seen:
    EXIF orientation applied (phone photos), 16- and 32-bit grey scaled to 8 bits (PIL's convert clips them to
    white), grey, palette, alpha and CMYK converted to RGB (alpha dropped). Raises ImageError for an unreadable
    file or one over MAX_PIXELS, naming it."""
    name = getattr(path, "name", path)
    try:
        with Image.open(path) as im:
            if im.width * im.height > MAX_PIXELS:
                raise ImageError(f"{name}: {im.width}x{im.height} is over the limit of {MAX_PIXELS} pixels")
            im = ImageOps.exif_transpose(im)
            if im.mode.startswith("I"):  # I;16 (16-bit PNG/TIFF grey) and I (32-bit): full range to 0..255
                wide = np.asarray(im, dtype=np.float64)
                top = 65535.0 if im.mode.startswith("I;16") or wide.max() <= 65535 else float(2 ** 32 - 1)
                grey = np.clip(np.rint(wide * (255.0 / top)), 0, 255).astype(np.uint8)
                return np.repeat(grey[..., None], 3, axis=2)
            if im.mode == "P" and "transparency" in im.info:
                im = im.convert("RGBA")  # a palette with a transparent entry converts through RGBA
            return np.asarray(im.convert("RGB"), dtype=np.uint8).copy()
    except Image.DecompressionBombError as e:  # PIL refuses twice its limit before we see the size
        raise ImageError(f"{name}: over the limit of {MAX_PIXELS} pixels ({e})") from None
    except (Image.UnidentifiedImageError, OSError, SyntaxError) as e:
        raise ImageError(f"{name}: not a readable image ({type(e).__name__}: {e})") from None


def write_image(path: str | os.PathLike, img: np.ndarray) -> None:
    """Write an H x W x 3 (or H x W) uint8 array; the format follows the suffix of `path`."""
    if img.dtype != np.uint8:
        raise TypeError(f"write_image expects uint8, got {img.dtype}")
    path = Path(path)
    with atomic_path(path) as tmp:
        Image.fromarray(img).save(tmp, format=Image.registered_extensions()[path.suffix.lower()])


def list_images(folder: str | os.PathLike, recursive: bool = False) -> list[Path]:
    """Image files in `folder` (and its subfolders if `recursive`), sorted by path."""
    paths = Path(folder).rglob("*") if recursive else Path(folder).iterdir()
    return sorted(p for p in paths if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def output_problem(outputs: list[Path], inputs: list[Path], input_folder: Path | None = None) -> str | None:
    """Why the files `outputs` cannot be written without harm, or None: one would replace an input, land in the
    folder of inputs (`input_folder`), lie under a file, or go where nothing can be written."""
    replaced = {p.resolve() for p in inputs}
    for out in outputs:
        if out.resolve() in replaced:
            return f"{out} is one of the inputs: it would be replaced"
        if input_folder is not None and out.resolve().parent == input_folder.resolve():
            return f"{out} is inside the input folder {input_folder}: it would join the inputs"
    for folder in {out.parent for out in outputs}:
        existing = next(p for p in (folder, *folder.parents) if p.exists() or p == Path(p.anchor))
        if not existing.is_dir():
            return f"{out.parent} cannot be created: {existing} is a file"
        if not os.access(existing, os.W_OK | os.X_OK):
            return f"{folder} is not writable"
    return None
