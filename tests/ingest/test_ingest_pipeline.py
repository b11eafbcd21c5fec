"""End-to-end ingest of the simulated deliveries: accounting, rejections, normalisation."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from skinml.data.manifest import MANIFEST_COLUMNS, read_manifest
from skinml.imaging.read import read_image
from skinml.ingest import IngestConfig, run_ingest


def test_every_input_is_accepted_or_rejected(ingested) -> None:
    d, result = ingested
    manifest = pd.read_csv(result.manifest_path)
    rejected = pd.read_csv(result.rejected_path)
    assert result.n_inputs == d.n_inputs
    assert len(manifest) + len(rejected) == d.n_inputs  # the accounting identity
    assert len(manifest) == d.n_good
    assert len(rejected) == d.n_inputs - d.n_good


def test_each_bad_input_is_rejected_with_its_reason(ingested) -> None:
    d, result = ingested
    rejected = pd.read_csv(result.rejected_path, dtype=str, keep_default_na=False)
    got = {}
    for rec in rejected.to_dict("records"):
        key = rec["source"]
        if rec["source"] == "photos/a.png":
            key = f"photos/a.png#{rec['csv_row']}"
        got[(rec["hospital"], key)] = rec["reason"]
    assert set(got) == set(d.expected_rejections)
    for key, words in d.expected_rejections.items():
        reason = got[key].lower()
        alternatives = {"corrupt": ("corrupt", "not a recognised image")}.get(words, (words,))
        assert any(w.lower() in reason for w in alternatives), (key, reason)
    # every reason says what to do or what was wrong, never just "error"
    assert all(len(r) > 20 for r in rejected["reason"])


def test_manifest_meets_the_contract_and_points_at_clean_rgb_images(ingested) -> None:
    _, result = ingested
    manifest = read_manifest(result.manifest_path)
    assert list(manifest.frame.columns[: len(MANIFEST_COLUMNS)]) == list(MANIFEST_COLUMNS)
    for col in ("duplicate_group", "split_group", "sha256", "source_sha256"):
        assert manifest.frame[col].notna().all()
    for path in manifest.paths():
        assert path.is_file()
        assert path.suffix == ".jpg"
        with Image.open(path) as img:
            assert img.format == "JPEG" and img.mode == "RGB"
    modes = set(manifest.frame["source_mode"])
    assert {"CMYK", "L", "P", "RGBA", "I;16"} <= modes
    assert {"BMP", "TIFF", "PNG", "JPEG", "DICOM"} <= set(manifest.frame["source_format"])


def test_exif_orientation_is_applied(ingested, sim) -> None:
    d, result = ingested
    m = result.manifest
    # rot6.jpg is the asymmetric 80x40 image, stored with orientation 6 (rotate 90 degrees cw)
    src = d.north / "nevus/rot6.jpg"
    row = m[m["source_sha256"] == _sha(src)].iloc[0]
    assert (row["width"], row["height"]) == (40, 80)
    out = np.asarray(Image.open(result.dataset_dir / row["image"]), dtype=float)
    expected = np.asarray(sim.asymmetric().transpose(Image.Transpose.ROTATE_270), dtype=float)
    assert out.shape == expected.shape
    assert np.abs(out - expected).mean() < 6  # only JPEG noise
    # red (left half before rotation) is now the top half
    assert out[:20, :, 0].mean() > 150 and out[60:, :, 2].mean() > 150
    for name, size in (("rot3.jpg", (96, 72)), ("rot8.jpg", (72, 96))):
        row = m[m["source_sha256"] == _sha(d.north / "nevus" / name)].iloc[0]
        assert (row["width"], row["height"]) == size


def test_transparency_and_16_bit_are_converted_sensibly(ingested) -> None:
    d, result = ingested
    m = result.manifest
    deep = m[m["source_mode"] == "I;16"].iloc[0]
    arr = np.asarray(Image.open(result.dataset_dir / deep["image"]))
    assert arr.min() < 40 and arr.max() > 215  # rescaled by its range, not clipped to white
    alpha = m[m["source_mode"] == "RGBA"].iloc[0]
    out = np.asarray(read_image(result.dataset_dir / alpha["image"]), dtype=float)
    src = np.asarray(Image.open(d.north / "nevus/alpha.png").convert("RGB"), dtype=float)
    # composited half-transparent on white: brighter than the colour channels alone
    assert out.mean() > src.mean() + 20


def test_dicom_photo_is_ingested_with_header_device_and_pseudonymised_patient(ingested) -> None:
    _, result = ingested
    row = result.manifest[result.manifest["source_format"] == "DICOM"].iloc[0]
    assert row["device"] == "SimDerm DermaScope X"
    assert row["patient_id"].startswith("P-") and "DICOM" not in row["patient_id"]
    assert (row["width"], row["height"]) == (96, 72)


def test_card_counts_and_checksums(ingested) -> None:
    d, result = ingested
    card = json.loads(result.card_path.read_text())
    assert card["n_images"] == d.n_good
    assert card["n_rejected"] == d.n_inputs - d.n_good
    # label folders and case lists go through the diagnosis vocabulary: melanoma/ is mel
    assert card["counts_per_site_label"]["simulated_north"] == {"mel": 3, "nv": 9}
    assert card["counts_per_site_label"]["simulated_south"] == {"mel": 2, "nv": 4}
    assert card["files"] == dict(
        zip(result.manifest["image"], result.manifest["sha256"], strict=True)
    )
    report = result.report_path.read_text()
    assert "Rejected inputs (14)" in report and "nevus/truncated.jpg" in report
    assert "patient_name" in report and "notes" in report  # dropped columns are listed


def test_png_output_and_max_side(deliveries, tmp_path, sim) -> None:
    config = IngestConfig(fmt="png", max_side=48, max_pixels=sim.OVERSIZE_PIXELS)
    result = run_ingest([deliveries.north], tmp_path / "ds", sim.KEY, config, progress=False)
    assert len(result.manifest) == 12
    for rec in result.manifest.to_dict("records"):
        path = result.dataset_dir / rec["image"]
        assert path.suffix == ".png"
        with Image.open(path) as img:
            assert img.format == "PNG" and max(img.size) == 48
            assert (img.width, img.height) == (rec["width"], rec["height"])


def test_hospital_option_names_the_site(deliveries, tmp_path, sim) -> None:
    result = run_ingest(
        [deliveries.north],
        tmp_path / "ds",
        sim.KEY,
        IngestConfig(max_pixels=sim.OVERSIZE_PIXELS),
        hospitals=["County North"],
        progress=False,
    )
    assert set(result.manifest["site"]) == {"County_North"}
    assert all(p.startswith("images/County_North/") for p in result.manifest["image"])


def test_unreadable_file_is_rejected(deliveries, tmp_path, monkeypatch, sim) -> None:
    """Tests run as root, so chmod 000 does not block reading: simulate the OS refusal."""
    import skinml.ingest.arrival as arrival

    real = arrival.sha256_file

    def refuse(path):
        if str(path).endswith("grey.png"):
            raise PermissionError(13, "Permission denied", str(path))
        return real(path)

    monkeypatch.setattr(arrival, "sha256_file", refuse)
    result = run_ingest(
        [deliveries.north],
        tmp_path / "ds",
        sim.KEY,
        IngestConfig(max_pixels=sim.OVERSIZE_PIXELS),
        progress=False,
    )
    row = result.rejected[result.rejected["source"] == "nevus/grey.png"].iloc[0]
    assert row["stage"] == "arrival" and "permission denied" in row["reason"]
    assert len(result.manifest) == 11


def test_md5sums_from_the_sender_are_checked(tmp_path, sim) -> None:
    delivery = tmp_path / "simulated_md5" / "nevus"
    delivery.mkdir(parents=True)
    (delivery / "a.jpg").write_bytes(sim.jpeg_bytes(sim.textured(40)))
    (delivery / "b.jpg").write_bytes(sim.jpeg_bytes(sim.textured(41)))
    import hashlib

    md5 = hashlib.md5((delivery / "a.jpg").read_bytes()).hexdigest()
    (delivery.parent / "MD5SUMS").write_text(f"{md5}  nevus/a.jpg\n{'f' * 32}  nevus/b.jpg\n")
    result = run_ingest([delivery.parent], tmp_path / "ds", sim.KEY, progress=False)
    assert list(result.manifest["arrival_check"]) == ["md5-ok"]
    assert "checksum mismatch with the sender's MD5SUMS" in result.rejected.iloc[0]["reason"]


def test_same_file_twice_in_one_hospital_with_one_label_is_kept_once(tmp_path, sim) -> None:
    root = tmp_path / "simulated_twice" / "nv"
    root.mkdir(parents=True)
    for name in ("x.jpg", "copy of x.jpg"):
        (root / name).write_bytes(sim.jpeg_bytes(sim.textured(50)))
    result = run_ingest([root.parent], tmp_path / "ds", sim.KEY, progress=False)
    assert len(result.manifest) == 1 and list(result.rejected["stage"]) == ["dedupe"]
    assert "exact duplicate" in result.rejected.iloc[0]["reason"]


def _sha(path) -> str:
    import hashlib

    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize("bad", [["a"], ["a", "b", "c"]])
def test_hospital_names_must_match_deliveries(deliveries, tmp_path, bad, sim) -> None:
    from skinml.errors import ConfigError

    with pytest.raises(ConfigError, match="hospital names"):
        run_ingest(deliveries.deliveries, tmp_path / "ds", sim.KEY, hospitals=bad, progress=False)


def test_a_delivery_with_nothing_usable_still_gives_a_valid_empty_dataset(sim, tmp_path) -> None:
    from skinml.ingest import verify_dataset

    root = tmp_path / "simulated_bad" / "nv"
    root.mkdir(parents=True)
    (root / "empty.jpg").write_bytes(b"")
    (root / "text.png").write_text("hello")
    result = run_ingest([root.parent], tmp_path / "ds", sim.KEY, progress=False)
    assert result.manifest.empty and len(result.rejected) == 2
    assert pd.read_csv(result.manifest_path).empty
    assert json.loads(result.card_path.read_text())["n_images"] == 0
    assert verify_dataset(result.dataset_dir).ok


def test_embedded_srgb_profile_is_dropped_without_changing_pixels(sim, tmp_path) -> None:
    from PIL import ImageCms

    from skinml.ingest.normalise import to_srgb

    img = sim.textured(90)
    img.info["icc_profile"] = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    out, converted = to_srgb(img)
    assert not converted and np.array_equal(np.asarray(out), np.asarray(img))
    img.info["icc_profile"] = b"not a profile"
    assert to_srgb(img)[1] is False


def test_ingest_report_fits_a_laptop_screen_in_chromium(ingested, fits_laptop_screen):
    _, result = ingested
    fits_laptop_screen(result.report_path)
