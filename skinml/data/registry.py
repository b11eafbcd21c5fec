"""Named datasets a user can type (``ham10000``, ``isic2017``, ``isic_uda1``, ``dermamnist``).

A registry exists only where a user types a name (STYLE.md): the ``skinml-data``
command, and the ``data.name`` of a training config. Each entry joins the
dataset's facts (:class:`~skinml.data.card.DatasetInfo`: classes, which are
malignant, licence, citation, caveats) with the loader for its real layout.

Where the files are: pass ``root`` (the dataset's own folder); otherwise the
folder named ``folder`` under ``$SKINML_DATA_DIR`` is used. ``isic_uda1``
needs no root: its small CC0 copy ships inside skinml.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Callable
from dataclasses import dataclass
from os import PathLike
from pathlib import Path
from typing import Any

from skinml.data.card import DatasetCard, DatasetInfo, build_card
from skinml.data.manifest import Manifest
from skinml.errors import ConfigError, DataError

#: Environment variables naming the folder that holds the dataset folders, in order.
DATA_DIR_ENV = ("SKINML_DATA_DIR", "SKINML_SHARED_DATA")

Loader = Callable[..., Manifest]


@dataclass(frozen=True)
class RegisteredDataset:
    """A registry entry: facts, loader, and where to look for the files.

    Attributes:
        info: the dataset's static facts.
        loader: ``loader(root: Path | None, **options) -> Manifest``.
        folder: the dataset's folder name under ``$SKINML_DATA_DIR``.
        needs_root: False when the loader has a built-in default (embedded data).
    """

    info: DatasetInfo
    loader: Loader
    folder: str | None = None
    needs_root: bool = True


_REGISTRY: dict[str, RegisteredDataset] = {}


def register_dataset(entry: RegisteredDataset, *, overwrite: bool = False) -> None:
    """Add a dataset under ``entry.info.name`` (e.g. a centre's own data)."""
    name = entry.info.name
    if name in _registry() and not overwrite:
        raise ConfigError(
            f"dataset {name!r} is already registered",
            fix="choose another name or pass overwrite=True",
        )
    _REGISTRY[name] = entry


def list_datasets() -> list[str]:
    """Registered dataset names, sorted."""
    return sorted(_registry())


def get_entry(name: str) -> RegisteredDataset:
    """The registry entry for ``name``; unknown names get a did-you-mean message."""
    reg = _registry()
    if name not in reg:
        close = difflib.get_close_matches(name, list(reg), n=3)
        hint = f"did you mean {close[0]!r}? " if close else ""
        raise ConfigError(
            f"unknown dataset {name!r}",
            expected=f"one of {sorted(reg)}",
            fix=f"{hint}run `skinml-data list`, or load a manifest CSV by path",
        )
    return reg[name]


def get_dataset_info(name: str) -> DatasetInfo:
    """The static facts (licence, citation, malignant classes...) of a dataset."""
    return get_entry(name).info


def resolve_root(name: str, root: str | PathLike[str] | None = None) -> Path | None:
    """The dataset folder: ``root`` if given, else ``$SKINML_DATA_DIR/<folder>``.

    Returns None, when no folder is found, for datasets whose loader has its own
    default (the embedded ``isic_uda1``; ``dermamnist``, which can download).

    Raises:
        DataError: no root given and none found, with what to set.
    """
    entry = get_entry(name)
    if root is not None:
        path = Path(root).expanduser()
        if not path.exists():
            raise DataError(
                f"dataset folder for {name!r} does not exist",
                file=path,
                fix="check the path given as root / --root",
            )
        return path
    tried = []
    for env in DATA_DIR_ENV:
        base = os.environ.get(env)
        if base and entry.folder:
            candidate = Path(base).expanduser() / entry.folder
            tried.append(str(candidate))
            if candidate.exists():
                return candidate
    if not entry.needs_root:
        return None
    where = f" (looked in {tried})" if tried else ""
    raise DataError(
        f"no folder given for dataset {name!r}{where}",
        expected=f"the {entry.folder or name} folder",
        fix=f"pass root=/path/to/{entry.folder or name} (CLI: --root), or set SKINML_DATA_DIR "
        f"to the folder that contains {entry.folder or name}/",
    )


def get_dataset(name: str, root: str | PathLike[str] | None = None, **options: Any) -> Manifest:
    """Load a registered dataset as a :class:`Manifest`.

    Args:
        name: a name from :func:`list_datasets`.
        root: the dataset folder (see :func:`resolve_root`).
        **options: passed to the loader (e.g. ``on_missing="exclude"``, ``size=64``).

    Raises:
        ConfigError: unknown name.
        DataError / ManyErrors: the files are not where or what they should be.
    """
    entry = get_entry(name)
    return entry.loader(resolve_root(name, root), **options)


def get_card(
    name: str,
    root: str | PathLike[str] | None = None,
    *,
    manifest: Manifest | None = None,
    fingerprint: str | None = None,
    **options: Any,
) -> DatasetCard:
    """The dataset card of a registered dataset (loads it unless ``manifest`` is given)."""
    entry = get_entry(name)
    if manifest is None:
        manifest = get_dataset(name, root, **options)
    checksums = None
    if entry.info.checksum_file:
        path = Path(manifest.root) / entry.info.checksum_file
        if path.is_file():
            checksums = f"`{path}` (verify with `skinml-data verify {name}`)"
    return build_card(manifest, entry.info, fingerprint=fingerprint, checksums=checksums)


def checksum_list(name: str, manifest: Manifest) -> Path | None:
    """The dataset's own checksum list (``MD5SUMS``/``SHA256SUMS``), if it has one."""
    info = get_dataset_info(name)
    if not info.checksum_file:
        return None
    for base in (Path(manifest.root), Path(manifest.root).parent):
        if (base / info.checksum_file).is_file():
            return base / info.checksum_file
    return None


# -- the built-in datasets ----------------------------------------------------------------


def _load_ham10000(root: Path | None, **options: Any) -> Manifest:
    from skinml.data.loaders.ham10000 import load_ham10000

    return load_ham10000(root, **options)  # type: ignore[arg-type]


def _load_isic2017(root: Path | None, **options: Any) -> Manifest:
    from skinml.data.loaders.isic import load_isic2017

    return load_isic2017(root, **options)  # type: ignore[arg-type]


def _load_isic_uda1(root: Path | None, **options: Any) -> Manifest:
    if root is None:
        from skinml.datasets import load_isic_uda1

        return load_isic_uda1(**options).manifest
    from skinml.data.loaders.csv_manifest import load_manifest_csv
    from skinml.data.loaders.uda1 import UDA1_CLASSES, load_isic_uda1_archive

    if (root / "metadata.csv").is_file():
        return load_isic_uda1_archive(root, **options)
    path = root / "manifest.csv"
    return load_manifest_csv(path, name="isic_uda1", classes=UDA1_CLASSES, **options)


def _load_dermamnist(root: Path | None, *, size: int = 28, **options: Any) -> Manifest:
    from skinml.data.loaders.medmnist import load_medmnist, medmnist_filename

    if root is None:
        return load_medmnist(size=size, **options)
    npz = root if root.is_file() else root / medmnist_filename("dermamnist", size)
    return load_medmnist(npz, size=size, **options)


HAM10000_INFO = DatasetInfo(
    name="ham10000",
    title="HAM10000: dermoscopic images of common pigmented skin lesions",
    description=(
        "10,015 dermoscopic images of 7,470 pigmented lesions from four sources "
        "(ViDIR Vienna: modern, MoleMax, DIAS; Cliff Rosendahl's practice, Queensland). "
        "Ground truth by histopathology (over half), follow-up, expert consensus or "
        "confocal microscopy. The split column is DermaMNIST's published split."
    ),
    class_names={
        "akiec": "actinic keratoses and intraepithelial carcinoma (Bowen's disease)",
        "bcc": "basal cell carcinoma",
        "bkl": "benign keratosis-like lesions",
        "df": "dermatofibroma",
        "mel": "melanoma",
        "nv": "melanocytic nevi",
        "vasc": "vascular lesions",
    },
    malignant=("mel", "bcc", "akiec"),
    licence=(
        "CC BY-NC 4.0 as commonly reported for the Harvard Dataverse record (not verified "
        "offline; the Kaggle mirror states CC BY-NC-SA 4.0): non-commercial research use "
        "with citation"
    ),
    citation=(
        "Tschandl P, Rosendahl C, Kittler H. The HAM10000 dataset, a large collection of "
        "multi-source dermatoscopic images of common pigmented skin lesions. Sci Data 5, "
        "180161 (2018). doi:10.1038/sdata.2018.161"
    ),
    source="Harvard Dataverse doi:10.7910/DVN/DBW86T (ISIC 2018 Task 3 training set)",
    caveats=(
        "The DermaMNIST split was made by image, not lesion: 1,006 lesions have images in "
        "more than one split. Use assign_splits(strategy='lesion') for honest test metrics.",
        "Site and diagnosis are strongly confounded (vidir_molemax is 94% nv, mostly "
        "confirmed by follow-up): a model can learn the site; report metrics per site.",
        "No patient ids: lesion ids stand in, so a patient with several lesions may span splits.",
        "The shared copy is a third-party 200x150 JPEG downscale, not the 600x450 originals.",
        "Age has 5-year steps; 0 is a placeholder in 39 rows; sex unknown for 57.",
    ),
    checksum_file="MD5SUMS",
)

ISIC2017_INFO = DatasetInfo(
    name="isic2017",
    title="ISIC 2017 Challenge Part 3: melanoma, seborrheic keratosis, nevus",
    description=(
        "The ISIC 2017 lesion classification challenge: 2,000 training, 150 validation and "
        "600 test dermoscopic images with official ground truth; age and sex for training "
        "and validation."
    ),
    class_names={
        "melanoma": "melanoma",
        "seborrheic_keratosis": "seborrheic keratosis",
        "nevus": "nevus (both ground-truth columns 0)",
    },
    malignant=("melanoma",),
    licence=(
        "not stated by the sources; ISIC challenge data is released for research with "
        "citation (archive images are CC-0 or CC BY-NC by contributing dataset): treat as "
        "non-commercial research use"
    ),
    citation=(
        "Codella NCF et al. Skin Lesion Analysis Toward Melanoma Detection: A Challenge at "
        "the 2017 International Symposium on Biomedical Imaging (ISBI), hosted by the ISIC. "
        "ISBI 2018; arXiv:1710.05006"
    ),
    source="https://challenge.isic-archive.com (2017 Part 3)",
    caveats=(
        "No lesion or patient ids: each image is its own group, so the official split may "
        "hide same-lesion images across splits.",
        "The shared copy is squashed to 256x256 without keeping the aspect ratio.",
        "93 UDA-1 images (isic_uda1) are also in the training set: keep them apart.",
        "Test images have no age/sex metadata.",
    ),
    checksum_file="MD5SUMS",
)

ISIC_UDA1_INFO = DatasetInfo(
    name="isic_uda1",
    title="ISIC Archive UDA-1 sample: nevus vs melanoma (CC0)",
    description=(
        "113 dermoscopic images from the ISIC Archive dataset UDA-1, one per original "
        "resolution (679x566 to 3872x2592) and diagnosis: 74 nevus, 39 melanoma, every "
        "melanoma confirmed by histopathology. The copy shipped with skinml is downscaled "
        "to 256 px (longest side) with EXIF removed; pass root= for the full-resolution "
        "originals."
    ),
    class_names={"nevus": "melanocytic nevus", "melanoma": "melanoma"},
    malignant=("melanoma",),
    licence="CC0 1.0 (UDA-1 by Anonymous; copyright waived)",
    citation=(
        "ISIC Archive, https://www.isic-archive.com; Codella NCF et al., Skin Lesion Analysis "
        "Toward Melanoma Detection: A Challenge at ISBI 2017, arXiv:1710.05006"
    ),
    source="ISIC Archive dataset UDA-1 (ISIC_0000000-ISIC_0000556), via epostIt/MachineLearning",
    caveats=(
        "One image per resolution x diagnosis: not class-balanced and not a random sample; "
        "do not estimate prevalence or per-device accuracy from it.",
        "No lesion or patient ids: each image is treated as its own lesion and patient.",
        "Benign diagnoses are mostly not histology-confirmed.",
        "93 of the 113 images are also in the ISIC 2017 training set.",
    ),
    checksum_file="SHA256SUMS",
)

DERMAMNIST_INFO = DatasetInfo(
    name="dermamnist",
    title="DermaMNIST (MedMNIST v2): HAM10000 at 28/64/128/224 px",
    description=(
        "HAM10000 resized from 600x450 to small squares by MedMNIST and split 7:1:2 by image "
        "(7,007 / 1,003 / 2,005). Read from the official .npz (downloaded with its MD5 "
        "checked, or a local copy) and written out as PNG files."
    ),
    class_names=dict(HAM10000_INFO.class_names),
    malignant=("mel", "bcc", "akiec"),
    licence="CC BY-NC 4.0 (MedMNIST INFO for dermamnist)",
    citation=(
        "Yang J et al. MedMNIST v2 - A large-scale lightweight benchmark for 2D and 3D "
        "biomedical image classification. Sci Data 10, 41 (2023); and Tschandl P et al., "
        "Sci Data 5, 180161 (2018)"
    ),
    source="https://zenodo.org/records/10519652 (MedMNIST+)",
    caveats=(
        "Split by image: 1,006 lesions span splits (Abhishek et al., Sci Data 12, 196 (2025)). "
        "The .npz has no lesion ids; use the ham10000 loader for lesion-grouped splits.",
        "28 px images lose most dermoscopic structure; prefer 224 px or HAM10000 itself.",
    ),
)


def _registry() -> dict[str, RegisteredDataset]:
    # Built-ins are added on first use, not at import time.
    if not _REGISTRY:
        for entry in (
            RegisteredDataset(HAM10000_INFO, _load_ham10000, folder="ham10000_images_200x150"),
            RegisteredDataset(ISIC2017_INFO, _load_isic2017, folder="isic2017_256"),
            RegisteredDataset(ISIC_UDA1_INFO, _load_isic_uda1, needs_root=False),
            RegisteredDataset(
                DERMAMNIST_INFO, _load_dermamnist, folder="medmnist", needs_root=False
            ),
        ):
            _REGISTRY[entry.info.name] = entry
    return _REGISTRY
