"""Checksums, checksum lists and dataset fingerprints (standard library only)."""

from skinml.integrity.checksums import (
    VerificationReport,
    file_digest,
    md5_file,
    read_checksum_list,
    sha256_bytes,
    sha256_file,
    verify_files,
    write_checksum_list,
)

__all__ = [
    "VerificationReport",
    "file_digest",
    "md5_file",
    "read_checksum_list",
    "sha256_bytes",
    "sha256_file",
    "verify_files",
    "write_checksum_list",
]
