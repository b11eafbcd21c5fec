"""The dataset card: what is in an ingested dataset, and the checksum of every file.

Written as JSON (for tools) and Markdown (for people). It holds no run time,
no source paths and no identifiers, so that ingesting the same deliveries twice
gives a byte-identical card and the card can travel with the dataset.
"""

from __future__ import annotations

import json
from os import PathLike
from pathlib import Path

import pandas as pd

from skinml.ingest.config import IngestConfig

CARD_JSON = "dataset_card.json"
CARD_MD = "dataset_card.md"


def build_card(
    manifest: pd.DataFrame, rejected: pd.DataFrame, config: IngestConfig, *, name: str
) -> dict:
    """The card as a plain dict (pure function of the manifest, rejections and settings)."""
    per_site = (
        manifest.groupby(["site", "label"]).size().unstack(fill_value=0).sort_index()
        if len(manifest)
        else pd.DataFrame()
    )
    dup = manifest[manifest["duplicate_kind"] != "none"] if len(manifest) else manifest
    conflicts = rejected[rejected["stage"] == "conflict"] if len(rejected) else rejected
    return {
        "name": name,
        "created_by": f"skinml-ingest {_version()}",
        "image_settings": config.image_settings(),
        "n_images": len(manifest),
        "n_rejected": len(rejected),
        "classes": sorted(manifest["label"].unique().tolist()) if len(manifest) else [],
        "counts_per_site_label": {
            site: {lab: int(n) for lab, n in row.items() if n} for site, row in per_site.iterrows()
        },
        "counts_per_device": {
            str(k): int(v) for k, v in manifest["device"].value_counts().sort_index().items()
        },
        "rejected_per_stage": {
            str(k): int(v) for k, v in rejected["stage"].value_counts().sort_index().items()
        },
        "label_conflicts": {
            "inputs_rejected": len(conflicts),
            "images": int(conflicts["reason"].nunique()) if len(conflicts) else 0,
            "policy": "exact copies (same file or same decoded pixels) with different labels "
            "are all rejected (stage 'conflict') until the deliveries agree; no label is chosen",
        },
        "duplicates": {
            "images_in_groups": len(dup),
            "groups": int(dup["duplicate_group"].nunique()) if len(dup) else 0,
            "exact_images": int((manifest["duplicate_kind"] == "exact").sum()),
            "near_images": int((manifest["duplicate_kind"] == "near").sum()),
            "near_threshold_phash_bits": config.near_threshold,
        },
        "grouping": "duplicate images share a lesion_id (as delivered: lesion_id_delivered), "
        "so skinml.data.splits' lesion and patient strategies keep copies together; "
        "split_group joins rows sharing a patient, lesion or duplicate group; patient_id and "
        "lesion_id are keyed HMAC-SHA256 pseudonyms",
        "privacy": "images re-encoded from pixels: no EXIF, GPS, maker notes, thumbnails, ICC, "
        "XMP or comments; free-text CSV columns dropped unless kept explicitly",
        "files": dict(zip(manifest["image"], manifest["sha256"], strict=True)),
    }


def write_card(card: dict, out_dir: str | PathLike[str]) -> tuple[Path, Path]:
    """Write ``dataset_card.json`` and ``dataset_card.md``; return both paths."""
    out_dir = Path(out_dir)
    js = out_dir / CARD_JSON
    js.write_text(json.dumps(card, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    md = out_dir / CARD_MD
    md.write_text(card_markdown(card), encoding="utf-8")
    return js, md


def card_markdown(card: dict) -> str:
    """The human-readable card."""
    lines = [
        f"# Dataset card: {card['name']}",
        "",
        f"Made by {card['created_by']}. {card['n_images']} images, "
        f"{card['n_rejected']} inputs rejected (see rejected.csv, kept inside the centre).",
        "",
        f"Image settings: `{json.dumps(card['image_settings'], sort_keys=True)}`.",
        "",
        "## Images per hospital and label",
        "",
    ]
    classes = card["classes"]
    lines.append("| hospital | " + " | ".join(classes) + " | total |")
    lines.append("|---|" + "---:|" * (len(classes) + 1))
    for site, counts in sorted(card["counts_per_site_label"].items()):
        cells = [str(counts.get(c, 0)) for c in classes]
        lines.append(f"| {site} | " + " | ".join(cells) + f" | {sum(counts.values())} |")
    lines += ["", "## Devices", "", "| device | images |", "|---|---:|"]
    lines += [f"| {d} | {n} |" for d, n in card["counts_per_device"].items()]
    d = card["duplicates"]
    lines += [
        "",
        "## Duplicates",
        "",
        f"{d['images_in_groups']} images in {d['groups']} duplicate groups "
        f"({d['exact_images']} exact, {d['near_images']} near; pHash distance <= "
        f"{d['near_threshold_phash_bits']} bits).",
        "",
        f"Label conflicts: {_conflict_line(card)}",
        "",
        f"Grouping: {card['grouping']}.",
        "",
        f"Privacy: {card['privacy']}.",
        "",
        "## Checksums",
        "",
        "SHA-256 of every image is in `dataset_card.json` (`files`) and, with the manifest and "
        "this card, in `SHA256SUMS`; check with `skinml-ingest verify DATASET_DIR`.",
        "",
    ]
    return "\n".join(lines)


def _conflict_line(card: dict) -> str:
    c = card.get("label_conflicts", {})
    if not c.get("inputs_rejected"):
        return "none (no image arrived with two different labels)."
    return (
        f"{c['images']} image(s) arrived with different labels; all {c['inputs_rejected']} "
        f"copies were rejected and are not in this dataset ({c['policy']})."
    )


def _version() -> str:
    import skinml

    return skinml.__version__
