"""The trainee's report: one self-contained HTML file that a resident wants to read.

It opens with the verdict (how many right, which malignancies were missed,
what went well, what to study), then shows the missed malignancies with their
images beside the key, per-diagnosis bars, the confusion matrix, the AI and
the cohort on the same cases, published reference levels, progress over
sessions and, last, how everything was computed.
"""

from __future__ import annotations

import html
from os import PathLike
from pathlib import Path

import numpy as np
import pandas as pd

from skinml.reporting.html import HtmlReport, image_to_data_uri
from skinml.teach import figures
from skinml.teach.answers import NO_ANSWER
from skinml.teach.benchmarks import (
    RINNER_2020,
    ReaderScores,
    comparable_levels,
    rinner_placement,
)
from skinml.teach.cohort import MIN_TRAINEES_FOR_PERCENTILE, progress_table
from skinml.teach.report_ai import ai_support_section
from skinml.teach.results import TeachingScores
from skinml.teach.scoring import wilson_interval
from skinml.teach.vocabulary import display_name

_EXTRA_CSS = """<style>
.tiles{display:flex;flex-wrap:wrap;gap:10px;margin:1em 0}
.tile{border:1px solid #d6dde5;border-radius:8px;padding:10px 14px;min-width:140px;flex:1}
.tile .v{font-size:1.7em;font-weight:650;font-variant-numeric:tabular-nums}
.tile .l{font-size:.85em;color:#5b6b7c}.tile .ci{font-size:.78em;color:#8a97a6}
.tile.bad{border-color:#e5a59d;background:#fdf5f4}.tile.good{border-color:#9fd3b3;background:#f4fbf6}
.cases{display:flex;flex-wrap:wrap;gap:14px}
.case{border:1px solid #d6dde5;border-radius:8px;width:300px;overflow:hidden;font-size:.9em}
.case.missed{border:2px solid #c0392b}.case img{width:100%;display:block}
.case .noimg{height:80px;background:#f3f6f9;color:#8a97a6;display:flex;align-items:center;
justify-content:center}
.case .body{padding:8px 10px}.case .body div{margin:2px 0}.case .id{font-weight:650}
.wrong{color:#c0392b;font-weight:600}.right{color:#2e9d5b;font-weight:600}
.ai{color:#7d3c98}.note{font-size:.85em;color:#5b6b7c}
.verdict li{margin:.25em 0}
</style>"""


def _pct(x: float, digits: int = 0) -> str:
    return "n/a" if x is None or not np.isfinite(x) else f"{x:.{digits}%}"


def _ci(lo: float, hi: float) -> str:
    if not (np.isfinite(lo) and np.isfinite(hi)):
        return ""
    return f"95% CI {lo:.0%}–{hi:.0%}"


def _tile(value: str, label: str, ci: str = "", tone: str = "") -> str:
    ci_html = f'<div class="ci">{html.escape(ci)}</div>' if ci else ""
    return (
        f'<div class="tile {tone}"><div class="v">{html.escape(value)}</div>'
        f'<div class="l">{html.escape(label)}</div>{ci_html}</div>'
    )


def _case_card(image: Path | None, lines: list[tuple[str, str]], *, missed: bool) -> str:
    if image is not None and image.is_file():
        img = f'<img src="{image_to_data_uri(image, max_side=300)}" alt="">'
    else:
        img = '<div class="noimg">image not available</div>'
    body = "".join(f'<div class="{cls}">{html.escape(text)}</div>' for text, cls in lines)
    frame = "case missed" if missed else "case"
    return f'<div class="{frame}">{img}<div class="body">{body}</div></div>'


