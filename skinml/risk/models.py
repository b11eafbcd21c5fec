"""Risk estimators with the scikit-learn contract.

:class:`GrsLogisticClassifier` covers three of the four benchmarked models by
configuration (``configs/risk/model/*.yaml``):

- HLA-C tag alone: ``snps=["rs10484554"], use_survey=False``;
- weighted GRS: ``use_survey=False`` (GRS = sum of published log ORs x effect
  dosages; the logistic regression only rescales and shifts it);
- logistic regression on GRS + survey: ``use_survey=True``;
- plain logistic regression on tabular features (no genotypes): ``weights=None``.

Whatever the inputs, the fitted model is linear in the original features, so
it exposes ``coef_full_`` / ``intercept_full_`` over *all* input columns.
That one linear form is what is exported to ONNX and what the predictor uses
to compute per-patient contributions (coefficient x centred value) in numpy.
The fourth model is ``lightgbm.LGBMClassifier`` itself, instantiated from config.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.linear_model import LogisticRegression
from sklearn.utils.validation import check_is_fitted

GRS_GROUP = "polygenic risk score"


class GrsLogisticClassifier(ClassifierMixin, BaseEstimator):
    """Logistic regression on a weighted genetic risk score (+ optional survey features).

    Args:
        weights: ``{snp: log OR}`` of the weights table; columns of ``X`` named
            like a SNP here are genotype dosages of its effect allele.
        snps: SNPs that enter the score (None: every weighted SNP in ``X``).
        use_survey: also use every non-SNP column of ``X`` (encoded survey).
        C: inverse L2 penalty of the logistic regression.
        group_name: label of the genetic term in contribution reports.
        max_iter: solver iterations.
    """

    def __init__(
        self,
        weights: Mapping[str, float] | None = None,
        snps: Sequence[str] | None = None,
        use_survey: bool = True,
        C: float = 1.0,  # noqa: N803
        group_name: str | None = None,
        max_iter: int = 1000,
    ) -> None:
        self.weights = weights
        self.snps = snps
        self.use_survey = use_survey
        self.C = C
        self.group_name = group_name
        self.max_iter = max_iter

    def _design(self, X: pd.DataFrame) -> np.ndarray:  # noqa: N803
        cols = []
        if self.snps_used_:
            cols.append((X[self.snps_used_].to_numpy(float) @ self.grs_weights_)[:, None])
        if self.survey_used_:
            cols.append(X[self.survey_used_].to_numpy(float))
        return np.hstack(cols)

    def _frame(self, X: Any) -> pd.DataFrame:  # noqa: N803
        if isinstance(X, pd.DataFrame):
            return X
        arr = np.asarray(X, dtype=float)
        return pd.DataFrame(arr, columns=self.feature_names_in_)

    def fit(self, X: pd.DataFrame, y: Any) -> GrsLogisticClassifier:  # noqa: N803
        """Fit the score's scale and the survey coefficients.

        Raises:
            ValueError: ``X`` is not a DataFrame, has NaN, or lacks the SNPs.
        """
        if not isinstance(X, pd.DataFrame):
            raise ValueError(
                "GrsLogisticClassifier needs a pandas DataFrame with SNP-named columns"
            )
        if X.isna().to_numpy().any():
            raise ValueError("X has missing values; impute first (skinml.risk.dataset.impute)")
        w = {str(k): float(v) for k, v in dict(self.weights or {}).items()}
        snps = list(self.snps) if self.snps is not None else [c for c in X.columns if c in w]
        absent = [s for s in snps if s not in X.columns or s not in w]
        if absent:
            raise ValueError(f"SNPs {absent} are not both weighted and present in X")
        if not snps and not self.use_survey:
            raise ValueError("no inputs: give weights (GRS) and/or use_survey=True")
        self.feature_names_in_ = np.asarray(X.columns, dtype=object)
        self.n_features_in_ = X.shape[1]
        self.snps_used_ = snps
        self.grs_weights_ = np.array([w[s] for s in snps])
        self.survey_used_ = [c for c in X.columns if c not in w] if self.use_survey else []
        Z = self._design(X)
        self.z_mean_ = Z.mean(axis=0)
        self.z_scale_ = np.where(Z.std(axis=0) > 0, Z.std(axis=0), 1.0)
        self.lr_ = LogisticRegression(C=self.C, max_iter=self.max_iter)
        self.lr_.fit((Z - self.z_mean_) / self.z_scale_, np.asarray(y))
        self.classes_ = self.lr_.classes_
        self._linear_form(X.columns)
        self.feature_mean_ = X.mean(axis=0).to_numpy(float)
        return self

    def _linear_form(self, columns: Sequence[str]) -> None:
        c = self.lr_.coef_[0] / self.z_scale_
        coef = pd.Series(0.0, index=list(columns))
        start = 0
        if self.snps_used_:
            coef[self.snps_used_] = c[0] * self.grs_weights_
            start = 1
        for k, name in enumerate(self.survey_used_, start=start):
            coef[name] = c[k]
        self.coef_full_ = coef.to_numpy(float)
        self.intercept_full_ = float(self.lr_.intercept_[0] - np.sum(c * self.z_mean_))

    def decision_function(self, X: Any) -> np.ndarray:  # noqa: N803
        check_is_fitted(self, "coef_full_")
        Xf = self._frame(X)[list(self.feature_names_in_)]
        return Xf.to_numpy(float) @ self.coef_full_ + self.intercept_full_

    def predict_proba(self, X: Any) -> np.ndarray:  # noqa: N803
        z = self.decision_function(X)
        p = 1.0 / (1.0 + np.exp(-z))
        return np.column_stack([1.0 - p, p])

    def predict(self, X: Any) -> np.ndarray:  # noqa: N803
        return self.classes_[(self.decision_function(X) > 0).astype(int)]

    def contribution_groups(self) -> dict[str, str]:
        """Feature -> factor label used when summing contributions per patient."""
        check_is_fitted(self, "coef_full_")
        groups: dict[str, str] = {}
        if self.snps_used_:
            label = self.group_name or (
                f"{GRS_GROUP} ({len(self.snps_used_)} SNPs)"
                if len(self.snps_used_) > 1
                else f"SNP {self.snps_used_[0]}"
            )
            groups = {s: label for s in self.snps_used_}
        groups.update({c: c.split("=", 1)[0] for c in self.survey_used_})
        return groups


def base_estimator(model: Any) -> Any:
    """The fitted estimator inside a ``CalibratedClassifierCV(ensemble=False)`` (or the model)."""
    cc = getattr(model, "calibrated_classifiers_", None)
    if cc:
        if len(cc) != 1:
            raise ValueError(
                "export needs CalibratedClassifierCV(ensemble=False): one base estimator"
            )
        return cc[0].estimator
    return model


def linear_contributions(est: GrsLogisticClassifier, X: pd.DataFrame) -> pd.DataFrame:  # noqa: N803
    """Per-patient log-odds contributions: coefficient x (value - training mean), grouped."""
    centred = X[list(est.feature_names_in_)].to_numpy(float) - est.feature_mean_
    per_feature = pd.DataFrame(centred * est.coef_full_, columns=list(est.feature_names_in_))
    groups = est.contribution_groups()
    used = [c for c in per_feature.columns if c in groups]
    return per_feature[used].T.groupby([groups[c] for c in used], sort=False).sum().T


def lightgbm_contributions(
    est: Any,
    X: pd.DataFrame,  # noqa: N803
    groups: Mapping[str, str] | None = None,
) -> pd.DataFrame:
    """LightGBM's own TreeSHAP (``pred_contrib=True``) on the raw log-odds scale, grouped."""
    contrib = est.booster_.predict(X.to_numpy(float), pred_contrib=True)
    per_feature = pd.DataFrame(contrib[:, :-1], columns=list(X.columns))
    if not groups:
        return per_feature
    return (
        per_feature.T.groupby([groups.get(c, c) for c in per_feature.columns], sort=False).sum().T
    )


def contributions(
    model: Any,
    X: pd.DataFrame,  # noqa: N803
    groups: Mapping[str, str] | None = None,
) -> pd.DataFrame:
    """Per-patient contributions for either model family (log-odds scale, before calibration)."""
    est = base_estimator(model)
    if isinstance(est, GrsLogisticClassifier):
        return linear_contributions(est, X)
    if hasattr(est, "booster_"):
        return lightgbm_contributions(est, X, groups)
    raise TypeError(f"no contribution method for {type(est).__name__}")
