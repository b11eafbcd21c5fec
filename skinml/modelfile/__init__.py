"""The model-file contract: one JSON document in the ONNX ``metadata_props``.

Light on purpose (standard library + onnxruntime) so that the clinician's
predictor can read it without torch or the ``onnx`` package.
"""

from skinml.modelfile.metadata import (
    METADATA_KEY,
    SCHEMA_VERSION,
    SUPPORTED_SCHEMA_VERSIONS,
    Calibration,
    MetricWithCI,
    ModelMetadata,
    OperatingThreshold,
    Preprocessing,
    Provenance,
)
from skinml.modelfile.onnx_io import read_metadata, verify_sidecar, write_sidecar

__all__ = [
    "METADATA_KEY",
    "SCHEMA_VERSION",
    "SUPPORTED_SCHEMA_VERSIONS",
    "Calibration",
    "MetricWithCI",
    "ModelMetadata",
    "OperatingThreshold",
    "Preprocessing",
    "Provenance",
    "read_metadata",
    "verify_sidecar",
    "write_sidecar",
]
