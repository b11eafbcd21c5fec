"""Reduced-scale decoding: one decode path, what clinics send, and the same answers as exact."""

from __future__ import annotations

import io
from dataclasses import replace

import numpy as np
import pytest
from PIL import Image

from skinml.errors import ImageReadError
from skinml.imaging import read as read_module
from skinml.imaging.preprocess import (
    decode_for_model,
    fast_decode_min_side,
    model_input,
    resize_for_model,
)
from skinml.imaging.quality import quality_flags, quality_measures
from skinml.imaging.read import decode_image, draft_scale, read_image
from skinml.modelfile.metadata import Preprocessing

PREP = Preprocessing(input_size=(64, 64), mean=(0.5,) * 3, std=(0.5,) * 3)
FAST = replace(PREP, decode_min_side=fast_decode_min_side(PREP.input_size))


def _scene(w: int = 1600, h: int = 1200, seed: int = 0) -> Image.Image:
    """A photo-like image: smooth shading, a dark 'lesion' off centre, sensor noise."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    skin = 170 + 30 * np.sin(xx / w * 3) * np.cos(yy / h * 2)
    lesion = 90 * np.exp(-(((xx - 0.35 * w) / (0.12 * w)) ** 2 + ((yy - 0.4 * h) / (0.1 * h)) ** 2))
    grey = skin - lesion + rng.normal(0, 6, (h, w))
    arr = np.stack([grey, grey * 0.8, grey * 0.7], axis=-1)
    return Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8))


def _jpeg(path, img: Image.Image, **kwargs):
    img.save(path, format="JPEG", quality=92, **kwargs)
    return path


def test_fast_decode_size_is_twice_the_input():
    assert fast_decode_min_side((64, 64)) == 128
    assert fast_decode_min_side((224, 224)) == 448
    assert fast_decode_min_side((128, 160)) == 320


@pytest.mark.parametrize(
    ("size", "need", "scale"),
    [
        ((1600, 1200), 256, 4),  # 1/8 would leave 150 < 256
        ((1600, 1200), 128, 4),  # 1/8: 200x150, but the longer side must keep 256
        ((1022, 767), 128, 4),  # 1/4: 256x192 (libjpeg rounds up)
        ((1022, 767), 256, 2),
        ((1020, 767), 128, 2),  # 1/4: 255x192, longer side < 256
        ((4000, 3000), 128, 8),
        ((3000, 2000), 256, 4),
        ((200, 150), 64, 1),
    ],
)
def test_the_draft_scale_covers_the_model_and_the_quality_copy(size, need, scale):
    assert draft_scale(size, need) == scale
    assert -(-min(size) // scale) >= need or scale == 1
    assert -(-max(size) // scale) >= 256 or scale == 1


def test_a_large_jpeg_is_decoded_at_the_smallest_scale_that_covers_the_need(tmp_path):
    path = _jpeg(tmp_path / "big.jpg", _scene())
    d = decode_image(path, min_decoded_side=256)
    assert d.reduction == 4 and d.image.size == (400, 300)  # 1/8 would leave 150 < 256
    assert d.original_size == (1600, 1200)
    exact = decode_image(path)
    assert exact.reduction == 1 and exact.image.size == (1600, 1200)


def test_fast_and_exact_model_inputs_agree_to_a_few_levels(tmp_path):
    path = _jpeg(tmp_path / "big.jpg", _scene())
    fast = model_input(path, FAST).astype(int)
    exact = model_input(path, PREP).astype(int)
    assert fast.shape == exact.shape == (64, 64, 3)
    assert np.abs(fast - exact).mean() < 1.5 and np.abs(fast - exact).max() <= 12


def test_small_images_and_other_formats_take_the_exact_path(tmp_path):
    small = _jpeg(tmp_path / "thumb.jpg", _scene(200, 150))
    assert decode_image(small, min_decoded_side=256).reduction == 1
    for name in ("big.png", "big.tif"):
        _scene().save(tmp_path / name)
        d = decode_image(tmp_path / name, min_decoded_side=256)
        assert d.reduction == 1 and d.image.size == (1600, 1200)


def test_sixteen_bit_tiff_is_decoded_exactly_and_rescaled(tmp_path):
    grey = np.asarray(_scene().convert("L"), dtype=np.uint16) * 200  # 16-bit range
    Image.fromarray(grey).save(tmp_path / "scan16.tif")
    d = decode_image(tmp_path / "scan16.tif", min_decoded_side=256)
    arr = np.asarray(d.image)
    assert d.reduction == 1 and d.image.mode == "RGB" and arr.min() == 0 and arr.max() == 255


@pytest.mark.parametrize("orientation", [3, 6, 8])
def test_exif_orientation_survives_reduced_decoding(tmp_path, orientation):
    """The stored pixels are rotated; fast and exact decodes must both come out upright."""
    upright = _scene()
    stored = {3: upright.rotate(180), 6: upright.rotate(90, expand=True)}.get(
        orientation, upright.rotate(-90, expand=True)
    )
    exif = Image.Exif()
    exif[0x0112] = orientation
    path = _jpeg(tmp_path / "rotated.jpg", stored, exif=exif.tobytes())
    fast = decode_image(path, min_decoded_side=256)
    assert fast.original_size == upright.size
    assert fast.image.size[0] > fast.image.size[1]  # landscape, as the upright scene
    want = np.asarray(resize_for_model(upright, PREP), dtype=float)
    got = np.asarray(resize_for_model(fast.image, PREP), dtype=float)
    assert np.abs(got - want).mean() < 2.0  # a wrong rotation differs by tens of levels


def test_a_rotated_real_photo_decodes_upright_at_reduced_scale(tmp_path, shared_data):
    """A real 1-6 MP dermoscopy photo, rotated through EXIF as phones store it."""
    src = sorted((shared_data / "isic_archive_uda1" / "images").glob("*.jpg"))[0]
    upright = read_image(src)
    exif = Image.Exif()
    exif[0x0112] = 6
    path = _jpeg(tmp_path / "phone.jpg", upright.rotate(90, expand=True), exif=exif.tobytes())
    fast = decode_image(path, min_decoded_side=256)
    assert fast.reduction > 1 and fast.original_size == upright.size
    want = np.asarray(resize_for_model(upright, PREP), dtype=float)
    got = np.asarray(resize_for_model(fast.image, PREP), dtype=float)
    assert np.abs(got - want).mean() < 3.0


def test_progressive_jpeg_decodes_at_reduced_scale(tmp_path):
    path = _jpeg(tmp_path / "prog.jpg", _scene(), progressive=True)
    d = decode_image(path, min_decoded_side=256)
    assert d.reduction == 4
    exact = np.asarray(resize_for_model(read_image(path), PREP), dtype=float)
    assert np.abs(np.asarray(resize_for_model(d.image, PREP), dtype=float) - exact).mean() < 1.5


@pytest.mark.parametrize("progressive", [False, True])
def test_a_truncated_jpeg_is_an_error_on_the_fast_path_too(tmp_path, progressive):
    buf = io.BytesIO()
    _scene().save(buf, format="JPEG", quality=92, progressive=progressive)
    path = tmp_path / "cut.jpg"
    path.write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
    with pytest.raises(ImageReadError, match="truncated"):
        decode_image(path, min_decoded_side=256)


def test_a_bomb_is_refused_from_its_header_even_when_draft_would_make_it_small(tmp_path):
    path = _jpeg(tmp_path / "big.jpg", _scene())
    with pytest.raises(ImageReadError, match="decompression-bomb guard"):
        decode_image(path, min_decoded_side=64, max_pixels=1_000_000)


def test_too_small_is_judged_on_the_original_size_not_the_decoded_copy(tmp_path):
    path = _jpeg(tmp_path / "wide.jpg", _scene(2400, 300))
    d = decode_image(path, min_decoded_side=256)
    assert min(d.image.size) >= 256 and d.original_size == (2400, 300)
    tiny = _jpeg(tmp_path / "tiny.jpg", _scene(60, 50))
    t = decode_image(tiny, min_decoded_side=256)
    measures = quality_measures(t.image, original_size=t.original_size)
    assert "too_small" in quality_flags(measures)
    big = decode_image(path, min_decoded_side=8)  # decoded at 1/8: 300x38 px
    assert min(big.image.size) < 64
    assert "too_small" not in quality_flags(
        quality_measures(big.image, original_size=big.original_size)
    )


def test_min_side_is_judged_on_the_original(tmp_path):
    path = _jpeg(tmp_path / "big.jpg", _scene())
    assert decode_image(path, min_decoded_side=8, min_side=1000).reduction == 4
    with pytest.raises(ImageReadError, match="only 1600x1200"):
        decode_image(path, min_decoded_side=8, min_side=1500)


def test_heic_without_the_extra_names_the_extra(tmp_path, monkeypatch):
    path = tmp_path / "IMG_0001.HEIC"
    # an ISO-BMFF header with the 'heic' brand, as a phone writes it
    path.write_bytes(b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + b"\x00" * 64)
    monkeypatch.setattr(read_module, "_register_heif", lambda: False)
    with pytest.raises(ImageReadError, match=r"skinml\[heif\]") as err:
        decode_image(path, min_decoded_side=256)
    assert "HEIC/HEIF" in str(err.value) and "IMG_0001.HEIC" in str(err.value)


def test_heic_from_a_phone_reads_with_the_extra(tmp_path):
    pillow_heif = pytest.importorskip("pillow_heif", reason="the heif extra is not installed")
    scene = _scene(800, 600)
    heif = pillow_heif.from_pillow(scene)
    path = tmp_path / "IMG_0002.HEIC"
    heif.save(path, quality=90)
    d = decode_for_model(path, FAST)
    assert d.image.size == (800, 600) and d.original_size == (800, 600)
    want = np.asarray(resize_for_model(scene, PREP), dtype=float)
    assert np.abs(np.asarray(resize_for_model(d.image, PREP), dtype=float) - want).mean() < 3.0
