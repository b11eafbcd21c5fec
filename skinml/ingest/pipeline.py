"""``run_ingest``: deliveries in, one verified, pseudonymised dataset out.

Stages, each of which can only move an input to the rejected list, never drop it:

1. discover  — list every CSV row and file of each delivery (:mod:`.delivery`);
2. arrival   — size, readability, SHA-256, the sender's checksum (:mod:`.arrival`);
   a byte-identical second copy with the same label within one hospital is
   rejected here (stage ``dedupe``);
3. decode    — normalise to clean RGB images in worker processes (:mod:`.normalise`),
   reusing journaled outputs of an interrupted or earlier run (:mod:`.journal`);
4. assemble  — pseudonymise identifiers, group duplicates, write the manifest,
   card, checksums, ``rejected.csv`` and the report.

Label conflicts are never resolved here. When exact copies of one image (the
same delivered bytes, or the same pixels after decoding) carry different labels,
at one hospital or across hospitals, *every* copy is rejected with stage
``conflict`` and a reason naming all copies and their labels; nothing of that
image enters the dataset until the deliveries agree (correct the label and run
again: finished files are reused). Near-duplicates with different labels are kept
(a similar picture is not proof of the same image) and listed in the report.

Output names are ``images/<hospital>/<first 20 hex of the file's SHA-256>.<ext>``:
derived from content, never from original names, and the same on every run.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from os import PathLike
from pathlib import Path

import pandas as pd
from tqdm.auto import tqdm

from skinml.data.manifest import MANIFEST_COLUMNS, validate_manifest
from skinml.errors import ConfigError
from skinml.ingest.arrival import Arrival, ArrivalError, check_arrival
from skinml.ingest.card import CARD_JSON, CARD_MD, build_card, write_card
from skinml.ingest.config import IngestConfig, settings_fingerprint, slug
from skinml.ingest.delivery import DeliveryScan, scan_delivery
from skinml.ingest.duplicates import (
    assign_duplicate_groups,
    assign_split_groups,
    label_conflicts,
    merge_duplicate_lesions,
)
from skinml.ingest.journal import Journal
from skinml.ingest.normalise import Job, normalise_file
from skinml.ingest.records import Item, Rejection, reject
from skinml.ingest.report import REPORT_HTML, summary_lines, write_report
from skinml.ingest.workers import decode_in_workers
from skinml.integrity.checksums import sha256_file, write_checksum_list
from skinml.privacy.pseudonym import pseudonymise

MANIFEST_CSV = "manifest.csv"
REJECTED_CSV = "rejected.csv"
CHECKSUMS = "SHA256SUMS"
IMAGES_DIR = "images"
REJECTED_COLUMNS = ["hospital", "source", "csv_row", "stage", "reason"]
PROVENANCE_COLUMNS = [
    "duplicate_group",
    "duplicate_kind",
    "split_group",
    "lesion_id_delivered",
    "width",
    "height",
    "source_format",
    "source_mode",
    "arrival_check",
    "sha256",
    "source_sha256",
    "phash",
]
_OUR_FILE = re.compile(r"^([0-9a-f]{20}\.(jpg|png)|\..*\.tmp)$")


@dataclass
class IngestResult:
    """Where the outputs are and how every input ended."""

    dataset_dir: Path
    manifest: pd.DataFrame
    rejected: pd.DataFrame
    n_inputs: int
    n_processed: int
    n_resumed: int
    notes: list[str] = field(default_factory=list)
    lines: list[str] = field(default_factory=list)

    @property
    def manifest_path(self) -> Path:
        return self.dataset_dir / MANIFEST_CSV

    @property
    def rejected_path(self) -> Path:
        return self.dataset_dir / REJECTED_CSV

    @property
    def report_path(self) -> Path:
        return self.dataset_dir / REPORT_HTML

    @property
    def card_path(self) -> Path:
        return self.dataset_dir / CARD_JSON


@dataclass
class _Accepted:
    item: Item
    arrival: Arrival
    image: str  # output path relative to the dataset folder
    record: dict | None = None


def run_ingest(
    deliveries: Sequence[str | PathLike[str]],
    out_dir: str | PathLike[str],
    key: bytes,
    config: IngestConfig | None = None,
    *,
    hospitals: Sequence[str] | None = None,
    progress: bool = True,
) -> IngestResult:
    """Ingest hospital deliveries into one dataset folder (resumable and idempotent).

    Args:
        deliveries: one folder per hospital delivery.
        out_dir: the dataset folder (created; reused to resume).
        key: pseudonymisation key (:func:`skinml.privacy.pseudonym.load_key`); never written.
        config: image and policy settings.
        hospitals: hospital names, one per delivery; default the folder names.
        progress: show tqdm progress bars.

    Returns:
        The result; every input is in ``manifest`` or ``rejected``.

    Raises:
        ConfigError: when hospital names do not match the deliveries.
        DataError: when a delivery folder is missing or its case list is unusable.
    """
    config = config or IngestConfig()
    out = Path(out_dir)
    names = _hospital_names(deliveries, hospitals)
    scans = [
        scan_delivery(d, h, kept_columns=config.kept_columns, classes=config.classes)
        for d, h in zip(deliveries, names, strict=True)
    ]
    rejections = [r for s in scans for r in s.rejections]
    items = sorted(
        (i for s in scans for i in s.items), key=lambda i: (i.hospital, i.source, i.csv_row or 0)
    )
    n_inputs = len(items) + len(rejections)

    accepted = _arrive(items, config, rejections, progress=progress)
    n_processed, n_resumed = _normalise(accepted, out, config, rejections, progress=progress)
    done = _reject_decoded_conflicts([a for a in accepted if a.record is not None], rejections)
    manifest = _assemble(done, key, config)
    rejected = _rejected_frame(rejections)
    if len(manifest) + len(rejected) != n_inputs:  # the accounting identity; a bug if broken
        raise AssertionError(
            f"lost inputs: {n_inputs} in, {len(manifest)} accepted + {len(rejected)} rejected out"
        )

    notes = [f"{s.hospital}: {n}" for s in scans for n in s.notes]
    _write_outputs(out, manifest, rejected, config)
    lines = summary_lines(
        manifest,
        rejected,
        n_inputs=n_inputs,
        n_processed=n_processed,
        n_resumed=n_resumed,
        notes=notes,
    )
    write_report(
        out / REPORT_HTML, manifest, rejected, lines=lines, dropped_columns=_dropped(scans)
    )
    return IngestResult(out, manifest, rejected, n_inputs, n_processed, n_resumed, notes, lines)


def _hospital_names(
    deliveries: Sequence[str | PathLike[str]], hospitals: Sequence[str] | None
) -> list[str]:
    if not deliveries:
        raise ConfigError("no delivery folder given", fix="pass at least one DELIVERY_DIR")
    if hospitals is None or len(hospitals) == 0:
        names = [Path(d).resolve().name for d in deliveries]
    elif len(hospitals) != len(deliveries):
        raise ConfigError(
            f"{len(hospitals)} hospital names for {len(deliveries)} deliveries",
            fix="give --hospital once per delivery, in the same order, or not at all",
        )
    else:
        names = [h.strip() for h in hospitals]
    by_slug: dict[str, str] = {}
    for name in names:
        other = by_slug.setdefault(slug(name), name)
        if other != name:
            raise ConfigError(
                f"hospital names {other!r} and {name!r} map to the same folder",
                fix="choose hospital names that differ in letters or digits",
            )
    return [slug(n) for n in names]


def _dropped(scans: list[DeliveryScan]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for s in scans:
        out.setdefault(s.hospital, [])
        out[s.hospital] += [c for c in s.dropped_columns if c not in out[s.hospital]]
    return out


def _arrive(
    items: list[Item], config: IngestConfig, rejections: list[Rejection], *, progress: bool
) -> list[_Accepted]:
    arrived: list[tuple[Item, Arrival]] = []
    for item in tqdm(
        items, desc="checking arrival (SHA-256)", unit="file", disable=None if progress else True
    ):
        try:
            arrived.append((item, check_arrival(item, max_file_bytes=config.max_file_bytes)))
        except ArrivalError as exc:
            rejections.append(reject(item, "arrival", str(exc)))
    conflicts = label_conflicts([a.sha256 for _, a in arrived], [i.label for i, _ in arrived])
    copies: dict[str, list[Item]] = {}
    for item, arrival in arrived:
        if arrival.sha256 in conflicts:
            copies.setdefault(arrival.sha256, []).append(item)
    accepted: list[_Accepted] = []
    first: dict[tuple[str, str], _Accepted] = {}
    for item, arrival in arrived:
        if arrival.sha256 in conflicts:
            reason = _conflict_reason("delivered file", arrival.sha256, copies[arrival.sha256])
            rejections.append(reject(item, "conflict", reason))
            continue
        image = f"{IMAGES_DIR}/{item.hospital}/{arrival.sha256[:20]}{config.suffix}"
        seen = first.get((item.hospital, arrival.sha256))
        if seen is not None:  # same bytes, same label (different labels are a conflict above)
            rejections.append(
                reject(
                    item,
                    "dedupe",
                    "exact duplicate (same SHA-256, same label) of another file of this "
                    f"hospital, kept once as {seen.image}",
                )
            )
            continue
        acc = _Accepted(item, arrival, image)
        first[(item.hospital, arrival.sha256)] = acc
        accepted.append(acc)
    return accepted


def _reject_decoded_conflicts(
    done: list[_Accepted], rejections: list[Rejection]
) -> list[_Accepted]:
    """Keep out images whose *decoded pixels* are identical but whose labels differ.

    Differently encoded files of one picture (a PNG and a BMP of the same pixels) only
    reveal themselves after decoding; they are as much one image as byte-identical copies.
    """
    digests = [str((a.record or {})["sha256"]) for a in done]
    conflicts = label_conflicts(digests, [a.item.label for a in done])
    if not conflicts:
        return done
    copies: dict[str, list[Item]] = {}
    for digest, acc in zip(digests, done, strict=True):
        if digest in conflicts:
            copies.setdefault(digest, []).append(acc.item)
    kept = []
    for digest, acc in zip(digests, done, strict=True):
        if digest in conflicts:
            reason = _conflict_reason("decoded image", digest, copies[digest])
            rejections.append(reject(acc.item, "conflict", reason))
        else:
            kept.append(acc)
    return kept


def _conflict_reason(what: str, digest: str, copies: list[Item]) -> str:
    """Name every copy and its label, so the data manager can decide (ingest never does)."""
    shown = "; ".join(
        f"{c.label!r} at {c.hospital} {c.source}" + (f" (row {c.csv_row})" if c.csv_row else "")
        for c in copies[:6]
    )
    more = f"; and {len(copies) - 6} more" if len(copies) > 6 else ""
    return (
        f"label conflict: the same {what} (SHA-256 {digest[:12]}...) arrived {len(copies)} times "
        f"with different labels: {shown}{more}. No copy is used until the labels agree: correct "
        "the label in the delivery and run again"
    )


def _normalise(
    accepted: list[_Accepted],
    out: Path,
    config: IngestConfig,
    rejections: list[Rejection],
    *,
    progress: bool,
) -> tuple[int, int]:
    journal = Journal(out)
    settings = settings_fingerprint(config)
    todo: dict[str, list[_Accepted]] = {}
    n_resumed = 0
    for acc in accepted:
        record = journal.lookup(acc.image, source_sha256=acc.arrival.sha256, settings=settings)
        if record is not None:
            acc.record = record
            n_resumed += 1
        else:
            todo.setdefault(acc.image, []).append(acc)
    jobs = {
        image: Job(
            group[0].item.path,
            out / image,
            config.fmt,
            config.quality,
            config.max_side,
            config.max_pixels,
        )
        for image, group in todo.items()
    }

    def finish(image: str, result: dict) -> None:
        for acc in todo[image]:
            if "error" in result:
                rejections.append(reject(acc.item, "decode", str(result["error"])))
            else:
                acc.record = {**result, "settings": settings, "source_sha256": acc.arrival.sha256}
        if "error" not in result:
            journal.record(image, todo[image][0].record)  # type: ignore[arg-type]

    bar = tqdm(
        total=len(jobs),
        desc=f"normalising images ({config.workers} workers)",
        unit="image",
        disable=None if progress else True,
    )
    try:
        if not config.isolate_decoder and (config.workers == 1 or len(jobs) < 2):
            for image, job in jobs.items():
                finish(image, normalise_file(job))
                bar.update()
        else:

            def finish_one(image: str, result: dict) -> None:
                finish(image, result)
                bar.update()

            decode_in_workers(jobs, normalise_file, config.workers, finish_one)
    finally:
        bar.close()
    return len(jobs), n_resumed


def _pseudonym(value: str | None, kind: str, site: str, key: bytes, scope: str) -> str | None:
    if value is None:
        return None
    scoped = f"{site}|{kind}|{value.strip()}" if scope == "hospital" else f"{kind}|{value.strip()}"
    return pseudonymise(scoped, key, prefix="P-" if kind == "patient" else "L-")


def _assemble(done: list[_Accepted], key: bytes, config: IngestConfig) -> pd.DataFrame:
    rows = []
    for acc in done:
        item, arr, rec = acc.item, acc.arrival, acc.record or {}
        patient = item.patient_id or arr.dicom_patient_id
        rows.append(
            {
                "image": acc.image,
                "label": item.label,
                "patient_id": _pseudonym(patient, "patient", item.hospital, key, config.id_scope),
                "lesion_id": _pseudonym(
                    item.lesion_id, "lesion", item.hospital, key, config.id_scope
                ),
                "site": item.hospital,
                "device": item.device or arr.device or "unknown",
                **{k: v for k, v in item.metadata if k not in PROVENANCE_COLUMNS},
                "width": int(rec["width"]),
                "height": int(rec["height"]),
                "source_format": arr.source_format,
                "source_mode": arr.source_mode,
                "arrival_check": arr.check,
                "sha256": rec["sha256"],
                "source_sha256": arr.sha256,
                "phash": rec["phash"],
            }
        )
    metadata_cols = sorted(
        {k for acc in done for k, _ in acc.item.metadata} - set(PROVENANCE_COLUMNS)
    )
    columns = [*MANIFEST_COLUMNS, *metadata_cols, *PROVENANCE_COLUMNS]
    if not rows:
        return pd.DataFrame(columns=columns)
    frame = pd.DataFrame(rows).sort_values("image", kind="stable").reset_index(drop=True)
    frame = validate_manifest(frame, source="ingest")
    frame = assign_duplicate_groups(frame, threshold=config.near_threshold)
    frame["lesion_id_delivered"] = frame["lesion_id"]
    frame["lesion_id"] = merge_duplicate_lesions(frame)
    frame["split_group"] = assign_split_groups(frame)
    return frame[columns]


def _rejected_frame(rejections: list[Rejection]) -> pd.DataFrame:
    frame = pd.DataFrame([r.as_row() for r in rejections], columns=REJECTED_COLUMNS)
    order = frame.assign(_row=frame["csv_row"].map(lambda v: -1 if v == "" else int(v)))
    return (
        order.sort_values(["hospital", "source", "_row", "stage", "reason"], kind="stable")
        .drop(columns="_row")
        .reset_index(drop=True)
    )


def _write_csv(frame: pd.DataFrame, path: Path) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    frame.to_csv(tmp, index=False, lineterminator="\n")
    os.replace(tmp, path)


def _write_outputs(
    out: Path, manifest: pd.DataFrame, rejected: pd.DataFrame, config: IngestConfig
) -> None:
    out.mkdir(parents=True, exist_ok=True)
    _write_csv(manifest, out / MANIFEST_CSV)
    _write_csv(rejected, out / REJECTED_CSV)
    write_card(build_card(manifest, rejected, config, name=out.resolve().name), out)
    _remove_orphans(out, set(manifest["image"]))
    digests = dict(zip(manifest["image"], manifest["sha256"], strict=True))
    for name in (MANIFEST_CSV, CARD_JSON, CARD_MD):
        digests[name] = sha256_file(out / name)
    write_checksum_list(digests, out / CHECKSUMS)


def _remove_orphans(out: Path, keep: set[str]) -> None:
    """Delete images an earlier run wrote that this run's dataset no longer contains.

    Only files whose names skinml-ingest itself makes are touched.
    """
    images = out / IMAGES_DIR
    if not images.is_dir():
        return
    for path in sorted(images.rglob("*")):
        rel = path.relative_to(out).as_posix()
        if path.is_file() and rel not in keep and _OUR_FILE.match(path.name):
            path.unlink()
    for folder in sorted((p for p in images.rglob("*") if p.is_dir()), reverse=True):
        if not any(folder.iterdir()):
            folder.rmdir()
