"""Regenerate skinml's embedded sample data from ``../shared/data``, deterministically.

Writes ``skinml/datasets/embedded/``:

* ``isic_uda1/``: the 113 CC0 ISIC Archive UDA-1 images, turned upright by
  their EXIF orientation, downscaled to a longest side of 256 px (Lanczos),
  saved as JPEG quality 90 with no EXIF/GPS/ICC (``save_clean``), plus
  ``manifest.csv`` (diagnosis, age, sex, original size; no split), the original
  ``LICENSE.txt``/``ATTRIBUTION.txt`` and ``NOTICE.md`` saying what changed;
* ``uci_dermatology/``: the UCI Dermatology data and names files, unchanged, with
  ``NOTICE.md``;
* ``SHA256SUMS``: every file above.

Run from the repository root::

    python scripts/make_embedded_data.py                # uses ../shared/data
    python scripts/make_embedded_data.py --shared /data --out /tmp/embedded

The same inputs and Pillow version give byte-identical output (checked by
``tests/data/test_embedded.py``).
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

from PIL import Image

from skinml.data.loaders.uda1 import load_isic_uda1_archive
from skinml.data.manifest import write_manifest
from skinml.imaging.read import read_image, save_clean
from skinml.integrity.checksums import sha256_file, write_checksum_list

REPO = Path(__file__).resolve().parents[1]
DEFAULT_SHARED = REPO.parent / "shared" / "data"
DEFAULT_OUT = REPO / "skinml" / "datasets" / "embedded"
UCI_FILES = ("dermatology.data", "dermatology.names")

UDA1_NOTICE = """\
# ISIC Archive UDA-1 sample (CC0), as shipped with skinml

113 dermoscopic images of melanocytic lesions (74 nevus, 39 melanoma) from the
ISIC Archive dataset "UDA-1" (attribution: Anonymous), released under CC0 1.0
(see `ATTRIBUTION.txt` and `LICENSE.txt`, copied unchanged from the ISIC download).

Selection: the first image of every (width, height, diagnosis) combination of
UDA-1, so every original resolution (679x566 to 3872x2592) is represented; not
class-balanced and not a random sample.

Changes made by skinml (`scripts/make_embedded_data.py`):
- rotated upright according to the EXIF orientation tag;
- downscaled to a longest side of {size} px (Lanczos), aspect ratio kept;
- saved as baseline JPEG, quality {quality}, with no EXIF, GPS, ICC profile or comments.

`manifest.csv` keeps the ISIC metadata: diagnosis, benign/malignant, confirmation
type, approximate age, sex, ISIC object id and the original pixel size. UDA-1
records no lesion or patient ids, so each image is its own lesion and patient.
No split is assigned (splits are assigned at training time).

Cite: the ISIC Archive (https://www.isic-archive.com) and Codella NCF et al.,
"Skin Lesion Analysis Toward Melanoma Detection: A Challenge at ISBI 2017",
arXiv:1710.05006. 93 of these images are also in the ISIC 2017 training set.
"""

UCI_NOTICE = """\
# UCI Dermatology (erythemato-squamous diseases), as shipped with skinml

366 patients, 34 attributes (12 clinical, 22 histopathological, plus family
history and age), 6 diagnoses; psoriasis is class 1 (112 patients).
`dermatology.data` and `dermatology.names` are the UCI Machine Learning
Repository files (dataset id 33), unchanged. Missing ages are written `?`.

Donors: Nilsel Ilter, M.D. (Gazi University) and H. Altay Guvenir (Bilkent
University), 1998. Licence: UCI ML Repository terms; UCI lists its datasets under
CC BY 4.0 (not verified offline). Cite: G. Demiroz, H. A. Guvenir, N. Ilter,
"Learning differential diagnosis of erythemato-squamous diseases using voting
feature intervals", Artificial Intelligence in Medicine, 1998, and the UCI
Machine Learning Repository.
"""


def downscale(img: Image.Image, longest: int) -> Image.Image:
    """Resize so the longest side is ``longest`` px (never upscale), keeping the aspect ratio."""
    w, h = img.size
    scale = longest / max(w, h)
    if scale >= 1:
        return img
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    return img.resize(size, Image.Resampling.LANCZOS)


def make_uda1(shared: Path, out: Path, *, size: int, quality: int) -> int:
    src = shared / "isic_archive_uda1"
    manifest = load_isic_uda1_archive(src)
    dest = out / "isic_uda1"
    if dest.exists():
        shutil.rmtree(dest)
    (dest / "images").mkdir(parents=True)
    for rel, path in zip(manifest.frame["image"], manifest.paths(), strict=True):
        save_clean(downscale(read_image(path), size), dest / rel, quality=quality)
    manifest.root = dest
    write_manifest(manifest, dest / "manifest.csv")
    for name in ("LICENSE.txt", "ATTRIBUTION.txt"):
        shutil.copyfile(src / name, dest / name)
    (dest / "NOTICE.md").write_text(UDA1_NOTICE.format(size=size, quality=quality))
    return len(manifest)


def make_uci(shared: Path, out: Path) -> None:
    src = shared / "uci_dermatology"
    dest = out / "uci_dermatology"
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    for name in UCI_FILES:
        shutil.copyfile(src / name, dest / name)
    (dest / "NOTICE.md").write_text(UCI_NOTICE)


def write_sums(out: Path) -> Path:
    files = sorted(p for p in out.rglob("*") if p.is_file() and p.name != "SHA256SUMS")
    digests = {p.relative_to(out).as_posix(): sha256_file(p) for p in files}
    return write_checksum_list(digests, out / "SHA256SUMS")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument(
        "--shared", type=Path, default=DEFAULT_SHARED, help="the shared/data folder"
    )
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output folder")
    parser.add_argument("--size", type=int, default=256, help="longest image side in px")
    parser.add_argument("--quality", type=int, default=90, help="JPEG quality")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    n = make_uda1(args.shared, args.out, size=args.size, quality=args.quality)
    make_uci(args.shared, args.out)
    sums = write_sums(args.out)
    total = sum(p.stat().st_size for p in args.out.rglob("*") if p.is_file())
    print(f"wrote {n} UDA-1 images and UCI Dermatology to {args.out} ({total / 1e6:.2f} MB)")
    print(f"checksums: {sums}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
