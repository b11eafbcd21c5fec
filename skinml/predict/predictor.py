"""The torch-free image predictor: decode -> preprocess -> onnxruntime -> one row per input.

Everything it needs to use the model correctly (classes, preprocessing,
calibration, thresholds, OOD threshold, tensor names) is read from the model
file itself. Decoding runs in a small thread pool (Pillow releases the GIL)
with at most two batches in flight, so throughput is high and memory stays
flat however many images are scored.

Test-time augmentation follows the model file (:mod:`skinml.predict.tta`): a file
trained with it averages the flip views in its graph, so the default output is the
training run's; ``tta=True`` never adds a second, different averaging.

A metadata-fusion model also takes each case's patient metadata (age, sex,
anatomical site) from the input CSV, encoded by the rules stored in the model file
(:mod:`skinml.modelfile.metadata_input`). A cell that cannot be encoded makes that
input an error row naming the column and CSV row; an empty cell follows the
documented unknown rule, which the row's ``metadata_notes`` reports.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from os import PathLike
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from skinml.errors import ImageReadError, ModelFileError, describe
from skinml.imaging.preprocess import decode_for_model, preprocess
from skinml.imaging.quality import quality_flags, quality_measures
from skinml.modelfile import ModelMetadata, read_metadata, verify_sidecar
from skinml.modelfile.metadata_input import (
    METADATA_INPUT_NAME,
    MetadataEncoding,
    MetadataValueError,
)
from skinml.predict.heatmap import write_heatmap
from skinml.predict.inputs import InputItem
from skinml.predict.scores import energy_score, malignant_probability, softmax
from skinml.predict.tta import TtaPlan, plan_tta

#: Graph tensor names used by skinml-export (also stored in ``extra["tensors"]``).
DEFAULT_TENSORS = {
    "input": "image",
    "logits": "logits",
    "probabilities": "probabilities",
    "cam": "cam",
}
#: Batches decoded ahead of inference; bounds memory while overlapping decode and compute.
PREFETCH_BATCHES = 2


def output_columns(classes: Sequence[str], *, metadata: bool = False) -> list[str]:
    """Column order of ``predictions.csv`` for a model with these classes.

    A model with a metadata input adds ``metadata_notes`` (which cells were treated as
    unknown) at the end.
    """
    columns = [
        "input",
        "file",
        "status",
        "error",
        "predicted_class",
        *[f"p_{c}" for c in classes],
        "malignant_probability",
        "malignant_flag",
        "quality_flags",
        "ood_score",
        "ood_flag",
        "heatmap",
    ]
    return [*columns, "metadata_notes"] if metadata else columns


def make_session(model_path: str | PathLike[str], threads: int | None = None):
    """An onnxruntime CPU session; ``threads`` caps intra-op threads (None: onnxruntime decides).

    Raises:
        ModelFileError: when the file is missing or not a loadable ONNX model.
    """
    import onnxruntime as ort

    p = Path(model_path)
    if not p.is_file():
        raise ModelFileError("model file does not exist", file=p, fix="check the path")
    opts = ort.SessionOptions()
    if threads:
        opts.intra_op_num_threads = int(threads)
        opts.inter_op_num_threads = 1
    try:
        return ort.InferenceSession(str(p), sess_options=opts, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own pybind exception types
        raise ModelFileError(
            f"not a loadable ONNX model: {exc}", file=p, fix="check that this is the .onnx file"
        ) from exc


def _class_count_error(path: Path, width: int, classes: Sequence[str]) -> ModelFileError:
    return ModelFileError(
        f"the graph outputs {width} class scores but the metadata names {len(classes)} "
        f"classes {list(classes)}",
        file=path,
        expected="one class name per output column",
        fix="the metadata does not belong to this graph; re-export the model with skinml-export",
    )


@dataclass
class _Loaded:
    """One decoded input waiting for inference (or the reason it cannot be scored)."""

    index: int
    item: InputItem
    array: np.ndarray | None = None
    image: Image.Image | None = None
    flags: list[str] = field(default_factory=list)
    error: str | None = None
    metadata: np.ndarray | None = None
    notes: list[str] = field(default_factory=list)


class ImagePredictor:
    """Score images with a skinml ONNX image classifier, with numpy, Pillow and onnxruntime only.

    Args:
        model_path: the ``.onnx`` file written by ``skinml-export``.
        threads: onnxruntime intra-op threads (None: all cores).
        tta: ask for test-time augmentation as the training run did it; decided per file
            by :func:`~skinml.predict.tta.plan_tta` (a no-op when the graph already
            averages the views, refused when the calibration was fitted without them;
            see :attr:`tta_plan` and its ``note``).
        workers: decoding threads (None: up to 4; 0: decode in the calling thread).
        session: an existing ``onnxruntime.InferenceSession`` for ``model_path``.

    Raises:
        ModelFileError: missing file, wrong checksum (when a ``.sha256`` sidecar is
            present), no skinml metadata, unsupported schema, or a non-image task.
        ConfigError: ``tta=True`` for a model calibrated on single views.
    """

    def __init__(
        self,
        model_path: str | PathLike[str],
        *,
        threads: int | None = None,
        tta: bool = False,
        workers: int | None = None,
        session: Any | None = None,
    ) -> None:
        self.model_path = Path(model_path)
        self.checksum_verified = verify_sidecar(self.model_path)
        self.session = session if session is not None else make_session(model_path, threads)
        self.metadata: ModelMetadata = read_metadata(self.model_path, session=self.session)
        if self.metadata.task != "image_classification":
            raise ModelFileError(
                f"this is a {self.metadata.task!r} model, not an image classifier",
                file=self.model_path,
                fix="use skinml-predict, which dispatches on the model's task",
            )
        self.tta = tta
        self.tta_plan: TtaPlan = plan_tta(self.metadata, tta, source=self.model_path.name)
        self.workers = min(4, os.cpu_count() or 1) if workers is None else int(workers)
        self.tensors = {**DEFAULT_TENSORS, **self.metadata.extra.get("tensors", {})}
        self.metadata_encoding: MetadataEncoding | None = None
        if self.metadata.extra.get("metadata_input") is not None:
            self.metadata_encoding = MetadataEncoding.from_dict(
                self.metadata.extra["metadata_input"], source=str(self.model_path)
            )
            self.tensors.setdefault("metadata", METADATA_INPUT_NAME)
        self._check_graph()
        ood = self.metadata.extra.get("ood") or {}
        self.ood_threshold: float | None = ood.get("threshold")
        mal = self.metadata.threshold("malignant")
        self.malignant_threshold: float | None = None if mal is None else mal.threshold
        self.columns = output_columns(
            self.metadata.classes, metadata=self.metadata_encoding is not None
        )

    @property
    def metadata_columns(self) -> tuple[str, ...]:
        """The input-CSV columns this model needs beside the image (empty: image only)."""
        enc = self.metadata_encoding
        return () if enc is None else enc.column_names

    @property
    def has_cam(self) -> bool:
        """Whether the graph outputs class-activation maps (heatmaps possible)."""
        return bool(self.tensors.get("cam")) and self.tensors["cam"] in self._outputs

    @property
    def warnings(self) -> tuple[str, ...]:
        """The model file's plain-language warnings (e.g. not better than chance)."""
        return self.metadata.warnings

    @property
    def heatmap_note(self) -> str | None:
        """Why heatmaps of this model are not a localisation (too coarse), or None."""
        return (self.metadata.extra.get("cam") or {}).get("coarse")

    def _check_graph(self) -> None:
        inputs = {i.name: i for i in self.session.get_inputs()}
        self._outputs = {o.name for o in self.session.get_outputs()}
        needed_out = [self.tensors["probabilities"], self.tensors["logits"]]
        missing = [n for n in [self.tensors["input"]] if n not in inputs]
        missing += [n for n in needed_out if n not in self._outputs]
        if missing:
            raise ModelFileError(
                f"graph lacks the tensors {missing} named in its skinml metadata "
                f"(inputs {sorted(inputs)}, outputs {sorted(self._outputs)})",
                file=self.model_path,
                fix="re-export the model with skinml-export",
            )
        self._check_metadata_input(inputs)
        n_classes = len(self.metadata.classes)
        for o in self.session.get_outputs():
            if o.name in needed_out:
                width = o.shape[-1] if len(o.shape) == 2 else None
                if isinstance(width, int) and width != n_classes:
                    raise _class_count_error(self.model_path, width, self.metadata.classes)
        shape = inputs[self.tensors["input"]].shape
        want = self.metadata.preprocessing.input_size  # type: ignore[union-attr]
        fixed = len(shape) == 4 and all(isinstance(s, int) for s in shape[2:])
        if fixed and tuple(shape[2:]) != tuple(want):
            raise ModelFileError(
                f"graph input is {shape[2]}x{shape[3]} but the metadata says {want}",
                file=self.model_path,
                fix="the metadata does not belong to this graph; re-export the model",
            )

    def _check_metadata_input(self, inputs: dict[str, Any]) -> None:
        """A metadata graph input and its documented encoding must come together and agree."""
        enc = self.metadata_encoding
        documented = {self.tensors["input"]} | ({self.tensors["metadata"]} if enc else set())
        undocumented = sorted(set(inputs) - documented)
        if undocumented:
            raise ModelFileError(
                f"graph inputs {undocumented} are not documented in its skinml metadata",
                file=self.model_path,
                fix="re-export the model with skinml-export",
            )
        if enc is None:
            return
        name = self.tensors["metadata"]
        if name not in inputs:
            raise ModelFileError(
                f"the metadata documents a patient-metadata input {name!r} the graph lacks "
                f"(inputs {sorted(inputs)})",
                file=self.model_path,
                fix="re-export the model with skinml-export",
            )
        shape = inputs[name].shape
        if len(shape) != 2 or (isinstance(shape[1], int) and shape[1] != enc.n_features):
            raise ModelFileError(
                f"graph input {name!r} has shape {shape} but its encoding has "
                f"{enc.n_features} features",
                file=self.model_path,
                fix="the metadata does not belong to this graph; re-export the model",
            )

    # -- single steps -------------------------------------------------------------------------

    def load(self, index: int, item: InputItem, keep_image: bool = False) -> _Loaded:
        """Decode, measure quality and preprocess one input; failures become an error reason."""
        out = _Loaded(index=index, item=item)
        if item.error is not None or item.file is None:
            out.error = item.error or "no file given"
            return out
        if self.metadata_encoding is not None:
            out.metadata, out.notes, out.error = self.encode_metadata(item)
            if out.error is not None:
                return out
        try:
            decoded = decode_for_model(item.file, self.metadata.preprocessing)  # type: ignore[arg-type]
        except ImageReadError as exc:
            out.error = exc.problem
            return out
        img = decoded.image
        out.flags = quality_flags(quality_measures(img, original_size=decoded.original_size))
        out.array = preprocess(img, self.metadata.preprocessing)  # type: ignore[arg-type]
        if keep_image:
            out.image = img
        return out

    def encode_metadata(self, item: InputItem) -> tuple[np.ndarray | None, list[str], str | None]:
        """(features, notes, error) for one input's metadata cells; never raises for bad cells."""
        enc = self.metadata_encoding
        assert enc is not None
        if item.metadata is None:
            return (
                None,
                [],
                (
                    f"no patient metadata given; this model needs the columns "
                    f"{list(enc.column_names)} (use a CSV input)"
                ),
            )
        try:
            feats, notes = enc.encode_row(item.metadata)
        except MetadataValueError as exc:
            where = "" if item.row is None else f"CSV row {item.row}, "
            return None, [], where + describe(exc.problem, column=exc.column, expected=exc.expected)
        return feats, notes, None

    def infer(
        self, batch: np.ndarray, *, with_cam: bool = False, metadata: np.ndarray | None = None
    ) -> dict[str, np.ndarray]:
        """Run the graph on an NCHW float32 batch, with the file's TTA (:attr:`tta_plan`).

        Args:
            batch: preprocessed images.
            with_cam: also return the class-activation maps.
            metadata: encoded patient metadata (N, F) for a fusion model; the same for
                every flip view (only the image is flipped).

        Returns:
            ``probabilities`` (calibrated, in-graph), ``logits`` and, when asked, ``cam``.
        """
        names = [self.tensors["probabilities"], self.tensors["logits"]]
        if with_cam:
            names.append(self.tensors["cam"])
        if (metadata is None) != (self.metadata_encoding is None):
            raise ValueError(
                "this model needs metadata" if metadata is None else "this model takes no metadata"
            )
        plan = self.tta_plan
        views = [(_flip(batch, a), a) for a in plan.axes] if plan.views else [(batch, ())]
        runs = []
        for x, axes in views:
            feeds = {self.tensors["input"]: np.ascontiguousarray(x)}
            if metadata is not None:
                feeds[self.tensors["metadata"]] = np.ascontiguousarray(metadata, dtype=np.float32)
            outs = self.session.run(names, feeds)
            if outs[0].ndim != 2 or outs[0].shape[1] != len(self.metadata.classes):
                # A dynamic output width is only known now; never drop a probability column.
                raise _class_count_error(self.model_path, outs[0].shape[-1], self.metadata.classes)
            if with_cam:
                outs[2] = _flip(outs[2], axes)  # back onto the input
            runs.append([np.asarray(o, dtype=np.float64) for o in outs])
        keys = ["probabilities", "logits", "cam"][: len(names)]
        if len(runs) == 1:
            return dict(zip(keys, runs[0], strict=True))
        # Average logits (and maps), then the temperature: what the calibration was fitted on.
        out = {k: np.mean([r[i] for r in runs], axis=0) for i, k in enumerate(keys) if i > 0}
        return {"probabilities": softmax(out["logits"], plan.temperature), **out}

    # -- streaming ----------------------------------------------------------------------------

    def iter_rows(
        self,
        items: Iterable[InputItem],
        *,
        batch_size: int = 32,
        heatmap_dir: str | PathLike[str] | None = None,
    ) -> Iterator[dict[str, Any]]:
        """Yield one row per item, in input order, decoding ahead in a thread pool.

        Raises:
            ModelFileError: when heatmaps are asked of a model whose graph has no CAM output.
        """
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        heat = Path(heatmap_dir) if heatmap_dir is not None else None
        if heat is not None and not self.has_cam:
            reason = (self.metadata.extra.get("cam") or {}).get("reason", "no 'cam' output")
            raise ModelFileError(
                f"this model cannot draw heatmaps: {reason}",
                file=self.model_path,
                fix="run without --heatmaps",
            )
        batches = _chunks(enumerate(items), batch_size)
        if self.workers <= 0:
            for batch in batches:
                loaded = [self.load(i, it, heat is not None) for i, it in batch]
                yield from self._score(loaded, heat)
            return
        with ThreadPoolExecutor(self.workers, thread_name_prefix="skinml-decode") as pool:
            pending: deque[list[Future[_Loaded]]] = deque()
            for batch in batches:
                pending.append([pool.submit(self.load, i, it, heat is not None) for i, it in batch])
                if len(pending) > PREFETCH_BATCHES:
                    yield from self._score([f.result() for f in pending.popleft()], heat)
            while pending:
                yield from self._score([f.result() for f in pending.popleft()], heat)

    def predict_paths(
        self,
        paths: Iterable[str | PathLike[str]],
        *,
        batch_size: int = 32,
        heatmap_dir: str | PathLike[str] | None = None,
        metadata: Sequence[Mapping[str, Any]] | None = None,
    ) -> list[dict[str, Any]]:
        """Rows (as dicts with :func:`output_columns` keys) for a list of image paths.

        ``metadata``: one mapping column -> value per path, for a model with a metadata
        input (see :attr:`metadata_columns`).
        """
        paths = list(paths)
        if metadata is not None and len(metadata) != len(paths):
            raise ValueError(f"{len(metadata)} metadata rows for {len(paths)} paths")
        items = [
            InputItem(
                str(p),
                Path(p),
                None if Path(p).exists() else "file does not exist",
                None if metadata is None else dict(metadata[i]),
            )
            for i, p in enumerate(paths)
        ]
        return list(self.iter_rows(items, batch_size=batch_size, heatmap_dir=heatmap_dir))

    def _score(self, loaded: list[_Loaded], heat: Path | None) -> Iterator[dict[str, Any]]:
        good = [x for x in loaded if x.error is None and x.array is not None]
        results: dict[int, dict[str, Any]] = {}
        if good:
            batch = np.stack([x.array for x in good]).astype(np.float32, copy=False)
            meta = None
            if self.metadata_encoding is not None:
                meta = np.stack([x.metadata for x in good]).astype(np.float32, copy=False)
            try:
                out = self.infer(batch, with_cam=heat is not None, metadata=meta)
            except Exception as exc:  # onnxruntime's pybind errors share no useful base class
                for x in good:
                    x.error = f"inference failed: {exc}"
            else:
                results = self._rows_from_outputs(good, out, heat)
        for x in loaded:
            yield results.get(x.index) or self._error_row(x)

    def _rows_from_outputs(
        self, good: list[_Loaded], out: dict[str, np.ndarray], heat: Path | None
    ) -> dict[int, dict[str, Any]]:
        meta = self.metadata
        probs, logits = out["probabilities"], out["logits"]
        mal = malignant_probability(probs, meta.classes, meta.malignant)
        energy = energy_score(logits)
        top = probs.argmax(axis=1)
        rows: dict[int, dict[str, Any]] = {}
        for j, x in enumerate(good):
            row = self._blank(x)
            row["status"] = "ok"
            row["predicted_class"] = meta.classes[int(top[j])]
            for k, c in enumerate(meta.classes):
                row[f"p_{c}"] = float(probs[j, k])
            row["malignant_probability"] = float(mal[j]) if meta.malignant else ""
            if self.malignant_threshold is not None and meta.malignant:
                row["malignant_flag"] = int(mal[j] >= self.malignant_threshold)
            row["quality_flags"] = ";".join(x.flags)
            if self.metadata_encoding is not None:
                row["metadata_notes"] = "; ".join(x.notes)
            row["ood_score"] = float(energy[j])
            if self.ood_threshold is not None:
                row["ood_flag"] = int(energy[j] > self.ood_threshold)
            if heat is not None and x.image is not None:
                name = f"{x.index:06d}_{_safe_stem(x.item.input)}.png"
                cam = out["cam"][j, int(top[j])]
                row["heatmap"] = str(write_heatmap(x.image, cam, meta.preprocessing, heat / name))
                x.image = None
            rows[x.index] = row
        return rows

    def _blank(self, x: _Loaded) -> dict[str, Any]:
        row: dict[str, Any] = dict.fromkeys(self.columns, "")
        row["input"] = x.item.input
        row["file"] = "" if x.item.file is None else str(x.item.file)
        return row

    def _error_row(self, x: _Loaded) -> dict[str, Any]:
        row = self._blank(x)
        row["status"] = "error"
        row["error"] = x.error or "unknown error"
        row["quality_flags"] = ";".join(x.flags)
        return row


def _chunks(it: Iterable[Any], size: int) -> Iterator[list[Any]]:
    chunk: list[Any] = []
    for x in it:
        chunk.append(x)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _flip(x: np.ndarray, axes: tuple[int, ...]) -> np.ndarray:
    return np.flip(x, axis=axes) if axes else x


def _safe_stem(text: str) -> str:
    stem = Path(text).stem or "input"
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in stem)[:80]
