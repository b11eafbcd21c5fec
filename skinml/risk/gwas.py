"""Weights tables: build one from the GWAS Catalog extracts, read and version one.

A weights table is what PLINK ``--score`` reads: ``snp``, ``effect_allele``,
``other_allele``, ``weight`` (log odds ratio per effect allele), plus
``effect_allele_freq`` (needed to simulate genotypes, resolve A/T-C/G SNPs and
mean-impute missing calls) and informative columns (chrom, pos, gene, source).

The builder turns the psoriasis rows of the MRInstruments GWAS Catalog
snapshot (2017-03-20, CC0; see ``shared/data/psoriasis_gwas_catalog/SOURCE.md``)
into one row per independent locus:

1. keep psoriasis phenotypes (Psoriasis, Psoriasis vulgaris, Cutaneous
   psoriasis) from studies with European-ancestry samples (or unspecified
   ancestry; Han-Chinese-only studies such as Zhang 2009 are dropped);
2. per SNP, take the row with the smallest p-value that has an effect allele
   and a beta; harmonise so the effect allele is the risk allele (beta > 0);
   take the other allele and frequency from rows with the same allele pair on
   either strand (then from the 2014 gwascat risk-allele frequency);
3. prune to one SNP per 500 kb window (strongest p-value first), forcing the
   HLA-C*06:02 tag rs10484554 to represent the MHC signal;
4. drop SNPs without a usable frequency or other allele (they are listed).

Cite: GWAS Catalog (Sollis et al. 2023 NAR; MacArthur et al. 2017 NAR) and the
individual studies in the ``pmid`` column.
"""

from __future__ import annotations

import hashlib
import io
from os import PathLike
from pathlib import Path

import numpy as np
import pandas as pd

from skinml.errors import DataError
from skinml.risk.alleles import complement
from skinml.textfiles import read_csv

MRI_FILE = "mrinstruments_gwas_catalog_2017-03-20_psoriasis.tsv"
GWASCAT_FILE = "gwascat_gwdf_2014-09-08_psoriasis.tsv"
PSORIASIS_PHENOTYPES = ("Psoriasis", "Psoriasis vulgaris", "Cutaneous psoriasis")
HLA_C_TAG = "rs10484554"
WEIGHTS_COLUMNS = (
    "snp",
    "chrom",
    "pos",
    "effect_allele",
    "other_allele",
    "weight",
    "effect_allele_freq",
    "gene",
    "pval",
    "pmid",
    "study",
)
BUILTIN_WEIGHTS = Path(__file__).with_name("resources") / "psoriasis_weights_gwascatalog_2017.tsv"


def _european(desc: object) -> bool:
    text = str(desc).lower()
    asian_only = any(k in text for k in ("chinese", "han ", "japanese", "korean", "asian"))
    return "european" in text or not asian_only


def _pair(row: pd.Series) -> tuple[str, str | None]:
    ea = str(row["effect_allele"]).upper()
    oa = row["other_allele"]
    return ea, (None if pd.isna(oa) else str(oa).upper())


