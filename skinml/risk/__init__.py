"""Psoriasis risk prediction: genotypes + survey answers -> calibrated risk.

The package is split so that the clinician's predictor can reuse the exact
input handling of training without pulling in pandas, scikit-learn or
LightGBM:

- light (standard library + numpy, imported by ``skinml.predict.tabular``):
  :mod:`~skinml.risk.alleles` (strand/allele matching),
  :mod:`~skinml.risk.harmonise` (PLINK ``--score``-style harmonisation and
  mean imputation), :mod:`~skinml.risk.textvcf` (gzip-aware VCF GT reader),
  :mod:`~skinml.risk.schema` (survey validation and encoding);
- research (pandas, scikit-learn, LightGBM, cyvcf2): weights tables
  (:mod:`~skinml.risk.gwas`), genotype/survey readers
  (:mod:`~skinml.risk.genotypes`, :mod:`~skinml.risk.tables`), the cohort
  simulator (:mod:`~skinml.risk.simulate`), estimators
  (:mod:`~skinml.risk.models`), evaluation, export and the run orchestration.

Nothing is imported here on purpose: importing ``skinml.risk.alleles`` must
not import pandas.
"""
