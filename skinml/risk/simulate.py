"""Simulate a psoriasis cohort (genotypes + survey + outcome) with a known true risk.

No individual-level psoriasis genotypes are public, so risk models are
developed on a SIMULATED cohort built from published summary statistics:

- genotypes: each SNP of the weights table drawn independently (Hardy-Weinberg)
  from its published effect-allele frequency; optional null SNPs (weight 0)
  stand in for the rest of a genotyping panel;
- survey factors: drawn from configured prevalences, each with a published
  odds ratio (the citations live in ``configs/risk/data/simulated.yaml``);
- outcome: a liability-threshold model. Liability ``L = eta(x) + e`` with
  ``eta`` the sum of log odds ratios and ``e`` logistic (``link: logit``; the
  ORs then hold exactly, conditional on the other factors) or standard normal
  (``link: probit``; log ORs divided by 1.7); a subject is a case when ``L``
  exceeds the threshold that gives the chosen prevalence. Each subject's true
  risk ``P(L > T | x)`` is kept, so the oracle AUC is known.

Everything written is labelled simulated (file names, VCF header, report).
Run it from the command line with ``python -m skinml.risk.simulate --help``
or ``skinml-risk mode=simulate``.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from os import PathLike
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.optimize import brentq
from scipy.special import expit, ndtr

from skinml.errors import ConfigError
from skinml.privacy.pseudonym import pseudonymise
from skinml.risk.alleles import complement, is_ambiguous

SIMULATED_LABEL = "SIMULATED DATA: not real individuals (skinml.risk.simulate)"
PROBIT_SCALE = 1.7  # logit ~ 1.7 x probit
GENOTYPES_FILE = "simulated_genotypes.vcf.gz"
SURVEY_FILE = "simulated_survey.csv"
TRUTH_FILE = "simulated_truth.csv"
PANEL_FILE = "simulated_panel_weights.tsv"
OUTCOME_COLUMN = "psoriasis"


@dataclass
class SimulatedCohort:
    """A simulated cohort held in memory.

    Attributes:
        panel: weights table of every simulated SNP (null SNPs have weight 0),
            with the alleles as written to the VCF (``vcf_ref``/``vcf_alt``).
        effect_dosages: ``(n, n_snps)`` effect-allele counts (int8; -1 missing).
        survey: one row per subject (``sample_id`` + survey answers + outcome).
        truth: ``sample_id``, ``true_risk_simulated``, ``liability_simulated``,
            outcome.
        intercept: logit-scale threshold/intercept that gives the prevalence.
    """

    panel: pd.DataFrame
    effect_dosages: np.ndarray
    survey: pd.DataFrame
    truth: pd.DataFrame
    intercept: float
    link: str


def _survey_values(
    factor: Mapping[str, object], n: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Draw one survey factor; returns (answers as written, its log-OR contribution)."""
    name, ftype = factor["name"], factor["type"]
    if ftype == "binary":
        p = float(factor["prevalence"])  # type: ignore[arg-type]
        x = (rng.random(n) < p).astype(int)
        return x, x * math.log(float(factor.get("odds_ratio", 1.0)))  # type: ignore[arg-type]
    if ftype == "categorical":
        levels = list(factor["levels"])  # type: ignore[call-overload]
        probs = np.asarray(factor["probabilities"], dtype=float)
        if len(probs) != len(levels) or not math.isclose(probs.sum(), 1.0, abs_tol=1e-6):
            raise ConfigError(
                f"survey factor {name!r}: probabilities must match levels and sum to 1"
            )
        idx = rng.choice(len(levels), size=n, p=probs)
        ors = dict(factor.get("odds_ratios") or {})  # type: ignore[call-overload]
        logor = np.array([math.log(float(ors.get(lv, 1.0))) for lv in levels])
        return np.asarray(levels, dtype=object)[idx], logor[idx]
    if ftype == "numeric":
        dist = dict(factor["distribution"])  # type: ignore[call-overload]
        if dist.get("kind", "normal") == "uniform":
            x = rng.uniform(float(dist["min"]), float(dist["max"]), n)
        else:
            x = rng.normal(float(dist["mean"]), float(dist["sd"]), n)
            x = np.clip(x, float(dist.get("min", -np.inf)), float(dist.get("max", np.inf)))
        x = np.round(x, int(dist.get("decimals", 1)))
        effect = np.zeros(n)
        for band in factor.get("bands") or []:  # type: ignore[attr-defined]
            lo = float(band.get("from", -np.inf))
            hi = float(band.get("to", np.inf))
            effect += ((x >= lo) & (x < hi)) * math.log(float(band["odds_ratio"]))
        per_unit = factor.get("log_or_per_unit")
        if per_unit:
            effect += float(per_unit) * (x - float(dist.get("mean", 0.0)))  # type: ignore[arg-type]
        return x, effect
    raise ConfigError(f"survey factor {name!r} has unknown type {ftype!r}")