def _verdict(res: TeachingScores, i: int, table: pd.DataFrame) -> tuple[list[str], str]:
    s = res.scores
    n = len(res.reference.cases)
    acc = s.accuracy[i]
    lines = [
        f"You named {s.n_correct[i]} of {n} cases correctly ({_pct(acc)}; "
        f"{_ci(s.accuracy_low[i], s.accuracy_high[i])})."
    ]
    if s.n_unanswered[i]:
        lines[-1] += f" {s.n_unanswered[i]} were left blank and count as wrong."
    n_mal = s.n_malignant
    missed = int(s.missed_malignant[i].sum())
    if n_mal:
        if missed == 0:
            lines.append(f"You recognised all {n_mal} malignant lesions as malignant.")
        else:
            lines.append(
                f"You recognised {n_mal - missed} of {n_mal} malignant lesions as malignant; "
                f"{missed} {'was' if missed == 1 else 'were'} called benign or left blank. "
                "They are shown first below: study these before anything else."
            )
    good = table[(table["sensitivity"] >= 0.8)].sort_values("sensitivity", ascending=False)
    if len(good):
        lines.append(
            "Went well: "
            + ", ".join(
                f"{display_name(d)} {c}/{t}"
                for d, c, t in zip(
                    good["diagnosis"], good["n_correct"], good["n_cases"], strict=True
                )
            )
            + "."
        )
    weak = table[table["sensitivity"] < 0.6].sort_values(
        ["malignant", "sensitivity"], ascending=[False, True]
    )
    if len(weak):
        parts = []
        for _, r in weak.iterrows():
            text = f"{display_name(r['diagnosis'])}: {r['n_correct']} of {r['n_cases']} right"
            if r["confused_with"]:
                what = (
                    "left blank"
                    if r["confused_with"] == "blank"
                    else f"called {display_name(r['confused_with'])}"
                )
                text += f", {what} {r['confused_count']}x"
            parts.append(text)
        lines.append("To study: " + "; ".join(parts) + ".")
    if res.ai_scores is not None:
        ai_acc = float(res.ai_scores.accuracy[0])
        p = float(res.vs_ai["p_value"][i])
        diff = (acc - ai_acc) * 100
        word = "above" if diff > 0 else "below" if diff < 0 else "level with"
        sig = (
            "a real difference (McNemar p = {:.3f})"
            if p < 0.05
            else "not a clear difference on this many cases (McNemar p = {:.2f})"
        ).format(p)
        lines.append(
            f"The AI named {_pct(ai_acc)} correctly on the same cases; you were "
            f"{abs(diff):.0f} points {word} it — {sig}."
        )
    cohort = len(res.latest)
    if np.isfinite(res.percentile[i]):
        lines.append(
            f"You scored better than {res.percentile[i]:.0f}% of the {cohort} trainees "
            "in this cohort."
        )
    if comparable_levels(res.reference.classes).dermachallenge:
        lines.append(rinner_placement(acc))
    msens = s.malignant_sensitivity[i]
    if (np.isfinite(msens) and msens < 0.7) or acc < 0.5:
        tone = "bad"
    elif (np.isfinite(msens) and msens < 0.9) or acc < 0.7:
        tone = "warn"
    else:
        tone = "good"
    return lines, tone


