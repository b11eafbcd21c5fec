"""A small, gzip-aware VCF genotype reader in pure Python (stdlib + numpy).

Training reads VCFs with cyvcf2 (:mod:`skinml.risk.genotypes`); the
clinician's predictor must not need htslib, so it uses this reader, which
only understands what scoring needs: the variant columns and the ``GT``
field. bgzip output is gzip-compatible, so ``gzip.open`` reads it.
"""

from __future__ import annotations

import gzip
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from os import PathLike
from pathlib import Path

import numpy as np

from skinml.errors import DataError, ManyErrors
from skinml.risk.harmonise import VariantInfo

_GZIP_MAGIC = b"\x1f\x8b"


@dataclass
class VcfGenotypes:
    """Samples, variants and ALT-allele dosages ``(n_samples, n_variants)`` (NaN = missing)."""

    samples: list[str]
    variants: list[VariantInfo]
    dosages: np.ndarray
    errors: list[list[str]] = field(default_factory=list)  # per sample: malformed GT values


def _open_text(path: Path):  # type: ignore[no-untyped-def]
    with path.open("rb") as fh:
        magic = fh.read(2)
    if magic == _GZIP_MAGIC:
        return gzip.open(path, "rt", encoding="utf-8", newline="")
    return path.open("r", encoding="utf-8", newline="")


#: One GT value: allele indices (or ``.``) joined by ``/`` (unphased) or ``|`` (phased).
_GT = re.compile(r"^[|/]?(?:\.|\d+)(?:[|/](?:\.|\d+))*$")
#: How many bad genotype cells a check lists before it stops reading.
MAX_LISTED = 20


def gt_dosage(gt: str, n_alleles: int) -> tuple[float, str | None]:
    """ALT dosage of one GT value, or NaN and the reason it is malformed.

    ``0/1`` -> 1, ``1|1`` -> 2, ``./.`` -> NaN (missing, not an error), haploid
    ``1`` -> 1. Anything else (``0/X``, ``A/G``, ``1/a``, ``0/1/``, or an allele
    index beyond the site's ALT alleles) is an error: counting every non-``0``
    token as ALT would score a broken file as if it were fine, and htslib can
    crash on such values.
    """
    if gt in ("", "."):
        return float("nan"), None
    if not _GT.match(gt):
        return float("nan"), f"GT {gt!r} is not allele numbers joined by / or |"
    alleles = re.split(r"[|/]", gt.lstrip("|/"))
    if "." in alleles:
        return float("nan"), None
    indices = [int(a) for a in alleles]
    if max(indices) >= n_alleles:
        return float("nan"), (
            f"GT {gt!r} names allele {max(indices)} but the site has only "
            f"{n_alleles - 1} ALT allele(s)"
        )
    return float(sum(1 for a in indices if a != 0)), None


def _records(p: Path) -> Iterator[tuple[int, list[str], list[str]]]:
    """Yield ``(line number, sample names, fields)`` per data line, checking the layout."""
    samples: list[str] | None = None
    try:
        fh = _open_text(p)
        with fh:
            for lineno, line in enumerate(fh, start=1):
                if line.startswith("##"):
                    continue
                if line.startswith("#CHROM"):
                    header = line.rstrip("\r\n").split("\t")
                    if len(header) < 10 or header[8] != "FORMAT":
                        raise DataError(
                            "the #CHROM header has no FORMAT/sample columns",
                            file=p,
                            row=lineno,
                            expected="a VCF with genotype (GT) columns per sample",
                        )
                    samples = header[9:]
                    continue
                if not line.strip():
                    continue
                if samples is None:
                    raise DataError(
                        "data line before the #CHROM header",
                        file=p,
                        row=lineno,
                        expected="a VCF file (##fileformat, #CHROM header, then variants)",
                        fix="check that this is a VCF, not a dosage table (use .csv for those)",
                    )
                fields = line.rstrip("\r\n").split("\t")
                if len(fields) != 9 + len(samples):
                    raise DataError(
                        f"{len(fields)} tab-separated fields, the header has {9 + len(samples)}",
                        file=p,
                        row=lineno,
                        fix="the file may be truncated or space-separated; re-export it",
                    )
                if not fields[1].isdigit():
                    raise DataError(
                        f"POS {fields[1]!r} is not a whole number",
                        file=p,
                        row=lineno,
                        column="POS",
                        fix="re-export the VCF",
                    )
                yield lineno, samples, fields
    except (OSError, EOFError, UnicodeDecodeError) as exc:
        raise DataError(
            f"cannot read the VCF: {exc}",
            file=p,
            fix="check that the file is complete and (b)gzip or plain text",
        ) from exc
    if samples is None:
        raise DataError("no #CHROM header line", file=p, expected="a VCF file")


