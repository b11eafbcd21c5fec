"""The 113 real full-resolution ISIC UDA-1 images, spread over three simulated hospitals.

Hospital A delivers label folders with the published MD5SUMS lines, hospital B
label folders plus a generated GPS-tagged, orientation-6 copy of one real
image (a near-duplicate of its original at hospital A), hospital C a cases.csv
with simulated patient identifiers and the real age and sex.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest
from PIL import Image

from skinml.ingest import IngestConfig, run_ingest, verify_dataset


def _shared_dataset(name: str) -> Path:
    import os

    root = Path(
        os.environ.get(
            "SKINML_SHARED_DATA", Path(__file__).resolve().parents[2].parent / "shared" / "data"
        )
    )
    path = root / name
    if not path.exists():
        pytest.skip(
            f"real data {path} is absent (set SKINML_SHARED_DATA to the shared/data folder)"
        )
    return path


@pytest.mark.slow
@pytest.mark.real_data
def test_ingest_113_real_isic_images(sim, tmp_path) -> None:
    data = _shared_dataset("isic_archive_uda1")
    meta = pd.read_csv(data / "metadata.csv")
    meta = meta[meta["included"] == 1].sort_values("image_id").reset_index(drop=True)
    assert len(meta) == 113
    md5 = {
        Path(n.strip()).name: h
        for h, n in (line.split(maxsplit=1) for line in (data / "MD5SUMS").read_text().splitlines())
    }
    inbox = tmp_path / "inbox"
    a, b, c = (inbox / f"simulated_hospital_{x}" for x in "abc")
    sums, cases = [], ["image,label,patient_id,lesion_id,age_approx,sex"]
    orientation = {}
    for i, rec in meta.iterrows():
        name = f"{rec['image_id']}.jpg"
        src = data / "images" / name
        with Image.open(src) as img:
            orientation[rec["image_id"]] = img.getexif().get(0x0112, 1)
        if i % 3 == 2:
            dest = c / "img" / name
            cases.append(
                f"img/{name},{rec['diagnosis']},SIM-PAT-{i:03d},SIM-LES-{i:03d},"
                f"{'' if pd.isna(rec['age_approx']) else int(rec['age_approx'])},"
                f"{'' if pd.isna(rec['sex']) else rec['sex']}"
            )
        else:
            dest = (a if i % 3 == 0 else b) / rec["diagnosis"] / name
            if i % 3 == 0:
                sums.append(f"{md5[name]}  {rec['diagnosis']}/{name}\n")
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, dest)
    (a / "MD5SUMS").write_text("".join(sums))
    (c / "cases.csv").write_text("\n".join(cases) + "\n")
    # a GPS-tagged copy of hospital A's first image, stored rotated with EXIF orientation 6
    first = meta.iloc[0]
    original = Image.open(data / "images" / f"{first['image_id']}.jpg").convert("RGB")
    stored = original.resize((original.width // 2, original.height // 2)).transpose(
        Image.Transpose.ROTATE_90
    )
    stored.save(
        b / first["diagnosis"] / "simulated_gps_copy.jpg",
        quality=90,
        exif=sim.exif_with_gps(orientation=6).tobytes(),
    )

    result = run_ingest(
        [a, b, c], tmp_path / "dataset", sim.KEY, IngestConfig(workers=1), progress=False
    )
    assert result.rejected.empty, result.rejected.to_dict("records")
    m = result.manifest
    assert len(m) == 114 and result.n_inputs == 114
    assert (m["arrival_check"] == "md5-ok").sum() == len(sums)

    # every real image keeps its full size, turned upright where EXIF says so
    real = m.set_index("source_sha256")
    import hashlib

    for _, rec in meta.iterrows():
        sha = hashlib.sha256((data / "images" / f"{rec['image_id']}.jpg").read_bytes()).hexdigest()
        row = real.loc[sha]
        size = (rec["pixels_x"], rec["pixels_y"])
        if orientation[rec["image_id"]] in (5, 6, 7, 8):
            size = size[::-1]
        assert (row["width"], row["height"]) == size, rec["image_id"]
        assert row["label"] == {"nevus": "nv", "melanoma": "mel"}[rec["diagnosis"]]
    assert m["width"].astype(str).str.cat(m["height"].astype(str), "x").nunique() >= 98

    # the generated copy is found as a near-duplicate of its original across hospitals
    copy_group = m[m["device"] == "SimCam DermaPhone 3"]["duplicate_group"].item()
    members = m[m["duplicate_group"] == copy_group]
    assert set(members["site"]) == {"simulated_hospital_a", "simulated_hospital_b"}
    assert len(members) == 2 and set(members["duplicate_kind"]) == {"near"}

    # no metadata in any output, and the dataset verifies
    for path in (result.dataset_dir / p for p in m["image"]):
        with Image.open(path) as img:
            assert len(img.getexif()) == 0 and "icc_profile" not in img.info
            assert "exif" not in img.info
    assert verify_dataset(result.dataset_dir).ok
    assert not any(b"SIM-PAT" in p.read_bytes() for p in result.dataset_dir.rglob("*.csv"))