def trainee_report(
    res: TeachingScores,
    sheet: int,
    *,
    images_dir: str | PathLike[str] | None = None,
    reader_scores: ReaderScores | None = None,
    note: str = "",
) -> HtmlReport:
    """Build the report for one answer sheet (trainee x session)."""
    s = res.scores
    ref = res.reference
    trainee = str(res.answers.sheets["trainee"].iloc[sheet])
    session = str(res.answers.sheets["session"].iloc[sheet])
    images = Path(images_dir) if images_dir is not None else Path(ref.source).parent / "cases"
    sub = f"{len(ref.cases)} cases" + (f" · session {session}" if session else "")
    if res.answers.ai_support[sheet]:
        sub += " · with AI support: scores use your final answers"
    rep = HtmlReport(f"Dermoscopy teaching set — {trainee}", sub)
    rep.raw_html(_EXTRA_CSS)
    if note:
        rep.paragraph(note, css_class="note")
    table = res.per_diagnosis(sheet)
    lines, tone = _verdict(res, sheet, table)
    rep.verdict(lines, tone=tone)

    msens, mspec = s.malignant_sensitivity[sheet], s.malignant_specificity[sheet]
    tiles = [
        _tile(
            _pct(s.accuracy[sheet]),
            "correct diagnoses",
            _ci(s.accuracy_low[sheet], s.accuracy_high[sheet]),
        ),
        _tile(_pct(s.balanced_accuracy[sheet]), "balanced accuracy (mean over diagnoses)"),
        _tile(
            f"{s.n_malignant - int(s.missed_malignant[sheet].sum())}/{s.n_malignant}",
            "malignant lesions recognised",
            _ci(s.malignant_sensitivity_low[sheet], s.malignant_sensitivity_high[sheet]),
            "bad" if np.isfinite(msens) and msens < 0.8 else "good",
        ),
        _tile(
            _pct(mspec),
            "benign lesions correctly called benign",
            _ci(s.malignant_specificity_low[sheet], s.malignant_specificity_high[sheet]),
        ),
        _tile(
            f"{s.kappa[sheet]:.2f}",
            "agreement with the key (Cohen's κ)",
            ""
            if not np.isfinite(s.kappa_low[sheet])
            else f"95% CI {s.kappa_low[sheet]:.2f}–{s.kappa_high[sheet]:.2f}",
        ),
    ]
    if s.n_unanswered[sheet]:
        tiles.append(_tile(str(int(s.n_unanswered[sheet])), "cases left blank", "", "bad"))
    rep.raw_html(f'<div class="tiles">{"".join(tiles)}</div>')

    _missed_section(rep, res, sheet, images)
    rep.heading("Diagnosis by diagnosis")
    wil = [
        wilson_interval(np.array(c), np.array(t))
        for c, t in zip(table["n_correct"], table["n_cases"], strict=True)
    ]
    rep.figure(
        figures.per_diagnosis_bars(table, [(float(lo), float(hi)) for lo, hi in wil]),
        caption="Bars: you. Diamonds: the AI on the same cases. Black ticks: the cohort "
        "median. The numbers after each diagnosis are your correct/total.",
    )
    shown = (
        table.drop(columns=["confused_with", "confused_count"])
        .assign(
            diagnosis=[display_name(d) for d in table["diagnosis"]],
            malignant=np.where(table["malignant"], "yes", "no"),
        )
        .rename(
            columns={
                "n_cases": "cases",
                "n_correct": "you right",
                "most_often_called_instead": "most often called instead",
                "ai_sensitivity": "AI sensitivity",
                "cohort_median_sensitivity": "cohort median",
            }
        )
    )
    rep.table(shown, float_format="{:.0%}")

    rep.heading("Where your answers went")
    present = s.class_counts > 0
    rep.figure(
        figures.confusion_figure(s.confusion[sheet], ref.classes, present, ref.malignant_classes),
        caption="Rows: the key. Columns: your answers. Bold numbers on the diagonal are "
        "correct; everything else is a confusion. Red labels are malignant diagnoses.",
    )

    if res.ai_scores is not None:
        _ai_section(rep, res, sheet, images)
    ai_support_section(rep, res, sheet, images, _case_card)
    _cohort_section(rep, res, sheet)
    _reference_levels_section(rep, res, sheet, reader_scores)
    _progress_section(rep, res, trainee)
    _confidence_section(rep, res, sheet)
    _method_section(rep, res, sheet, note)
    return rep


def _missed_section(rep: HtmlReport, res: TeachingScores, i: int, images: Path) -> None:
    missed = res.missed(i)
    rep.heading("Missed malignancies")
    if missed.empty:
        rep.paragraph("None: every malignant lesion in the set was called malignant. Well done.")
        return
    cards = []
    for _, r in missed.iterrows():
        conf = "" if not np.isfinite(r["confidence"]) else f" — {r['confidence']:.0%} sure"
        lines = [
            (f"{r['case']} · {r['kind']}", "id"),
            (f"Key: {display_name(r['reference'])}", "right"),
            (
                f"You: {display_name(r['answer']) if r['answer'] != 'unanswered' else 'blank'}"
                f"{conf}",
                "wrong",
            ),
        ]
        if r["ai_answer"]:
            lines.append((f"AI: {r['ai_answer']}", "ai"))
        cards.append(
            _case_card(images / f"{r['case']}.jpg", lines, missed=r["kind"] == "missed malignancy")
        )
    rep.paragraph(
        "Red frame: a malignant lesion you called benign or left blank. Thin frame: "
        "you saw it was malignant but named the wrong malignant diagnosis.",
        css_class="note",
    )
    rep.raw_html(f'<div class="cases">{"".join(cards)}</div>')


