"""DICOM dermatology photographs (generated with pydicom)."""

from __future__ import annotations

import numpy as np
import pytest

from skinml.errors import ImageReadError
from skinml.ingest import is_dicom, read_dicom_image, run_ingest
from skinml.ingest.dicom import read_dicom_header


def test_vl_photographic_rgb_round_trips_exactly(sim, tmp_path) -> None:
    img = sim.textured(80, size=(50, 30))
    path = sim.write_dicom(tmp_path / "photo.dcm", img, patient_id="MRN-1")
    assert is_dicom(path)
    out = read_dicom_image(path)
    assert out.mode == "RGB" and out.size == (50, 30)
    assert np.array_equal(np.asarray(out), np.asarray(img))
    header = read_dicom_header(path)
    assert (header.device, header.patient_id) == ("SimDerm DermaScope X", "MRN-1")


def test_non_photographic_dicom_is_refused(sim, tmp_path) -> None:
    ct = "1.2.840.10008.5.1.4.1.1.2"
    path = sim.write_dicom(tmp_path / "ct.dcm", sim.textured(81), patient_id="X", sop=ct)
    with pytest.raises(ImageReadError, match="is not a photograph"):
        read_dicom_image(path)


def test_oversize_dicom_is_refused(sim, tmp_path) -> None:
    path = sim.write_dicom(tmp_path / "big.dcm", sim.textured(82), patient_id="X")
    with pytest.raises(ImageReadError, match="above the limit"):
        read_dicom_image(path, max_pixels=100)


def test_non_photographic_dicom_is_rejected_in_a_delivery(sim, tmp_path) -> None:
    root = tmp_path / "simulated_pacs" / "nv"
    root.mkdir(parents=True)
    sim.write_dicom(root / "ok.dcm", sim.textured(83), patient_id="MRN-2")
    sim.write_dicom(
        root / "ct.dcm", sim.textured(84), patient_id="MRN-3", sop="1.2.840.10008.5.1.4.1.1.2"
    )
    result = run_ingest([root.parent], tmp_path / "ds", sim.KEY, progress=False)
    assert len(result.manifest) == 1 and result.manifest["patient_id"].item().startswith("P-")
    assert result.rejected["source"].tolist() == ["nv/ct.dcm"]
    assert "not a photograph" in result.rejected["reason"].item()
    assert not is_dicom(tmp_path / "ds" / result.manifest["image"].item())
