"""What the AI changed, in words a trainee and an instructor read: two report parts.

* :func:`ai_support_section` — in a trainee's report, for a session taken in the
  quiz's AI-support mode: own answer vs answer after the AI, with paired
  intervals, the answers changed, and the cases where a wrong AI was followed.
* :func:`cohort_ai_report` — ``ai_support.html`` for the instructor: the cohort
  and each experience band, unaided vs aided, with over- and under-reliance.
"""

from __future__ import annotations

import html
from pathlib import Path

import numpy as np
import pandas as pd

from skinml.reporting.html import HtmlReport
from skinml.teach.ai_effect import AiEffect, PairedMetric
from skinml.teach.answers import NO_ANSWER
from skinml.teach.results import TeachingScores
from skinml.teach.vocabulary import display_name

_MEASURES = {
    "accuracy": "correct diagnoses",
    "malignant_sensitivity": "malignant lesions recognised",
    "kappa": "agreement with the key (κ)",
    "accuracy_where_ai_right": "correct, on cases the AI got right",
    "accuracy_where_ai_wrong": "correct, on cases the AI got wrong",
}


def _fmt(name: str, v: float) -> str:
    if not np.isfinite(v):
        return "n/a"
    return f"{v:.2f}" if name == "kappa" else f"{v:.0%}"


def _change(name: str, d: float, lo: float, hi: float) -> str:
    if not np.isfinite(d):
        return "n/a"
    scale, unit = (1.0, "") if name == "kappa" else (100.0, " points")
    text = f"{d * scale:+.2f}" if name == "kappa" else f"{d * scale:+.0f}{unit}"
    if np.isfinite(lo) and np.isfinite(hi):
        ci = f"{lo:+.2f} to {hi:+.2f}" if name == "kappa" else f"{lo * 100:+.0f} to {hi * 100:+.0f}"
        text += f" (95% CI {ci})"
    return text


def _p(p: float) -> str:
    if not np.isfinite(p):
        return ""
    return "< 0.001" if p < 0.001 else f"{p:.3f}"


def _position(effect: AiEffect, sheet: int) -> int | None:
    hit = np.flatnonzero(effect.sheets == sheet)
    return int(hit[0]) if len(hit) else None


def _answer(classes: tuple[str, ...], code: int) -> str:
    return "blank" if code == NO_ANSWER else display_name(classes[code])


def ai_support_section(
    rep: HtmlReport, res: TeachingScores, sheet: int, images: Path, case_card
) -> None:
    """Append 'What the AI changed' for one AI-support sheet (nothing for other sheets)."""
    effect = res.ai_effect
    j = None if effect is None else _position(effect, sheet)
    if j is None:
        return
    rep.heading("What the AI changed")
    rep.paragraph(
        "In this session you answered every case twice: first on your own, then after seeing "
        "the AI's probabilities and heatmap. The scores above use your final answers; this "
        "section compares the two."
    )
    rows = []
    for name, m in effect.metrics().items():
        rows.append(
            {
                "measure": _MEASURES[name],
                "on your own": _fmt(name, m.unaided[j]),
                "with the AI": _fmt(name, m.aided[j]),
                "change": _change(name, m.diff[j], m.diff_low[j], m.diff_high[j]),
                "McNemar p": _p(m.p_value[j]),
            }
        )
    rep.table(pd.DataFrame(rows))
    c = {k: int(v[j]) for k, v in effect.changes.items()}
    lines = [
        f"You changed {c['n_changed']} answers after seeing the AI: "
        f"{c['n_changed_to_correct']} to the correct diagnosis, "
        f"{c['n_changed_to_incorrect']} away from it"
        + (
            f", {c['n_changed_wrong_to_wrong']} from one wrong diagnosis to another."
            if c["n_changed_wrong_to_wrong"]
            else "."
        )
    ]
    if effect.reliance is not None:
        r = {k: int(v[j]) for k, v in effect.reliance.items()}
        lines.append(
            f"The AI was wrong on {r['n_ai_wrong_disagreed']} cases where your own answer "
            f"differed from it; you switched to its wrong answer on {r['n_followed_wrong_ai']} "
            "(over-reliance)."
        )
        lines.append(
            f"The AI was right on {r['n_ai_right_disagreed']} cases where your own answer "
            f"differed from it; you kept your own answer on {r['n_overrode_right_ai']} "
            "(under-reliance)."
        )
    secs_u = res.answers.unaided_seconds[sheet]
    secs_a = res.answers.aided_seconds[sheet]
    if np.isfinite(secs_u).any() and np.isfinite(secs_a).any():
        lines.append(
            f"Median time per case: {np.nanmedian(secs_u):.0f} s on your own, then "
            f"{np.nanmedian(secs_a):.0f} s with the AI."
        )
    acc: PairedMetric = effect.accuracy
    tone = "bad" if acc.diff[j] < 0 else "good" if acc.diff[j] > 0 else ""
    rep.verdict(lines, tone=tone)
    if res.ai is None:
        rep.paragraph(
            "The AI's own answers (ai_answers.csv) were not given, so over- and under-reliance "
            "cannot be counted.",
            css_class="note",
        )
        return
    _followed_cards(rep, res, sheet, images, case_card)


