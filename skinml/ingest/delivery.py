"""Find every input in one hospital delivery folder.

A delivery is a folder with either images in sub-folders named by label, or a
``cases.csv`` (image, label, patient_id, lesion_id, device, ...) naming the
images wherever they lie, optionally with the sender's ``SHA256SUMS``/``MD5SUMS``.
When a case list is present it is authoritative: a file it does not name is
rejected rather than labelled by its folder name. Every CSV row and every file that
no row names becomes exactly one :class:`Item` or :class:`Rejection`: nothing
found here can silently disappear later. Labels go through the shared diagnosis
vocabulary (:mod:`skinml.vocabulary`) as they are read, so ``Melanoma/`` at one
hospital and ``mel`` in another's case list are the same label, ``mel``.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from os import PathLike
from pathlib import Path

import pandas as pd

from skinml.errors import DataError
from skinml.ingest.records import Item, Rejection
from skinml.integrity.checksums import file_digest, read_checksum_list
from skinml.textfiles import not_utf8
from skinml.vocabulary import TABLE_POINTER, LabelSpace

CASES_CSV = "cases.csv"
CHECKSUM_LISTS = ("SHA256SUMS", "MD5SUMS")
CONTROL_FILES = (CASES_CSV, *CHECKSUM_LISTS)

#: Accepted spellings of the contract columns in a hospital CSV.
COLUMN_ALIASES = {
    "image": ("image", "path", "file", "filename", "image_path"),
    "label": ("label", "diagnosis", "dx"),
    "patient_id": ("patient_id", "patient"),
    "lesion_id": ("lesion_id", "lesion"),
    "device": ("device", "camera", "dermatoscope"),
}


@dataclass
class DeliveryScan:
    """What one delivery contains, before any file is read."""

    hospital: str
    root: Path
    items: list[Item] = field(default_factory=list)
    rejections: list[Rejection] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    dropped_columns: list[str] = field(default_factory=list)
    sender_lists: list[str] = field(default_factory=list)

    @property
    def n_inputs(self) -> int:
        return len(self.items) + len(self.rejections)


def scan_delivery(
    root: str | PathLike[str],
    hospital: str,
    *,
    kept_columns: tuple[str, ...] = (),
    classes: Sequence[str] | None = None,
) -> DeliveryScan:
    """List the inputs of one delivery with their labels, identifiers and sender checksums.

    Args:
        root: the delivery folder.
        hospital: site name for every image in it.
        kept_columns: CSV columns to keep as metadata; all other non-contract
            columns are dropped (they may be free text with names).
        classes: the accepted diagnoses; None accepts any label (known ones become
            canonical codes, others are kept as written).

    Returns:
        The scan; CSV rows that cannot be used are already rejections here
        (path outside the delivery, missing file, listed twice, empty label,
        a label outside ``classes``, a lesion assigned to two patients).

    Raises:
        DataError: when the folder does not exist or ``cases.csv`` cannot be
            parsed or has no image column (the whole delivery is unusable).
    """
    root = Path(root)
    if not root.is_dir():
        raise DataError(
            "delivery folder does not exist", file=root, fix="pass one folder per hospital delivery"
        )
    root = root.resolve()
    scan = DeliveryScan(hospital=hospital, root=root)
    labels = LabelSpace(classes, name="the ingest classes")
    files = _walk_files(root)
    sender = _read_sender_lists(root, scan)
    referenced: set[str] = set()
    has_csv = (root / CASES_CSV).is_file()
    if has_csv:
        referenced = _scan_csv(root, scan, kept_columns, labels)
    for rel in files:
        if rel in CONTROL_FILES or rel in referenced:
            continue
        if has_csv:
            # With a case list, the list is the sender's statement of what was sent and
            # with which label; a folder name next to it would be a guess.
            scan.rejections.append(
                Rejection(
                    hospital,
                    rel,
                    None,
                    "discover",
                    "not listed in cases.csv: add a row for it or remove it from the delivery",
                )
            )
            continue
        parts = rel.split("/")
        if len(parts) < 2:
            scan.rejections.append(
                Rejection(
                    hospital,
                    rel,
                    None,
                    "discover",
                    "no label: the file is neither listed in cases.csv nor inside a label folder "
                    "(put it in a sub-folder named by its diagnosis or add a cases.csv row)",
                )
            )
            continue
        resolved = _inside(root, rel)
        if resolved is None:
            scan.rejections.append(
                Rejection(
                    hospital,
                    rel,
                    None,
                    "discover",
                    "link that resolves outside the delivery folder; only files inside the "
                    "delivery are ingested",
                )
            )
            continue
        label = labels.resolve(parts[0])
        if label is None:
            scan.rejections.append(
                Rejection(hospital, rel, None, "discover", _outside(parts[0], "folder", labels))
            )
            continue
        scan.items.append(Item(hospital=hospital, source=rel, path=resolved, label=label))
    _attach_sender_digests(scan, sender, set(files), referenced)
    return scan


def _walk_files(root: Path) -> list[str]:
    """All files under ``root`` (hidden ones too), as sorted POSIX relative paths."""
    out = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in filenames:
            out.append(Path(dirpath, name).relative_to(root).as_posix())
    return sorted(out)


def _inside(root: Path, value: str) -> Path | None:
    """Resolved path of ``value`` if it stays inside ``root`` (no ``..``/absolute/link escape)."""
    candidate = (root / value).resolve()
    return candidate if candidate.is_relative_to(root) else None


def _read_sender_lists(root: Path, scan: DeliveryScan) -> dict[str, tuple[str, str]]:
    """``{relative path: (digest, list name)}`` from SHA256SUMS (preferred) and MD5SUMS."""
    out: dict[str, tuple[str, str]] = {}
    for name in reversed(CHECKSUM_LISTS):  # SHA256SUMS last, so it wins
        path = root / name
        if not path.is_file():
            continue
        try:
            listed = read_checksum_list(path)
        except (DataError, UnicodeDecodeError) as exc:
            scan.notes.append(
                f"{name} could not be parsed, so files were not checked against it: {exc}"
            )
            continue
        scan.sender_lists.append(name)
        for rel, digest in listed.items():
            out[Path(rel).as_posix().removeprefix("./")] = (digest, name)
    return out


def _attach_sender_digests(
    scan: DeliveryScan, sender: dict[str, tuple[str, str]], files: set[str], referenced: set[str]
) -> None:
    by_source = {}
    for i, item in enumerate(scan.items):
        rel = item.source if item.csv_row is None else item.path.relative_to(scan.root).as_posix()
        by_source[rel] = i
        if rel in sender:
            digest, name = sender[rel]
            scan.items[i] = item.with_(sender_digest=digest, sender_list=name)
    for rel, (digest, name) in sorted(sender.items()):
        if rel in CONTROL_FILES:
            # The CSV is checked here rather than as an input: it is not an image.
            algo = {32: "md5", 40: "sha1", 64: "sha256"}.get(len(digest), "sha256")
            if (scan.root / rel).is_file() and file_digest(scan.root / rel, algo) != digest:
                scan.notes.append(
                    f"{rel} does not match its checksum in {name}: the case list "
                    "may have been corrupted in transfer; ask the sender to resend"
                )
            continue
        if rel in files or rel in referenced or rel in by_source:
            continue
        scan.rejections.append(
            Rejection(
                scan.hospital,
                rel,
                None,
                "arrival",
                f"listed in {name} but not delivered: the file is missing from the delivery "
                "(ask the sender to resend it)",
            )
        )


def _outside(value: str, where: str, labels: LabelSpace) -> str:
    """Why a label was rejected: the value, where it was, and what is accepted."""
    return (
        f"label {value!r} ({where}) is not among the ingest classes {sorted(labels.classes or ())}"
        f"; write one of them or a synonym (see {TABLE_POINTER}), or add it to --classes"
    )


def _scan_csv(
    root: Path, scan: DeliveryScan, kept_columns: tuple[str, ...], labels: LabelSpace
) -> set[str]:
    """Turn ``cases.csv`` rows into items or rejections; return the files they name."""
    csv_path = root / CASES_CSV
    try:
        frame = pd.read_csv(csv_path, dtype=str, keep_default_na=False)
    except UnicodeDecodeError as exc:
        raise not_utf8(csv_path) from exc
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise DataError(
            f"cannot parse the case list: {exc}",
            file=csv_path,
            expected="a UTF-8 CSV with a header row",
            fix="re-export the case list as UTF-8 CSV",
        ) from exc
    frame.columns = [str(c).strip() for c in frame.columns]
    cols = _resolve_columns(list(frame.columns))
    if "image" not in cols:
        raise DataError(
            f"no image column; found {list(frame.columns)}",
            file=csv_path,
            expected=f"one of {list(COLUMN_ALIASES['image'])}",
            fix="name the column with image paths 'image'",
        )
    contract = set(cols.values())
    kept = [c for c in frame.columns if c in kept_columns and c not in contract]
    scan.dropped_columns = [c for c in frame.columns if c not in contract and c not in kept]

    referenced: dict[str, int] = {}
    first_label: dict[str, str] = {}  # file -> label of the row that made it an item
    relisted: dict[str, list[tuple[int, str, str]]] = {}  # file -> (row, source, label)
    lesion_owner: dict[str, tuple[str, int]] = {}
    for i, rec in enumerate(frame.to_dict("records")):
        row = i + 2  # spreadsheet row: the header is row 1

        def get(key: str, rec: dict = rec) -> str | None:
            value = rec.get(cols[key], "") if key in cols else ""
            value = str(value).strip()
            return value or None

        image = get("image")
        if image is None:
            scan.rejections.append(
                Rejection(scan.hospital, "", row, "discover", "empty image path in cases.csv")
            )
            continue
        source = Path(image).as_posix()
        resolved = _inside(root, image)
        if resolved is None:
            scan.rejections.append(
                Rejection(
                    scan.hospital,
                    source,
                    row,
                    "discover",
                    "path resolves outside the delivery folder (path traversal or absolute path); "
                    "only files inside the delivery are ingested",
                )
            )
            continue
        rel = resolved.relative_to(root).as_posix()
        written = get("label")
        # compared as the vocabulary's code, so "Melanoma" and "mel" are no conflict
        label = None if written is None else (labels.resolve(written) or written)
        if rel in first_label and label is not None and label != first_label[rel]:
            relisted.setdefault(rel, []).append((row, source, label))
            continue  # a label conflict: decided with the first listing after the loop
        if rel in referenced:
            scan.rejections.append(
                Rejection(
                    scan.hospital,
                    source,
                    row,
                    "discover",
                    f"duplicate: the same file is already listed at row {referenced[rel]} of "
                    "cases.csv; list every image once",
                )
            )
            continue
        referenced[rel] = row
        if not resolved.exists():
            scan.rejections.append(
                Rejection(
                    scan.hospital,
                    source,
                    row,
                    "discover",
                    "file named in cases.csv was not delivered",
                )
            )
            continue
        if label is None:
            scan.rejections.append(
                Rejection(scan.hospital, source, row, "discover", "empty label in cases.csv")
            )
            continue
        if labels.resolve(label) is None:
            where = f"column {cols['label']!r} of {CASES_CSV}"
            scan.rejections.append(
                Rejection(scan.hospital, source, row, "discover", _outside(label, where, labels))
            )
            continue
        patient, lesion = get("patient_id"), get("lesion_id")
        if lesion is not None and patient is not None:
            owner = lesion_owner.setdefault(lesion, (patient, row))
            if owner[0] != patient:
                scan.rejections.append(
                    Rejection(
                        scan.hospital,
                        source,
                        row,
                        "discover",
                        f"duplicate lesion id: the lesion id of this row belongs to a different "
                        f"patient at row {owner[1]}; correct the identifiers and resend",
                    )
                )
                continue
        metadata = tuple((c, str(rec[c]).strip()) for c in sorted(kept) if str(rec[c]).strip())
        scan.items.append(
            Item(
                hospital=scan.hospital,
                source=source,
                path=resolved,
                csv_row=row,
                label=label,
                patient_id=patient,
                lesion_id=lesion,
                device=get("device"),
                metadata=metadata,
            )
        )
        first_label[rel] = label
    _reject_relisted_conflicts(scan, relisted)
    return set(referenced)


def _reject_relisted_conflicts(
    scan: DeliveryScan, relisted: dict[str, list[tuple[int, str, str]]]
) -> None:
    """A file listed again with another label: reject every such listing, the first included.

    Keeping the first row's label would be choosing a diagnosis silently.
    """
    for rel, later in relisted.items():
        first = next(i for i in scan.items if i.path.relative_to(scan.root).as_posix() == rel)
        listings = [(first.csv_row or 0, first.source, first.label or ""), *later]
        shown = "; ".join(f"{lab!r} at row {row}" for row, _, lab in listings)
        reason = (
            f"label conflict: cases.csv lists this file {len(listings)} times with different "
            f"labels: {shown}. Neither is used until the case list gives the file one label"
        )
        scan.items.remove(first)
        for row, source, _ in listings:
            scan.rejections.append(Rejection(scan.hospital, source, row, "conflict", reason))


def _resolve_columns(columns: list[str]) -> dict[str, str]:
    """Map contract names to the CSV's actual column names (first alias that matches)."""
    lower = {c.lower(): c for c in columns}
    out = {}
    for key, aliases in COLUMN_ALIASES.items():
        for alias in aliases:
            if alias in lower:
                out[key] = lower[alias]
                break
    return out
