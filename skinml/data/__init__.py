"""The image-manifest contract, dataset loaders, cards, splits and the torch dataset."""

from skinml.data.manifest import (
    MANIFEST_COLUMNS,
    REQUIRED_COLUMNS,
    Manifest,
    read_manifest,
    validate_manifest,
    write_manifest,
)

__all__ = [
    "MANIFEST_COLUMNS",
    "REQUIRED_COLUMNS",
    "Manifest",
    "read_manifest",
    "validate_manifest",
    "write_manifest",
]
