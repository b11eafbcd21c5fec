"""Generated hospital deliveries for the ingest tests (all images simulated, labelled so).

Two simulated hospitals:

* ``simulated_north``: a label-folder delivery with a sender's ``SHA256SUMS``; images with GPS
  EXIF, maker notes, comments, ICC, XMP, EXIF orientations 3/6/8, modes CMYK, L, P, RGBA,
  I;16 TIFF and BMP, plus bad files (corrupt, truncated, 0-byte, non-image, oversize,
  checksum mismatch, a listed-but-missing file, a file outside any label folder).
* ``simulated_south``: a ``cases.csv`` delivery with identifiers and free-text columns, a
  photographic DICOM, path traversal, a row listed twice, a missing file, a lesion given to two
  patients, a folder named like an image, an unlisted file, and an exact duplicate of a north
  image with the same label ("melanoma", which the vocabulary reads as north's ``melanoma/``
  folder, ``mel``: a different label would be a label conflict) and a near duplicate labelled
  "nv" (kept, and reported as a near-duplicate label disagreement).
"""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageCms

KEY = b"simulated-test-key-5f2c9a8e1b7d4c3a"
PATIENT_NAME = "Jane_Doe_Smithers"
NORTH_PATIENT_FILE = f"melanoma/{PATIENT_NAME}_gps.jpg"
CSV_IDS = ["MRN-000123", "MRN-000456", "LES-777-A", "LES-888-B", "MRN-DICOM-9"]
FREE_TEXT = "Mrs Eleanor Rigby-Quantock"
OVERSIZE_PIXELS = 400 * 400  # the tests pass max_pixels below the oversize image


def textured(seed: int, size: tuple[int, int] = (96, 72)) -> Image.Image:
    """A smooth random RGB image; different seeds give perceptually different images."""
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, size=(6, 8, 3), dtype=np.uint8)
    return Image.fromarray(small, "RGB").resize(size, Image.Resampling.BICUBIC)