def _followed_cards(rep: HtmlReport, res: TeachingScores, sheet: int, images: Path, card) -> None:
    ai = res.ai.codes
    ref = res.reference.codes
    unaided = res.answers.unaided[sheet]
    aided = res.answers.codes[sheet]
    misled = np.flatnonzero((ai != ref) & (ai != NO_ANSWER) & (unaided != ai) & (aided == ai))
    if not len(misled):
        return
    rep.heading("Cases where you followed a wrong AI", level=3)
    classes = res.classes
    cards = []
    for k in misled[:8]:
        cards.append(
            card(
                images / f"{res.reference.cases[k]}.jpg",
                [
                    (res.reference.cases[k], "id"),
                    (f"Key: {display_name(res.reference.diagnosis[k])}", "right"),
                    (f"You, on your own: {_answer(classes, int(unaided[k]))}", ""),
                    (f"AI: {classes[ai[k]]} ({res.ai.confidence[k]:.0%})", "ai"),
                    (f"You, with the AI: {_answer(classes, int(aided[k]))}", "wrong"),
                ],
                missed=False,
            )
        )
    more = f" (the first 8 of {len(misled)})" if len(misled) > 8 else ""
    rep.paragraph(
        f"Your own answer differed from the AI's, the AI was wrong, and you took its answer{more}. "
        "Look at what the AI's heatmap stressed and what the lesion shows.",
        css_class="note",
    )
    rep.raw_html(f'<div class="cases">{"".join(cards)}</div>')


def _group_rows(groups: pd.DataFrame) -> pd.DataFrame:
    rows = []
    for _, g in groups.iterrows():
        row = {"group": g["group"], "trainees": int(g["n_trainees"])}
        for name in ("accuracy", "malignant_sensitivity", "kappa"):
            row[f"{_MEASURES[name]}: own → with AI"] = (
                f"{_fmt(name, g[f'unaided_{name}'])} → {_fmt(name, g[f'aided_{name}'])}; "
                + _change(
                    name,
                    g[f"{name}_change"],
                    g[f"{name}_change_ci_low"],
                    g[f"{name}_change_ci_high"],
                )
            )
        row["changed to correct / to incorrect"] = (
            f"{int(g['n_changed_to_correct'])} / {int(g['n_changed_to_incorrect'])}"
        )
        for name in ("over_reliance", "under_reliance"):
            if name in g and np.isfinite(g[name]):
                row[name.replace("_", "-")] = (
                    f"{g[name]:.0%} (95% CI {g[name + '_ci_low']:.0%}–{g[name + '_ci_high']:.0%})"
                )
        rows.append(row)
    return pd.DataFrame(rows)