def _ai_section(rep: HtmlReport, res: TeachingScores, i: int, images: Path) -> None:
    s, a = res.scores, res.ai_scores
    rep.heading("You and the AI on the same cases")
    comp = pd.DataFrame(
        {
            "measure": [
                "correct diagnoses",
                "balanced accuracy",
                "malignant lesions recognised",
                "benign lesions called benign",
                "agreement with the key (κ)",
            ],
            "you": [
                s.accuracy[i],
                s.balanced_accuracy[i],
                s.malignant_sensitivity[i],
                s.malignant_specificity[i],
                s.kappa[i],
            ],
            "AI": [
                a.accuracy[0],
                a.balanced_accuracy[0],
                a.malignant_sensitivity[0],
                a.malignant_specificity[0],
                a.kappa[0],
            ],
        }
    )
    comp["you"] = [f"{v:.2f}" if k == 4 else _pct(v) for k, v in enumerate(comp["you"])]
    comp["AI"] = [f"{v:.2f}" if k == 4 else _pct(v) for k, v in enumerate(comp["AI"])]
    rep.table(comp)
    only_t, only_a = int(res.vs_ai["only_trainee"][i]), int(res.vs_ai["only_other"][i])
    rep.paragraph(
        f"You were right on {only_t} cases the AI got wrong, and wrong on {only_a} cases the AI "
        f"got right (exact McNemar test p = {res.vs_ai['p_value'][i]:.3f}). Your agreement with "
        f"the AI: κ = {res.ai_kappa[i]:.2f} (95% CI {res.ai_kappa_low[i]:.2f}–"
        f"{res.ai_kappa_high[i]:.2f})."
    )
    if res.ai.missing:
        rep.paragraph(
            f"The AI gave no usable answer on {len(res.ai.missing)} cases "
            f"({', '.join(res.ai.missing)}); they count as AI errors.",
            css_class="note",
        )
    shown_above = res.scores.missed_malignant[i] | res.scores.wrong_malignant_type[i]
    wrong_ai_right = np.flatnonzero(~s.correct[i] & a.correct[0] & ~shown_above)
    if len(wrong_ai_right):
        cards = []
        for j in wrong_ai_right[:8]:
            code = int(res.answers.codes[i, j])
            you = "blank" if code == NO_ANSWER else display_name(res.classes[code])
            cards.append(
                _case_card(
                    images / f"{res.reference.cases[j]}.jpg",
                    [
                        (res.reference.cases[j], "id"),
                        (f"Key: {display_name(res.reference.diagnosis[j])}", "right"),
                        (f"You: {you}", "wrong"),
                        (f"AI: {res.classes[res.ai.codes[j]]} ({res.ai.confidence[j]:.0%})", "ai"),
                    ],
                    missed=False,
                )
            )
        more = f" (the first 8 of {len(wrong_ai_right)})" if len(wrong_ai_right) > 8 else ""
        rep.heading(f"Other cases the AI got right and you did not{more}", level=3)
        rep.paragraph("Malignant lesions shown above are not repeated here.", css_class="note")
        rep.raw_html(f'<div class="cases">{"".join(cards)}</div>')


def _cohort_section(rep: HtmlReport, res: TeachingScores, i: int) -> None:
    latest = res.latest
    if len(latest) < 2:
        return
    rep.heading("You and your cohort")
    ai = None if res.ai_scores is None else float(res.ai_scores.accuracy[0])
    if len(latest) >= MIN_TRAINEES_FOR_PERCENTILE:
        acc = res.scores.accuracy
        rep.figure(figures.cohort_histogram(acc[latest], acc[i], ai))
    ag = res.agreement
    place = (
        f"Percentile in this cohort: {res.percentile[i]:.0f} (of {len(latest)} trainees). "
        if np.isfinite(res.percentile[i])
        else f"No percentile: with {len(latest)} trainees it would say more about who else "
        f"took the set than about you (shown from {MIN_TRAINEES_FOR_PERCENTILE} trainees on). "
    )
    rep.paragraph(
        place
        + f"Agreement among the trainees: Krippendorff's α = {ag.krippendorff_alpha:.2f}"
        + (
            f", Fleiss' κ = {ag.fleiss_kappa:.2f} on the {ag.n_complete_cases} cases everyone "
            "answered"
            if np.isfinite(ag.fleiss_kappa)
            else ""
        )
        + f"; on average {ag.mean_pairwise_agreement:.0%} of trainee pairs gave the same answer."
    )


