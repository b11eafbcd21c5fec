"""File checksums and ``md5sum``/``sha256sum``-format checksum lists.

Every file is verified on arrival and before use (PRODUCT.md), so these
functions are pure, streaming and report *all* mismatches by name.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from os import PathLike
from pathlib import Path

from skinml.errors import DataError

_CHUNK = 1 << 20


def file_digest(path: str | PathLike[str], algorithm: str = "sha256") -> str:
    """Hex digest of a file, read in 1 MiB chunks (flat memory for large files)."""
    h = hashlib.new(algorithm)
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(_CHUNK), b""):
            h.update(chunk)
    return h.hexdigest()


def sha256_file(path: str | PathLike[str]) -> str:
    """SHA-256 hex digest of a file."""
    return file_digest(path, "sha256")


def md5_file(path: str | PathLike[str]) -> str:
    """MD5 hex digest of a file (only to check lists published as MD5SUMS)."""
    return file_digest(path, "md5")


def sha256_bytes(data: bytes) -> str:
    """SHA-256 hex digest of bytes."""
    return hashlib.sha256(data).hexdigest()


def read_checksum_list(path: str | PathLike[str]) -> dict[str, str]:
    """Parse a ``md5sum``/``sha256sum`` file into ``{relative path: hex digest}``.

    Raises:
        DataError: naming the line that is not ``<hex>  <path>``.
    """
    path = Path(path)
    out: dict[str, str] = {}
    for lineno, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        parts = line.split(maxsplit=1)
        digest = parts[0].lower()
        if len(parts) != 2 or len(digest) not in (32, 40, 64) or not _is_hex(digest):
            raise DataError(
                f"cannot parse checksum line {raw!r}",
                file=path,
                row=lineno,
                expected="'<hex digest>  <relative path>' as written by md5sum or sha256sum",
                fix="regenerate the list with `sha256sum FILES > SHA256SUMS`",
            )
        name = parts[1].lstrip("*").strip()
        if name in out and out[name] != digest:
            raise DataError(
                f"{name!r} is listed twice with different checksums", file=path, row=lineno
            )
        out[name] = digest
    return out


def write_checksum_list(digests: Mapping[str, str], path: str | PathLike[str]) -> Path:
    """Write ``{relative path: digest}`` in sorted ``sha256sum`` format."""
    path = Path(path)
    lines = [f"{digests[k]}  {k}\n" for k in sorted(digests)]
    path.write_text("".join(lines), encoding="utf-8")
    return path


def _is_hex(s: str) -> bool:
    return all(c in "0123456789abcdef" for c in s)


_ALGORITHM_BY_LENGTH = {32: "md5", 40: "sha1", 64: "sha256"}


@dataclass
class VerificationReport:
    """Files checked against expected digests, with every problem named."""

    checked: int = 0
    missing: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.missing and not self.changed

    def summary(self) -> str:
        if self.ok:
            return f"all {self.checked} files verified"
        lines = [
            f"{self.checked} files checked: {len(self.missing)} missing, "
            f"{len(self.changed)} changed"
        ]
        lines += [f"  missing: {m}" for m in self.missing]
        lines += [f"  changed: {c}" for c in self.changed]
        return "\n".join(lines)

    def raise_if_failed(self, root: str | PathLike[str]) -> None:
        if not self.ok:
            raise DataError(
                f"checksum verification failed under {str(root)!r}:\n{self.summary()}",
                fix="re-copy the named files from the source, or rebuild the checksum list "
                "if the change is intended",
            )


def verify_files(
    root: str | PathLike[str], expected: Mapping[str, str], *, progress: bool = False
) -> VerificationReport:
    """Check every listed file under ``root`` against its digest (md5, sha1 or sha256).

    The algorithm is inferred from each digest's length, so published MD5SUMS
    lists and skinml's own SHA-256 lists are checked the same way.
    """
    root = Path(root)
    report = VerificationReport()
    items = sorted(expected.items())
    if progress:
        from tqdm.auto import tqdm

        items = tqdm(items, desc="verifying checksums", unit="file")
    for rel, digest in items:
        report.checked += 1
        p = root / rel
        if not p.is_file():
            report.missing.append(rel)
            continue
        algo = _ALGORITHM_BY_LENGTH.get(len(digest), "sha256")
        if file_digest(p, algo) != digest.lower():
            report.changed.append(rel)
    return report