def schema_of(factors: Sequence[Mapping[str, object]]) -> list[dict[str, object]]:
    """The survey schema (validation/encoding) implied by the simulator's factors."""
    out: list[dict[str, object]] = []
    for f in factors:
        field: dict[str, object] = {"name": f["name"], "type": f["type"]}
        if f["type"] == "categorical":
            field["levels"] = list(f["levels"])  # type: ignore[call-overload]
            field["reference"] = f.get("reference", field["levels"][0])  # type: ignore[index]
        if f["type"] == "numeric":
            field["min"] = f.get("min")
            field["max"] = f.get("max")
        out.append(field)
    return out


def _null_panel(n_null: int, rng: np.random.Generator) -> pd.DataFrame:
    bases = np.array(list("ACGT"))
    rows = []
    for k in range(n_null):
        while True:
            a, b = rng.choice(bases, 2, replace=False)
            if not is_ambiguous(a, b):
                break
        rows.append(
            {
                "snp": f"simnull{k + 1:06d}",
                "chrom": str(1 + k % 22),
                "pos": 1_000_000 + 10_000 * k,
                "effect_allele": a,
                "other_allele": b,
                "weight": 0.0,
                "effect_allele_freq": round(float(rng.uniform(0.05, 0.5)), 4),
                "gene": "simulated null SNP",
                "pval": np.nan,
                "pmid": np.nan,
                "study": "simulated",
            }
        )
    return pd.DataFrame(rows)


