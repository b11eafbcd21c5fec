"""Export a trained bundle to the clinician's model file (verified ONNX, optional int8).

Needs the research install (torch, onnx); the file it writes is read by the
torch-free :mod:`skinml.predict`. Imports are lazy so that ``import skinml.export``
stays cheap.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "ExportError",
    "ExportResult",
    "ExportVerificationError",
    "QuantizationRefusedError",
    "export_bundle",
]


def __getattr__(name: str) -> Any:
    if name in ("ExportResult", "export_bundle"):
        from skinml.export import api

        return getattr(api, name)
    if name in ("ExportError", "ExportVerificationError", "QuantizationRefusedError"):
        from skinml.export import errors

        return getattr(errors, name)
    raise AttributeError(f"module 'skinml.export' has no attribute {name!r}")
