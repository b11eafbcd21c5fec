"""The data manager's report: what was accepted, what was rejected and why, duplicates.

Printed as a short summary and written as one self-contained HTML file. It
names rejected files by their delivery path (the manager must find them), so
like ``rejected.csv`` it stays inside the centre; it never shows identifiers.
"""

from __future__ import annotations

from os import PathLike
from pathlib import Path

import pandas as pd

from skinml.reporting.html import HtmlReport

REPORT_HTML = "ingest_report.html"


def summary_lines(
    manifest: pd.DataFrame,
    rejected: pd.DataFrame,
    *,
    n_inputs: int,
    n_processed: int,
    n_resumed: int,
    notes: list[str],
) -> list[str]:
    """The few lines a data manager reads first."""
    lines = [
        f"{n_inputs} inputs: {len(manifest)} images accepted, {len(rejected)} rejected "
        f"({n_processed} images processed now, {n_resumed} reused from an earlier run)",
    ]
    if len(rejected):
        by_stage = rejected["stage"].value_counts().sort_index()
        lines.append("rejected by stage: " + ", ".join(f"{k} {v}" for k, v in by_stage.items()))
    if len(manifest):
        dup = manifest[manifest["duplicate_kind"] != "none"]
        lines.append(
            f"duplicates: {len(dup)} images in {dup['duplicate_group'].nunique()} groups "
            f"({(dup['duplicate_kind'] == 'exact').sum()} exact, "
            f"{(dup['duplicate_kind'] == 'near').sum()} near)"
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
    tone = "good" if rejected.empty else "warn"
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
    rep.heading(f"Rejected inputs ({len(rejected)})")
    if len(rejected):
        rep.table(rejected.groupby(["stage"]).size().rename("inputs").reset_index())
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
