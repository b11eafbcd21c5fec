"""Robust image reading: every failure becomes an ``ImageReadError`` naming the file.

Skin images arrive from many devices: rotated phone photos with EXIF
orientation, CMYK scans, 16-bit TIFFs, palette PNGs, RGBA screenshots. Models
want upright 8-bit RGB, so this module normalises all of them the same way in
training, export calibration, prediction, ingest and QC.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from os import PathLike
from pathlib import Path
from stat import S_ISDIR

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from skinml.errors import ImageReadError
from skinml.imaging.quality import MEASURE_SIDE

#: Refuse images above this many pixels (a decompression bomb guard). 100 MP is
#: far beyond any dermatoscope or phone camera, yet small enough to decode safely.
DEFAULT_MAX_PIXELS = 100_000_000


def to_rgb(img: Image.Image, background: tuple[int, int, int] = (255, 255, 255)) -> Image.Image:
    """Convert any Pillow mode to 8-bit RGB.

    Transparent pixels are composited on ``background`` (not dropped to black),
    and 16/32-bit greyscale is rescaled by its own range rather than clipped,
    which would otherwise turn most 16-bit images white.
    """
    mode = img.mode
    if mode == "RGB":
        return img
    if mode in {"I;16", "I;16B", "I;16L", "I;16N", "I", "F"}:
        arr = np.asarray(img, dtype=np.float64)
        lo, hi = float(np.nanmin(arr)), float(np.nanmax(arr))
        scaled = np.zeros_like(arr) if hi <= lo else (arr - lo) / (hi - lo) * 255.0
        return Image.fromarray(np.round(scaled).astype(np.uint8), mode="L").convert("RGB")
    if mode in {"RGBA", "LA", "PA"} or (mode == "P" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        canvas = Image.new("RGBA", rgba.size, (*background, 255))
        return Image.alpha_composite(canvas, rgba).convert("RGB")
    if mode == "CMYK":
        # Pillow's CMYK->RGB ignores ICC profiles; good enough for a colour model
        # trained on sRGB, and the mode is recorded by the ingest report.
        return img.convert("RGB")
    return img.convert("RGB")


#: EXIF orientations that swap width and height (transpose / rotate 90° / 270°).
_SWAPS_SIDES = {5, 6, 7, 8}
#: ISO-BMFF brands of HEIC/HEIF photos (what iPhones and many Android phones save).
_HEIF_BRANDS = {b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"mif1", b"msf1"}
_HEIF_EXTRA = "pip install 'skinml[heif]'  (the pillow-heif package)"


@dataclass(frozen=True)
class DecodedImage:
    """An upright RGB image and what the file held before any reduced-scale decoding.

    ``original_size`` is the upright (width, height) of the full image from the file's
    header, so "too small" is judged on what the camera took, not on the decoded copy.
    ``reduction`` is the JPEG DCT scale used (1 = every pixel decoded; 2, 4 or 8).
    """

    image: Image.Image
    original_size: tuple[int, int]
    reduction: int = 1


def decode_image(
    path: str | PathLike[str],
    *,
    min_decoded_side: int | None = None,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    min_side: int = 1,
) -> DecodedImage:
    """Decode an image file to upright RGB, at reduced scale when that loses nothing needed.

    JPEG data can be decoded at 1/2, 1/4 or 1/8 scale inside libjpeg (the DCT does the
    averaging), several times faster than decoding every pixel and then resampling.
    With ``min_decoded_side`` the largest such reduction is used that keeps the shorter
    side at least that long and the longer side at least :data:`MEASURE_SIDE` (the
    quality measures' working copy); every other format, and ``None``, decode every
    pixel (the exact path). Model files record the value their training used
    (``Preprocessing.decode_min_side``), so the clinic decodes as training did.

    Args:
        path: the image file.
        min_decoded_side: the shorter side the decoded image must keep, or None for
            a full decode.
        max_pixels: refuse larger images, judged on the header before anything is
            decoded (decompression-bomb guard; a reduced decode is refused just the same).
        min_side: refuse images whose original shorter side is below this.

    Raises:
        ImageReadError: for a missing, empty, truncated, corrupt, oversize or
            non-image file; the message names the file and the reason.
    """
    path = Path(path)
    fix = "re-export or re-send the file, or remove it from the list"
    try:
        info = path.stat()  # one system call answers exists / folder / empty
    except FileNotFoundError as exc:
        raise ImageReadError("file does not exist", file=path, fix="check the path") from exc
    except OSError as exc:
        raise ImageReadError(f"cannot stat: {exc}", file=path, fix=fix) from exc
    if S_ISDIR(info.st_mode):
        raise ImageReadError("is a folder, not an image", file=path, fix="point at an image file")
    if info.st_size == 0:
        raise ImageReadError("file is empty (0 bytes)", file=path, fix=fix)
    # The pixel limit is checked here, from the header, before anything is decoded.
    # (Not with warnings.catch_warnings: it is not thread-safe, and the predictor
    # calls this from its decoding threads.)
    try:
        with open_image(path) as img:
            width, height = img.size
            if width * height > max_pixels:
                raise ImageReadError(
                    f"image is {width}x{height} = {width * height:,} pixels, above the "
                    f"limit of {max_pixels:,} (decompression-bomb guard)",
                    file=path,
                    fix="downscale the image, or raise max_pixels if it is genuine",
                )
            original = (height, width) if _orientation(img) in _SWAPS_SIDES else (width, height)
            if min_decoded_side is not None and img.format == "JPEG":
                scale = draft_scale((width, height), min_decoded_side)
                if scale > 1:  # Pillow picks exactly this scale for this requested size
                    img.draft(img.mode, (width // scale, height // scale))
            reduction = max(1, round(width / img.size[0]))
            img.load()
            ImageOps.exif_transpose(img, in_place=True)  # no copy when already upright
            rgb = to_rgb(img)
            rgb.load()
    except ImageReadError:
        raise
    except PermissionError as exc:
        raise ImageReadError("permission denied", file=path, fix="check file permissions") from exc
    except UnidentifiedImageError as exc:
        raise ImageReadError(
            "not a recognised image format",
            file=path,
            expected="JPEG, PNG, BMP or TIFF (HEIC/HEIF with the heif extra)",
            fix=fix,
        ) from exc
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageReadError(f"decompression bomb refused: {exc}", file=path, fix=fix) from exc
    except (OSError, SyntaxError, ValueError) as exc:
        # Pillow reports truncated/corrupt data as OSError or SyntaxError.
        raise ImageReadError(f"corrupt or truncated image: {exc}", file=path, fix=fix) from exc
    if min(original) < min_side:
        raise ImageReadError(
            f"image is only {original[0]}x{original[1]} pixels",
            file=path,
            expected=f"a shorter side of at least {min_side} pixels",
            fix=fix,
        )
    return DecodedImage(image=rgb, original_size=original, reduction=reduction)


def draft_scale(size: tuple[int, int], min_decoded_side: int) -> int:
    """The largest JPEG DCT reduction (8, 4, 2 or 1) that keeps the shorter side at least
    ``min_decoded_side`` and the longer side at least :data:`MEASURE_SIDE` px.

    libjpeg's reduced image is ceil(side / scale) long: a 1022x767 photo at 1/4 is 256x192.
    """
    short, long = min(size), max(size)
    for scale in (8, 4, 2):
        if -(-short // scale) >= min_decoded_side and -(-long // scale) >= MEASURE_SIDE:
            return scale
    return 1


def read_image(
    path: str | PathLike[str],
    *,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    min_side: int = 1,
) -> Image.Image:
    """Decode every pixel of an image file to an upright RGB Pillow image (the exact path).

    For model input use :func:`skinml.imaging.preprocess.decode_for_model`, which
    decodes as the model's file says; this is for copies that must keep every pixel
    (ingest, embedded samples, report images).

    Raises:
        ImageReadError: as :func:`decode_image`.
    """
    return decode_image(path, max_pixels=max_pixels, min_side=min_side).image


def _orientation(img: Image.Image) -> int:
    try:
        return int(img.getexif().get(0x0112, 1))
    except (TypeError, ValueError):  # a malformed tag: exif_transpose ignores it too
        return 1


def open_image(path: str | PathLike[str]) -> Image.Image:
    """``Image.open`` (lazy: header only), registering the HEIC/HEIF opener when a photo needs it.

    Raises:
        ImageReadError: for a HEIC/HEIF photo when the optional extra is missing.
        UnidentifiedImageError, OSError: as ``Image.open``.
    """
    path = Path(path)
    try:
        return Image.open(path)
    except UnidentifiedImageError:
        if not _looks_like_heif(path):
            raise
    if not _register_heif():
        raise ImageReadError(
            "HEIC/HEIF photo, and the optional HEIF support is not installed",
            file=path,
            fix=f"install it: {_HEIF_EXTRA}; or convert the photo to JPEG on the phone",
        )
    return Image.open(path)


def _looks_like_heif(path: Path) -> bool:
    with open(path, "rb") as fh:
        head = fh.read(12)
    return head[4:8] == b"ftyp" and head[8:12] in _HEIF_BRANDS


@lru_cache(maxsize=1)
def _register_heif() -> bool:
    """Teach Pillow HEIC/HEIF through pillow-heif, once; False when it is not installed."""
    try:
        from pillow_heif import register_heif_opener
    except ImportError:
        return False
    register_heif_opener()
    return True


@dataclass(frozen=True)
class ReadReport:
    """Outcome of checking many images: which decoded and which failed (with why)."""

    ok: list[Path]
    failed: list[ImageReadError]

    @property
    def all_ok(self) -> bool:
        return not self.failed


def read_images_report(
    paths: Iterable[str | PathLike[str]], *, max_pixels: int = DEFAULT_MAX_PIXELS
) -> ReadReport:
    """Try to decode every image and collect all failures instead of stopping at the first."""
    ok: list[Path] = []
    failed: list[ImageReadError] = []
    for p in paths:
        try:
            read_image(p, max_pixels=max_pixels)
        except ImageReadError as exc:
            failed.append(exc)
        else:
            ok.append(Path(p))
    return ReadReport(ok=ok, failed=failed)


def save_clean(
    img: Image.Image, path: str | PathLike[str], *, quality: int = 95, fmt: str | None = None
) -> Path:
    """Save pixels only: no EXIF, GPS, ICC, maker notes, comments or thumbnails.

    A new image is built from the pixel data so that nothing in ``img.info``
    can leak into the output file.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    rgb = to_rgb(img)
    clean = Image.frombytes("RGB", rgb.size, rgb.tobytes())
    fmt = fmt or {".jpg": "JPEG", ".jpeg": "JPEG", ".png": "PNG"}.get(path.suffix.lower(), "PNG")
    kwargs = {"quality": quality, "optimize": True} if fmt == "JPEG" else {}
    clean.save(path, format=fmt, **kwargs)
    return path