def simulate_cohort(
    weights: pd.DataFrame,
    survey_factors: Sequence[Mapping[str, object]],
    *,
    n_subjects: int,
    prevalence: float = 0.025,
    n_null_snps: int = 0,
    link: str = "logit",
    missing_rate: float = 0.0,
    strand_flip_fraction: float = 0.0,
    seed: int = 0,
) -> SimulatedCohort:
    """Draw a cohort; see the module docstring for the model.

    Args:
        weights: weights table with ``effect_allele_freq`` for every SNP.
        survey_factors: factor specs (name, type, prevalence/levels/
            distribution, odds ratios); see ``configs/risk/data/simulated.yaml``.
        n_subjects: cohort size.
        prevalence: fraction of cases (e.g. 0.02-0.03 for psoriasis in Europe).
        n_null_snps: extra SNPs without effect (a realistic panel is mostly null).
        link: ``logit`` (exact ORs) or ``probit`` (classic liability threshold).
        missing_rate: fraction of genotype calls written as ``./.``.
        strand_flip_fraction: fraction of non-ambiguous SNPs written on the
            opposite strand in the VCF (exercises strand-flip matching).
        seed: random seed.
    """
    if not 0.0 < prevalence < 0.5:
        raise ConfigError(f"prevalence {prevalence} must lie in (0, 0.5)")
    if link not in ("logit", "probit"):
        raise ConfigError(f"link must be 'logit' or 'probit', got {link!r}")
    if weights["effect_allele_freq"].isna().any():
        raise ConfigError(
            "every SNP needs effect_allele_freq to be simulated",
            fix="use the built-in table or fill the frequencies",
        )
    rng = np.random.default_rng(seed)
    panel = pd.concat(
        [weights.assign(gene=weights.get("gene", "")), _null_panel(n_null_snps, rng)],
        ignore_index=True,
    )
    freq = panel["effect_allele_freq"].to_numpy(float)
    dos = rng.binomial(2, freq, size=(n_subjects, len(panel))).astype(np.int8)
    eta = dos @ panel["weight"].to_numpy(float)
    survey = {}
    for f in survey_factors:
        x, effect = _survey_values(f, n_subjects, rng)
        survey[str(f["name"])] = x
        eta = eta + effect
    scale = 1.0 if link == "logit" else 1.0 / PROBIT_SCALE
    eta = eta * scale
    cdf = expit if link == "logit" else ndtr

    def gap(b0: float) -> float:
        return float(np.mean(cdf(b0 + eta)) - prevalence)

    b0 = brentq(gap, -40.0, 40.0)
    risk = cdf(b0 + eta)
    noise = rng.logistic(size=n_subjects) if link == "logit" else rng.normal(size=n_subjects)
    liability = eta + noise
    y = (liability > -b0).astype(int)
    if missing_rate > 0:
        dos[rng.random(dos.shape) < missing_rate] = -1
    key = f"skinml-simulated-cohort-seed-{seed}".encode()
    ids = [pseudonymise(f"subject-{i:07d}", key, prefix="SIM") for i in range(n_subjects)]
    survey_df = pd.DataFrame({"sample_id": ids, **survey, OUTCOME_COLUMN: y})
    truth = pd.DataFrame(
        {
            "sample_id": ids,
            "true_risk_simulated": risk,
            "liability_simulated": liability,
            OUTCOME_COLUMN: y,
        }
    )
    panel = _vcf_alleles(panel, strand_flip_fraction, rng)
    return SimulatedCohort(panel, dos, survey_df, truth, float(b0), link)


def _vcf_alleles(
    panel: pd.DataFrame, flip_fraction: float, rng: np.random.Generator
) -> pd.DataFrame:
    """Choose REF/ALT per SNP: effect allele randomly REF or ALT, some on the other strand."""
    p = panel.copy()
    effect_is_alt = rng.random(len(p)) < 0.5
    flip = rng.random(len(p)) < flip_fraction
    refs, alts, flipped = [], [], []
    for i, r in enumerate(p.itertuples()):
        ea, oa = str(r.effect_allele), str(r.other_allele)
        do_flip = bool(flip[i]) and not is_ambiguous(ea, oa)
        if do_flip:
            ea, oa = complement(ea), complement(oa)
        refs.append(oa if effect_is_alt[i] else ea)
        alts.append(ea if effect_is_alt[i] else oa)
        flipped.append(do_flip)
    p["vcf_ref"], p["vcf_alt"], p["vcf_strand_flipped"] = refs, alts, flipped
    p["effect_is_alt"] = effect_is_alt
    return p


