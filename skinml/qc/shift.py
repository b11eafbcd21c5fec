"""Device and site shift in the images themselves and in the model's behaviour.

Hospitals can differ because their *pictures* differ (a darker dermatoscope,
lower resolution, blur) rather than their doctors. Two views:

* image statistics (brightness, colour, resolution, sharpness) per hospital and
  device, compared with all other images by a standardised mean difference
  (Cohen's d with its normal-theory 95% interval) and a Kruskal–Wallis test
  across groups;
* the model's confidence (maximum calibrated probability) and out-of-distribution
  rate per hospital and device, from a ``skinml-predict`` predictions CSV.
"""

from __future__ import annotations

from collections.abc import Sequence
from os import PathLike
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from skinml.errors import SkinmlInputError
from skinml.textfiles import read_csv

#: Statistics compared between groups (columns of :class:`skinml.imaging.quality.ImageStats`).
STAT_COLUMNS: tuple[str, ...] = (
    "brightness",
    "contrast",
    "red",
    "green",
    "blue",
    "saturation",
    "sharpness",
    "megapixels",
)

#: Spread below this fraction of a statistic's magnitude is rounding noise, not variation.
_ZERO_SPREAD = 1e-9


def collect_image_stats(
    frame: pd.DataFrame, image_root: str | PathLike[str], *, progress: bool = True
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Read every image once and compute its statistics.

    Returns:
        stats_frame: ``row, hospital, device, image`` + one column per statistic.
        unreadable: ``row, column, value, reason, excluded_from`` for images that could
            not be read (listed, never silently skipped).
    """
    from tqdm.auto import tqdm

    from skinml.imaging.quality import image_stats
    from skinml.imaging.read import decode_image

    root = Path(image_root)
    rows, bad = [], []
    sub = frame[frame["image"].notna()]
    for rec in tqdm(
        sub.itertuples(index=False), total=len(sub), disable=not progress, desc="image stats"
    ):
        path = root / str(rec.image)
        try:
            decoded = decode_image(path, min_decoded_side=1)  # covers the working copy
            st = image_stats(decoded.image, original_size=decoded.original_size).as_dict()
        except (SkinmlInputError, OSError) as exc:
            bad.append(
                {
                    "row": rec.row,
                    "column": "image",
                    "value": str(rec.image),
                    "reason": f"image unreadable: {exc}",
                    "excluded_from": "image statistics",
                }
            )
            continue
        st["megapixels"] = st["width"] * st["height"] / 1e6
        rows.append(
            {
                "row": rec.row,
                "hospital": rec.hospital,
                "device": rec.device,
                "image": rec.image,
                **st,
            }
        )
    return pd.DataFrame(rows), pd.DataFrame(
        bad, columns=["row", "column", "value", "reason", "excluded_from"]
    )


def standardized_differences(
    values: pd.DataFrame, group: str, columns: Sequence[str] = STAT_COLUMNS
) -> pd.DataFrame:
    """Each group's mean against all other rows: Cohen's d with a 95% interval, per column.

    Also carries the Kruskal–Wallis p-value of the column across all groups, so that a
    reader sees both "which group" and "is there any difference at all".

    A statistic with no spread (every image the same size) is compared with a tolerance,
    not exactly: means of identical floats differ in the last bits, and dividing that
    rounding noise by a rounding-noise SD gave |d| near 1 and a shift alarm. Such a
    statistic gets d = 0 and a ``note``; one that varies between groups but not within
    them (two devices, each with one fixed resolution) has no defined d (NaN, with a
    ``note``) and is never flagged.
    """
    out = []
    cols = [c for c in columns if c in values]
    valid = values[values[group].notna()]
    for c in cols:
        x = valid[c].astype(float)
        tol = _ZERO_SPREAD * max(float(x.abs().max()), 1.0) if len(x) else 0.0
        constant = len(x) == 0 or float(x.max() - x.min()) <= tol
        groups = [g.to_numpy() for _, g in x.groupby(valid[group], observed=True)]
        kw_p = float(stats.kruskal(*groups).pvalue) if len(groups) > 1 and not constant else np.nan
        for name, g in valid.groupby(group, sort=True, observed=True):
            a = g[c].astype(float).to_numpy()
            b = x[valid[group] != name].to_numpy()
            n1, n2 = len(a), len(b)
            if n1 < 2 or n2 < 2:
                continue
            pooled = np.sqrt(((n1 - 1) * a.var(ddof=1) + (n2 - 1) * b.var(ddof=1)) / (n1 + n2 - 2))
            note = ""
            if constant:
                d, note = 0.0, "the same in every image: nothing differs"
            elif pooled <= tol:
                d, note = np.nan, "no variation within groups, so Cohen's d is undefined"
            else:
                d = float((a.mean() - b.mean()) / pooled)
            se = np.sqrt((n1 + n2) / (n1 * n2) + d**2 / (2 * (n1 + n2)))
            out.append(
                {
                    group: name,
                    "statistic": c,
                    "n": n1,
                    "mean": a.mean(),
                    "sd": 0.0 if np.ptp(a) <= tol else a.std(ddof=1),
                    "mean_others": b.mean(),
                    "cohens_d": d,
                    "d_ci_low": d - 1.96 * se,
                    "d_ci_high": d + 1.96 * se,
                    "kruskal_p_all_groups": kw_p,
                    "note": note,
                }
            )
    return pd.DataFrame(out)


def read_predictions(path: str | PathLike[str]) -> pd.DataFrame:
    """Read a ``skinml-predict`` CSV and add ``confidence`` (max class probability)."""
    from skinml.errors import DataError

    p = Path(path)
    if not p.is_file():
        raise DataError("predictions file not found", file=p, fix="check the path")
    pred = read_csv(p, dtype={"input": str, "file": str, "status": str, "predicted_class": str})
    needed = {"predicted_class"} | ({"file"} if "file" in pred else {"input"})
    missing = needed - set(pred.columns)
    if missing:
        raise DataError(
            f"predictions CSV lacks column(s) {sorted(missing)}",
            file=p,
            expected="skinml-predict output (input, file, status, predicted_class, p_<class>...)",
        )
    prob_cols = [c for c in pred.columns if c.startswith("p_")]
    pred["confidence"] = pred[prob_cols].max(axis=1) if prob_cols else np.nan
    return pred


def attach_predictions(
    frame: pd.DataFrame, pred: pd.DataFrame
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Join predictions to records by image path (exact, then by file name).

    Returns the records with ``ai``, ``confidence``, ``ood_flag``, ``ood_score`` filled
    (an existing ``ai`` column is kept where the prediction is missing) and the rows
    whose image had no usable prediction, as exclusion records for the AI analyses.
    """
    ok = pred if "status" not in pred else pred[pred["status"].astype(str).str.lower() == "ok"]
    keys = [c for c in ("file", "input") if c in ok]
    lookup: dict[str, int] = {}
    for k in keys:
        for i, v in zip(ok.index, ok[k].astype(str), strict=True):
            lookup.setdefault(v, i)
            lookup.setdefault(Path(v).name, i)
    img = frame["image"].astype(object)
    match = img.map(
        lambda v: lookup.get(str(v), lookup.get(Path(str(v)).name)) if isinstance(v, str) else None
    )
    out = frame.copy()
    out["ai"] = out["ai"].astype(object)
    found = match.notna()
    idx = match[found].astype(int).to_numpy()
    out.loc[found, "ai"] = ok.loc[idx, "predicted_class"].to_numpy()
    for col in ("confidence", "ood_flag", "ood_score"):
        out[col] = pd.Series(np.nan, index=out.index, dtype=object if col == "ood_flag" else float)
        if col in ok:
            out.loc[found, col] = ok.loc[idx, col].to_numpy()
    if "ood_flag" in out:
        out["ood_flag"] = out["ood_flag"].map(_as_bool)
    missing = frame.loc[~found & frame["image"].notna(), ["row", "image"]]
    excluded = pd.DataFrame(
        {
            "row": missing["row"].to_numpy(),
            "column": "image",
            "value": missing["image"].astype(str).to_numpy(),
            "reason": "no successful prediction for this image",
            "excluded_from": "AI comparisons",
        }
    )
    return out, excluded


def model_behaviour(frame: pd.DataFrame, group: str) -> pd.DataFrame:
    """Mean confidence (with a normal 95% interval) and OOD counts per group."""
    sub = frame[frame[group].notna() & frame["confidence"].notna()]
    if sub.empty:
        return pd.DataFrame()
    g = sub.groupby(group, sort=True)
    res = g["confidence"].agg(["size", "mean", "std"]).rename(columns={"size": "n"})
    half = 1.96 * res["std"] / np.sqrt(res["n"])
    res["confidence_ci_low"] = res["mean"] - half
    res["confidence_ci_high"] = res["mean"] + half
    res = res.rename(columns={"mean": "mean_confidence", "std": "sd_confidence"})
    if "ood_flag" in sub and sub["ood_flag"].notna().any():
        res["ood_count"] = g["ood_flag"].apply(lambda s: int(s.fillna(False).astype(bool).sum()))
        res["ood_rate"] = res["ood_count"] / res["n"]
    return res.reset_index()


def _as_bool(v: object) -> object:
    if isinstance(v, bool | np.bool_):
        return bool(v)
    if isinstance(v, int | float | np.integer | np.floating):
        return np.nan if v != v else bool(v)
    if isinstance(v, str):
        return v.strip().lower() in {"true", "1", "yes"}
    return np.nan
