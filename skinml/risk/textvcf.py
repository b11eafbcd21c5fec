"""A small, gzip-aware VCF genotype reader in pure Python (stdlib + numpy).

Training reads VCFs with cyvcf2 (:mod:`skinml.risk.genotypes`); the
clinician's predictor must not need htslib, so it uses this reader, which
only understands what scoring needs: the variant columns and the ``GT``
field. bgzip output is gzip-compatible, so ``gzip.open`` reads it.
"""

from __future__ import annotations

import gzip
from collections.abc import Iterable
from dataclasses import dataclass
from os import PathLike
from pathlib import Path

import numpy as np

from skinml.errors import DataError
from skinml.risk.harmonise import VariantInfo

_GZIP_MAGIC = b"\x1f\x8b"


@dataclass
class VcfGenotypes:
    """Samples, variants and ALT-allele dosages ``(n_samples, n_variants)`` (NaN = missing)."""

    samples: list[str]
    variants: list[VariantInfo]
    dosages: np.ndarray


def _open_text(path: Path):  # type: ignore[no-untyped-def]
    with path.open("rb") as fh:
        magic = fh.read(2)
    if magic == _GZIP_MAGIC:
        return gzip.open(path, "rt", encoding="utf-8", newline="")
    return path.open("r", encoding="utf-8", newline="")


def _gt_dosage(gt: str) -> float:
    """ALT dosage of a GT string: ``0/1`` -> 1, ``1|1`` -> 2, ``./.`` -> NaN, haploid ``1`` -> 1."""
    if not gt or gt[0] == ".":
        return float("nan")
    alleles = gt.replace("|", "/").split("/")
    total = 0
    for a in alleles:
        if a == ".":
            return float("nan")
        if a != "0":
            total += 1
    return float(total)


def read_vcf_text(path: str | PathLike[str], keep: Iterable[str] | None = None) -> VcfGenotypes:
    """Read GT dosages from a plain or (b)gzipped VCF.

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
    samples: list[str] | None = None
    variants: list[VariantInfo] = []
    rows: list[list[float]] = []
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
                chrom, pos, vid, ref, alt = fields[0], fields[1], fields[2], fields[3], fields[4]
                key = vid if vid != "." else f"{chrom.removeprefix('chr')}:{pos}"
                poskey = f"{chrom.removeprefix('chr')}:{pos}"
                if wanted is not None and key not in wanted and poskey not in wanted:
                    continue
                fmt = fields[8].split(":")
                if "GT" not in fmt:
                    raise DataError(
                        f"variant {key} has no GT field in FORMAT {fields[8]!r}",
                        file=p,
                        row=lineno,
                        fix="export hard genotype calls (GT) for scoring",
                    )
                gi = fmt.index("GT")
                rows.append([_gt_dosage(s.split(":")[gi]) for s in fields[9:]])
                variants.append(VariantInfo(key, alt.upper(), ref.upper(), chrom, int(pos)))
    except (OSError, EOFError, UnicodeDecodeError) as exc:
        raise DataError(
            f"cannot read the VCF: {exc}",
            file=p,
            fix="check that the file is complete and (b)gzip or plain text",
        ) from exc
    if samples is None:
        raise DataError("no #CHROM header line", file=p, expected="a VCF file")
    dos = np.array(rows, dtype=float).T if rows else np.zeros((len(samples), 0))
    return VcfGenotypes(samples, variants, dos)
