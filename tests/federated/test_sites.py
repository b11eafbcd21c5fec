"""Hospitals as clients: per-site splits and the checks that stop a federation before round 1."""

from __future__ import annotations

import pandas as pd
import pytest
from omegaconf import OmegaConf

from skinml.data.manifest import read_manifest
from skinml.errors import ConfigError, ManyErrors
from skinml.federated.sites import SiteCounts, check_sites, pooled_split, site_rows, split_site
from tests.federated.conftest import SITES, compose_federate, federate_overrides

SPLIT = OmegaConf.create({"strategy": "lesion", "val_fraction": 0.25, "test_fraction": 0.25})


def test_each_site_is_split_on_its_own_rows_and_grouped_by_lesion(two_sites):
    manifest = read_manifest(two_sites)
    pooled, counts = pooled_split(manifest, list(SITES), ["mel", "nv"], SPLIT, seed=3)
    frame = pooled.frame
    assert len(frame) == len(manifest)
    assert (frame.groupby("lesion_id")["split"].nunique() == 1).all()
    for site, c in zip(SITES, counts, strict=True):
        own = split_site(site_rows(manifest, site), SPLIT, seed=3).frame
        assert list(frame[frame["site"] == site]["split"]) == list(own["split"])
        assert c.total == len(own) and set(own["split"]) == {"train", "val", "test"}


def _counts(site: str, train: dict, n_other: int = 5) -> SiteCounts:
    return SiteCounts(site, {"train": train, "val": {"mel": n_other}, "test": {"mel": n_other}})


def test_a_small_site_and_a_missing_class_are_named_before_round_1():
    checks = OmegaConf.create({"min_images": 30, "missing_classes": "error"})
    counts = [
        _counts("big", {"mel": 40, "nv": 40}),
        _counts("small", {"mel": 3, "nv": 4}),
        _counts("no_nv", {"mel": 40, "nv": 0}),
    ]
    with pytest.raises(ManyErrors) as err:
        check_sites(counts, checks)
    text = str(err.value)
    assert "site 'small' has 17 images; at least 30" in text
    assert "site 'no_nv' has no training images of ['nv']" in text
    assert "before round 1" in text and "federation.checks.missing_classes=warn" in text
    assert "'big'" not in text


def test_a_missing_class_can_be_allowed_and_is_then_a_warning():
    checks = OmegaConf.create({"min_images": 30, "missing_classes": "warn"})
    warnings = check_sites([_counts("no_nv", {"mel": 40, "nv": 0})], checks)
    assert warnings == ["site 'no_nv' has no training images of ['nv']"]
    with pytest.raises(ConfigError, match="no test images"):
        check_sites(
            [SiteCounts("x", {"train": {"mel": 40}, "val": {"mel": 5}, "test": {"mel": 0}})], checks
        )


def test_the_command_stops_before_the_simulation_starts(two_sites, tmp_path):
    from skinml.federated.launch import run

    cfg = compose_federate(
        federate_overrides(two_sites, tmp_path, "federation.checks.min_images=500")
    )
    with pytest.raises(ManyErrors) as err:
        run(cfg, tmp_path / "run")
    assert "site 'hospital_a' has 80 images" not in str(err.value)  # 40 per site
    assert "site 'hospital_a' has 40 images; at least 500" in str(err.value)
    assert "site 'hospital_b' has 40 images" in str(err.value)
    assert not (tmp_path / "run" / "federation.json").exists()


def test_a_manifest_without_sites_is_refused_with_the_column_named(tmp_path):
    from skinml.federated.launch import run
    from tests.training.conftest import make_lesion_dataset

    manifest = make_lesion_dataset(tmp_path / "data", n_per_class=10)
    frame = pd.read_csv(manifest).drop(columns=["site"])
    frame.to_csv(manifest, index=False)
    with pytest.raises(ConfigError, match=r"1 site\(s\) \['unknown'\] in column 'site'"):
        run(compose_federate(federate_overrides(manifest, tmp_path)), tmp_path / "run")
