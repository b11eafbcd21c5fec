"""Turn funnel, shift and CUSUM results into one table of flagged hospitals with reasons.

Each flag says which unit, which analysis, how far out (``alert`` beyond the 95%
limit, ``alarm`` beyond 99.8%), the effect size with its interval and the volume,
in words a quality lead can act on. The table is sorted by unit name, never by
performance, so that it cannot be read as a league table. A funnel flag from fewer
units than overdispersion can be estimated with carries a ``caveat`` ("possibly
inflated ..."), also appended to its reason, because its limits assume that
hospitals differ by chance alone.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd

from skinml.qc.funnel import FunnelResult

FLAG_COLUMNS = [
    "unit",
    "unit_type",
    "level",
    "analysis",
    "indicator",
    "reason",
    "caveat",
    "volume",
    "value",
    "target",
    "effect",
    "effect_name",
    "effect_ci_low",
    "effect_ci_high",
    "z_adjusted",
]


def funnel_flags(
    result: FunnelResult, *, analysis: str, unit_type: str = "hospital"
) -> pd.DataFrame:
    """Flags for every unit of one funnel that lies outside its 95% limits."""
    t = result.table[result.table["status"].isin(["alert", "alarm"])]
    if t.empty:
        return pd.DataFrame(columns=FLAG_COLUMNS)
    s = result.scale
    if result.kind == "binomial":
        effect = t["value"] - result.target
        lo, hi = t["ci_low"] - result.target, t["ci_high"] - result.target
        name = "difference from target (proportion)"
        fmt = [
            f"{v:.1%} vs target {result.target:.1%} ({d:+.1%}; 95% CI {a:+.1%} to {b:+.1%}); "
            f"{'above' if d > 0 else 'below'} the {'99.8' if st == 'alarm' else '95'}% funnel limit"
            for v, d, a, b, st in zip(t["value"], effect, lo, hi, t["status"], strict=True)
        ]
    else:
        effect = t["value"] / result.target
        lo, hi = t["ci_low"] / result.target, t["ci_high"] / result.target
        name = "ratio to target"
        per = "" if s == 1 else f" per {s:,.0f}"
        fmt = [
            f"{v * s:.3g}{per} vs target {result.target * s:.3g}{per} (ratio {d:.2f}; 95% CI "
            f"{a:.2f} to {b:.2f}); "
            f"{'above' if d > 1 else 'below'} the {'99.8' if st == 'alarm' else '95'}% funnel limit"
            for v, d, a, b, st in zip(t["value"], effect, lo, hi, t["status"], strict=True)
        ]
    caveat = result.overdispersion.caveat()
    if caveat:
        fmt = [f"{r}; {caveat}" for r in fmt]
    return pd.DataFrame(
        {
            "unit": t["unit"].to_numpy(),
            "unit_type": unit_type,
            "level": t["status"].to_numpy(),
            "analysis": analysis,
            "indicator": result.indicator,
            "reason": fmt,
            "caveat": caveat,
            "volume": t["volume"].to_numpy(),
            "value": t["value"].to_numpy() * s,
            "target": result.target * s,
            "effect": effect.to_numpy(),
            "effect_name": name,
            "effect_ci_low": lo.to_numpy(),
            "effect_ci_high": hi.to_numpy(),
            "z_adjusted": t["z_adjusted"].to_numpy(),
        }
    )


def shift_flags(
    diffs: pd.DataFrame,
    *,
    unit_type: str,
    alert_d: float = 0.5,
    alarm_d: float = 0.8,
) -> pd.DataFrame:
    """Image-statistic shifts: ``alert`` when |d| ≥ 0.5 and its 95% CI excludes ±0.2,
    ``alarm`` when |d| ≥ 0.8 and the CI excludes ±0.5 (Cohen's medium/large effects)."""
    if diffs.empty:
        return pd.DataFrame(columns=FLAG_COLUMNS)
    d = diffs["cohens_d"]
    near = np.minimum(diffs["d_ci_low"].abs(), diffs["d_ci_high"].abs())
    same_side = np.sign(diffs["d_ci_low"]) == np.sign(diffs["d_ci_high"])
    alarm = (d.abs() >= alarm_d) & same_side & (near >= 0.5)
    alert = ~alarm & (d.abs() >= alert_d) & same_side & (near >= 0.2)
    t = diffs[alarm | alert]
    level = np.where(alarm[alarm | alert], "alarm", "alert")
    reason = [
        f"image {st}: mean {m:.3g} vs {mo:.3g} in all other images (Cohen's d {dd:+.2f}, "
        f"95% CI {a:+.2f} to {b:+.2f})"
        for st, m, mo, dd, a, b in zip(
            t["statistic"],
            t["mean"],
            t["mean_others"],
            t["cohens_d"],
            t["d_ci_low"],
            t["d_ci_high"],
            strict=True,
        )
    ]
    return pd.DataFrame(
        {
            "unit": t[unit_type].to_numpy(),
            "unit_type": unit_type,
            "level": level,
            "analysis": "image shift",
            "indicator": "image " + t["statistic"],
            "reason": reason,
            "caveat": "",
            "volume": t["n"].to_numpy(),
            "value": t["mean"].to_numpy(),
            "target": t["mean_others"].to_numpy(),
            "effect": t["cohens_d"].to_numpy(),
            "effect_name": "Cohen's d vs all other images",
            "effect_ci_low": t["d_ci_low"].to_numpy(),
            "effect_ci_high": t["d_ci_high"].to_numpy(),
            "z_adjusted": np.nan,
        }
    )


def cusum_flags(summary: pd.DataFrame) -> pd.DataFrame:
    """CUSUM signals (in-control false-alarm probability per hospital and direction as set)."""
    if summary.empty:
        return pd.DataFrame(columns=FLAG_COLUMNS)
    t = summary[summary["signal"]]
    reason = [
        f"CUSUM for a {d} (odds ratio {r:g}) crossed h = {h:.2f} in {m}; {e} events vs "
        f"{x:.1f} expected over {mo} months"
        for d, r, h, m, e, x, mo in zip(
            t["direction"],
            t["odds_ratio"],
            t["h"],
            t["first_signal_month"],
            t["events"],
            t["expected_events"],
            t["months"],
            strict=True,
        )
    ]
    return pd.DataFrame(
        {
            "unit": t["hospital"].to_numpy(),
            "unit_type": "hospital",
            "level": "alert",
            "analysis": "change over time (CUSUM)",
            "indicator": t["indicator"].to_numpy(),
            "reason": reason,
            "caveat": "",
            "volume": t["n"].to_numpy(),
            "value": t["events"].to_numpy(),
            "target": t["expected_events"].to_numpy(),
            "effect": (t["events"] / t["expected_events"]).to_numpy(),
            "effect_name": "observed / expected events (whole period)",
            "effect_ci_low": np.nan,
            "effect_ci_high": np.nan,
            "z_adjusted": np.nan,
        }
    )


def combine_flags(parts: Iterable[pd.DataFrame]) -> pd.DataFrame:
    """Concatenate and sort by unit, then analysis and indicator (never by size of effect)."""
    frames = [p for p in parts if p is not None and not p.empty]
    if not frames:
        return pd.DataFrame(columns=FLAG_COLUMNS)
    out = pd.concat(frames, ignore_index=True)[FLAG_COLUMNS]
    return out.sort_values(
        ["unit_type", "unit", "analysis", "indicator"], kind="stable"
    ).reset_index(drop=True)
