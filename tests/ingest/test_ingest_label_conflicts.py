"""The same image with two labels is a conflict: reported, kept out, never silently resolved.

And the summary's numbers are the rejections actually made: inputs = accepted + rejected
per stage, each a row of ``rejected.csv`` (SIMULATED images throughout).
"""

from __future__ import annotations

import json
import re

import pandas as pd

from skinml.ingest import run_ingest


def _two_hospitals(tmp_path, sim, labels=("mel", "nv")):
    """North and south each deliver the same JPEG bytes, under ``labels``; plus one other image."""
    roots = []
    picture = sim.jpeg_bytes(sim.textured(60))
    for name, label in zip(("simulated_north", "simulated_south"), labels, strict=True):
        folder = tmp_path / name / label
        folder.mkdir(parents=True)
        (folder / f"{name}_copy.jpg").write_bytes(picture)
        roots.append(folder.parent)
    (roots[0] / labels[0] / "other.jpg").write_bytes(sim.jpeg_bytes(sim.textured(61)))
    return roots


def _by_stage(line: str) -> dict[str, int]:
    """``{stage: n}`` from the summary's 'rejected by reason' line."""
    return {k: int(v) for k, v in re.findall(r"(\w+) (\d+) \(", line.split(": ", 1)[1])}


def test_identical_images_with_different_labels_are_rejected_not_chosen(tmp_path, sim) -> None:
    roots = _two_hospitals(tmp_path, sim)
    result = run_ingest(roots, tmp_path / "ds", sim.KEY, progress=False)
    assert list(result.manifest["label"]) == ["mel"]  # only the unrelated image
    assert "other" not in set(result.rejected["source"])
    conflict = result.rejected[result.rejected["stage"] == "conflict"]
    assert sorted(conflict["hospital"]) == ["simulated_north", "simulated_south"]
    for reason in conflict["reason"]:  # every copy names both labels and both places
        assert "'mel' at simulated_north" in reason and "'nv' at simulated_south" in reason
        assert "no copy is used" in reason.lower()
    assert len([f for f in (tmp_path / "ds" / "images").rglob("*") if f.is_file()]) == 1
    lines = "\n".join(result.lines)
    assert "LABEL CONFLICTS: 1 image(s)" in lines and "all 2 copies" in lines
    card = json.loads(result.card_path.read_text())
    assert card["label_conflicts"]["images"] == 1
    assert card["label_conflicts"]["inputs_rejected"] == 2
    assert (
        "1 image(s) arrived with different labels"
        in (result.dataset_dir / "dataset_card.md").read_text()
    )
    assert "Label conflicts (kept out of the dataset)" in result.report_path.read_text()


def test_same_image_same_label_across_hospitals_is_kept_and_grouped(tmp_path, sim) -> None:
    roots = _two_hospitals(tmp_path, sim, labels=("nv", "nv"))
    result = run_ingest(roots, tmp_path / "ds", sim.KEY, progress=False)
    assert len(result.manifest) == 3 and result.rejected.empty
    assert "label conflicts: none" in "\n".join(result.lines)


def test_conflict_within_one_hospital_keeps_neither(tmp_path, sim) -> None:
    root = tmp_path / "simulated_twice"
    for label in ("mel", "nv"):
        (root / label).mkdir(parents=True)
        (root / label / "x.jpg").write_bytes(sim.jpeg_bytes(sim.textured(50)))
    result = run_ingest([root], tmp_path / "ds", sim.KEY, progress=False)
    assert result.manifest.empty
    assert list(result.rejected["stage"]) == ["conflict", "conflict"]


def test_same_pixels_in_two_encodings_with_different_labels_conflict(tmp_path, sim) -> None:
    """A PNG and a BMP of one picture differ in bytes but not in decoded pixels."""
    root = tmp_path / "simulated_formats"
    for label, ext in (("mel", "png"), ("nv", "bmp")):
        (root / label).mkdir(parents=True)
        sim.textured(70).save(root / label / f"x.{ext}")
    result = run_ingest([root], tmp_path / "ds", sim.KEY, progress=False)
    assert result.manifest.empty
    assert list(result.rejected["stage"]) == ["conflict", "conflict"]
    assert "same decoded image" in result.rejected.iloc[0]["reason"]
    assert not list((tmp_path / "ds" / "images").rglob("*.jpg"))  # nothing left on disk


