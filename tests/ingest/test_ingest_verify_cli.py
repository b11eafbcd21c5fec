"""``skinml-ingest verify`` and the command line."""

from __future__ import annotations

import shutil

import pytest

from skinml.cli.ingest import build_parser, main
from skinml.ingest import verify_dataset


@pytest.fixture
def dataset_copy(ingested, tmp_path):
    _, result = ingested
    return shutil.copytree(result.dataset_dir, tmp_path / "dataset")


def test_verify_passes_on_a_fresh_dataset(dataset_copy, capsys) -> None:
    assert main(["verify", str(dataset_copy)]) == 0
    out = capsys.readouterr().out
    assert "OK: all 21 files match SHA256SUMS" in out  # 18 images + manifest + 2 card files


def test_verify_names_changed_missing_and_unexpected_files(dataset_copy, capsys) -> None:
    images = sorted((dataset_copy / "images").rglob("*.jpg"))
    changed, missing = images[0], images[1]
    data = bytearray(changed.read_bytes())
    data[len(data) // 2] ^= 0xFF
    changed.write_bytes(bytes(data))
    missing.unlink()
    extra = dataset_copy / "images" / "simulated_north" / "smuggled.jpg"
    extra.write_bytes(b"x")
    assert main(["verify", str(dataset_copy)]) == 1
    out = capsys.readouterr().out
    rel = lambda p: p.relative_to(dataset_copy).as_posix()  # noqa: E731
    assert f"changed: {rel(changed)}" in out
    assert f"missing: {rel(missing)}" in out
    assert f"unexpected: {rel(extra)}" in out
    result = verify_dataset(dataset_copy)
    assert (result.changed, result.missing) == ([rel(changed)], [rel(missing)])


def test_verify_notices_an_edited_manifest(dataset_copy) -> None:
    manifest = dataset_copy / "manifest.csv"
    manifest.write_text(manifest.read_text().replace(",nv,", ",mel,", 1))
    result = verify_dataset(dataset_copy)
    assert result.changed == ["manifest.csv"] and not result.ok


def test_verify_refuses_a_folder_that_is_not_a_dataset(tmp_path, capsys) -> None:
    assert main(["verify", str(tmp_path)]) == 2
    assert "no SHA256SUMS" in capsys.readouterr().err


def test_help_teaches_with_examples(capsys) -> None:
    text = build_parser().format_help()
    assert "examples:" in text and "skinml-ingest run" in text and "skinml-ingest verify" in text
    with pytest.raises(SystemExit) as exc:
        main(["run", "--help"])
    assert exc.value.code == 0
    assert "--key-file" in capsys.readouterr().out


def test_cli_run_then_verify(sim, deliveries, tmp_path, capsys) -> None:
    out = tmp_path / "ds"
    code = main(
        [
            "run",
            str(deliveries.north),
            str(deliveries.south),
            "--out",
            str(out),
            "--key-file",
            str(deliveries.key_file),
            "--max-pixels",
            str(sim.OVERSIZE_PIXELS),
            "--quiet",
        ]
    )
    assert code == 0
    printed = capsys.readouterr().out
    assert "32 inputs received = 18 accepted + 14 rejected" in printed
    assert str(out / "rejected.csv") in printed and str(out / "ingest_report.html") in printed
    assert sim.KEY.decode() not in printed
    assert main(["verify", str(out)]) == 0


def test_cli_without_a_key_explains_how_to_make_one(
    deliveries, tmp_path, capsys, monkeypatch
) -> None:
    monkeypatch.delenv("SKINML_PSEUDONYM_KEY", raising=False)
    code = main(["run", str(deliveries.north), "--out", str(tmp_path / "ds"), "--quiet"])
    assert code == 2
    err = capsys.readouterr().err
    assert "no pseudonymisation key" in err and "secrets.token_hex" in err
    assert not (tmp_path / "ds").exists()


def test_cli_key_from_environment(sim, deliveries, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("SKINML_PSEUDONYM_KEY", sim.KEY.decode())
    assert main(["run", str(deliveries.south), "--out", str(tmp_path / "ds"), "--quiet"]) == 0
    assert (tmp_path / "ds" / "manifest.csv").is_file()


def test_cli_reports_a_missing_delivery(sim, tmp_path, capsys, deliveries) -> None:
    code = main(
        [
            "run",
            str(tmp_path / "nope"),
            "--out",
            str(tmp_path / "ds"),
            "--key-file",
            str(deliveries.key_file),
            "--quiet",
        ]
    )
    assert code == 2
    assert "delivery folder does not exist" in capsys.readouterr().err
