"""Loaders that turn real dataset layouts into the one image-manifest contract.

Each returns a :class:`skinml.data.manifest.Manifest`. Rows whose image file is
missing are listed all at once (``ManyErrors``), or with
``on_missing="exclude"`` moved to ``Manifest.excluded`` with the reason.
"""

from skinml.data.loaders._common import MissingImagesWarning
from skinml.data.loaders.csv_manifest import load_manifest_csv
from skinml.data.loaders.folder import SkippedFilesWarning, load_image_folder
from skinml.data.loaders.ham10000 import HAM10000_CLASSES, load_ham10000
from skinml.data.loaders.isic import ISIC2017_CLASSES, load_isic2017, load_isic_onehot
from skinml.data.loaders.medmnist import (
    MEDMNIST_FILES,
    download_medmnist,
    load_medmnist,
    medmnist_filename,
)
from skinml.data.loaders.uda1 import UDA1_CLASSES, load_isic_uda1_archive

__all__ = [
    "HAM10000_CLASSES",
    "ISIC2017_CLASSES",
    "MEDMNIST_FILES",
    "UDA1_CLASSES",
    "MissingImagesWarning",
    "SkippedFilesWarning",
    "download_medmnist",
    "load_ham10000",
    "load_image_folder",
    "load_isic2017",
    "load_isic_onehot",
    "load_isic_uda1_archive",
    "load_manifest_csv",
    "load_medmnist",
    "medmnist_filename",
]
