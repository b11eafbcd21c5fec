"""Dataset cards: what a dataset is, what is in it, and whether it may be used.

A card is computed from the manifest (counts per split and label, sites,
lesions, leakage between splits, rows left out) and joined with the facts no
table can tell (licence, citation, which classes are malignant, caveats).
MedMNIST's ``INFO`` dict is the model: one card per dataset, readable by a
person (``to_markdown``) and by a program (``to_dict``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import pandas as pd

from skinml.data.manifest import SPLITS, Manifest

#: Split name used in cards when a dataset has no split assigned yet.
UNSPLIT = "unsplit"


@dataclass(frozen=True)
class DatasetInfo:
    """The facts about a dataset that its files cannot tell.

    Attributes:
        name: registry name (``ham10000``).
        title: one-line human title.
        description: a paragraph on what the data is and how it was made.
        class_names: label code -> readable name, in the order classes are listed.
        malignant: label codes that are malignant (the positive class of a
            malignancy-suspected flag).
        licence: licence as stated by the source, with any doubt spelled out.
        citation: what to cite.
        source: where the files come from (URL, repository, commit).
        caveats: known problems a user must keep in mind.
        checksum_file: checksum list inside the dataset folder (``MD5SUMS``).
    """

    name: str
    title: str
    description: str = ""
    class_names: Mapping[str, str] = field(default_factory=dict)
    malignant: tuple[str, ...] = ()
    licence: str = "unknown"
    citation: str = ""
    source: str = ""
    caveats: tuple[str, ...] = ()
    checksum_file: str | None = None


@dataclass(frozen=True)
class DatasetCard:
    """A dataset's card: facts from :class:`DatasetInfo` plus counts from its manifest.

    Build it with :func:`build_card`; print it with :meth:`to_markdown`; store it
    (for example next to an MLflow run) with :meth:`to_dict`.
    """

    name: str
    title: str
    description: str
    classes: tuple[str, ...]
    class_names: Mapping[str, str]
    malignant: tuple[str, ...]
    counts: Mapping[str, Mapping[str, int]]
    n_images: int
    n_lesions: int | None
    n_patients: int | None
    sites: Mapping[str, int]
    devices: Mapping[str, int]
    metadata: Mapping[str, str]
    leakage: Mapping[str, int]
    excluded: int
    excluded_reasons: Mapping[str, int]
    licence: str
    citation: str
    source: str
    caveats: tuple[str, ...]
    fingerprint: str | None = None
    checksums: str | None = None
    root: str | None = None
    kind: str = "images"
    by_site: Mapping[str, Mapping[str, int]] = field(default_factory=dict)
    #: The manifest CSV the card was read from (None for a registered dataset): the
    #: "Use it" hints must name what the user actually has.
    manifest_csv: str | None = None

    @property
    def splits(self) -> list[str]:
        """Split names present in ``counts``, in train/val/test order."""
        order = [*SPLITS, UNSPLIT]
        return sorted(self.counts, key=lambda s: order.index(s) if s in order else len(order))

    def total_per_class(self) -> dict[str, int]:
        """Images per class over all splits."""
        return {c: sum(self.counts[s].get(c, 0) for s in self.counts) for c in self.classes}

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dict (mappings become plain dicts, tuples lists)."""
        out = asdict(self)
        for key, value in out.items():
            if isinstance(value, tuple):
                out[key] = list(value)
        out["counts"] = {s: dict(v) for s, v in self.counts.items()}
        return out

    def to_markdown(self) -> str:
        """The card as Markdown: what it is, counts per split and label, sites, caveats."""
        lines = [f"# {self.title} (`{self.name}`)", ""]
        if self.description:
            lines += [self.description, ""]
        lines += _summary_lines(self)
        lines += ["", "## Classes and counts per split", ""]
        lines += _class_table(self)
        if self.sites:
            lines += ["", "## Sites and devices", ""]
            lines += _count_line("site", self.sites)
            lines += _count_line("device", self.devices)
            if len(self.by_site) > 1:
                lines += [
                    "",
                    "Images per site and class (case mix differs by site, and a model can "
                    "learn the site instead of the lesion):",
                    "",
                ]
                lines += _site_table(self)
        if self.metadata:
            lines += ["", "## Patient and lesion metadata", ""]
            lines += [f"- **{k}**: {v}" for k, v in self.metadata.items()]
        if self.kind == "images":
            lines += ["", "## Leakage between splits", ""]
            lines += _leakage_lines(self)
        lines += ["", "## Rows left out", ""]
        if self.excluded:
            lines.append(f"{self.excluded} rows were excluded by the loader:")
            lines += [f"- {reason}: {n}" for reason, n in self.excluded_reasons.items()]
        elif self.kind == "images":
            lines.append("None: every row of the source has its image.")
        else:
            lines.append("None.")
        lines += ["", "## Licence and citation", ""]
        lines += [f"- **Licence:** {self.licence}", f"- **Cite:** {self.citation or 'n/a'}"]
        if self.source:
            lines.append(f"- **Source:** {self.source}")
        if self.caveats:
            lines += ["", "## Caveats", ""]
            lines += [f"- {c}" for c in self.caveats]
        if self.kind == "images":
            lines += ["", "## Integrity", ""]
            lines.append(f"- **Checksums:** {self.checksums or 'no checksum list'}")
            fp = self.fingerprint or (
                f"not computed (`skinml-data card {self._cli_source()} --fingerprint`)"
            )
            lines.append(f"- **Dataset fingerprint (SHA-256 of manifest and files):** {fp}")
            if self.root:
                lines.append(f"- **Image root:** `{self.root}`")
            lines += ["", "## Use it", ""]
            lines += self._usage_lines()
        return "\n".join(lines) + "\n"

    def _cli_source(self) -> str:
        """What to type after a ``skinml-data`` subcommand to get this dataset again."""
        return self.manifest_csv if self.manifest_csv is not None else self.name

    def _usage_lines(self) -> list[str]:
        if self.manifest_csv is not None:
            load = f"`skinml.data.loaders.csv_manifest.load_manifest_csv({self.manifest_csv!r})`"
        else:
            load = f"`skinml.data.registry.get_dataset({self.name!r})`"
        src = self._cli_source()
        return [
            f"- Python: {load} returns the manifest `m`;",
            "  `skinml.data.splits.assign_splits(m, strategy='lesion')` splits it without leakage.",
            f"- Check every file: `skinml-data verify {src}`; split: "
            f"`skinml-data split {src} --strategy lesion -o split.csv`"
            + ("." if self.manifest_csv else " (add `--root DIR` when the files are elsewhere)."),
        ]


