"""Per-file journal that makes an interrupted ingest resumable.

One small JSON file per finished output image, written atomically (temporary
file + ``os.replace``) right after the image itself was renamed into place. A
record is trusted only if its settings fingerprint and source hash match and
the image on disk still has the recorded SHA-256, so a crash at any moment
leads at worst to one file being redone. Records hold hashes and sizes only:
no original names or identifiers.
"""

from __future__ import annotations

import json
import os
from os import PathLike
from pathlib import Path

from skinml.integrity.checksums import sha256_file

STATE_DIR = ".ingest"


class Journal:
    """The journal folder ``<dataset>/.ingest/journal``."""

    def __init__(self, dataset_dir: str | PathLike[str]) -> None:
        self.dataset_dir = Path(dataset_dir)
        self.folder = self.dataset_dir / STATE_DIR / "journal"

    def _path(self, image: str) -> Path:
        return self.folder / (image.replace("/", "__") + ".json")

    def lookup(self, image: str, *, source_sha256: str, settings: str) -> dict | None:
        """The record for output ``image`` if it is still valid, else ``None``."""
        path = self._path(image)
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        if record.get("settings") != settings or record.get("source_sha256") != source_sha256:
            return None
        out = self.dataset_dir / image
        if not out.is_file() or sha256_file(out) != record.get("sha256"):
            return None
        return record

    def record(self, image: str, record: dict) -> None:
        """Write ``record`` for output ``image`` atomically."""
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self._path(image)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(record, sort_keys=True), encoding="utf-8")
        os.replace(tmp, path)
