"""Read genotypes for training: VCF (cyvcf2, plain or bgzipped) or a dosage table.

Both readers return the same :class:`GenotypeSource`: sample IDs, variants
(which allele each dosage counts) and a ``(n_samples, n_variants)`` dosage
matrix with NaN for missing calls, ready for
:func:`skinml.risk.harmonise.harmonise`.

Dosage tables (CSV or Parquet, one row per sample, a ``sample_id`` column)
follow PLINK's ``--recode A`` naming: column ``rs10484554_T`` counts allele T.
A bare ``rs10484554`` column is taken to count the weights table's effect
allele and is reported as such (status ``assumed_effect_allele``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from os import PathLike
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from skinml.errors import DataError
from skinml.risk.harmonise import VariantInfo
from skinml.textfiles import read_csv

ID_COLUMN = "sample_id"
_ALLELE_SUFFIX = re.compile(r"^(?P<snp>.+)_(?P<allele>[ACGTacgt]+)$")
VCF_SUFFIXES = (".vcf", ".vcf.gz", ".vcf.bgz")


@dataclass
class GenotypeSource:
    """Genotypes of one file: samples, variants and counted-allele dosages."""

    path: Path
    samples: list[str]
    variants: list[VariantInfo]
    dosages: np.ndarray


def is_vcf(path: str | PathLike[str]) -> bool:
    name = Path(path).name.lower()
    return name.endswith(VCF_SUFFIXES)


def read_genotypes(path: str | PathLike[str], keep: Iterable[str] | None = None) -> GenotypeSource:
    """Dispatch on the file name: VCF (``.vcf``, ``.vcf.gz``) or table (``.csv``, ``.parquet``)."""
    p = Path(path)
    if not p.is_file():
        raise DataError("genotype file does not exist", file=p, fix="check data.genotypes")
    if is_vcf(p):
        return read_vcf(p, keep)
    if p.suffix.lower() in (".csv", ".tsv", ".txt", ".parquet", ".pq"):
        return read_dosage_table(p)
    raise DataError(
        f"unknown genotype file type {p.suffix!r}",
        file=p,
        expected="a VCF (.vcf / .vcf.gz) or a dosage table (.csv / .parquet)",
    )


def read_vcf(path: str | PathLike[str], keep: Iterable[str] | None = None) -> GenotypeSource:
    """Read GT calls with cyvcf2 (htslib: handles bgzip, BCF and tabix-indexed files).

    Multi-allelic sites are kept with ``counted="A,C"`` so harmonisation can
    report them instead of silently mis-coding them.
    """
    import cyvcf2

    from skinml.risk.textvcf import check_vcf_genotypes

    p = Path(path)
    # htslib must never see a malformed GT: it stops with a bare Exception or, in
    # some builds, takes the interpreter down with a segmentation fault.
    check_vcf_genotypes(p)
    wanted = None if keep is None else set(keep)
    try:
        vcf = cyvcf2.VCF(str(p), gts012=True, lazy=True)
    except (OSError, RuntimeError) as exc:
        raise DataError(
            f"cannot open the VCF: {exc}", file=p, fix="check that it is a valid (b)gzipped VCF"
        ) from exc
    samples = list(vcf.samples)
    if not samples:
        raise DataError(
            "the VCF has no sample columns", file=p, expected="genotypes (GT) per sample"
        )
    variants: list[VariantInfo] = []
    cols: list[np.ndarray] = []
    try:
        _collect(vcf, wanted, variants, cols)
    except Exception as exc:  # cyvcf2 raises plain Exception for records htslib rejects
        if type(exc) is not Exception:
            raise  # a bug, not the file
        raise DataError(
            f"htslib cannot parse the VCF: {exc}",
            file=p,
            fix="validate the file (bcftools view FILE > /dev/null) and re-export it",
        ) from exc
    finally:
        vcf.close()
    dos = np.column_stack(cols) if cols else np.zeros((len(samples), 0))
    return GenotypeSource(p, samples, variants, dos)


def _collect(
    vcf: Any, wanted: set[str] | None, variants: list[VariantInfo], cols: list[np.ndarray]
) -> None:
    """Append the wanted variants' dosages (0 hom-ref, 1 het, 2 hom-alt, NaN missing)."""
    for v in vcf:
        key = v.ID if v.ID else f"{str(v.CHROM).removeprefix('chr')}:{v.POS}"
        poskey = f"{str(v.CHROM).removeprefix('chr')}:{v.POS}"
        if wanted is not None and key not in wanted and poskey not in wanted:
            continue
        gt = v.gt_types.astype(float)  # 0 hom-ref, 1 het, 2 hom-alt, 3 unknown
        gt[gt == 3] = np.nan
        cols.append(gt)
        variants.append(
            VariantInfo(
                key, ",".join(v.ALT).upper() or None, str(v.REF).upper(), str(v.CHROM), int(v.POS)
            )
        )


def read_dosage_table(path: str | PathLike[str]) -> GenotypeSource:
    """Read a sample x SNP dosage table (0/1/2, empty = missing).

    Raises:
        DataError: no ``sample_id`` column, or non-numeric / out-of-range cells
            (naming up to 20 of them by row and column).
    """
    p = Path(path)
    if p.suffix.lower() in (".parquet", ".pq"):
        df = pd.read_parquet(p)
    else:
        df = read_csv(p, sep="\t" if p.suffix.lower() in (".tsv", ".txt") else ",", dtype=str)
    if ID_COLUMN not in df.columns:
        raise DataError(
            f"dosage table has no {ID_COLUMN!r} column (columns: {list(df.columns)[:8]})",
            file=p,
            fix=f"name the pseudonymised sample identifier column {ID_COLUMN!r}",
        )
    snp_cols = [c for c in df.columns if c != ID_COLUMN]
    values = df[snp_cols].apply(pd.to_numeric, errors="coerce").to_numpy(float)
    raw = df[snp_cols].to_numpy(object)
    given = ~pd.isna(raw) & (
        np.vectorize(lambda s: str(s).strip() != "")(raw) if raw.size else raw.astype(bool)
    )
    bad = (given & np.isnan(values)) | (~np.isnan(values) & ((values < 0) | (values > 2)))
    if bad.any():
        from skinml.errors import ManyErrors

        errs = [
            DataError(
                f"dosage {raw[i, j]!r} is not a number in [0, 2]",
                file=p,
                row=i + 2,
                column=snp_cols[j],
            )
            for i, j in zip(*np.nonzero(bad), strict=True)
        ][:20]
        raise ManyErrors(
            f"bad dosages in {p}",
            errs,
            fix="use 0/1/2 allele counts (or dosages) and leave missing calls empty",
        )
    variants = []
    for c in snp_cols:
        m = _ALLELE_SUFFIX.match(str(c))
        if m:
            variants.append(VariantInfo(m["snp"], m["allele"].upper(), None))
        else:
            variants.append(VariantInfo(str(c), None, None))
    samples = df[ID_COLUMN].astype(str).str.strip().tolist()
    return GenotypeSource(p, samples, variants, values)
