"""Turn one arrived file into one clean output image (the part that runs in worker processes).

Decoding goes through :func:`skinml.imaging.read.read_image` (EXIF orientation,
any mode to RGB, corrupt/bomb guards) or :mod:`skinml.ingest.dicom`; colours in
an embedded RGB ICC profile are converted to sRGB *before* the profile is
dropped; the result is written by :func:`skinml.imaging.read.save_clean`
(pixels only: no EXIF, GPS, maker notes, thumbnails, ICC, XMP or comments) to a
temporary name and renamed, so an interrupted run never leaves half a file
under a final name.
"""

from __future__ import annotations

import io
import os
from dataclasses import dataclass
from pathlib import Path

import imagehash
from PIL import Image, ImageCms

from skinml.errors import ImageReadError
from skinml.imaging.read import read_image, save_clean
from skinml.ingest.dicom import is_dicom, read_dicom_image
from skinml.integrity.checksums import sha256_file

_PIL_FORMAT = {"jpeg": "JPEG", "png": "PNG"}


@dataclass(frozen=True)
class Job:
    """Everything a worker needs (picklable, no identifiers)."""

    source: Path
    output: Path
    fmt: str
    quality: int
    max_side: int | None
    max_pixels: int


def normalise_file(job: Job) -> dict[str, object]:
    """Decode, orient, colour-convert, resize and save one image; hash the result.

    Returns:
        ``{"sha256", "width", "height", "phash", "icc_to_srgb"}`` on
        success, or ``{"error": reason}`` when the file cannot be decoded (the
        reason names no path: the caller reports the source path itself).
    """
    try:
        if is_dicom(job.source):
            img = read_dicom_image(job.source, max_pixels=job.max_pixels)
        else:
            img = read_image(job.source, max_pixels=job.max_pixels)
    except ImageReadError as exc:
        return {"error": exc.problem + (f"; fix: {exc.fix}" if exc.fix else "")}
    img, converted = to_srgb(img)
    if job.max_side is not None and max(img.size) > job.max_side:
        img.thumbnail((job.max_side, job.max_side), Image.Resampling.LANCZOS)
    write_atomic(img, job.output, fmt=job.fmt, quality=job.quality)
    return {
        "sha256": sha256_file(job.output),
        "width": img.width,
        "height": img.height,
        "phash": perceptual_hash(img),
        "icc_to_srgb": converted,
    }


def perceptual_hash(img: Image.Image) -> str:
    """64-bit pHash (hex) of an image, computed on a box-reduced copy.

    pHash looks at a 32x32 version anyway; reducing a 10 MP photo by an integer
    factor first is several times faster than resampling it whole, and the
    hash is the same function of the picture at every run.
    """
    factor = max(1, min(img.size) // 128)
    small = img.reduce(factor) if factor > 1 else img
    return str(imagehash.phash(small))


def to_srgb(img: Image.Image) -> tuple[Image.Image, bool]:
    """Apply an embedded RGB ICC profile (e.g. Adobe RGB from a camera) so pixels are sRGB.

    Dropping a non-sRGB profile without converting would shift colours, which
    matters for pigmented lesions. Profiles that cannot be applied are ignored
    (the pixels are kept as they are).
    """
    icc = img.info.get("icc_profile")
    if not icc or img.mode != "RGB":
        return img, False
    try:
        src = ImageCms.ImageCmsProfile(io.BytesIO(icc))
        if src.profile.xcolor_space.strip() != "RGB":
            return img, False
        if "srgb" in (src.profile.profile_description or "").lower():
            return img, False
        out = ImageCms.profileToProfile(img, src, ImageCms.createProfile("sRGB"), outputMode="RGB")
    except (ImageCms.PyCMSError, OSError, ValueError, TypeError):
        return img, False
    return (out if out is not None else img), True


def write_atomic(img: Image.Image, output: Path, *, fmt: str, quality: int) -> Path:
    """Save via :func:`save_clean` to a temporary sibling, then rename over ``output``."""
    output.parent.mkdir(parents=True, exist_ok=True)
    tmp = output.with_name(f".{output.name}.{os.getpid()}.tmp")
    try:
        save_clean(img, tmp, quality=quality, fmt=_PIL_FORMAT[fmt])
        os.replace(tmp, output)
    finally:
        if tmp.exists():
            tmp.unlink()
    return output
