"""The registry of named datasets."""

from __future__ import annotations

import pytest

from skinml.data.card import DatasetInfo
from skinml.data.loaders import load_manifest_csv
from skinml.data.registry import (
    RegisteredDataset,
    get_card,
    get_dataset,
    get_dataset_info,
    list_datasets,
    register_dataset,
    resolve_root,
)
from skinml.errors import ConfigError, DataError


def test_builtin_names_and_malignant_classes() -> None:
    assert {"ham10000", "isic2017", "isic_uda1", "dermamnist"} <= set(list_datasets())
    assert set(get_dataset_info("ham10000").malignant) == {"mel", "bcc", "akiec"}
    assert get_dataset_info("isic2017").malignant == ("melanoma",)
    assert get_dataset_info("isic_uda1").malignant == ("melanoma",)
    assert "CC0" in get_dataset_info("isic_uda1").licence
    assert "Tschandl" in get_dataset_info("ham10000").citation


def test_unknown_name_suggests_the_close_one() -> None:
    with pytest.raises(ConfigError, match="did you mean 'ham10000'"):
        get_dataset("ham1000")


def test_isic_uda1_needs_no_root() -> None:
    m = get_dataset("isic_uda1")
    assert len(m) == 113 and m.classes == ["melanoma", "nevus"]
    card = get_card("isic_uda1", manifest=m)
    assert card.counts == {"unsplit": {"nevus": 74, "melanoma": 39}}


def test_missing_root_says_what_to_set(monkeypatch) -> None:
    monkeypatch.delenv("SKINML_DATA_DIR", raising=False)
    monkeypatch.delenv("SKINML_SHARED_DATA", raising=False)
    with pytest.raises(DataError, match="SKINML_DATA_DIR") as info:
        resolve_root("isic2017")
    assert "isic2017_256" in str(info.value)


def test_root_from_environment(monkeypatch, tmp_path) -> None:
    (tmp_path / "isic2017_256").mkdir()
    monkeypatch.setenv("SKINML_DATA_DIR", str(tmp_path))
    assert resolve_root("isic2017") == tmp_path / "isic2017_256"


def test_register_a_centres_own_dataset(manifest_dir) -> None:
    info = DatasetInfo(name="test_clinic_x", title="Clinic X", malignant=("mel",))
    entry = RegisteredDataset(info, lambda root, **kw: load_manifest_csv(root / "manifest.csv"))
    register_dataset(entry, overwrite=True)
    assert "test_clinic_x" in list_datasets()
    assert len(get_dataset("test_clinic_x", manifest_dir)) == 8
    with pytest.raises(ConfigError, match="already registered"):
        register_dataset(entry)