def test_case_list_naming_a_file_twice_with_two_labels_is_a_conflict(tmp_path, sim) -> None:
    root = tmp_path / "simulated_csv"
    (root / "photos").mkdir(parents=True)
    sim.textured(80).save(root / "photos" / "a.png")
    sim.textured(81).save(root / "photos" / "b.png")
    (root / "cases.csv").write_text(
        "image,label\nphotos/a.png,mel\nphotos/b.png,nv\nphotos/a.png,mel\nphotos/a.png,nv\n"
    )
    result = run_ingest([root], tmp_path / "ds", sim.KEY, progress=False)
    assert list(result.manifest["label"]) == ["nv"]  # b.png only
    rej = result.rejected.set_index("csv_row")
    assert rej.loc[2, "stage"] == "conflict" and rej.loc[5, "stage"] == "conflict"
    assert "'mel' at row 2; 'nv' at row 5" in rej.loc[2, "reason"]
    assert rej.loc[4, "stage"] == "discover"  # same label again: an ordinary repeat listing
    assert len(result.manifest) + len(result.rejected) == result.n_inputs == 4


def test_fixing_the_label_and_rerunning_accepts_both_copies(tmp_path, sim) -> None:
    roots = _two_hospitals(tmp_path, sim)
    run_ingest(roots, tmp_path / "ds", sim.KEY, progress=False)
    (roots[1] / "nv").rename(roots[1] / "mel")
    result = run_ingest(roots, tmp_path / "ds", sim.KEY, progress=False)
    assert len(result.manifest) == 3 and result.rejected.empty


def test_summary_counts_are_the_rows_of_rejected_csv(ingested) -> None:
    d, result = ingested
    rejected = pd.read_csv(result.rejected_path, dtype=str, keep_default_na=False)
    head = result.lines[0]
    n_in, n_ok, n_bad = map(
        int, re.match(r"(\d+) inputs received = (\d+) accepted \+ (\d+)", head).groups()
    )
    assert (n_in, n_ok, n_bad) == (d.n_inputs, len(result.manifest), len(rejected))
    assert n_in == n_ok + n_bad
    by_stage = _by_stage(next(x for x in result.lines if x.startswith("rejected by reason")))
    assert by_stage == rejected["stage"].value_counts().to_dict()
    assert sum(by_stage.values()) == n_bad
    card = json.loads(result.card_path.read_text())
    assert card["rejected_per_stage"] == by_stage
    # the kept duplicates are reported apart from the rejections, with their own count
    dup_line = next(x for x in result.lines if x.startswith("duplicates kept"))
    assert "3 images in 1 groups (2 exact, 1 near)" in dup_line


def test_near_duplicates_with_different_labels_are_reported(ingested) -> None:
    _, result = ingested
    line = next(x for x in result.lines if x.startswith("near-duplicates with different labels"))
    assert "1 group(s), 3 images" in line
    assert "Near-duplicates with different labels" in result.report_path.read_text()


def test_synonyms_of_one_diagnosis_are_no_conflict(tmp_path, sim) -> None:
    """North's Melanoma/ folder and south's mel/ folder hold the same picture: one label, mel."""
    roots = _two_hospitals(tmp_path, sim, labels=("Melanoma", "mel"))
    result = run_ingest(roots, tmp_path / "ds", sim.KEY, progress=False)
    assert result.rejected.empty
    assert list(result.manifest["label"]) == ["mel", "mel", "mel"]


def test_classes_reject_labels_outside_them_and_say_what_is_accepted(tmp_path, sim) -> None:
    from skinml.ingest import IngestConfig

    root = tmp_path / "simulated_east"
    for folder, seed in (("naevus", 80), ("bcc", 81)):
        (root / folder).mkdir(parents=True)
        (root / folder / "x.jpg").write_bytes(sim.jpeg_bytes(sim.textured(seed)))
    (root / "cases.csv").write_text(
        "image,label\nnaevus/x.jpg,Naevus\nbcc/x.jpg,Basal cell carcinoma\n"
    )
    config = IngestConfig(classes=("mel", "nevus"))
    result = run_ingest([root], tmp_path / "ds", sim.KEY, config, progress=False)
    assert list(result.manifest["label"]) == ["nevus"]  # the class's own spelling
    (reason,) = result.rejected["reason"]
    assert "'Basal cell carcinoma'" in reason and "column 'label' of cases.csv" in reason
    assert "['mel', 'nevus']" in reason and "skinml-data vocabulary" in reason
    assert result.rejected["csv_row"].tolist() == [3]
