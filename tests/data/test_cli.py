"""``skinml-data``: list, card, verify, split (called in-process through ``main``)."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from skinml.cli.data import main


def test_help_teaches_with_examples(capsys) -> None:
    with pytest.raises(SystemExit) as info:
        main(["--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    assert "skinml-data card isic_uda1" in out and "--strategy lesion" in out


def test_list_names_datasets_and_where_files_are(capsys) -> None:
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    for name in ("ham10000", "isic2017", "isic_uda1", "dermamnist", "uci_dermatology"):
        assert name in out
    assert "embedded in skinml" in out


def test_card_of_embedded_sample(tmp_path, capsys) -> None:
    md, js = tmp_path / "card.md", tmp_path / "card.json"
    assert main(["card", "isic_uda1", "-o", str(md), "--json", str(js)]) == 0
    out = capsys.readouterr().out
    assert "| `nevus` | melanocytic nevus | no | 74 | 74 | 65.5% |" in out
    assert "CC0" in out and "original image size" in out
    assert md.read_text().strip() in out
    assert json.loads(js.read_text())["counts"] == {"unsplit": {"nevus": 74, "melanoma": 39}}


def test_card_of_a_manifest_csv_with_fingerprint(manifest_dir, capsys) -> None:
    assert main(["card", str(manifest_dir / "manifest.csv"), "--fingerprint"]) == 0
    out = capsys.readouterr().out
    assert "| images | 8 |" in out and "| lesions | 4 |" in out
    assert "Dataset fingerprint (SHA-256 of manifest and files):** " in out
    assert "not computed" not in out


def test_verify_ok_and_with_problems_named(manifest_dir, capsys) -> None:
    assert main(["verify", str(manifest_dir / "manifest.csv")]) == 0
    assert "OK: no problems found" in capsys.readouterr().out
    (manifest_dir / "img" / "02.png").write_text("corrupt")
    (manifest_dir / "img" / "05.png").unlink()
    assert main(["verify", str(manifest_dir / "manifest.csv")]) == 1
    out = capsys.readouterr().out
    assert "row 7: img/05.png" in out
    assert "img/02.png: not a recognised image format" in out
    assert "problems found" in out


def test_verify_against_a_checksum_list(manifest_dir, capsys) -> None:
    from skinml.data.fingerprint import file_checksums
    from skinml.data.loaders import load_manifest_csv
    from skinml.integrity.checksums import write_checksum_list

    sums = manifest_dir / "SHA256SUMS"
    write_checksum_list(file_checksums(load_manifest_csv(manifest_dir / "manifest.csv")), sums)
    assert main(["verify", str(manifest_dir / "manifest.csv"), "--no-decode"]) == 0
    assert "all 8 files in" in capsys.readouterr().out
    (manifest_dir / "img" / "06.png").write_bytes((manifest_dir / "img" / "07.png").read_bytes())
    assert main(["verify", str(manifest_dir / "manifest.csv"), "--checksums", str(sums)]) == 1
    assert "changed: img/06.png" in capsys.readouterr().out


def test_verify_embedded_sample(capsys) -> None:
    assert main(["verify", "isic_uda1"]) == 0
    out = capsys.readouterr().out
    assert "all 113 images of 'isic_uda1' decode" in out and "SHA256SUMS match" in out


def test_split_writes_grouped_manifest(manifest_dir, tmp_path, capsys) -> None:
    out_csv = tmp_path / "out" / "split.csv"
    args = [
        "split",
        str(manifest_dir / "manifest.csv"),
        "--strategy",
        "lesion",
        "--val",
        "0.25",
        "--test",
        "0.25",
        "-o",
        str(out_csv),
    ]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert f"manifest written to {out_csv}" in out
    assert "leakage by lesion_id: no leakage" in out
    df = pd.read_csv(out_csv)
    assert set(df["split"]) == {"train", "val", "test"}
    assert (df.groupby("lesion_id")["split"].nunique() == 1).all()
    assert (out_csv.parent / df["image"].iloc[0]).resolve().is_file()


def test_unknown_source_is_a_clear_error(capsys) -> None:
    assert main(["card", "no_such_dataset"]) == 2
    err = capsys.readouterr().err
    assert "neither a registered dataset nor a manifest file" in err and "isic_uda1" in err
