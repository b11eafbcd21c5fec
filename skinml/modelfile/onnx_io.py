"""Read the metadata document out of an ONNX file, and check the SHA-256 sidecar.

Reading goes through onnxruntime (``custom_metadata_map``), so the clinician's
install needs neither torch nor the ``onnx`` package. Writing lives in
``skinml.export`` because it needs ``onnx``.
"""

from __future__ import annotations

from os import PathLike
from pathlib import Path

from skinml.errors import ModelFileError
from skinml.integrity.checksums import sha256_file
from skinml.modelfile.metadata import METADATA_KEY, ModelMetadata

SIDECAR_SUFFIX = ".sha256"


def sidecar_path(model_path: str | PathLike[str]) -> Path:
    """``model.onnx`` -> ``model.onnx.sha256``."""
    p = Path(model_path)
    return p.with_name(p.name + SIDECAR_SUFFIX)


def write_sidecar(model_path: str | PathLike[str]) -> Path:
    """Write ``<sha256>  <file name>`` beside the model (``sha256sum -c`` compatible)."""
    p = Path(model_path)
    out = sidecar_path(p)
    out.write_text(f"{sha256_file(p)}  {p.name}\n", encoding="utf-8")
    return out


def verify_sidecar(model_path: str | PathLike[str]) -> bool | None:
    """Check the model against its sidecar.

    Returns:
        True when the sidecar exists and matches, None when there is no sidecar.

    Raises:
        ModelFileError: when the sidecar exists and the file does not match it.
    """
    p = Path(model_path)
    side = sidecar_path(p)
    if not side.exists():
        return None
    if not p.is_file():
        raise ModelFileError(
            f"model file does not exist (only its checksum file {side.name} is there)",
            file=p,
            fix="copy the .onnx file next to its .sha256 file, or check the path",
        )
    text = side.read_text(encoding="utf-8").split()
    expected = text[0].lower() if text else ""
    actual = sha256_file(p)
    if actual != expected:
        raise ModelFileError(
            f"checksum mismatch: the file's SHA-256 is {actual}, the sidecar {side.name} "
            f"says {expected}",
            file=p,
            fix="the model was changed or damaged in transfer; ask for the file again and "
            "do not use this copy",
        )
    return True


def read_metadata(model_path: str | PathLike[str], session: object | None = None) -> ModelMetadata:
    """Parse the skinml metadata document from an ONNX model.

    Args:
        model_path: the ``.onnx`` file.
        session: an existing ``onnxruntime.InferenceSession`` to avoid loading twice.

    Raises:
        ModelFileError: when the file is not ONNX, or carries no skinml metadata.
    """
    import onnxruntime as ort

    p = Path(model_path)
    if not p.is_file():
        raise ModelFileError("model file does not exist", file=p, fix="check the path")
    if session is None:
        try:
            session = ort.InferenceSession(str(p), providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own exception types
            raise ModelFileError(
                f"not a loadable ONNX model: {exc}", file=p, fix="check that this is the .onnx file"
            ) from exc
    props = session.get_modelmeta().custom_metadata_map  # type: ignore[attr-defined]
    if METADATA_KEY not in props:
        raise ModelFileError(
            f"this ONNX file carries no skinml metadata (metadata_props has no {METADATA_KEY!r} "
            f"entry; found {sorted(props) or 'none'})",
            file=p,
            fix="skinml-predict only runs models exported by skinml-export, which embeds the "
            "classes, preprocessing, calibration and thresholds needed to use the model safely",
        )
    return ModelMetadata.from_json(props[METADATA_KEY], source=str(p))