def cohort_ai_report(
    res: TeachingScores, groups: pd.DataFrame, per_sheet: pd.DataFrame, *, note: str = ""
) -> HtmlReport:
    """The instructor's page on the AI-support study of one teaching set."""
    effect = res.ai_effect
    assert effect is not None
    n_cases = len(res.reference.cases)
    rep = HtmlReport(
        "What AI support changed",
        f"{n_cases} cases · {_trainees(int(groups['n_trainees'].iloc[0]))} in AI-support mode",
    )
    if note:
        rep.paragraph(note, css_class="note")
    g = groups.iloc[0]
    lines = [
        f"On their own the trainees named {_fmt('accuracy', g['unaided_accuracy'])} of cases "
        f"correctly on average, with the AI {_fmt('accuracy', g['aided_accuracy'])}: "
        + _change(
            "accuracy",
            g["accuracy_change"],
            g["accuracy_change_ci_low"],
            g["accuracy_change_ci_high"],
        )
        + f". {int(g['n_trainees_better_with_ai'])} trainees improved, "
        f"{int(g['n_trainees_worse_with_ai'])} got worse.",
        f"Answers changed after seeing the AI: {int(g['n_changed_to_correct'])} toward the correct "
        f"diagnosis, {int(g['n_changed_to_incorrect'])} toward an incorrect one.",
    ]
    if "over_reliance" in groups.columns and np.isfinite(g["over_reliance"]):
        lines.append(
            f"Where a trainee disagreed with a wrong AI, they switched to its answer "
            f"{g['over_reliance']:.0%} of the time (over-reliance; {int(g['n_followed_wrong_ai'])}"
            f" of {int(g['n_ai_wrong_disagreed'])}); where they disagreed with a right AI, they "
            f"kept their own answer {g['under_reliance']:.0%} of the time (under-reliance; "
            f"{int(g['n_overrode_right_ai'])} of {int(g['n_ai_right_disagreed'])})."
        )
    if "unaided_accuracy_where_ai_wrong" in groups.columns:
        lines.append(
            "On the cases the AI got wrong, accuracy went "
            f"{_fmt('accuracy', g['unaided_accuracy_where_ai_wrong'])} → "
            f"{_fmt('accuracy', g['aided_accuracy_where_ai_wrong'])}; on those it got right, "
            f"{_fmt('accuracy', g['unaided_accuracy_where_ai_right'])} → "
            f"{_fmt('accuracy', g['aided_accuracy_where_ai_right'])}."
        )
    rep.verdict(lines)
    rep.heading("By experience")
    if len(groups) == 1:
        rep.paragraph(
            "No trainee gave years of training, so there is no breakdown by experience.",
            css_class="note",
        )
    rep.table(_group_rows(groups))
    from skinml.teach import figures

    rep.figure(
        figures.ai_change_figure(per_sheet),
        caption="Each line is one trainee session: accuracy on their own (left) and with the AI "
        "(right), coloured by years of training.",
    )
    rep.heading("Trainee by trainee")
    shown = pd.DataFrame(
        {
            "trainee": per_sheet["trainee"],
            "session": per_sheet["session"],
            "years": ["" if not np.isfinite(y) else f"{y:g}" for y in per_sheet["years_training"]],
            "correct: own → with AI": [
                f"{u:.0%} → {a:.0%}"
                for u, a in zip(
                    per_sheet["unaided_accuracy"], per_sheet["aided_accuracy"], strict=True
                )
            ],
            "change (95% CI)": [
                _change("accuracy", d, lo, hi)
                for d, lo, hi in zip(
                    per_sheet["accuracy_change"],
                    per_sheet["accuracy_change_ci_low"],
                    per_sheet["accuracy_change_ci_high"],
                    strict=True,
                )
            ],
            "McNemar p": [_p(p) for p in per_sheet["accuracy_mcnemar_p"]],
            "to correct / to incorrect": [
                f"{a} / {b}"
                for a, b in zip(
                    per_sheet["n_changed_to_correct"],
                    per_sheet["n_changed_to_incorrect"],
                    strict=True,
                )
            ],
        }
    )
    if "n_followed_wrong_ai" in per_sheet.columns:
        shown["followed a wrong AI"] = [
            f"{a} of {b}"
            for a, b in zip(
                per_sheet["n_followed_wrong_ai"], per_sheet["n_ai_wrong_disagreed"], strict=True
            )
        ]
        shown["overrode a right AI"] = [
            f"{a} of {b}"
            for a, b in zip(
                per_sheet["n_overrode_right_ai"], per_sheet["n_ai_right_disagreed"], strict=True
            )
        ]
    rep.table(shown)
    rep.heading("How this was computed")
    items = [
        "Each case was answered twice in one session: first without the AI, then after the AI's "
        "calibrated probabilities and heatmap; both answers are compared on the same cases.",
        "Change = with AI − on one's own. Per trainee: exact McNemar test on the cases where "
        "only one of the two answers was right, and a paired bootstrap interval "
        f"({effect.n_bootstrap} case resamples shared by both answers, seed {effect.seed}).",
        "Cohort and experience bands: the mean over trainees (each trainee's latest AI-support "
        "session), 95% interval from a two-way bootstrap over trainees and cases.",
        "Over-reliance: among cases where the AI was wrong and the trainee's own answer differed "
        "from the AI's, the share switched to the AI's answer. Under-reliance: among cases where "
        "the AI was right and the own answer differed, the share where the trainee kept it. "
        "Intervals resample trainees.",
        "Blank answers count as wrong, as everywhere in scoring.",
        "Design after Tschandl et al., Human-computer collaboration for skin cancer recognition, "
        "Nat Med 2020;26:1229-1234.",
    ]
    if note:
        items.append(note)
    rep.raw_html(
        "<ul class='note'>" + "".join(f"<li>{html.escape(t)}</li>" for t in items) + "</ul>"
    )
    return rep


def _trainees(n: int) -> str:
    return "1 trainee" if n == 1 else f"{n} trainees"
