"""skinml-qc on the two public real-data examples: HAM10000's four sites and Chile's referrals.

Usage:
    .venv/bin/python experiments/qc_real_data/run.py [--shared ../shared/data] [--out DIR]

Writes one full QC output folder per analysis under ``--out`` (reports, CSVs, flags) and a
``results.json`` with the headline numbers next to this script.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import pandas as pd

from skinml.qc.examples import chile_referral_counts, ham10000_records
from skinml.qc.pipeline import QcOptions, run_rates_qc, run_records_qc
from skinml.qc.rates import validate_counts
from skinml.qc.records import QcColumns, validate_records

HERE = Path(__file__).parent


def ham(shared: Path, out: Path, seed: int) -> dict:
    manifest = shared / "ham10000_images_200x150" / "manifest.csv"
    raw = ham10000_records(manifest)
    result = {"records": len(raw), "sites": sorted(raw["hospital"].unique())}
    dx_type = pd.crosstab(raw["hospital"], raw["dx_type"])
    result["dx_type_by_site"] = dx_type.to_dict(orient="index")
    runs = {
        "crude_and_age_sex_localization": ("age", "sex", "localization"),
        "plus_care_pathway_dx_type": ("age", "sex", "localization", "dx_type"),
    }
    for name, covs in runs.items():
        t = time.perf_counter()
        rec = validate_records(raw, QcColumns(covariates=covs), source=str(manifest))
        opts = QcOptions(
            seed=seed,
            image_root=manifest.parent if name.startswith("crude") else None,
            progress=False,
            title=f"skinml-qc on HAM10000 sites (real data; adjusted for {', '.join(covs)})",
        )
        res = run_records_qc(rec, out / f"ham10000_{name}", opts)
        ma = res.summary["mix_adjusted"]
        result[name] = {
            "covariates": list(covs),
            "pearson_chi2_crude": ma["pearson_chi2_crude_total"],
            "pearson_chi2_adjusted": ma["pearson_chi2_adjusted_total"],
            "fraction_of_crude_chi2_remaining": ma["pearson_chi2_adjusted_total"]
            / ma["pearson_chi2_crude_total"],
            "cramers_v_crude": ma["cramers_v_crude"],
            "nv_share_and_o_e": _nv(res),
            "flags": len(res.flags),
            "alarms": int((res.flags["level"] == "alarm").sum()),
            "excluded_rows": len(res.excluded),
            "wall_s": round(time.perf_counter() - t, 1),
        }
    return result


def _nv(res) -> dict:
    crude = res.tables["mix_crude"].set_index(["hospital", "diagnosis"])
    adj = res.tables["mix_adjusted"].set_index(["hospital", "diagnosis"])
    out = {}
    for site in crude.index.get_level_values(0).unique():
        c, a = crude.loc[(site, "nv")], adj.loc[(site, "nv")]
        out[site] = {
            "nv_share": round(float(c["share"]), 4),
            "nv_share_ci": [
                round(float(c["share_ci_low"]), 4),
                round(float(c["share_ci_high"]), 4),
            ],
            "pooled_share": round(float(c["pooled_share"]), 4),
            "crude_adjusted_residual": round(float(c["adjusted_residual"]), 2),
            "o_e_after_adjustment": round(float(a["o_e"]), 3),
            "o_e_ci": [round(float(a["o_e_ci_low"]), 3), round(float(a["o_e_ci_high"]), 3)],
        }
    return out


def chile(shared: Path, out: Path) -> dict:
    raw = chile_referral_counts(shared / "chile_psoriasis_referrals")
    counts, excluded = validate_counts(raw, strata=["sex", "age_band"])
    funnels, _ = run_rates_qc(
        counts,
        excluded,
        out / "chile_psoriasis_referrals",
        strata=["sex", "age_band"],
        indicator="psoriasis referral rate",
        source="chile_psoriasis_referrals/casos_servicio.csv (F+M rows)",
    )
    res = {
        "services": int(counts["hospital"].nunique()),
        "events": int(counts["events"].sum()),
        "person_years": float(counts["exposure"].sum()),
    }
    for f in funnels:
        t = f.table
        res[f.indicator] = {
            "target": f.target * f.scale,
            "overdispersion": f.overdispersion.describe(scale=f.scale),
            "phi": f.overdispersion.phi,
            "tau2": f.overdispersion.tau2,
            "alarm_high": sorted(
                t.loc[(t["status"] == "alarm") & (t["direction"] == "high"), "unit"]
            ),
            "alarm_low": sorted(
                t.loc[(t["status"] == "alarm") & (t["direction"] == "low"), "unit"]
            ),
            "alert": sorted(t.loc[t["status"] == "alert", "unit"]),
        }
    return res


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--shared", type=Path, default=HERE.parents[2] / "shared" / "data")
    p.add_argument("--out", type=Path, default=HERE / "outputs")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    results = {
        "seed": args.seed,
        "ham10000": ham(args.shared, args.out, args.seed),
        "chile_psoriasis_referrals": chile(args.shared, args.out),
    }
    from skinml.tracking.provenance import command_provenance

    results["provenance"] = command_provenance()  # git commit, packages, exact command
    (HERE / "results.json").write_text(json.dumps(results, indent=2, default=str), encoding="utf-8")
    print(json.dumps(results, indent=2, default=str)[:4000])


if __name__ == "__main__":
    main()
