"""The two records every ingest input turns into: an accepted item or a rejection.

Each input (a CSV row, a file no CSV row names, or a file a sender's checksum
list names but that never arrived) becomes exactly one of these, which is what
makes the accounting identity ``inputs == accepted + rejected`` checkable.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

#: Stages at which an input can be rejected (in report order), and what each means.
STAGES = ("discover", "arrival", "dedupe", "conflict", "decode")
STAGE_MEANING = {
    "discover": "unusable case-list row or unlabelled file",
    "arrival": "missing, unreadable or changed in transfer",
    "dedupe": "exact copy, same label, same hospital: kept once",
    "conflict": "same image with different labels: no copy kept, no label chosen",
    "decode": "not a decodable image",
}


@dataclass(frozen=True)
class Item:
    """One image to ingest, still carrying original identifiers (never written out).

    Attributes:
        hospital: site name.
        source: delivery-relative POSIX path as the sender wrote it.
        path: resolved absolute path inside the delivery.
        csv_row: 1-based spreadsheet row in ``cases.csv`` (header = 1), if any.
        label: diagnosis label.
        patient_id: original patient identifier, pseudonymised before output.
        lesion_id: original lesion identifier, pseudonymised before output.
        device: device name if the CSV gives one.
        metadata: kept CSV columns as ``(name, value)`` pairs.
        sender_digest: the sender's checksum for this file, if listed.
        sender_list: the list it came from (``SHA256SUMS`` or ``MD5SUMS``).
    """

    hospital: str
    source: str
    path: Path
    csv_row: int | None = None
    label: str | None = None
    patient_id: str | None = None
    lesion_id: str | None = None
    device: str | None = None
    metadata: tuple[tuple[str, str], ...] = field(default_factory=tuple)
    sender_digest: str | None = None
    sender_list: str | None = None

    def with_(self, **changes: object) -> Item:
        return replace(self, **changes)  # type: ignore[arg-type]


@dataclass(frozen=True)
class Rejection:
    """An input that did not make it into the dataset, and why.

    ``source`` is the delivery-relative path: the data manager needs it to find
    the file, so ``rejected.csv`` is an internal record of the centre.
    """

    hospital: str
    source: str
    csv_row: int | None
    stage: str
    reason: str

    def as_row(self) -> dict[str, object]:
        return {
            "hospital": self.hospital,
            "source": self.source,
            "csv_row": "" if self.csv_row is None else self.csv_row,
            "stage": self.stage,
            "reason": self.reason,
        }


def reject(item: Item, stage: str, reason: str) -> Rejection:
    """The rejection of an item at ``stage``."""
    return Rejection(item.hospital, item.source, item.csv_row, stage, reason)
