"""Resumable after an interruption, idempotent and deterministic."""

from __future__ import annotations

import json

import pytest

import skinml.ingest.pipeline as pipeline
from skinml.ingest import IngestConfig, run_ingest, verify_dataset


def _snapshot(root) -> dict[str, bytes]:
    """Every file of the shareable dataset (the journal and report excluded)."""
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and ".ingest" not in p.parts and p.name != "ingest_report.html"
    }


@pytest.fixture
def config(sim) -> IngestConfig:
    return IngestConfig(max_pixels=sim.OVERSIZE_PIXELS)


def test_second_run_reuses_everything_and_changes_nothing(
    sim, deliveries, tmp_path, config
) -> None:
    out = tmp_path / "ds"
    first = run_ingest(deliveries.deliveries, out, sim.KEY, config, progress=False)
    before = _snapshot(out)
    second = run_ingest(deliveries.deliveries, out, sim.KEY, config, progress=False)
    assert first.n_processed == 22 and first.n_resumed == 0  # 18 good + 4 that fail to decode
    assert second.n_resumed == 18 and second.n_processed == 4
    assert _snapshot(out) == before
    assert "rejected.csv" in before and "manifest.csv" in before


def test_two_fresh_runs_are_byte_identical(sim, deliveries, tmp_path, config) -> None:
    # same folder name: the card is named after the dataset folder
    run_ingest(deliveries.deliveries, tmp_path / "a" / "ds", sim.KEY, config, progress=False)
    run_ingest(deliveries.deliveries, tmp_path / "b" / "ds", sim.KEY, config, progress=False)
    assert _snapshot(tmp_path / "a" / "ds") == _snapshot(tmp_path / "b" / "ds")


def test_interrupted_run_resumes_without_redoing_finished_files(
    sim, deliveries, tmp_path, config, monkeypatch
) -> None:
    real = pipeline.normalise_file
    calls = {"n": 0}

    def dies_on_the_sixth(job):
        calls["n"] += 1
        if calls["n"] == 6:
            raise KeyboardInterrupt("simulated Ctrl-C")
        return real(job)

    out = tmp_path / "ds"
    monkeypatch.setattr(pipeline, "normalise_file", dies_on_the_sixth)
    with pytest.raises(KeyboardInterrupt):
        run_ingest(deliveries.deliveries, out, sim.KEY, config, progress=False)
    journaled = list((out / ".ingest" / "journal").glob("*.json"))
    assert not (out / "manifest.csv").exists()
    monkeypatch.setattr(pipeline, "normalise_file", real)

    resumed = run_ingest(deliveries.deliveries, out, sim.KEY, config, progress=False)
    assert 1 <= len(journaled) <= 5  # up to 5 done; failures to decode are not journaled
    assert resumed.n_resumed == len(journaled)
    assert resumed.n_processed == 22 - len(journaled)
    run_ingest(deliveries.deliveries, tmp_path / "clean" / "ds", sim.KEY, config, progress=False)
    assert _snapshot(out) == _snapshot(tmp_path / "clean" / "ds")
    assert verify_dataset(out).ok


def test_changed_settings_or_tampered_output_are_redone(sim, deliveries, tmp_path, config) -> None:
    out = tmp_path / "ds"
    run_ingest([deliveries.north], out, sim.KEY, config, progress=False)
    victim = sorted((out / "images").rglob("*.jpg"))[0]
    victim.write_bytes(b"tampered")
    again = run_ingest([deliveries.north], out, sim.KEY, config, progress=False)
    assert again.n_resumed == 11 and verify_dataset(out).ok

    smaller = IngestConfig(max_pixels=sim.OVERSIZE_PIXELS, max_side=32)
    third = run_ingest([deliveries.north], out, sim.KEY, smaller, progress=False)
    assert third.n_resumed == 0
    assert max(third.manifest[["width", "height"]].max()) == 32
    card = json.loads((out / "dataset_card.json").read_text())
    assert card["image_settings"]["max_side"] == 32


def test_dropping_a_delivery_removes_its_images(sim, deliveries, tmp_path, config) -> None:
    out = tmp_path / "ds"
    run_ingest(deliveries.deliveries, out, sim.KEY, config, progress=False)
    only_north = run_ingest([deliveries.north], out, sim.KEY, config, progress=False)
    assert not (out / "images" / "simulated_south").exists()
    assert verify_dataset(out).ok and set(only_north.manifest["site"]) == {"simulated_north"}


def test_two_workers_give_the_same_dataset(sim, deliveries, tmp_path, config) -> None:
    run_ingest(deliveries.deliveries, tmp_path / "one" / "ds", sim.KEY, config, progress=False)
    two = IngestConfig(max_pixels=sim.OVERSIZE_PIXELS, workers=2)
    result = run_ingest(
        deliveries.deliveries, tmp_path / "two" / "ds", sim.KEY, two, progress=False
    )
    assert result.n_processed == 22
    assert _snapshot(tmp_path / "one" / "ds") == _snapshot(tmp_path / "two" / "ds")
