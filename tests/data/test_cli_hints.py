"""Issue 15: ``skinml-data`` speaks in its own flags, and a card's hints name what you have."""

from __future__ import annotations

from skinml.cli.data import main


def test_missing_images_fix_names_the_flag_not_the_python_argument(manifest_dir, capsys):
    (manifest_dir / "img" / "05.png").unlink()
    assert main(["card", str(manifest_dir / "manifest.csv")]) == 2
    err = capsys.readouterr().err
    assert "--on-missing exclude" in err and "on_missing=" not in err
    assert "img/05.png" in err and "(1 problem)" in err and err.count("Fix:") == 1


def test_card_of_a_manifest_csv_hints_at_that_csv(manifest_dir, capsys):
    csv = manifest_dir / "manifest.csv"
    assert main(["card", str(csv)]) == 0
    out = capsys.readouterr().out
    use = out.split("## Use it", 1)[1]
    assert f"load_manifest_csv({str(csv.resolve())!r})" in use
    assert f"skinml-data verify {csv.resolve()}" in use
    assert f"skinml-data split {csv.resolve()}" in use
    assert "get_dataset" not in use
    assert f"skinml-data card {csv.resolve()} --fingerprint" in out


def test_card_of_a_registered_dataset_hints_at_its_name(capsys):
    assert main(["card", "isic_uda1"]) == 0
    use = capsys.readouterr().out.split("## Use it", 1)[1]
    assert "get_dataset('isic_uda1')" in use and "skinml-data verify isic_uda1" in use
