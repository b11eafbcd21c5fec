"""Arrival checks: size, readability, SHA-256, the sender's checksum, header facts.

This runs in the main process before any decoding, because it is cheap I/O
and because its outcome (the content hash) names the output file: a file that
arrived corrupted never reaches a worker.
"""

from __future__ import annotations

from dataclasses import dataclass

from PIL import Image, UnidentifiedImageError

from skinml.errors import ImageReadError
from skinml.imaging.read import open_image
from skinml.ingest.dicom import is_dicom, read_dicom_header
from skinml.ingest.records import Item
from skinml.integrity.checksums import file_digest, sha256_file


@dataclass(frozen=True)
class Arrival:
    """Facts about one file that arrived intact."""

    sha256: str
    size: int
    check: str  # "sha256-ok", "md5-ok" or "none" (no sender checksum)
    source_format: str
    source_mode: str
    device: str | None
    dicom_patient_id: str | None


class ArrivalError(Exception):
    """An arrived file that must be rejected (the message is the reason)."""


def check_arrival(item: Item, *, max_file_bytes: int) -> Arrival:
    """Hash the file, compare with the sender's checksum and read header facts.

    Raises:
        ArrivalError: for a folder, an empty, oversize or unreadable file, or a
            checksum that differs from the sender's list.
    """
    path = item.path
    try:
        if path.is_dir():
            raise ArrivalError("is a folder, not an image file")
        size = path.stat().st_size
    except OSError as exc:
        raise ArrivalError(f"cannot access the file: {exc.strerror or exc}") from exc
    if size == 0:
        raise ArrivalError("file is empty (0 bytes): truncated in transfer; ask for a resend")
    if size > max_file_bytes:
        raise ArrivalError(
            f"file is {size / 2**20:.1f} MiB, above the limit of {max_file_bytes / 2**20:.0f} MiB "
            "(raise --max-file-mb if it is genuine)"
        )
    try:
        sha = sha256_file(path)
        check = "none"
        if item.sender_digest:
            algo = {32: "md5", 40: "sha1", 64: "sha256"}.get(len(item.sender_digest), "sha256")
            got = sha if algo == "sha256" else file_digest(path, algo)
            if got != item.sender_digest.lower():
                raise ArrivalError(
                    f"checksum mismatch with the sender's {item.sender_list}: expected {algo} "
                    f"{item.sender_digest[:12]}..., got {got[:12]}...; the file was corrupted "
                    "or changed in transfer (ask the sender to resend it)"
                )
            check = f"{algo}-ok"
    except PermissionError as exc:
        raise ArrivalError(
            "permission denied: the file cannot be read (fix the file permissions and run again)"
        ) from exc
    except OSError as exc:
        raise ArrivalError(f"cannot read the file: {exc.strerror or exc}") from exc
    fmt, mode, device, pid = _probe(item)
    return Arrival(sha, size, check, fmt, mode, device, pid)


def _probe(item: Item) -> tuple[str, str, str | None, str | None]:
    """Format, mode and device from the header, without decoding pixels.

    Failures are ignored here: the decoder gives the precise reason later. That
    includes Pillow's own decompression-bomb refusal, which ``Image.open`` raises
    (above twice ``Image.MAX_IMAGE_PIXELS``) before skinml's ``max_pixels`` check.
    """
    if is_dicom(item.path):
        try:
            header = read_dicom_header(item.path)
        except ImageReadError:
            return "DICOM", "?", None, None
        return "DICOM", "?", header.device, header.patient_id
    try:
        with open_image(item.path) as img:
            exif = img.getexif()
            make = str(exif.get(0x010F, "")).strip("\x00 ")
            model = str(exif.get(0x0110, "")).strip("\x00 ")
            if make and model.lower().startswith(make.lower()):
                make = ""  # "Canon" + "Canon EOS 80D" -> "Canon EOS 80D"
            device = " ".join(p for p in (make, model) if p) or None
            return str(img.format), str(img.mode), device, None
    except (
        UnidentifiedImageError,
        Image.DecompressionBombError,
        ImageReadError,
        OSError,
        SyntaxError,
        ValueError,
    ):
        return "?", "?", None, None
