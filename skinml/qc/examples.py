"""Turn the two public real-data examples into QC inputs (read-only, nothing copied).

* HAM10000 (``ham10000_images_200x150/manifest.csv``): four acquisition sites
  (``dataset``), diagnosis ``dx``, case mix ``age, sex, localization`` and the
  confirmation pathway ``dx_type`` (``follow_up`` = lesion monitored, not excised).
* Chilean psoriasis referrals (``chile_psoriasis_referrals/casos_servicio.csv``):
  per health service, year, sex and age band, ``cases`` and person-years ``py``.
  Per SOURCE.md the ``sexo`` column has F, M and T (= total) rows, so F+M rows are
  used and T rows dropped (keeping both would double every count); person-years
  are only counted for the years a service reports (a service absent in 2016
  contributes neither events nor person-years for 2016).
"""

from __future__ import annotations

from os import PathLike
from pathlib import Path

import pandas as pd

from skinml.errors import DataError

#: What the Chile counts are, for the report (SOURCE.md's caveats in one paragraph).
CHILE_NOTE = (
    "Chilean public-sector psoriasis referrals entering the national waiting list (RNLE), "
    "2016-2017, per health service; referrals, not confirmed diagnoses, so differences mix "
    "incidence, referral practice and reporting completeness. Person-years are FONASA "
    "beneficiaries, counted only for the years a service reports; F and M rows are used and "
    "the T (total) rows dropped. Source: clecarosc/psoriasis-incidence (see SOURCE.md)."
)


def chile_referral_counts(folder: str | PathLike[str]) -> pd.DataFrame:
    """Events and person-years per service × sex × age band, summed over the years present.

    Returns:
        Columns ``hospital`` (the health service), ``sex``, ``age_band``, ``events``,
        ``person_years``, ``years`` (which years contributed).
    """
    path = Path(folder) / "casos_servicio.csv"
    if not path.is_file():
        raise DataError(
            "casos_servicio.csv not found", file=path, fix="point at chile_psoriasis_referrals/"
        )
    raw = pd.read_csv(path)
    cells = raw[raw["sexo"].isin(["F", "M"])]
    out = (
        cells.groupby(["servicio", "sexo", "edad"], sort=True)
        .agg(
            events=("cases", "sum"),
            person_years=("py", "sum"),
            years=("year", lambda y: ",".join(str(v) for v in sorted(set(y)))),
        )
        .reset_index()
        .rename(columns={"servicio": "hospital", "sexo": "sex", "edad": "age_band"})
    )
    return out


def ham10000_records(manifest: str | PathLike[str]) -> pd.DataFrame:
    """HAM10000's manifest as QC records: ``hospital`` = acquisition site, ``diagnosis`` = dx."""
    path = Path(manifest)
    if not path.is_file():
        raise DataError(
            "HAM10000 manifest not found",
            file=path,
            fix="point at ham10000_images_200x150/manifest.csv",
        )
    raw = pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[""])
    return raw.rename(
        columns={"dataset": "hospital", "dx": "diagnosis", "image_id": "case", "file": "image"}
    )
