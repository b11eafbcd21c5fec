"""Build a :class:`RiskDataset` from the ``data`` config group.

Kinds (``data.kind``):

- ``simulated``: simulate a cohort, write it as VCF + survey CSV (labelled
  simulated) and read it back through the same path as real files;
- ``files``: a user's genotypes (VCF or dosage table) + survey CSV + weights;
- ``uci_dermatology`` / ``pad_ufes``: the real-data checks (:mod:`skinml.risk.realdata`).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from skinml.errors import ConfigError, DataError
from skinml.risk import schema
from skinml.risk.dataset import RiskDataset
from skinml.risk.genotypes import read_genotypes
from skinml.risk.gwas import read_weights_table, weights_version
from skinml.risk.harmonise import WeightSnp, harmonise
from skinml.risk.tables import ID_COLUMN, join_samples, read_survey

log = logging.getLogger(__name__)


def _plain(cfg: Any) -> Any:
    """OmegaConf node -> plain Python containers (no-op for dicts/lists)."""
    try:
        from omegaconf import DictConfig, ListConfig, OmegaConf

        if isinstance(cfg, DictConfig | ListConfig):
            return OmegaConf.to_container(cfg, resolve=True)
    except ImportError:  # pragma: no cover - omegaconf ships with hydra
        pass
    return cfg


def simulate_from_config(cfg: Any, out_dir: Path, *, progress: bool = True) -> dict[str, Path]:
    """Simulate the cohort described by ``cfg.data`` and write it to ``out_dir``."""
    from skinml.risk.simulate import simulate_cohort, write_cohort

    d = _plain(cfg.data if hasattr(cfg, "data") else cfg["data"])
    weights = read_weights_table(d.get("weights"))
    cohort = simulate_cohort(
        weights,
        d["survey_factors"],
        n_subjects=int(d["n_subjects"]),
        prevalence=float(d["prevalence"]),
        n_null_snps=int(d.get("n_null_snps", 0)),
        link=str(d.get("link", "logit")),
        missing_rate=float(d.get("missing_rate", 0.0)),
        strand_flip_fraction=float(d.get("strand_flip_fraction", 0.0)),
        seed=int(d.get("seed", 0)),
    )
    return write_cohort(cohort, out_dir, progress=progress)


def load_dataset(data_cfg: Mapping[str, Any], *, work_dir: Path) -> RiskDataset:
    """Dispatch on ``data.kind``."""
    d = _plain(data_cfg)
    kind = d.get("kind")
    if kind == "simulated":
        from skinml.risk.simulate import schema_of

        paths = simulate_from_config({"data": d}, work_dir / "simulated_cohort")
        ds = load_files(
            genotypes=paths["genotypes"],
            survey=paths["survey"],
            weights=paths["weights"],
            survey_fields=schema_of(d["survey_factors"]),
            label_column=d.get("label_column", "psoriasis"),
            ambiguous=d.get("ambiguous", "frequency"),
            freq_margin=float(d.get("freq_margin", 0.1)),
            on_unmatched=d.get("on_unmatched", "report"),
            name="simulated",
        )
        truth = pd.read_csv(paths["truth"]).set_index(ID_COLUMN)
        ds.true_risk = truth.loc[ds.sample_ids, "true_risk_simulated"].to_numpy(float)
        ds.simulated = True
        ds.description = (
            f"SIMULATED cohort: {len(ds.y)} subjects, {len(ds.snp_features)} SNPs, "
            f"prevalence {d['prevalence']}, link {d.get('link', 'logit')}, seed {d.get('seed')}"
        )
        ds.reports["simulated_files"] = {k: str(v) for k, v in paths.items()}
        return ds
    if kind == "files":
        for key in ("genotypes", "survey"):
            if not d.get(key):
                raise ConfigError(
                    f"data.{key} is required for data.kind=files", fix=f"pass data.{key}=PATH"
                )
        return load_files(
            genotypes=d["genotypes"],
            survey=d["survey"],
            weights=d.get("weights"),
            survey_fields=d["survey_fields"],
            label_column=d.get("label_column", "psoriasis"),
            ambiguous=d.get("ambiguous", "frequency"),
            freq_margin=float(d.get("freq_margin", 0.1)),
            on_unmatched=d.get("on_unmatched", "report"),
            name=d.get("name", "files"),
        )
    if kind == "uci_dermatology":
        from skinml.risk.realdata import load_uci_dermatology_dataset

        return load_uci_dermatology_dataset(d["path"])
    if kind == "pad_ufes":
        from skinml.risk.realdata import load_pad_ufes_dataset

        return load_pad_ufes_dataset(
            d["path"], missing_policy=d.get("missing_policy", "complete_cases")
        )
    raise ConfigError(
        f"unknown data.kind {kind!r}", expected="simulated, files, uci_dermatology or pad_ufes"
    )


def load_files(
    *,
    genotypes: str | Path,
    survey: str | Path,
    weights: str | Path | None,
    survey_fields: list[dict[str, Any]],
    label_column: str = "psoriasis",
    ambiguous: str = "frequency",
    freq_margin: float = 0.1,
    on_unmatched: str = "report",
    name: str = "files",
) -> RiskDataset:
    """Read, join, harmonise and encode a genotype file + survey CSV.

    Raises:
        DataError: no SNP overlaps the weights table, an outcome is missing or
            not 0/1, or survey answers fail the schema (all reported at once).
    """
    schema.validate_fields(survey_fields)
    wt = read_weights_table(weights)
    wsnps = [WeightSnp.from_mapping(r) for r in wt.to_dict("records")]
    keep = set(wt["snp"]) | {
        f"{str(c).removeprefix('chr')}:{p}"
        for c, p in zip(wt["chrom"], wt["pos"], strict=True)
        if pd.notna(p)
    }
    geno = read_genotypes(genotypes, keep=keep)
    sv = read_survey(survey)
    missing_cols = schema.missing_columns(sv.columns, survey_fields) + (
        [] if label_column in sv.columns else [label_column]
    )
    if missing_cols:
        raise DataError(
            f"survey lacks columns {missing_cols}",
            file=survey,
            fix="add the columns, or adjust data.survey_fields / data.label_column",
        )
    joined, join_report = join_samples(
        geno.samples, sv, genotype_file=genotypes, survey_file=survey, on_unmatched=on_unmatched
    )
    if join_report.only_in_genotypes or join_report.only_in_survey:
        log.warning("sample join: %s (listed in metrics.json)", join_report.summary())
    h = harmonise(wsnps, geno.variants, geno.dosages, ambiguous=ambiguous, freq_margin=freq_margin)
    if h.n_usable() == 0:
        raise DataError(
            f"none of the {len(wsnps)} weights-table SNPs can be used ({h.counts()})",
            file=genotypes,
            fix="check that the VCF uses rsIDs (or the same chrom:pos build) as the weights "
            "table and "
            "that it contains the scored SNPs",
        )
    gpos = {s: i for i, s in enumerate(geno.samples)}
    rows = [gpos[s] for s in joined]
    snp_df = pd.DataFrame(h.dosages[rows], columns=h.snps)
    sv_idx = sv.set_index(ID_COLUMN).loc[joined]
    enc = schema.encode_rows(sv_idx.reset_index().to_dict("records"), survey_fields)
    row_numbers = {s: i + 2 for i, s in enumerate(sv[ID_COLUMN])}
    schema.raise_if_errors(enc, file=str(survey), row_ids=[row_numbers[s] for s in joined])
    y_raw = sv_idx[label_column].str.strip()
    bad = y_raw[~y_raw.isin(["0", "1"])]
    if not bad.empty:
        raise DataError(
            f"outcome {label_column!r} must be 0/1; rows "
            f"{[row_numbers[s] for s in bad.index[:10]]} have "
            f"{bad.unique()[:5].tolist()}",
            file=survey,
            column=label_column,
            fix="code cases as 1 and controls as 0",
        )
    X = pd.concat([snp_df, pd.DataFrame(enc.features, columns=enc.feature_names)], axis=1)
    ds = RiskDataset(
        name=name,
        X=X,
        y=y_raw.astype(int).to_numpy(),
        sample_ids=list(joined),
        weights=wt,
        survey_fields=list(survey_fields),
        weights_version=weights_version(wt),
        ambiguous_policy=ambiguous,
        freq_margin=freq_margin,
    )
    ds.reports["join"] = join_report.as_dict()
    ds.reports["snp_match_counts"] = h.counts()
    ds.reports["snp_match"] = h.report_rows()
    ds.reports["ambiguous_resolved"] = h.resolved_ambiguous()
    ds.reports["survey_missing_answers"] = int(enc.n_missing.sum())
    ds.reports["genotype_missing_rate"] = float(np.isnan(h.dosages[rows]).mean())
    return ds
