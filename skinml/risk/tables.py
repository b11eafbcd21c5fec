"""Join genotypes and survey answers on ``sample_id``, reporting every mismatch.

Samples that are duplicated, or present in only one of the two files, are
never dropped silently: duplicates are an error (which record is right cannot
be guessed), and unmatched samples are listed in a :class:`JoinReport` that
goes into ``metrics.json``, the HTML report and MLflow, or raise when
``on_unmatched="error"``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from os import PathLike
from pathlib import Path

import pandas as pd

from skinml.errors import DataError
from skinml.textfiles import read_csv

ID_COLUMN = "sample_id"


@dataclass
class JoinReport:
    """What the join of genotype and survey samples found."""

    genotype_file: str
    survey_file: str
    n_genotyped: int
    n_surveyed: int
    n_joined: int
    only_in_genotypes: list[str] = field(default_factory=list)
    only_in_survey: list[str] = field(default_factory=list)

    def as_dict(self, max_ids: int = 20) -> dict[str, object]:
        return {
            "genotype_file": self.genotype_file,
            "survey_file": self.survey_file,
            "n_genotyped": self.n_genotyped,
            "n_surveyed": self.n_surveyed,
            "n_joined": self.n_joined,
            "n_only_in_genotypes": len(self.only_in_genotypes),
            "n_only_in_survey": len(self.only_in_survey),
            "only_in_genotypes": self.only_in_genotypes[:max_ids],
            "only_in_survey": self.only_in_survey[:max_ids],
        }

    def summary(self) -> str:
        return (
            f"{self.n_joined} samples joined; {len(self.only_in_genotypes)} only in "
            f"{Path(self.genotype_file).name}, {len(self.only_in_survey)} only in "
            f"{Path(self.survey_file).name}"
        )


def read_survey(path: str | PathLike[str]) -> pd.DataFrame:
    """Read a survey CSV as strings (validation and encoding happen in :mod:`skinml.risk.schema`).

    Raises:
        DataError: missing file, no ``sample_id`` column, empty or duplicated IDs.
    """
    p = Path(path)
    if not p.is_file():
        raise DataError("survey file does not exist", file=p, fix="check the path")
    df = read_csv(p, dtype=str, keep_default_na=False, sep=None, engine="python")
    df.columns = [str(c).strip() for c in df.columns]
    if ID_COLUMN not in df.columns:
        raise DataError(
            f"survey has no {ID_COLUMN!r} column (columns: {list(df.columns)[:8]})",
            file=p,
            fix=f"name the pseudonymised identifier column {ID_COLUMN!r}",
        )
    df[ID_COLUMN] = df[ID_COLUMN].str.strip()
    empty = df.index[df[ID_COLUMN] == ""].tolist()
    if empty:
        raise DataError(
            f"empty {ID_COLUMN} in rows {[i + 2 for i in empty[:10]]}",
            file=p,
            column=ID_COLUMN,
            fix="every row needs its pseudonymised sample identifier",
        )
    check_unique(df[ID_COLUMN].tolist(), file=p)
    return df


def check_unique(ids: list[str], *, file: str | PathLike[str]) -> None:
    """Raise when a sample appears twice, naming the IDs and their (1-based data) rows."""
    s = pd.Series(ids)
    dup = s[s.duplicated(keep=False)]
    if not dup.empty:
        where = dup.groupby(dup).apply(lambda g: [int(i) + 2 for i in g.index]).to_dict()
        shown = "; ".join(f"{k} (rows {v})" for k, v in list(where.items())[:10])
        raise DataError(
            f"{dup.nunique()} sample IDs appear more than once: {shown}",
            file=file,
            column=ID_COLUMN,
            fix="keep one record per sample (which duplicate is right cannot be guessed)",
        )


def join_samples(
    genotype_ids: list[str],
    survey: pd.DataFrame,
    *,
    genotype_file: str | PathLike[str],
    survey_file: str | PathLike[str],
    on_unmatched: str = "report",
) -> tuple[list[str], JoinReport]:
    """Samples present in both files, in genotype order, and the join report.

    Args:
        on_unmatched: ``"report"`` (continue with the joined samples; the
            report lists the others) or ``"error"``.
    """
    check_unique(genotype_ids, file=genotype_file)
    survey_ids = survey[ID_COLUMN].tolist()
    sset = set(survey_ids)
    gset = set(genotype_ids)
    joined = [s for s in genotype_ids if s in sset]
    report = JoinReport(
        str(genotype_file),
        str(survey_file),
        len(genotype_ids),
        len(survey_ids),
        len(joined),
        [s for s in genotype_ids if s not in sset],
        [s for s in survey_ids if s not in gset],
    )
    if not joined:
        raise DataError(
            "no sample ID is in both the genotype file and the survey "
            f"(e.g. genotypes {genotype_ids[:3]}, survey {survey_ids[:3]})",
            file=survey_file,
            column=ID_COLUMN,
            fix="pseudonymise both files with the same key (skinml.privacy.pseudonym)",
        )
    if on_unmatched == "error" and (report.only_in_genotypes or report.only_in_survey):
        raise DataError(
            report.summary(),
            file=survey_file,
            column=ID_COLUMN,
            fix="fix the sample lists, or set data.on_unmatched=report to continue",
        )
    return joined, report
