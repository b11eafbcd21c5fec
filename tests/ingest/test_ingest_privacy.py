"""Privacy: no metadata in output images; keyed pseudonyms; no key, identifier or name leaks."""

from __future__ import annotations

import re

import pandas as pd
from PIL import Image

from skinml.ingest import IngestConfig, run_ingest

_IMAGE_INFO_KEYS = {
    "exif",
    "icc_profile",
    "xmp",
    "XML:com.adobe.xmp",
    "comment",
    "Comment",
    "photoshop",
    "dpi",
    "jfif_density",
}


def _jpeg_segments(data: bytes) -> list[int]:
    """Marker bytes of the JPEG segments before the scan data."""
    assert data[:2] == b"\xff\xd8"
    i, markers = 2, []
    while i < len(data):
        marker = data[i + 1]
        markers.append(marker)
        if marker == 0xDA:  # start of scan: compressed data follows
            break
        length = int.from_bytes(data[i + 2 : i + 4], "big")
        i += 2 + length
    return markers


def _all_files(root):
    return [p for p in root.rglob("*") if p.is_file()]


def test_output_images_carry_no_metadata(ingested) -> None:
    d, result = ingested
    images = [result.dataset_dir / p for p in result.manifest["image"]]
    assert len(images) == d.n_good
    for path in images:
        data = path.read_bytes()
        with Image.open(path) as img:
            assert len(img.getexif()) == 0, path
            leaked = _IMAGE_INFO_KEYS & set(img.info) - {
                "jfif",
                "jfif_version",
                "jfif_unit",
                "jfif_density",
                "dpi",
            }
            assert not leaked, (path, leaked)
        assert b"Exif" not in data and b"GPS" not in data
        assert b"MAKERNOTE" not in data and b"SimCam" not in data and b"acsp" not in data
        # only the JFIF header (APP0), quantisation/huffman tables, frame header and scan
        assert set(_jpeg_segments(data)) <= {0xE0, 0xDB, 0xC4, 0xC0, 0xC2, 0xDD, 0xDA}


def test_gps_source_really_had_metadata(sim, ingested) -> None:
    """Guard against a vacuous privacy test: the inputs do carry GPS, maker notes and ICC."""
    d, _ = ingested
    with Image.open(d.north / sim.NORTH_PATIENT_FILE) as img:
        exif = img.getexif()
        assert exif.get_ifd(0x8825)[1] == "N"
        assert b"MAKERNOTE" in exif.get_ifd(0x8769)[0x927C]
        assert "icc_profile" in img.info and "comment" in img.info


def test_key_and_original_identifiers_appear_in_no_output_file(sim, ingested) -> None:
    _d, result = ingested
    needles = [
        sim.KEY,
        sim.KEY.hex().encode(),
        sim.PATIENT_NAME.encode(),
        sim.FREE_TEXT.encode(),
        b"Doe^Jane",
        b"Rigby",
    ] + [i.encode() for i in sim.CSV_IDS]
    files = _all_files(result.dataset_dir)
    assert any(p.name == "rejected.csv" for p in files)
    assert any(".ingest" in p.parts for p in files)  # the journal is checked too
    for path in files:
        data = path.read_bytes()
        for needle in needles:
            assert needle not in data, (path, needle)


def test_output_names_come_from_hashes_not_original_names(ingested) -> None:
    _, result = ingested
    pattern = re.compile(r"^images/simulated_(north|south)/[0-9a-f]{20}\.jpg$")
    assert all(pattern.match(p) for p in result.manifest["image"])
    assert all(
        row["image"].split("/")[-1][:20] == row["source_sha256"][:20]
        for row in result.manifest.to_dict("records")
    )


def test_identifiers_are_keyed_pseudonyms(sim, ingested, tmp_path) -> None:
    from skinml.privacy.pseudonym import pseudonymise

    d, result = ingested
    south = result.manifest[result.manifest["site"] == "simulated_south"]
    expected = pseudonymise("simulated_south|patient|MRN-000123", sim.KEY, prefix="P-")
    assert (south["patient_id"] == expected).sum() == 2
    assert south["lesion_id"].str.startswith("L-").sum() == 2

    # same key, a new run elsewhere: the same pseudonyms (later deliveries link up)
    again = run_ingest([d.south], tmp_path / "again", sim.KEY, progress=False)
    assert set(again.manifest["patient_id"]) == set(south["patient_id"])
    # another key: no pseudonym in common
    other = run_ingest(
        [d.south], tmp_path / "other", b"another-key-of-32-bytes-0123456789", progress=False
    )
    assert not set(other.manifest["patient_id"]) & set(south["patient_id"])


def test_a_later_delivery_links_to_the_same_patient(sim, deliveries, tmp_path) -> None:
    later = tmp_path / "inbox_2026_12"
    (later / "photos").mkdir(parents=True)
    sim.textured(60).save(later / "photos/e.png")
    (later / "cases.csv").write_text("image,label,patient_id\nphotos/e.png,mel,MRN-000123\n")
    result = run_ingest(
        [deliveries.south, later],
        tmp_path / "ds",
        sim.KEY,
        hospitals=["simulated_south", "simulated_south"],
        progress=False,
    )
    import hashlib

    rows = result.manifest
    e_sha = hashlib.sha256((later / "photos/e.png").read_bytes()).hexdigest()
    e_patient = rows.loc[rows["source_sha256"] == e_sha, "patient_id"].item()
    first_delivery = set(rows.loc[rows["lesion_id"].str.startswith("L-"), "patient_id"])
    assert first_delivery == {e_patient}


def test_id_scope_decides_whether_hospitals_share_identifiers(sim, tmp_path) -> None:
    roots = []
    for name in ("simulated_a", "simulated_b"):
        root = tmp_path / name
        (root / "img").mkdir(parents=True)
        sim.textured(70 + len(roots)).save(root / "img/x.png")
        (root / "cases.csv").write_text("image,label,patient_id\nimg/x.png,nv,12345\n")
        roots.append(root)
    local = run_ingest(roots, tmp_path / "local", sim.KEY, progress=False)
    shared = run_ingest(
        roots, tmp_path / "global", sim.KEY, IngestConfig(id_scope="global"), progress=False
    )
    assert local.manifest["patient_id"].nunique() == 2
    assert shared.manifest["patient_id"].nunique() == 1


def test_free_text_columns_are_dropped_unless_kept(sim, deliveries, tmp_path) -> None:
    default = pd.read_csv(
        run_ingest([deliveries.south], tmp_path / "a", sim.KEY, progress=False).manifest_path
    )
    assert {"age", "sex"} <= set(default.columns)
    assert not {"patient_name", "notes"} & set(default.columns)
    kept = run_ingest(
        [deliveries.south],
        tmp_path / "b",
        sim.KEY,
        IngestConfig(keep_columns=("notes",)),
        progress=False,
    )
    assert "notes" in kept.manifest.columns
    assert "patient_name" not in kept.manifest.columns