def build_weights_table(
    catalog_dir: str | PathLike[str], *, window_bp: int = 500_000
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Build the de-duplicated, allele-harmonised psoriasis weights table.

    Args:
        catalog_dir: the ``psoriasis_gwas_catalog`` folder.
        window_bp: LD-pruning window; one SNP is kept per window and chromosome.

    Returns:
        ``(weights, dropped)``: the table (columns :data:`WEIGHTS_COLUMNS`) and a
        table of dropped SNPs with the reason, for the record.
    """
    d = Path(catalog_dir)
    path = d / MRI_FILE
    if not path.is_file():
        raise DataError(
            "GWAS Catalog extract not found",
            file=path,
            fix="point data.catalog_dir at shared/data/psoriasis_gwas_catalog",
        )
    raw = read_csv(path, sep="\t")
    rows = raw[raw["Phenotype_simple"].isin(PSORIASIS_PHENOTYPES)]
    rows = rows[rows["Initial_sample_description"].map(_european)]
    dropped: list[dict[str, object]] = []
    out: list[dict[str, object]] = []
    raf2014 = _gwascat_raf(d / GWASCAT_FILE)
    for snp, grp in rows.groupby("SNP", sort=True):
        usable = grp.dropna(subset=["beta", "effect_allele"]).sort_values("pval")
        if usable.empty:
            dropped.append({"snp": snp, "reason": "no row with both effect allele and beta"})
            continue
        best = usable.iloc[0]
        ea, oa = _pair(best)
        beta = float(best["beta"])
        if beta < 0:
            if oa is None:
                dropped.append({"snp": snp, "reason": "negative beta and no other allele"})
                continue
            ea, oa, beta = oa, ea, -beta
        oa, freq = _fill_other_and_freq(ea, oa, usable, raf2014.get(str(snp)))
        if oa is None or freq is None or not (0.005 < freq < 0.995):
            dropped.append({"snp": snp, "reason": "no other allele or usable frequency"})
            continue
        out.append(
            {
                "snp": snp,
                "chrom": str(best["chr"]),
                "pos": best["bp_ens_GRCh38"],
                "effect_allele": ea,
                "other_allele": oa,
                "weight": round(beta, 6),
                "effect_allele_freq": round(freq, 4),
                "gene": best["gene"],
                "pval": best["pval"],
                "pmid": int(best["PubmedID"]),
                "study": f"{best['Author']} {int(best['Year'])}",
            }
        )
    table = pd.DataFrame(out)
    table, pruned = _prune(table, window_bp)
    dropped.extend(pruned)
    table = table.sort_values(["chrom_num", "pos"]).drop(columns="chrom_num").reset_index(drop=True)
    table["pos"] = table["pos"].astype("Int64")
    return table[list(WEIGHTS_COLUMNS)], pd.DataFrame(dropped, columns=["snp", "reason"])


def _gwascat_raf(path: Path) -> dict[str, tuple[str, float]]:
    """rsID -> (risk allele, risk-allele frequency) from the 2014 gwascat rows."""
    if not path.is_file():
        return {}
    g = read_csv(path, sep="\t")
    out: dict[str, tuple[str, float]] = {}
    for _, r in g.iterrows():
        sra = str(r["Strongest SNP-Risk Allele"])
        raf = pd.to_numeric(r["Risk Allele Frequency"], errors="coerce")
        if "-" not in sra or pd.isna(raf):
            continue
        snp, allele = sra.split("-", 1)
        if allele in {"A", "C", "G", "T"}:
            out.setdefault(snp.strip(), (allele, float(raf)))
    return out


def _fill_other_and_freq(
    ea: str, oa: str | None, rows: pd.DataFrame, raf2014: tuple[str, float] | None
) -> tuple[str | None, float | None]:
    """Other allele and effect-allele frequency from any row with a compatible allele pair."""
    freq = None
    for _, r in rows.iterrows():
        rea, roa = _pair(r)
        same = rea in (ea, complement(ea)) and (
            roa is None or oa is None or roa in (oa, complement(oa))
        )
        opposite = oa is not None and rea in (oa, complement(oa))
        if oa is None and roa is not None and rea in (ea, complement(ea)):
            oa = roa if rea == ea else complement(roa)
        if freq is None and not pd.isna(r["eaf"]):
            if same:
                freq = float(r["eaf"])
            elif opposite:
                freq = 1.0 - float(r["eaf"])
    if freq is None and raf2014 is not None:
        allele, raf = raf2014
        if allele in (ea, complement(ea)):
            freq = raf
        elif oa is not None and allele in (oa, complement(oa)):
            freq = 1.0 - raf
    return oa, freq


def _prune(table: pd.DataFrame, window_bp: int) -> tuple[pd.DataFrame, list[dict[str, object]]]:
    t = table.copy()
    t["chrom_num"] = pd.to_numeric(t["chrom"], errors="coerce").fillna(99)
    t["forced"] = t["snp"] == HLA_C_TAG
    t = t.sort_values(["forced", "pval"], ascending=[False, True])
    kept: list[int] = []
    dropped: list[dict[str, object]] = []
    for idx, r in t.iterrows():
        clash = next(
            (
                t.loc[k, "snp"]
                for k in kept
                if t.loc[k, "chrom"] == r["chrom"]
                and abs(float(t.loc[k, "pos"]) - float(r["pos"])) < window_bp
            ),
            None,
        )
        if clash is not None and not pd.isna(r["pos"]):
            dropped.append(
                {"snp": r["snp"], "reason": f"within {window_bp} bp of {clash} (same locus)"}
            )
        else:
            kept.append(idx)
    return t.loc[kept].drop(columns="forced"), dropped


def weights_version(table: pd.DataFrame) -> str:
    """Content hash of the scoring columns: two tables with equal weights share a version."""
    cols = ["snp", "effect_allele", "other_allele", "weight", "effect_allele_freq"]
    buf = io.StringIO()
    table[cols].to_csv(buf, sep="\t", index=False, float_format="%.6g")
    return "sha256:" + hashlib.sha256(buf.getvalue().encode("utf-8")).hexdigest()[:16]


def write_weights_table(
    table: pd.DataFrame, path: str | PathLike[str], *, header_lines: list[str] | None = None
) -> Path:
    """TSV with optional ``#`` comment lines (source, licence, citation)."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    with p.open("w", encoding="utf-8", newline="") as fh:
        for line in header_lines or []:
            fh.write(f"# {line}\n")
        table.to_csv(fh, sep="\t", index=False)
    return p


def read_weights_table(path: str | PathLike[str] | None = None) -> pd.DataFrame:
    """Read a weights table (TSV/CSV; ``#`` lines are comments); None = the built-in one.

    Accepts PLINK-style column names too (``SNP``/``ID``, ``A1``, ``A2``,
    ``BETA``/``OR``).

    Raises:
        DataError: missing columns, non-numeric weights or duplicated SNPs,
            naming the file and the rows.
    """
    p = BUILTIN_WEIGHTS if path is None else Path(path)
    if not p.is_file():
        raise DataError("weights table not found", file=p, fix="check data.weights")
    sep = "," if p.suffix.lower() == ".csv" else "\t"
    t = read_csv(p, sep=sep, comment="#", dtype={"chrom": str})
    rename = {
        "SNP": "snp",
        "ID": "snp",
        "rsid": "snp",
        "A1": "effect_allele",
        "A2": "other_allele",
        "BETA": "weight",
        "beta": "weight",
        "EAF": "effect_allele_freq",
        "eaf": "effect_allele_freq",
    }
    t = t.rename(columns={k: v for k, v in rename.items() if k in t.columns and v not in t.columns})
    if "weight" not in t.columns and "OR" in t.columns:
        t["weight"] = np.log(pd.to_numeric(t["OR"], errors="coerce"))
    missing = [c for c in ("snp", "effect_allele", "weight") if c not in t.columns]
    if missing:
        raise DataError(
            f"weights table lacks columns {missing}",
            file=p,
            expected="columns snp, effect_allele, other_allele, weight (log OR), "
            "effect_allele_freq",
        )
    for col in ("other_allele", "effect_allele_freq", "chrom", "pos"):
        if col not in t.columns:
            t[col] = np.nan
    t["weight"] = pd.to_numeric(t["weight"], errors="coerce")
    bad = t.index[t["weight"].isna()].tolist()
    if bad:
        raise DataError(
            f"non-numeric or missing weight for SNPs {t.loc[bad, 'snp'].tolist()[:10]}",
            file=p,
            fix="give every SNP a numeric weight (log odds ratio)",
        )
    dup = t["snp"][t["snp"].duplicated()].tolist()
    if dup:
        raise DataError(f"SNPs listed twice: {dup[:10]}", file=p, fix="keep one row per SNP")
    t["effect_allele"] = t["effect_allele"].astype(str).str.upper()
    t["other_allele"] = t["other_allele"].where(
        t["other_allele"].isna(), t["other_allele"].astype(str).str.upper()
    )
    return t.reset_index(drop=True)
