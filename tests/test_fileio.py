"""pipeline.fileio.atomic_path: what a crash or a power loss can leave behind."""
import os
import stat

import pytest

from pipeline import fileio
from pipeline.fileio import atomic_path, write_text


def test_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    path = tmp_path / "a.txt"
    write_text(path, "old")
    with pytest.raises(RuntimeError), atomic_path(path) as tmp:
        tmp.write_text("half")
        raise RuntimeError("crash")
    assert path.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["a.txt"]


def test_new_file_has_the_usual_mode(tmp_path):
    umask = os.umask(0o022)
    try:
        write_text(tmp_path / "a.txt", "x")
    finally:
        os.umask(umask)
    assert stat.S_IMODE((tmp_path / "a.txt").stat().st_mode) == 0o644  # not mkstemp's 0600


def test_data_reach_the_disk_before_the_rename(tmp_path, monkeypatch):
    events = []
    real_fsync, real_replace = os.fsync, os.replace
    monkeypatch.setattr(fileio.os, "fsync", lambda fd: events.append(("fsync", os.readlink(f"/proc/self/fd/{fd}")))
                        or real_fsync(fd))
    monkeypatch.setattr(fileio.os, "replace", lambda a, b: events.append(("replace", str(b))) or real_replace(a, b))
    path = tmp_path / "a.txt"
    write_text(path, "x")
    (_, synced_file), replaced, synced_dir = events
    assert synced_file.endswith(".tmp") and replaced == ("replace", str(path))
    assert synced_dir == ("fsync", str(tmp_path))


# --- read_image: images as they are meant to be seen -----------------------------------------------------------

import struct  # noqa: E402
import zlib  # noqa: E402

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

from pipeline.fileio import MAX_PIXELS, ImageError, read_image  # noqa: E402


def test_16_bit_grey_is_scaled_not_clipped(tmp_path):
    """PIL's convert("RGB") clipped 16-bit grey to 255 (an almost white image)."""
    values = np.array([[0, 257, 32896, 65535]], dtype=np.uint16)
    Image.fromarray(values).save(tmp_path / "g16.png")
    img = read_image(tmp_path / "g16.png")
    assert img.shape == (1, 4, 3) and img[0, :, 0].tolist() == [0, 1, 128, 255]


def test_exif_orientation_is_applied(tmp_path):
    """A phone photo stored landscape with Orientation 6 (rotate 90 cw to view) is read portrait."""
    pixels = np.zeros((20, 40, 3), np.uint8)
    pixels[:, :20] = 255  # left half white as stored
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(pixels).save(tmp_path / "phone.jpg", exif=exif, quality=95)
    img = read_image(tmp_path / "phone.jpg")
    assert img.shape == (40, 20, 3)
    assert img[:15].mean() > 200 and img[-15:].mean() < 50  # the stored left half is now on top


def test_palette_alpha_and_cmyk_become_rgb(tmp_path):
    rgb = np.array([[[200, 10, 10], [10, 200, 10]]], np.uint8)
    Image.fromarray(rgb).convert("P", palette=Image.Palette.ADAPTIVE).save(tmp_path / "p.png", transparency=0)
    Image.fromarray(np.dstack([rgb, np.full((1, 2), 7, np.uint8)])).save(tmp_path / "rgba.png")
    Image.fromarray(rgb).convert("CMYK").save(tmp_path / "cmyk.tif")
    for name in ("p.png", "rgba.png", "cmyk.tif"):
        img = read_image(tmp_path / name)
        assert img.shape == (1, 2, 3) and img.dtype == np.uint8, name
        np.testing.assert_allclose(img.astype(int), rgb.astype(int), atol=3, err_msg=name)


def huge_png(path, width, height):
    """A PNG whose header claims width x height (its one row of data is a lie): what a hostile file looks like."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 4))
                     + chunk(b"IEND", b""))


@pytest.mark.parametrize("side", [int(MAX_PIXELS ** 0.5) + 1, 100_000])  # just over our limit, over PIL's too
def test_an_image_over_the_pixel_limit_is_refused_by_name(tmp_path, side):
    huge_png(tmp_path / "huge.png", side, side)
    with pytest.raises(ImageError, match=f"huge.png: .*over the limit of {MAX_PIXELS} pixels"):
        read_image(tmp_path / "huge.png")


def test_a_file_that_is_not_an_image_is_an_image_error(tmp_path):
    (tmp_path / "x.png").write_text("not a png")
    with pytest.raises(ImageError, match="x.png: not a readable image"):
        read_image(tmp_path / "x.png")
