"""The sample data that ships inside the package."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from skinml.datasets import (
    embedded_dir,
    load_isic_uda1,
    load_uci_dermatology,
    verify_embedded,
)
from skinml.integrity.checksums import read_checksum_list


def test_isic_uda1_loads_113_images_with_card() -> None:
    data = load_isic_uda1(verify=True)
    m = data.manifest
    assert len(m) == 113
    assert m.frame["label"].value_counts().to_dict() == {"nevus": 74, "melanoma": 39}
    assert set(m.frame["site"]) == {"isic_archive"} and set(m.frame["device"]) == {"unknown"}
    assert m.frame["split"].isna().all()
    assert {"age", "sex", "benign_malignant", "original_width"} <= set(m.frame.columns)
    assert int(m.frame["sex"].notna().sum()) == 68
    assert data.card.malignant == ("melanoma",) and "CC0" in data.card.licence
    assert "| `melanoma` | melanoma | yes | 39 | 39 | 34.5% |" in data.DESCR
    assert len(data.card.fingerprint) == 64


def test_embedded_images_are_small_upright_and_without_exif() -> None:
    m = load_isic_uda1().manifest
    for path in m.paths():
        with Image.open(path) as img:
            assert max(img.size) == 256
            assert img.format == "JPEG" and img.mode == "RGB"
            assert not img.getexif() and "icc_profile" not in img.info
    # landscape originals stay landscape (aspect ratio kept)
    first = m.frame.iloc[0]
    with Image.open(m.paths()[0]) as img:
        ratio = first["original_width"] / first["original_height"]
        assert img.size[0] / img.size[1] == pytest.approx(ratio, rel=0.02)


def test_package_payload_is_small_and_fully_checksummed() -> None:
    root = embedded_dir()
    files = sorted(p for p in root.rglob("*") if p.is_file() and p.name != "SHA256SUMS")
    assert sum(p.stat().st_size for p in files) < 3_000_000
    listed = read_checksum_list(root / "SHA256SUMS")
    assert sorted(listed) == sorted(p.relative_to(root).as_posix() for p in files)
    assert verify_embedded().ok
    for name in (
        "isic_uda1/LICENSE.txt",
        "isic_uda1/ATTRIBUTION.txt",
        "isic_uda1/NOTICE.md",
        "uci_dermatology/NOTICE.md",
    ):
        assert name in listed


def test_uci_dermatology_like_sklearn() -> None:
    b = load_uci_dermatology(as_frame=True)
    assert b.data.shape == (366, 34) and len(b.feature_names) == 34
    assert b.target.value_counts().sort_index().tolist() == [112, 61, 72, 49, 52, 20]
    assert b.target_names[0] == "psoriasis"
    assert int(b.data["age"].isna().sum()) == 8
    assert set(np.unique(b.data["erythema"])) <= {0, 1, 2, 3}
    assert b.frame.shape == (366, 35)
    assert "psoriasis" in b.DESCR and b.card.counts["unsplit"]["1"] == 112
    X, y = load_uci_dermatology(as_frame=False, return_X_y=True)
    assert isinstance(X, np.ndarray) and X.shape == (366, 34) and y.shape == (366,)


@pytest.mark.slow
@pytest.mark.real_data
def test_make_embedded_data_is_deterministic(tmp_path, shared_dir) -> None:
    shared = shared_dir("isic_archive_uda1").parent
    out = tmp_path / "embedded"
    script = embedded_dir().parents[2] / "scripts" / "make_embedded_data.py"
    if not script.is_file():
        pytest.skip("scripts/make_embedded_data.py is only in a source checkout")
    subprocess.run(
        [sys.executable, str(script), "--shared", str(shared), "--out", str(out)],
        check=True,
        capture_output=True,
    )
    assert (out / "SHA256SUMS").read_text() == (embedded_dir() / "SHA256SUMS").read_text()