def asymmetric(size: tuple[int, int] = (80, 40)) -> Image.Image:
    """Red left half, blue right half, green top-left corner: any rotation is visible."""
    w, h = size
    arr = np.zeros((h, w, 3), dtype=np.uint8)
    arr[:, : w // 2] = (220, 30, 30)
    arr[:, w // 2 :] = (30, 30, 220)
    arr[: h // 4, : w // 4] = (30, 220, 30)
    return Image.fromarray(arr, "RGB")


def exif_with_gps(orientation: int | None = None) -> Image.Exif:
    exif = Image.Exif()
    exif[0x010F] = "SimCam"  # Make
    exif[0x0110] = "SimCam DermaPhone 3"  # Model
    exif[0x010E] = f"patient {PATIENT_NAME}"  # ImageDescription
    if orientation is not None:
        exif[0x0112] = orientation
    gps = exif.get_ifd(0x8825)
    gps.update({1: "N", 2: (52.0, 31.0, 12.5), 3: "E", 4: (13.0, 24.0, 1.0)})
    ifd = exif.get_ifd(0x8769)
    ifd[0x927C] = b"SIMULATED-MAKERNOTE-serial-4711"  # MakerNote
    ifd[0x9003] = "2026:11:01 10:00:00"
    return exif


def _srgb_icc() -> bytes:
    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


def jpeg_bytes(img: Image.Image, **kwargs: object) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=92, **kwargs)
    return buf.getvalue()


def write_dicom(path: Path, img: Image.Image, *, patient_id: str, sop: str | None = None) -> Path:
    """A VL Photographic RGB DICOM with patient name and ID (pydicom)."""
    from pydicom import Dataset
    from pydicom.dataset import FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    sop = sop or "1.2.840.10008.5.1.4.1.1.77.1.4"
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = sop
    meta.MediaStorageSOPInstanceUID = generate_uid(entropy_srcs=[str(path.name)])
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = sop
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.Modality = "XC"
    ds.PatientName = "Doe^Jane"
    ds.PatientID = patient_id
    ds.Manufacturer = "SimDerm"
    ds.ManufacturerModelName = "DermaScope X"
    arr = np.asarray(img.convert("RGB"))
    ds.Rows, ds.Columns = arr.shape[:2]
    ds.SamplesPerPixel = 3
    ds.PhotometricInterpretation = "RGB"
    ds.PlanarConfiguration = 0
    ds.BitsAllocated = 8
    ds.BitsStored = 8
    ds.HighBit = 7
    ds.PixelRepresentation = 0
    ds.PixelData = arr.tobytes()
    ds.save_as(path, enforce_file_format=True)
    return path


@dataclass
class Deliveries:
    """Paths of the generated deliveries and the expected outcome of each input."""

    root: Path
    north: Path
    south: Path
    key_file: Path
    #: (hospital, source) -> words expected in the rejection reason
    expected_rejections: dict[tuple[str, str], str] = field(default_factory=dict)
    n_inputs: int = 0
    n_good: int = 0

    @property
    def deliveries(self) -> list[Path]:
        return [self.north, self.south]


def build_deliveries(root: Path) -> Deliveries:
    north, south = root / "simulated_north", root / "simulated_south"
    root.mkdir(parents=True, exist_ok=True)
    key_file = root / "pseudonym.key"
    key_file.write_bytes(KEY)
    d = Deliveries(root, north, south, key_file)
    for sub in ("melanoma", "nevus"):
        (north / sub).mkdir(parents=True)

    # --- good north images (12) ---
    base = textured(1)
    (north / NORTH_PATIENT_FILE).write_bytes(
        jpeg_bytes(
            base,
            exif=exif_with_gps().tobytes(),
            icc_profile=_srgb_icc(),
            comment=f"taken for {PATIENT_NAME}".encode(),
        )
    )
    for k, orientation in ((2, 3), (3, 6), (4, 8)):
        (north / f"nevus/rot{orientation}.jpg").write_bytes(
            jpeg_bytes(
                asymmetric() if orientation == 6 else textured(k),
                exif=exif_with_gps(orientation).tobytes(),
            )
        )
    textured(5).convert("CMYK").save(north / "nevus/cmyk.jpg", quality=92)
    textured(6).convert("L").save(north / "nevus/grey.png")
    textured(7).convert("P").save(north / "nevus/palette.png")
    rgba = textured(8).convert("RGBA")
    rgba.putalpha(Image.new("L", rgba.size, 128))
    rgba.save(north / "nevus/alpha.png")
    deep = (np.asarray(textured(9).convert("L"), dtype=np.uint16) * 200).astype(np.uint16)
    Image.fromarray(deep).save(north / "nevus/deep16.tif")  # uint16 -> mode I;16
    textured(10).save(north / "nevus/bitmap.bmp")
    png_xmp = textured(11)
    png_xmp.save(
        north / "melanoma/with_text.png",
        pnginfo=_pnginfo({"Comment": PATIENT_NAME, "XML:com.adobe.xmp": "<x:xmpmeta/>"}),
    )
    textured(12).save(north / "melanoma/plain.tiff")

    # --- bad north inputs ---
    good_jpeg = jpeg_bytes(textured(13))
    (north / "nevus/truncated.jpg").write_bytes(good_jpeg[: len(good_jpeg) // 3])
    (north / "nevus/corrupt.jpg").write_bytes(b"\xff\xd8\xff\xe0" + bytes(range(256)) * 4)
    (north / "nevus/empty.jpg").write_bytes(b"")
    (north / "nevus/notes.txt").write_text("not an image\n")
    textured(14, size=(500, 400)).save(north / "nevus/oversize.png")
    (north / "nevus/mismatch.jpg").write_bytes(jpeg_bytes(textured(15)))
    (north / "stray_at_root.jpg").write_bytes(jpeg_bytes(textured(16)))
    sums = {}
    for p in sorted(north.rglob("*")):
        if p.is_file():
            sums[p.relative_to(north).as_posix()] = hashlib.sha256(p.read_bytes()).hexdigest()
    sums["nevus/mismatch.jpg"] = "0" * 64
    sums["nevus/never_sent.jpg"] = "1" * 64
    (north / "SHA256SUMS").write_text("".join(f"{v}  {k}\n" for k, v in sorted(sums.items())))
    d.expected_rejections.update(
        {
            ("simulated_north", "nevus/truncated.jpg"): "truncated",
            ("simulated_north", "nevus/corrupt.jpg"): "corrupt",
            ("simulated_north", "nevus/empty.jpg"): "0 bytes",
            ("simulated_north", "nevus/notes.txt"): "not a recognised image",
            ("simulated_north", "nevus/oversize.png"): "decompression-bomb",
            ("simulated_north", "nevus/mismatch.jpg"): "checksum mismatch",
            ("simulated_north", "nevus/never_sent.jpg"): "not delivered",
            ("simulated_north", "stray_at_root.jpg"): "no label",
        }
    )

    # --- south: cases.csv delivery ---
    photos = south / "photos"
    photos.mkdir(parents=True)
    textured(20).save(photos / "a.png")
    textured(21).save(photos / "b.tif")
    (photos / "c.jpg").write_bytes(jpeg_bytes(textured(22)))
    write_dicom(photos / "scan.dcm", textured(23), patient_id="MRN-DICOM-9")
    (photos / "exact_copy.jpg").write_bytes((north / NORTH_PATIENT_FILE).read_bytes())
    near = base.resize((80, 60), Image.Resampling.LANCZOS)
    (photos / "near_copy.jpg").write_bytes(jpeg_bytes(near))
    (photos / "folder.jpg").mkdir()
    (photos / "unlisted.jpg").write_bytes(jpeg_bytes(textured(24)))
    rows = [
        "image,diagnosis,patient_id,lesion_id,device,age,sex,patient_name,notes",
        f"photos/a.png,mel,MRN-000123,LES-777-A,DermLite DL4,61,female,{PATIENT_NAME},"
        f"seen by {FREE_TEXT}",
        "photos/b.tif,nv,MRN-000123,LES-888-B,DermLite DL4,61,female,x,",
        "photos/c.jpg,nv,MRN-000456,,,45,male,,",
        "photos/scan.dcm,nv,,,,,,,",
        "photos/exact_copy.jpg,melanoma,MRN-000456,,,45,male,,",
        "photos/near_copy.jpg,nv,MRN-000456,,,45,male,,",
        "../../etc/passwd,nv,MRN-000456,,,45,male,,",
        "photos/a.png,mel,MRN-000123,LES-777-A,,61,female,,",
        "photos/missing.jpg,nv,MRN-000456,,,45,male,,",
        "photos/folder.jpg,nv,MRN-000456,,,45,male,,",
    ]
    # a lesion assigned to a second patient (conflicting identifiers)
    textured(25).save(photos / "d.png")
    rows.append("photos/d.png,nv,MRN-000456,LES-777-A,,45,male,,")
    (south / "cases.csv").write_text("\n".join(rows) + "\n")
    d.expected_rejections.update(
        {
            ("simulated_south", "../../etc/passwd"): "outside the delivery",
            ("simulated_south", "photos/a.png#9"): "already listed at row 2",
            ("simulated_south", "photos/missing.jpg"): "not delivered",
            ("simulated_south", "photos/folder.jpg"): "folder",
            ("simulated_south", "photos/d.png"): "different patient",
            ("simulated_south", "photos/unlisted.jpg"): "not listed in cases.csv",
        }
    )
    # inputs: north 12 good + 7 bad files + 1 listed-but-missing; south 11 csv rows + 1 unlisted
    d.n_inputs = 20 + 12
    d.n_good = 12 + 6
    return d


def _pnginfo(texts: dict[str, str]):
    from PIL import PngImagePlugin

    info = PngImagePlugin.PngInfo()
    for k, v in texts.items():
        info.add_text(k, v)
    return info


@pytest.fixture
def deliveries(tmp_path: Path) -> Deliveries:
    """Fresh simulated deliveries in ``tmp_path``."""
    return build_deliveries(tmp_path / "inbox")


@pytest.fixture(scope="module")
def ingested(tmp_path_factory: pytest.TempPathFactory):
    """One ingest of the simulated deliveries, shared by read-only tests of a module."""
    from skinml.ingest import IngestConfig, run_ingest

    root = tmp_path_factory.mktemp("ingest")
    d = build_deliveries(root / "inbox")
    config = IngestConfig(max_pixels=OVERSIZE_PIXELS, workers=1)
    result = run_ingest(d.deliveries, root / "dataset", KEY, config, progress=False)
    return d, result


@pytest.fixture(scope="session")
def sim():
    """The generators and constants above, for test modules (conftest cannot be imported)."""
    import types

    return types.SimpleNamespace(
        KEY=KEY,
        PATIENT_NAME=PATIENT_NAME,
        NORTH_PATIENT_FILE=NORTH_PATIENT_FILE,
        CSV_IDS=CSV_IDS,
        FREE_TEXT=FREE_TEXT,
        OVERSIZE_PIXELS=OVERSIZE_PIXELS,
        textured=textured,
        asymmetric=asymmetric,
        jpeg_bytes=jpeg_bytes,
        exif_with_gps=exif_with_gps,
        write_dicom=write_dicom,
        build_deliveries=build_deliveries,
    )
