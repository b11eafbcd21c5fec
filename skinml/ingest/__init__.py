"""Hospital deliveries to one verified dataset: checksums, clean images, pseudonyms, a manifest.

The data manager's tool behind ``skinml-ingest`` (see :mod:`skinml.cli.ingest`).
"""

from skinml.ingest.config import DEFAULT_KEPT_COLUMNS, IngestConfig
from skinml.ingest.delivery import DeliveryScan, scan_delivery
from skinml.ingest.dicom import is_dicom, read_dicom_image
from skinml.ingest.duplicates import (
    assign_duplicate_groups,
    assign_split_groups,
    merge_duplicate_lesions,
    near_pairs,
)
from skinml.ingest.pipeline import IngestResult, run_ingest
from skinml.ingest.verify import DatasetVerification, verify_dataset

__all__ = [
    "DEFAULT_KEPT_COLUMNS",
    "DatasetVerification",
    "DeliveryScan",
    "IngestConfig",
    "IngestResult",
    "assign_duplicate_groups",
    "assign_split_groups",
    "is_dicom",
    "merge_duplicate_lesions",
    "near_pairs",
    "read_dicom_image",
    "run_ingest",
    "scan_delivery",
    "verify_dataset",
]
