"""Robust image reading: every failure becomes an ``ImageReadError`` naming the file.

Skin images arrive from many devices: rotated phone photos with EXIF
orientation, CMYK scans, 16-bit TIFFs, palette PNGs, RGBA screenshots. Models
want upright 8-bit RGB, so this module normalises all of them the same way in
training, export calibration, prediction, ingest and QC.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from os import PathLike
from pathlib import Path
from stat import S_ISDIR

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from skinml.errors import ImageReadError

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


def read_image(
    path: str | PathLike[str],
    *,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    min_side: int = 1,
) -> Image.Image:
    """Decode an image file to an upright RGB Pillow image.

    Args:
        path: the image file.
        max_pixels: refuse larger images (decompression-bomb guard).
        min_side: refuse images whose shorter side is below this.

    Returns:
        A fully loaded RGB image with EXIF orientation applied.

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
        with Image.open(path) as img:
            width, height = img.size
            if width * height > max_pixels:
                raise ImageReadError(
                    f"image is {width}x{height} = {width * height:,} pixels, above the "
                    f"limit of {max_pixels:,} (decompression-bomb guard)",
                    file=path,
                    fix="downscale the image, or raise max_pixels if it is genuine",
                )
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
            "not a recognised image format", file=path, expected="JPEG, PNG, BMP or TIFF", fix=fix
        ) from exc
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageReadError(f"decompression bomb refused: {exc}", file=path, fix=fix) from exc
    except (OSError, SyntaxError, ValueError) as exc:
        # Pillow reports truncated/corrupt data as OSError or SyntaxError.
        raise ImageReadError(f"corrupt or truncated image: {exc}", file=path, fix=fix) from exc
    if min(rgb.size) < min_side:
        raise ImageReadError(
            f"image is only {rgb.size[0]}x{rgb.size[1]} pixels",
            file=path,
            expected=f"a shorter side of at least {min_side} pixels",
            fix=fix,
        )
    return rgb


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