def build_card(
    manifest: Manifest,
    info: DatasetInfo,
    *,
    fingerprint: str | None = None,
    checksums: str | None = None,
    manifest_csv: str | None = None,
) -> DatasetCard:
    """Compute a card from a manifest and the dataset's static facts.

    Args:
        manifest: the loaded dataset.
        info: licence, citation, class names, malignant classes, caveats.
        fingerprint: the dataset fingerprint, when it has been computed.
        checksums: a phrase saying where the checksum list is and what it covers.
        manifest_csv: the manifest CSV the data came from, when it is not registered.

    Returns:
        A frozen :class:`DatasetCard`.
    """
    df = manifest.frame
    splits = df["split"].astype("object").where(df["split"].notna(), UNSPLIT)
    counts = _counts(df["label"].astype(str), splits)
    classes = _ordered_classes(df["label"].astype(str).unique(), info.class_names)
    has_split = bool(df["split"].notna().any())
    leakage: dict[str, int] = {}
    if has_split:
        from skinml.data.splits import leakage_report

        for col in ("lesion_id", "patient_id"):
            leakage[col] = leakage_report(manifest, by=col).n_leaking
    excluded = manifest.excluded
    reasons: dict[str, int] = {}
    if len(excluded) and "reason" in excluded.columns:
        reasons = {
            str(k): int(v) for k, v in excluded["reason"].map(_reason_kind).value_counts().items()
        }
    return DatasetCard(
        name=info.name,
        title=info.title,
        description=info.description,
        classes=tuple(classes),
        class_names={c: info.class_names.get(c, c) for c in classes},
        malignant=tuple(c for c in info.malignant if c in classes) or tuple(info.malignant),
        counts=counts,
        n_images=len(df),
        n_lesions=_n_unique_known(df, "lesion_id", "image"),
        n_patients=_n_unique_known(df, "patient_id", "lesion_id"),
        sites=_value_counts(df["site"]),
        devices=_value_counts(df["device"]),
        metadata=_metadata_summary(df),
        leakage=leakage,
        excluded=len(excluded),
        excluded_reasons=reasons,
        licence=info.licence,
        citation=info.citation,
        source=info.source,
        caveats=tuple(info.caveats),
        fingerprint=fingerprint,
        checksums=checksums,
        root=str(manifest.root),
        manifest_csv=manifest_csv,
        by_site={
            site: dict(counts)
            for site, counts in _counts(df["label"].astype(str), df["site"]).items()
        },
    )


