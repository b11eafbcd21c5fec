"""DICOM dermatology photographs to upright RGB Pillow images (via pydicom).

Some hospitals archive clinical and dermoscopic photos in PACS as VL
Photographic, Dermoscopic Photography or Secondary Capture objects. Only those
photographic SOP classes are accepted: a CT slice is not a skin photo and must
be rejected with a reason, not squashed into RGB. Header fields (device,
patient ID) are read here so that they can be pseudonymised by the caller; the
output image is re-encoded from pixels, so no DICOM attribute travels with it.
"""

from __future__ import annotations

from dataclasses import dataclass
from os import PathLike
from pathlib import Path

import numpy as np
from PIL import Image

from skinml.errors import ImageReadError
from skinml.imaging.read import DEFAULT_MAX_PIXELS, to_rgb

#: Photographic SOP classes (DICOM PS3.4) that can hold a skin photograph.
PHOTOGRAPHIC_SOP_CLASSES = {
    "1.2.840.10008.5.1.4.1.1.77.1.4": "VL Photographic Image Storage",
    "1.2.840.10008.5.1.4.1.1.77.1.7": "Dermoscopic Photography Image Storage",
    "1.2.840.10008.5.1.4.1.1.7": "Secondary Capture Image Storage",
    "1.2.840.10008.5.1.4.1.1.7.4": "Multi-frame True Color Secondary Capture Image Storage",
}

_FIX = "export the photo from PACS as a VL Photographic or Secondary Capture RGB image, or as JPEG"


def is_dicom(path: str | PathLike[str]) -> bool:
    """True when the file has the DICOM Part 10 preamble (``DICM`` at byte 128)."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(132)
    except OSError:
        return False
    return len(head) == 132 and head[128:132] == b"DICM"


@dataclass(frozen=True)
class DicomHeader:
    """The few header fields ingest uses (original identifiers: pseudonymise before output)."""

    sop_class: str
    device: str | None
    patient_id: str | None


def read_dicom_header(path: str | PathLike[str]) -> DicomHeader:
    """Read the header only (no pixels): SOP class, device and patient ID.

    Raises:
        ImageReadError: when the file is not readable DICOM.
    """
    import pydicom
    from pydicom.errors import InvalidDicomError

    try:
        ds = pydicom.dcmread(path, stop_before_pixels=True)
    except (InvalidDicomError, OSError, ValueError, EOFError) as exc:
        raise ImageReadError(f"unreadable DICOM: {exc}", file=path, fix=_FIX) from exc
    device = " ".join(
        str(ds.get(k, "")).strip() for k in ("Manufacturer", "ManufacturerModelName")
    ).strip()
    pid = str(ds.get("PatientID", "")).strip()
    return DicomHeader(
        sop_class=str(ds.get("SOPClassUID", "")), device=device or None, patient_id=pid or None
    )


def read_dicom_image(
    path: str | PathLike[str], *, max_pixels: int = DEFAULT_MAX_PIXELS
) -> Image.Image:
    """Decode a single-frame photographic DICOM to an 8-bit RGB Pillow image.

    Raises:
        ImageReadError: for a non-photographic SOP class, several frames, an
            oversize image, or pixel data that cannot be decoded.
    """
    import pydicom
    from pydicom.errors import InvalidDicomError

    path = Path(path)
    try:
        ds = pydicom.dcmread(path)
    except (InvalidDicomError, OSError, ValueError, EOFError) as exc:
        raise ImageReadError(f"unreadable DICOM: {exc}", file=path, fix=_FIX) from exc
    sop = str(ds.get("SOPClassUID", ""))
    if sop not in PHOTOGRAPHIC_SOP_CLASSES:
        raise ImageReadError(
            f"DICOM SOP class {sop or '(none)'} (modality {ds.get('Modality', '?')}) is not a "
            "photograph",
            file=path,
            expected=f"one of {sorted(PHOTOGRAPHIC_SOP_CLASSES.values())}",
            fix=_FIX,
        )
    frames = int(ds.get("NumberOfFrames", 1) or 1)
    if frames != 1:
        raise ImageReadError(
            f"DICOM has {frames} frames", file=path, expected="a single-frame photograph", fix=_FIX
        )
    rows, cols = int(ds.get("Rows", 0)), int(ds.get("Columns", 0))
    if rows * cols > max_pixels:
        raise ImageReadError(
            f"image is {cols}x{rows} pixels, above the limit of {max_pixels:,}",
            file=path,
            fix="downscale the image before sending",
        )
    try:
        arr = ds.pixel_array
        photometric = str(ds.get("PhotometricInterpretation", "")).upper()
        if photometric.startswith("YBR") and arr.ndim == 3:
            from pydicom.pixels import convert_color_space

            # pydicom leaves JPEG-decoded YBR data as YBR only when asked; convert if still YBR.
            arr = convert_color_space(arr, photometric, "RGB")
    except (ValueError, RuntimeError, NotImplementedError, AttributeError, KeyError) as exc:
        raise ImageReadError(f"cannot decode DICOM pixel data: {exc}", file=path, fix=_FIX) from exc
    return _array_to_rgb(arr, photometric, path)


def _array_to_rgb(arr: np.ndarray, photometric: str, path: Path) -> Image.Image:
    if arr.ndim == 3 and arr.shape[-1] == 3:
        if arr.dtype != np.uint8:
            arr = _rescale_uint8(arr)
        return Image.fromarray(np.ascontiguousarray(arr), mode="RGB")
    if arr.ndim == 2:
        if photometric == "MONOCHROME1":  # 0 = white in MONOCHROME1
            arr = arr.max() - arr
        img = (
            Image.fromarray(arr.astype(np.uint8), mode="L")
            if arr.dtype == np.uint8
            else Image.fromarray(arr.astype(np.int32), mode="I")
        )
        return to_rgb(img)
    raise ImageReadError(
        f"unsupported DICOM pixel array shape {arr.shape}",
        file=path,
        expected="rows x columns (x 3)",
        fix=_FIX,
    )


def _rescale_uint8(arr: np.ndarray) -> np.ndarray:
    lo, hi = float(arr.min()), float(arr.max())
    if hi <= lo:
        return np.zeros(arr.shape, dtype=np.uint8)
    return np.round((arr.astype(np.float64) - lo) / (hi - lo) * 255).astype(np.uint8)
