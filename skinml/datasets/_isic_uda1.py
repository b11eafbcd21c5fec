"""``load_isic_uda1``: the 113-image CC0 ISIC sample that ships with skinml."""

from __future__ import annotations

from pathlib import Path

from sklearn.utils import Bunch

from skinml.datasets._embedded import SUMS, embedded_dir, verify_embedded


def load_isic_uda1(*, verify: bool = False, on_missing: str = "raise") -> Bunch:
    """Load the embedded ISIC Archive UDA-1 sample (113 images, nevus vs melanoma, CC0).

    Works offline with nothing but skinml installed, so examples, tests and the
    README can run on real dermoscopy images. Images are 256 px (longest side),
    upright, without EXIF; the manifest keeps diagnosis, age, sex and original size.

    Args:
        verify: check every embedded file's SHA-256 first and refuse a changed file.
        on_missing: passed to the manifest loader (``"raise"`` or ``"exclude"``).

    Returns:
        A Bunch with ``manifest`` (:class:`~skinml.data.manifest.Manifest`),
        ``card`` (:class:`~skinml.data.card.DatasetCard`), ``frame`` (the manifest
        table), ``root`` (image folder), ``checksums`` (path of ``SHA256SUMS``) and
        ``DESCR`` (the card as Markdown).

    Example:
        >>> from skinml.datasets import load_isic_uda1
        >>> data = load_isic_uda1()
        >>> len(data.manifest), data.card.malignant
        (113, ('melanoma',))
    """
    from skinml.data.card import build_card
    from skinml.data.fingerprint import dataset_fingerprint
    from skinml.data.loaders.csv_manifest import load_manifest_csv
    from skinml.data.loaders.uda1 import UDA1_CLASSES
    from skinml.data.registry import ISIC_UDA1_INFO

    root = embedded_dir()
    if verify:
        verify_embedded().raise_if_failed(root)
    folder = root / "isic_uda1"
    manifest = load_manifest_csv(
        folder / "manifest.csv", name="isic_uda1", on_missing=on_missing, classes=UDA1_CLASSES
    )
    card = build_card(
        manifest,
        ISIC_UDA1_INFO,
        fingerprint=dataset_fingerprint(manifest),
        checksums=f"`{root / SUMS}` (SHA-256 of every embedded file; verify with "
        "`skinml-data verify isic_uda1`)",
    )
    return Bunch(
        manifest=manifest,
        card=card,
        frame=manifest.frame,
        root=Path(folder),
        checksums=root / SUMS,
        DESCR=card.to_markdown(),
    )