def write_vcf(
    cohort: SimulatedCohort, path: str | PathLike[str], *, progress: bool = False
) -> Path:
    """Write genotypes as a bgzipped VCF 4.2 (cyvcf2/htslib), ALT dosage coded as GT."""
    import cyvcf2

    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    ids = cohort.survey["sample_id"].tolist()
    header = (
        "##fileformat=VCFv4.2\n"
        f"##source={SIMULATED_LABEL}\n"
        '##FORMAT=<ID=GT,Number=1,Type=String,Description="Genotype">\n'
        + "".join(f"##contig=<ID={c}>\n" for c in dict.fromkeys(cohort.panel["chrom"].astype(str)))
        + "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\tFORMAT\t"
        + "\t".join(ids)
        + "\n"
    )
    gt = np.array(["0/0", "0/1", "1/1", "./."], dtype=object)
    writer = cyvcf2.Writer.from_string(str(p), header, mode="wz")
    rows = range(len(cohort.panel))
    if progress:
        from tqdm.auto import tqdm

        rows = tqdm(rows, desc="writing simulated VCF", unit="SNP")
    try:
        for j in rows:
            r = cohort.panel.iloc[j]
            d = cohort.effect_dosages[:, j].astype(int)
            alt_dos = np.where(d < 0, 3, d if r["effect_is_alt"] else 2 - d)
            cols = [str(r["chrom"]), str(int(r["pos"])), r["snp"], r["vcf_ref"], r["vcf_alt"]]
            fixed = "\t".join([*cols, ".", "PASS", ".", "GT"]) + "\t"
            writer.write_record(writer.variant_from_string(fixed + "\t".join(gt[alt_dos])))
    finally:
        writer.close()
    return p


def write_cohort(
    cohort: SimulatedCohort, out_dir: str | PathLike[str], *, progress: bool = False
) -> dict[str, Path]:
    """Write VCF + survey CSV + truth CSV + panel weights table into ``out_dir``."""
    from skinml.risk.gwas import weights_version, write_weights_table

    d = Path(out_dir)
    d.mkdir(parents=True, exist_ok=True)
    paths = {
        "genotypes": write_vcf(cohort, d / GENOTYPES_FILE, progress=progress),
        "survey": d / SURVEY_FILE,
        "truth": d / TRUTH_FILE,
        "weights": d / PANEL_FILE,
    }
    cohort.survey.to_csv(paths["survey"], index=False)
    cohort.truth.to_csv(paths["truth"], index=False, float_format="%.6g")
    cols = [
        "snp",
        "chrom",
        "pos",
        "effect_allele",
        "other_allele",
        "weight",
        "effect_allele_freq",
        "gene",
    ]
    write_weights_table(
        cohort.panel[cols],
        paths["weights"],
        header_lines=[
            SIMULATED_LABEL,
            "panel of simulated SNPs; null SNPs have weight 0",
            f"weights_version {weights_version(cohort.panel[cols])}",
        ],
    )
    (d / "SIMULATED_README.txt").write_text(
        f"{SIMULATED_LABEL}\n\nsubjects: {len(cohort.survey)}; SNPs: {len(cohort.panel)}; "
        f"cases: {int(cohort.survey[OUTCOME_COLUMN].sum())}; link: {cohort.link}; "
        f"intercept: {cohort.intercept:.4f}\nFiles: {', '.join(p.name for p in paths.values())}\n",
        encoding="utf-8",
    )
    return paths


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m skinml.risk.simulate``: write a simulated cohort (composes the Hydra config)."""
    parser = argparse.ArgumentParser(
        prog="python -m skinml.risk.simulate",
        description="Write a SIMULATED psoriasis cohort (bgzipped VCF + survey CSV + true risk) "
        "built "
        "from published GWAS odds ratios and survey risk factors. Uses the same Hydra config as "
        "`skinml-risk mode=simulate`; extra arguments are Hydra overrides.",
        epilog="examples:\n"
        "  python -m skinml.risk.simulate --out cohort/ data.n_subjects=5000\n"
        "  python -m skinml.risk.simulate --out big/ data.n_subjects=100000 data.n_null_snps=957\n"
        "  skinml-risk mode=simulate data.n_subjects=20000   # same, into the Hydra run dir",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("overrides", nargs="*", help="Hydra overrides, e.g. data.n_subjects=5000")
    args = parser.parse_args(argv)
    from hydra import compose, initialize_config_module

    from skinml.risk.data import simulate_from_config

    with initialize_config_module(config_module="skinml.configs", version_base="1.3"):
        cfg = compose(config_name="risk", overrides=["risk/data=simulated", *args.overrides])
    paths = simulate_from_config(cfg, Path(args.out))
    for name, path in paths.items():
        print(f"{name}: {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
