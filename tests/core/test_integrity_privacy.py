"""Checksums, checksum lists and keyed pseudonyms."""

from __future__ import annotations

import hashlib

import pytest

from skinml.errors import ConfigError, DataError
from skinml.integrity.checksums import (
    read_checksum_list,
    sha256_file,
    verify_files,
    write_checksum_list,
)
from skinml.privacy.pseudonym import load_key, pseudonymise


def test_sha256_matches_hashlib(tmp_path):
    p = tmp_path / "f.bin"
    p.write_bytes(b"x" * 3_000_000)
    assert sha256_file(p) == hashlib.sha256(b"x" * 3_000_000).hexdigest()


def test_verify_names_changed_and_missing(tmp_path):
    for name in ("a.txt", "b.txt", "c.txt"):
        (tmp_path / name).write_text(name)
    digests = {n: sha256_file(tmp_path / n) for n in ("a.txt", "b.txt", "c.txt")}
    write_checksum_list(digests, tmp_path / "SHA256SUMS")
    assert read_checksum_list(tmp_path / "SHA256SUMS") == digests
    (tmp_path / "b.txt").write_text("tampered")
    (tmp_path / "c.txt").unlink()
    report = verify_files(tmp_path, digests)
    assert report.changed == ["b.txt"] and report.missing == ["c.txt"] and not report.ok
    with pytest.raises(DataError, match=r"b\.txt"):
        report.raise_if_failed(tmp_path)


def test_md5sums_format_is_accepted(tmp_path):
    (tmp_path / "img.jpg").write_bytes(b"abc")
    (tmp_path / "MD5SUMS").write_text(f"{hashlib.md5(b'abc').hexdigest()}  img.jpg\n")
    assert verify_files(tmp_path, read_checksum_list(tmp_path / "MD5SUMS")).ok


def test_bad_checksum_line_names_the_row(tmp_path):
    (tmp_path / "SUMS").write_text("deadbeef file\n")
    with pytest.raises(DataError, match="row 1"):
        read_checksum_list(tmp_path / "SUMS")


def test_real_md5sums_verify_a_sample(shared_data, tmp_path):
    folder = shared_data / "isic_archive_uda1"
    listed = read_checksum_list(folder / "MD5SUMS")
    sample = dict(sorted(listed.items())[:10])
    assert verify_files(folder, sample).ok


def test_pseudonyms_are_keyed_stable_and_secret(tmp_path, monkeypatch):
    key_file = tmp_path / "key"
    key_file.write_text("0123456789abcdef0123456789abcdef")
    key = load_key(key_file)
    a = pseudonymise("PAT-001", key, prefix="P")
    assert a == pseudonymise(" PAT-001 ", key, prefix="P")  # stable across deliveries
    assert a != pseudonymise("PAT-001", b"another-key-of-32-bytes-length!!", prefix="P")
    assert "PAT-001" not in a and a.startswith("P") and len(a) == 17
    monkeypatch.setenv("SKINML_PSEUDONYM_KEY", "0123456789abcdef0123456789abcdef")
    assert load_key() == key


def test_missing_or_short_key_says_what_to_do(tmp_path, monkeypatch):
    monkeypatch.delenv("SKINML_PSEUDONYM_KEY", raising=False)
    with pytest.raises(ConfigError, match="SKINML_PSEUDONYM_KEY"):
        load_key()
    short = tmp_path / "short"
    short.write_text("abc")
    with pytest.raises(ConfigError, match="at least 16 bytes"):
        load_key(short)