def _n_alleles(alt: str) -> int:
    return 1 if alt in ("", ".") else 1 + len(alt.split(","))


def _gt_index(p: Path, lineno: int, fields: list[str], key: str) -> int:
    fmt = fields[8].split(":")
    if "GT" not in fmt:
        raise DataError(
            f"variant {key} has no GT field in FORMAT {fields[8]!r}",
            file=p,
            row=lineno,
            fix="export hard genotype calls (GT) for scoring",
        )
    return fmt.index("GT")


def _key(fields: list[str]) -> tuple[str, str]:
    chrom, pos, vid = fields[0], fields[1], fields[2]
    poskey = f"{chrom.removeprefix('chr')}:{pos}"
    return (vid if vid != "." else poskey), poskey


def check_vcf_genotypes(path: str | PathLike[str]) -> None:
    """Read every GT value of a text VCF and refuse the file if any is malformed.

    Training reads VCFs with cyvcf2; htslib stops (or, in some builds, crashes
    the interpreter) on a malformed GT such as ``0/X``. Checking in Python first
    turns that into a list of the bad cells by line and sample.

    Raises:
        DataError: the layout is broken (naming the line).
        ManyErrors: one entry per malformed GT value (the first :data:`MAX_LISTED`).
    """
    p = Path(path)
    problems: list[DataError] = []
    for lineno, samples, fields in _records(p):
        key, _ = _key(fields)
        gi = _gt_index(p, lineno, fields, key)
        n_alleles = _n_alleles(fields[4])
        for sample, cell in zip(samples, fields[9:], strict=True):
            parts = cell.split(":")
            _, reason = gt_dosage(parts[gi] if gi < len(parts) else "", n_alleles)
            if reason:
                problems.append(
                    DataError(f"variant {key}: {reason}", file=p, row=lineno, column=sample)
                )
        if len(problems) >= MAX_LISTED:
            break
    if problems:
        raise ManyErrors(
            f"malformed genotypes in {p.name} (reading stopped after {MAX_LISTED})"
            if len(problems) >= MAX_LISTED
            else f"malformed genotypes in {p.name}",
            problems,  # type: ignore[arg-type]
            fix="re-export the VCF with valid GT calls (0/0, 0/1, 1/1, ./.)",
        )


def read_vcf_text(path: str | PathLike[str], keep: Iterable[str] | None = None) -> VcfGenotypes:
    """Read GT dosages from a plain or (b)gzipped VCF.

    A malformed GT value makes that sample's dosage missing and is recorded in
    ``errors`` for that sample, so the caller can give the sample an error row
    (one bad cell never becomes a confident score, nor aborts the other samples).

    Args:
        path: ``.vcf`` or ``.vcf.gz``.
        keep: variant IDs (or ``chrom:pos``) to keep; None keeps all. Filtering
            while reading keeps memory small for whole-genome files.

    Raises:
        DataError: no ``#CHROM`` header, no ``GT`` field, or a malformed line
            (naming the line number).
    """
    p = Path(path)
    if not p.is_file():
        raise DataError("genotype file does not exist", file=p, fix="check the path")
    wanted = None if keep is None else set(keep)
    samples: list[str] = []
    variants: list[VariantInfo] = []
    rows: list[list[float]] = []
    errors: list[list[str]] = []
    for lineno, samples, fields in _records(p):
        if not errors:
            errors = [[] for _ in samples]
        key, poskey = _key(fields)
        if wanted is not None and key not in wanted and poskey not in wanted:
            continue
        gi = _gt_index(p, lineno, fields, key)
        n_alleles = _n_alleles(fields[4])
        row = []
        for j, cell in enumerate(fields[9:]):
            parts = cell.split(":")
            dosage, reason = gt_dosage(parts[gi] if gi < len(parts) else "", n_alleles)
            if reason:
                errors[j].append(f"file {str(p)!r} line {lineno}, variant {key}: {reason}")
            row.append(dosage)
        rows.append(row)
        chrom, pos, ref, alt = fields[0], fields[1], fields[3], fields[4]
        variants.append(VariantInfo(key, alt.upper(), ref.upper(), chrom, int(pos)))
    if not samples:
        samples = _samples_only(p)
    dos = np.array(rows, dtype=float).T if rows else np.zeros((len(samples), 0))
    return VcfGenotypes(samples, variants, dos, errors or [[] for _ in samples])


def _samples_only(p: Path) -> list[str]:
    """Sample names of a VCF without data lines (the header was checked by ``_records``)."""
    with _open_text(p) as fh:
        for line in fh:
            if line.startswith("#CHROM"):
                return line.rstrip("\r\n").split("\t")[9:]
    return []