def card_for_labels(
    labels: pd.Series, info: DatasetInfo, *, metadata: Mapping[str, str] | None = None
) -> DatasetCard:
    """A card for a table without images (e.g. UCI Dermatology): counts per label only."""
    labels = labels.astype(str)
    classes = _ordered_classes(labels.unique(), info.class_names)
    return DatasetCard(
        name=info.name,
        title=info.title,
        description=info.description,
        classes=tuple(classes),
        class_names={c: info.class_names.get(c, c) for c in classes},
        malignant=tuple(info.malignant),
        counts={UNSPLIT: {c: int((labels == c).sum()) for c in classes}},
        n_images=0,
        n_lesions=None,
        n_patients=len(labels),
        sites={},
        devices={},
        metadata=dict(metadata or {}),
        kind="table",
        leakage={},
        excluded=0,
        excluded_reasons={},
        licence=info.licence,
        citation=info.citation,
        source=info.source,
        caveats=tuple(info.caveats),
    )


# -- computing the parts --------------------------------------------------------------------


def _counts(labels: pd.Series, splits: pd.Series) -> dict[str, dict[str, int]]:
    table = pd.crosstab(splits, labels)
    return {str(s): {str(c): int(table.at[s, c]) for c in table.columns} for s in table.index}


def _ordered_classes(present: Any, class_names: Mapping[str, str]) -> list[str]:
    present = {str(c) for c in present}
    known = [c for c in class_names if c in present]
    return known + sorted(present - set(known))


def _value_counts(s: pd.Series) -> dict[str, int]:
    return {str(k): int(v) for k, v in s.astype(str).value_counts().items()}


def _n_unique_known(df: pd.DataFrame, col: str, fallback: str) -> int | None:
    """Distinct ids, or None when the column only echoes its fallback (ids not recorded).

    ``validate_manifest`` fills a missing ``lesion_id`` with the image path and a
    missing ``patient_id`` with the lesion id; counting those would overstate
    what is known.
    """
    if len(df) and (df[col] == df[fallback]).all():
        return None
    return int(df[col].nunique())


def _metadata_summary(df: pd.DataFrame) -> dict[str, str]:
    out: dict[str, str] = {}
    if "age" in df.columns:
        age = pd.to_numeric(df["age"], errors="coerce")
        known = age.dropna()
        if len(known):
            out["age"] = (
                f"median {known.median():g} years (IQR {known.quantile(0.25):g}–"
                f"{known.quantile(0.75):g}, range {known.min():g}–{known.max():g}); "
                f"missing for {int(age.isna().sum()):,} of {len(age):,}"
            )
        else:
            out["age"] = f"missing for all {len(age)}"
    if "original_width" in df.columns and "original_height" in df.columns:
        sizes = df["original_width"].astype(str) + "x" + df["original_height"].astype(str)
        area = pd.to_numeric(df["original_width"]) * pd.to_numeric(df["original_height"])
        out["original image size"] = (
            f"{sizes[area.idxmin()]} to {sizes[area.idxmax()]} pixels "
            f"({sizes.nunique()} distinct sizes)"
        )
    for col in ("sex", "localization", "fitzpatrick", "dx_type", "diagnosis_confirm_type"):
        if col in df.columns:
            vc = df[col].astype("object").fillna("missing").astype(str).value_counts()
            shown = ", ".join(f"{k} {v:,}" for k, v in vc.head(8).items())
            more = f", and {len(vc) - 8} more values" if len(vc) > 8 else ""
            out[col] = shown + more
    return out


