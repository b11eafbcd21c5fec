"""A teaching set's fingerprint: which set an answer file was taken on.

A quiz export carries the fingerprint of the set it was built from, so that
``skinml-teach score`` can refuse answers given to another set (the same case
numbers ``case_001``... name different lesions in every set). The fingerprint
is a hash of the case images' SHA-256 digests only: it changes whenever the
images do, and it says nothing about the key, so it may travel with the quiz.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from os import PathLike
from pathlib import Path

#: Hex characters kept (64 bits: collisions between a centre's sets are not a concern).
FINGERPRINT_LENGTH = 16
CHECKSUM_LIST = "SHA256SUMS"


def fingerprint_from_digests(digests: Mapping[str, str]) -> str:
    """Fingerprint from ``{"cases/case_001.jpg": sha256, ...}`` (other entries are ignored)."""
    lines = sorted(f"{digest}  {name}" for name, digest in digests.items() if _is_case(name))
    return hashlib.sha256("\n".join(lines).encode("utf-8")).hexdigest()[:FINGERPRINT_LENGTH]


def fingerprint_of_folder(folder: str | PathLike[str]) -> str | None:
    """The fingerprint from a set folder's ``SHA256SUMS`` (None when the list is absent)."""
    path = Path(folder) / CHECKSUM_LIST
    if not path.is_file():
        return None
    digests = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        digest, _, name = line.strip().partition("  ")
        if digest and name:
            digests[name.lstrip("*")] = digest
    return fingerprint_from_digests(digests) if digests else None


def _is_case(name: str) -> bool:
    return name.replace("\\", "/").startswith("cases/")
