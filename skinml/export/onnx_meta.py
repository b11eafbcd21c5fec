"""Write the skinml metadata document and tensor documentation into an ONNX file.

Needs the ``onnx`` package (research install only); reading back goes through
onnxruntime in ``skinml.modelfile``. The file is saved as one self-contained
protobuf: any external-data tensor is an error, because a clinician receives one file.
"""

from __future__ import annotations

from os import PathLike
from pathlib import Path

from skinml.export.errors import ExportError
from skinml.modelfile.metadata import METADATA_KEY, ModelMetadata

#: Protobuf's hard limit for a single-file ONNX model.
MAX_SINGLE_FILE_BYTES = 2**31 - 1


def embed_metadata(
    src: str | PathLike[str], dst: str | PathLike[str], metadata: ModelMetadata
) -> Path:
    """Copy ``src`` to ``dst`` with ``metadata_props['skinml']`` and documented tensors.

    Graph inputs and outputs get ``doc_string``s from ``metadata.inputs`` /
    ``metadata.outputs`` so that tools like Netron show what each tensor means.

    Raises:
        ExportError: when the model references external data or exceeds 2 GiB.
    """
    import onnx

    model = onnx.load(str(src), load_external_data=False)
    external = [t.name for t in model.graph.initializer if _is_external(t)]
    if external:
        raise ExportError(
            f"the exported graph stores {len(external)} tensors in an external-data file "
            f"(e.g. {external[:3]}); a skinml model file must be one self-contained file",
            file=src,
            fix="export with external_data=False (the default in skinml-export)",
        )
    kept = [p for p in model.metadata_props if p.key != METADATA_KEY]
    del model.metadata_props[:]
    model.metadata_props.extend(kept)
    entry = model.metadata_props.add()
    entry.key = METADATA_KEY
    entry.value = metadata.to_json()
    for value in model.graph.input:
        if value.name in metadata.inputs:
            value.doc_string = metadata.inputs[value.name]
    for value in model.graph.output:
        if value.name in metadata.outputs:
            value.doc_string = metadata.outputs[value.name]
    model.doc_string = (
        f"skinml {metadata.task} model; classes {list(metadata.classes)}. "
        f"Full description in metadata_props[{METADATA_KEY!r}]."
    )
    size = model.ByteSize()
    if size > MAX_SINGLE_FILE_BYTES:
        raise ExportError(
            f"the model is {size / 2**30:.1f} GiB, above the 2 GiB single-file ONNX limit",
            fix="use a smaller architecture for the clinic model",
        )
    dst = Path(dst)
    onnx.save_model(model, str(dst), save_as_external_data=False)
    onnx.checker.check_model(str(dst))
    return dst


def _is_external(tensor) -> bool:
    import onnx

    return tensor.HasField("data_location") and tensor.data_location == onnx.TensorProto.EXTERNAL
