"""The data manager's report: what was accepted, what was rejected and why, duplicates.

Printed as a short summary and written as one self-contained HTML file. It
names rejected files by their delivery path (the manager must find them), so
like ``rejected.csv`` it stays inside the centre; it never shows identifiers.
"""

from __future__ import annotations

from os import PathLike
from pathlib import Path

import pandas as pd

from skinml.ingest.records import STAGE_MEANING, STAGES
from skinml.reporting.html import HtmlReport

REPORT_HTML = "ingest_report.html"


def rejections_by_stage(rejected: pd.DataFrame) -> dict[str, int]:
    """Rows of ``rejected.csv`` per stage, in report order (the numbers the summary prints)."""
    counts = rejected["stage"].value_counts() if len(rejected) else pd.Series(dtype=int)
    known = [s for s in STAGES if s in counts.index]
    other = sorted(set(counts.index) - set(STAGES))
    return {str(s): int(counts[s]) for s in [*known, *other]}


def label_conflicts_table(rejected: pd.DataFrame) -> pd.DataFrame:
    """The rejected rows of stage ``conflict`` (every copy of each conflicting image)."""
    if rejected.empty:
        return rejected
    return rejected[rejected["stage"] == "conflict"]


def near_label_disagreements(manifest: pd.DataFrame) -> pd.DataFrame:
    """Accepted rows of duplicate groups whose labels differ (only near copies can remain:
    exact copies with different labels were rejected as conflicts)."""
    if manifest.empty:
        return manifest
    dup = manifest[manifest["duplicate_kind"] != "none"]
    mixed = dup.groupby("duplicate_group")["label"].transform("nunique") > 1
    return dup[mixed]


def summary_lines(
    manifest: pd.DataFrame,
    rejected: pd.DataFrame,
    *,
    n_inputs: int,
    n_processed: int,
    n_resumed: int,
    notes: list[str],
) -> list[str]:
    """The few lines a data manager reads first.

    The numbers add up by construction: inputs = accepted + the rejections per stage,
    each of which is a row of ``rejected.csv``.
    """
    by_stage = rejections_by_stage(rejected)
    lines = [
        f"{n_inputs} inputs received = {len(manifest)} accepted + {len(rejected)} rejected "
        f"({n_processed} images processed now, {n_resumed} reused from an earlier run)",
    ]
    if by_stage:
        lines.append(
            "rejected by reason (rows of rejected.csv): "
            + "; ".join(f"{k} {v} ({STAGE_MEANING.get(k, k)})" for k, v in by_stage.items())
        )
    conflicts = label_conflicts_table(rejected)
    if len(conflicts):
        lines.append(
            f"LABEL CONFLICTS: {conflicts['reason'].nunique()} image(s) arrived with different "
            f"labels; all {len(conflicts)} copies are kept out of the dataset and no label was "
            "chosen. Correct the labels in the deliveries and run again (rejected.csv, stage "
            "'conflict', names every copy)"
        )
    else:
        lines.append("label conflicts: none (no image arrived with two different labels)")
    if len(manifest):
        dup = manifest[manifest["duplicate_kind"] != "none"]
        lines.append(
            f"duplicates kept in the dataset (grouped so that no split separates them): "
            f"{len(dup)} images in {dup['duplicate_group'].nunique()} groups "
            f"({(dup['duplicate_kind'] == 'exact').sum()} exact, "
            f"{(dup['duplicate_kind'] == 'near').sum()} near)"
        )
        near = near_label_disagreements(manifest)
        if len(near):
            lines.append(
                f"near-duplicates with different labels: {near['duplicate_group'].nunique()} "
                f"group(s), {len(near)} images, kept with their own labels (similar pictures, "
                "not proven copies): check them in the report"
            )
    lines += [f"note: {n}" for n in notes]
    return lines


def write_report(
    path: str | PathLike[str],
    manifest: pd.DataFrame,
    rejected: pd.DataFrame,
    *,
    lines: list[str],
    dropped_columns: dict[str, list[str]],
) -> Path:
    """Write the HTML report."""
    rep = HtmlReport(
        "skinml-ingest report",
        "Internal to the centre: names rejected source files, never identifiers.",
    )
    tone = "bad" if len(label_conflicts_table(rejected)) else "good" if rejected.empty else "warn"
    rep.verdict(lines, tone=tone)
    rep.heading("Accepted images per hospital and label")
    if len(manifest):
        table = manifest.groupby(["site", "label"]).size().unstack(fill_value=0)
        table["total"] = table.sum(axis=1)
        rep.table(table.reset_index())
        rep.heading("Images per device")
        rep.table(manifest.groupby(["site", "device"]).size().rename("images").reset_index())
    else:
        rep.paragraph("No image was accepted.")
    rep.heading("Label conflicts (kept out of the dataset)")
    conflicts = label_conflicts_table(rejected)
    if len(conflicts):
        rep.paragraph(
            "The same image arrived with different labels. Ingest does not choose: every copy "
            "is rejected until the deliveries agree. Correct the label at the source and run "
            "again; finished files are reused."
        )
        rep.table(conflicts.astype(str))
    else:
        rep.paragraph("None: no image arrived with two different labels.")
    rep.heading(f"Rejected inputs ({len(rejected)})")
    if len(rejected):
        by_stage = rejections_by_stage(rejected)
        rep.table(
            pd.DataFrame(
                {
                    "stage": list(by_stage),
                    "meaning": [STAGE_MEANING.get(k, k) for k in by_stage],
                    "inputs": list(by_stage.values()),
                }
            )
        )
        rep.table(rejected.astype(str))
    else:
        rep.paragraph("Every input was accepted.")
    rep.heading("Duplicate groups")
    dup = manifest[manifest["duplicate_kind"] != "none"] if len(manifest) else manifest
    if len(dup):
        rep.paragraph(
            "Images in one group are the same or nearly the same picture; they share "
            "a split_group so that no split separates them."
        )
        rep.table(
            dup[["duplicate_group", "duplicate_kind", "image", "site", "label"]].sort_values(
                ["duplicate_group", "image"]
            )
        )
        near = near_label_disagreements(manifest)
        if len(near):
            rep.paragraph(
                "Near-duplicates with different labels (kept, each with its own label: a "
                "similar picture is not proof of the same image; check them):"
            )
            rep.table(
                near[["duplicate_group", "image", "site", "label"]].sort_values(
                    ["duplicate_group", "image"]
                )
            )
    else:
        rep.paragraph("No duplicates found.")
    rep.heading("Columns dropped from case lists")
    dropped = [(h, ", ".join(c)) for h, c in sorted(dropped_columns.items()) if c]
    if dropped:
        rep.paragraph(
            "Free-text or unknown columns may carry names, so they were dropped; keep "
            "one with --keep-column NAME if it is safe."
        )
        rep.table(pd.DataFrame(dropped, columns=["hospital", "dropped columns"]))
    else:
        rep.paragraph("None.")
    return rep.write(path)