def _reference_levels_section(
    rep: HtmlReport, res: TeachingScores, i: int, reader_scores: ReaderScores | None
) -> None:
    acc = float(res.scores.accuracy[i])
    rep.heading("Against published reference levels")
    fit = comparable_levels(res.reference.classes)
    if not fit.any:
        rep.paragraph("Not shown: " + fit.reason)
        return
    anchors = {
        "DermaChallenge single non-expert (mean)": RINNER_2020["single_non_expert_accuracy"],
        "DermaChallenge single expert (mean)": RINNER_2020["single_expert_accuracy"],
    }
    groups = (
        {}
        if reader_scores is None or not fit.todiv
        else {f"TODIV {g} (n={len(v)})": v for g, v in reader_scores.scores.items()}
    )
    rep.figure(
        figures.reference_levels(groups, anchors, acc),
        caption="Other tests, other cases: use this as a rough orientation, not a grade.",
    )
    lines = [rinner_placement(acc)]
    if reader_scores is not None and fit.todiv:
        placed = reader_scores.place(acc)
        lines.append(
            "In the TODIV reader study your score would sit at the "
            + ", ".join(f"percentile {p:.0f} among {g}" for g, p in placed.items())
            + "."
        )
    rep.verdict(lines)
    rep.paragraph("Why these: " + fit.reason, css_class="note")
    rep.paragraph(RINNER_2020["citation"], css_class="small")
    if reader_scores is not None and fit.todiv:
        rep.paragraph(reader_scores.citation, css_class="small")


def _progress_section(rep: HtmlReport, res: TeachingScores, trainee: str) -> None:
    summary = res.summary()
    if (summary["trainee"] == trainee).sum() < 2:
        return
    prog = progress_table(summary, trainee)
    rep.heading("Progress across sessions")
    rep.figure(figures.progress_figure(prog))
    shown = pd.DataFrame(
        {
            "session": prog["session"],
            "correct": [_pct(v) for v in prog["accuracy"]],
            "balanced accuracy": [_pct(v) for v in prog["balanced_accuracy"]],
            "malignant lesions recognised": [_pct(v) for v in prog["malignant_sensitivity"]],
            "κ with the key": [f"{v:.2f}" for v in prog["kappa"]],
            "missed malignancies": [str(int(v)) for v in prog["n_missed_malignant"]],
            "change in correct": [
                "" if not np.isfinite(v) else f"{v * 100:+.0f} points"
                for v in prog["accuracy_change"]
            ],
        }
    )
    rep.table(shown)


def _confidence_section(rep: HtmlReport, res: TeachingScores, i: int) -> None:
    conf = res.answers.confidence[i]
    if not np.isfinite(conf).any():
        return
    right = conf[res.scores.correct[i] & np.isfinite(conf)]
    wrong = conf[~res.scores.correct[i] & np.isfinite(conf)]
    rep.heading("Your confidence")
    parts = []
    if len(right):
        parts.append(
            f"when you were right you were on average {right.mean():.0%} sure ({len(right)} cases)"
        )
    if len(wrong):
        parts.append(f"when you were wrong, {wrong.mean():.0%} ({len(wrong)} cases)")
    text = "; ".join(parts) + "."
    if len(right) and len(wrong) and wrong.mean() >= right.mean() - 0.05:
        text += (
            " Your confidence hardly separates right from wrong answers yet — a sign to "
            "slow down on the cases that feel easy."
        )
    rep.paragraph(text[0].upper() + text[1:])


def _method_section(rep: HtmlReport, res: TeachingScores, i: int, note: str) -> None:
    rep.heading("How this was scored")
    items = [
        "A blank answer counts as wrong: it lowers accuracy, the sensitivity of its diagnosis "
        "and, for a malignant lesion, counts as a missed malignancy.",
        f"Malignant diagnoses: {', '.join(res.reference.malignant_classes)}. A malignant lesion "
        "named as another malignant diagnosis is recognised as malignant but not correct.",
        "Intervals: Wilson 95% intervals for proportions; percentile bootstrap "
        f"({res.n_bootstrap} resamples of cases, seed {res.seed}) for Cohen's κ.",
    ]
    sheet_file = res.answers.sheets["file"].iloc[i]
    applied = res.answers.synonyms.get(sheet_file, {})
    if applied:
        items.append(
            "Written answers mapped to codes: "
            + ", ".join(f"'{k}' → {v}" for k, v in sorted(applied.items()))
            + "."
        )
    if note:
        items.append(note)
    rep.raw_html(
        "<ul class='note'>" + "".join(f"<li>{html.escape(t)}</li>" for t in items) + "</ul>"
    )