def _reason_kind(reason: object) -> str:
    # Group "image file 'x' does not exist" reasons by their kind, not by file name.
    text = str(reason)
    return text.split(":", 1)[0] if ":" in text else text


def _summary_lines(card: DatasetCard) -> list[str]:
    lesions = (
        "not recorded (each image is its own group)"
        if card.n_lesions is None
        else (f"{card.n_lesions:,}")
    )
    if card.n_patients is not None:
        patients = f"{card.n_patients:,}"
    elif card.n_lesions is not None:
        patients = "not recorded (lesion ids stand in)"
    else:
        patients = "not recorded"
    split_text = ", ".join(f"{s} {sum(card.counts[s].values()):,}" for s in card.splits)
    malignant = ", ".join(card.malignant) if card.malignant else "none"
    counts = (
        [f"| images | {card.n_images:,} |", f"| lesions | {lesions} |"]
        if card.kind == "images"
        else [f"| rows | {sum(card.total_per_class().values()):,} |"]
    )
    return [
        "| | |",
        "|---|---|",
        *counts,
        f"| patients | {patients} |",
        f"| classes | {len(card.classes)} ({', '.join(card.classes)}) |",
        f"| malignant classes | {malignant} |",
        f"| splits | {split_text} |",
        *([f"| sites | {len(card.sites)} ({', '.join(card.sites)}) |"] if card.sites else []),
        f"| licence | {card.licence} |",
    ]


def _class_table(card: DatasetCard) -> list[str]:
    splits = card.splits
    header = ["class", "name", "malignant", *splits, "total", "share"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    totals = card.total_per_class()
    n = max(sum(totals.values()), 1)
    for c in card.classes:
        row = [
            f"`{c}`",
            card.class_names.get(c, c),
            "yes" if c in card.malignant else "no",
            *(f"{card.counts[s].get(c, 0):,}" for s in splits),
            f"{totals[c]:,}",
            f"{100 * totals[c] / n:.1f}%",
        ]
        lines.append("| " + " | ".join(row) + " |")
    split_totals = [f"{sum(card.counts[s].values()):,}" for s in splits]
    lines.append("| **all** | | | " + " | ".join(split_totals) + f" | {n:,} | 100% |")
    return lines


def _site_table(card: DatasetCard) -> list[str]:
    header = ["site", *(f"`{c}`" for c in card.classes), "total", "malignant share"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for site, counts in card.by_site.items():
        total = sum(counts.values())
        malignant = sum(counts.get(c, 0) for c in card.malignant)
        cells = [f"{counts.get(c, 0):,}" for c in card.classes]
        share = f"{100 * malignant / total:.1f}%" if total else "n/a"
        lines.append(f"| {site} | " + " | ".join(cells) + f" | {total:,} | {share} |")
    return lines


def _count_line(what: str, counts: Mapping[str, int]) -> list[str]:
    shown = ", ".join(f"{k} {v:,}" for k, v in counts.items())
    return [f"- **{what}**: {shown}"]


def _leakage_lines(card: DatasetCard) -> list[str]:
    if not card.leakage:
        return [
            "No splits assigned yet: assign them with "
            "`skinml-data split MANIFEST --strategy lesion` (grouped, stratified)."
        ]
    out = []
    for col, n in card.leakage.items():
        what = col.removesuffix("_id")
        known = card.n_lesions if col == "lesion_id" else card.n_patients
        if known is None and col == "patient_id" and card.n_lesions is not None:
            out.append("- by `patient_id`: patient ids not recorded; lesion ids stand in (above)")
            continue
        if known is None:
            out.append(f"- by `{col}`: cannot be checked, {what} ids are not recorded")
            continue
        verdict = (
            "none: splits are grouped"
            if n == 0
            else (
                f"**{n:,} {what}s have images in more than one split** "
                "(test metrics are optimistic; re-split with `--strategy lesion`)"
            )
        )
        out.append(f"- by `{col}`: {verdict}")
    return out
