"""Robust image reading: every odd file either decodes to upright RGB or names itself."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from skinml.errors import ImageReadError
from skinml.imaging.read import read_image, read_images_report, save_clean, to_rgb


def _rgb(w: int = 40, h: int = 30) -> Image.Image:
    arr = np.zeros((h, w, 3), dtype=np.uint8)
    arr[:, : w // 2] = (200, 30, 30)  # red left half marks orientation
    return Image.fromarray(arr)


def test_exif_orientation_is_applied(tmp_path):
    img = _rgb()
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise on display
    path = tmp_path / "rot.jpg"
    img.save(path, exif=exif.tobytes(), quality=95)
    out = read_image(path)
    assert out.size == (30, 40)  # width and height swapped
    red = np.asarray(out)[..., 0].astype(int)
    # Rotating 90° clockwise moves the red left half to the top half.
    assert red[:18].mean() > 150 and red[22:].mean() < 50


@pytest.mark.parametrize("mode", ["L", "P", "CMYK", "RGBA", "LA", "I;16", "I", "F", "1"])
def test_any_mode_becomes_rgb(tmp_path, mode):
    src = _rgb().convert("RGBA") if mode in {"RGBA", "LA"} else _rgb()
    if mode.startswith("I") or mode == "F":
        arr = (np.arange(40 * 30).reshape(30, 40) * 50).astype(
            np.uint16 if mode == "I;16" else np.int32
        )
        img = Image.fromarray(arr.astype(np.float32)) if mode == "F" else Image.fromarray(arr)
        assert img.mode == mode
        path = tmp_path / "img.tif"
    else:
        img = src.convert(mode)
        path = tmp_path / ("img.tif" if mode == "CMYK" else "img.png")
    img.save(path)
    out = read_image(path)
    assert out.mode == "RGB" and out.size == (40, 30)
    if mode in {"I;16", "I", "F"}:  # rescaled by its range, not clipped to white
        arr = np.asarray(out)[..., 0]
        assert arr.min() == 0 and arr.max() == 255


def test_transparent_pixels_are_composited_on_white():
    rgba = Image.new("RGBA", (4, 4), (0, 0, 0, 0))
    assert np.asarray(to_rgb(rgba)).min() == 255


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"", "empty"),
        (b"this is not an image at all", "not a recognised image"),
    ],
)
def test_bad_bytes_are_named(tmp_path, content, reason):
    path = tmp_path / "bad.jpg"
    path.write_bytes(content)
    with pytest.raises(ImageReadError, match=reason) as info:
        read_image(path)
    assert str(path) in str(info.value)


def test_truncated_jpeg_is_reported(tmp_path):
    good = tmp_path / "good.jpg"
    _rgb(400, 300).save(good, quality=95)
    data = good.read_bytes()
    bad = tmp_path / "truncated.jpg"
    bad.write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageReadError, match=r"truncated|corrupt") as info:
        read_image(bad)
    assert "truncated.jpg" in str(info.value)


def test_decompression_bomb_is_refused(tmp_path):
    path = tmp_path / "big.png"
    Image.new("L", (3000, 3000)).save(path)
    with pytest.raises(ImageReadError, match="decompression-bomb"):
        read_image(path, max_pixels=1_000_000)


def test_missing_and_folder(tmp_path):
    with pytest.raises(ImageReadError, match="does not exist"):
        read_image(tmp_path / "nope.jpg")
    with pytest.raises(ImageReadError, match="folder"):
        read_image(tmp_path)


def test_report_lists_every_bad_file(tmp_path):
    good = tmp_path / "good.png"
    _rgb().save(good)
    bad1, bad2 = tmp_path / "a.jpg", tmp_path / "b.jpg"
    bad1.write_bytes(b"")
    bad2.write_bytes(b"garbage")
    report = read_images_report([good, bad1, bad2])
    assert report.ok == [good]
    assert sorted(e.file for e in report.failed) == sorted([str(bad1), str(bad2)])


def test_save_clean_strips_exif_and_gps(tmp_path):
    img = _rgb()
    exif = Image.Exif()
    exif[0x010F] = "CameraMaker"
    exif[0x8825] = {1: "N", 2: (51.0, 30.0, 0.0)}  # GPS IFD
    src = tmp_path / "gps.jpg"
    img.save(src, exif=exif.tobytes())
    assert len(Image.open(src).getexif()) > 0
    out = save_clean(read_image(src), tmp_path / "clean.jpg")
    reread = Image.open(out)
    assert len(reread.getexif()) == 0
    assert "exif" not in reread.info
    assert b"Exif" not in out.read_bytes() and b"CameraMaker" not in out.read_bytes()
