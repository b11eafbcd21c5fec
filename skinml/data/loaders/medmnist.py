"""MedMNIST ``.npz`` files (DermaMNIST at 28, 64, 128 or 224 px) as a manifest.

Online users download the official file, checked against MedMNIST's own MD5
(the URLs and checksums below are MedMNIST v3's ``INFO`` for DermaMNIST);
offline users pass the path of a copy. The arrays are written out once as PNG
files into a cache folder, so the result is an ordinary :class:`Manifest` that
every other part of skinml reads the same way as real image files.

The ``.npz`` layout: ``{split}_images`` (N×H×W×3 or N×H×W, uint8) and
``{split}_labels`` (N×1 integers) for split in train, val, test.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Mapping
from os import PathLike
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from skinml.data.loaders._common import make_manifest
from skinml.data.loaders.ham10000 import HAM10000_CLASSES
from skinml.data.manifest import SPLITS, Manifest
from skinml.errors import ConfigError, DataError
from skinml.integrity.checksums import md5_file

#: MedMNIST v3 (MedMNIST+) Zenodo record 10519652, from medmnist/info.py ``INFO["dermamnist"]``.
MEDMNIST_FILES: Mapping[str, Mapping[int, tuple[str, str]]] = {
    "dermamnist": {
        28: (
            "https://zenodo.org/records/10519652/files/dermamnist.npz?download=1",
            "0744692d530f8e62ec473284d019b0c7",
        ),
        64: (
            "https://zenodo.org/records/10519652/files/dermamnist_64.npz?download=1",
            "b70a2f5635c6199aeaa28c31d7202e1f",
        ),
        128: (
            "https://zenodo.org/records/10519652/files/dermamnist_128.npz?download=1",
            "2defd784463fa5243564e855ed717de1",
        ),
        224: (
            "https://zenodo.org/records/10519652/files/dermamnist_224.npz?download=1",
            "8974907d8e169bef5f5b96bc506ae45d",
        ),
    }
}
#: Label index -> code, per flag (DermaMNIST indexes HAM10000's codes alphabetically).
MEDMNIST_LABELS: Mapping[str, tuple[str, ...]] = {"dermamnist": HAM10000_CLASSES}
_MARKER = "skinml_npz_source.json"


def medmnist_filename(flag: str, size: int) -> str:
    """MedMNIST's file name: ``dermamnist.npz`` at 28 px, ``dermamnist_64.npz`` otherwise."""
    return f"{flag}.npz" if size == 28 else f"{flag}_{size}.npz"


def download_medmnist(
    flag: str = "dermamnist",
    size: int = 28,
    root: str | PathLike[str] = "~/.cache/skinml/medmnist",
    *,
    progress: bool = True,
) -> Path:
    """Download a MedMNIST ``.npz`` once and check its MD5 (the official one).

    An existing file with the right MD5 is reused; a wrong one is reported, not
    overwritten silently.

    Raises:
        ConfigError: unknown flag or size.
        DataError: no network (with the URL to fetch by hand) or an MD5 mismatch.
    """
    url, md5 = _lookup(flag, size)
    dest = Path(root).expanduser() / medmnist_filename(flag, size)
    if dest.is_file():
        got = md5_file(dest)
        if got == md5:
            return dest
        raise DataError(
            f"existing file has MD5 {got}, not the official {md5}",
            file=dest,
            fix="delete the file and download again (it is truncated or a different version)",
        )
    return download_file(url, dest, md5=md5, progress=progress)


def download_file(url: str, dest: str | PathLike[str], *, md5: str, progress: bool = True) -> Path:
    """Stream ``url`` to ``dest`` via a temporary file; keep it only if its MD5 matches."""
    import urllib.error
    import urllib.request

    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=dest.parent, prefix=dest.name, suffix=".part")
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=60) as resp:
            total = int(resp.headers.get("Content-Length") or 0) or None
            bar = None
            if progress:
                from tqdm.auto import tqdm

                bar = tqdm(total=total, unit="B", unit_scale=True, desc=f"downloading {dest.name}")
            for chunk in iter(lambda: resp.read(1 << 20), b""):
                out.write(chunk)
                if bar is not None:
                    bar.update(len(chunk))
            if bar is not None:
                bar.close()
        got = md5_file(tmp)
        if got != md5:
            raise DataError(
                f"downloaded file has MD5 {got}, expected {md5}",
                file=url,
                fix="retry the download; if it persists the source has changed, so check the URL",
            )
        shutil.move(tmp, dest)
    except (urllib.error.URLError, OSError) as exc:
        raise DataError(
            f"cannot download: {exc}",
            file=url,
            fix=f"on a machine with internet, fetch {url} and pass its local path "
            "(load_medmnist(npz_path=...)); check it with md5sum",
        ) from exc
    finally:
        if tmp.exists():
            tmp.unlink()
    return dest


def load_medmnist(
    npz_path: str | PathLike[str] | None = None,
    *,
    flag: str = "dermamnist",
    size: int = 28,
    cache_dir: str | PathLike[str] | None = None,
    download: bool = False,
    download_root: str | PathLike[str] = "~/.cache/skinml/medmnist",
    check_md5: bool = True,
    progress: bool = True,
    name: str | None = None,
    metadata: Manifest | None = None,
) -> Manifest:
    """Turn a MedMNIST ``.npz`` into PNG files plus a manifest with the official split.

    Args:
        npz_path: a local ``.npz`` (offline use). Without it, ``download=True`` fetches it.
        flag: MedMNIST dataset flag (``dermamnist``).
        size: 28, 64, 128 or 224 (which official file to expect or fetch).
        cache_dir: where PNGs are written (default: next to the ``.npz``, in
            ``<stem>_png/``). Reused when it was written from the same file.
        download: fetch the official file when ``npz_path`` is not given.
        download_root: where downloads go.
        check_md5: compare a local file with the official MD5 and refuse a mismatch.
            Turn off for files you made yourself (e.g. test fixtures).
        progress: show progress bars.
        name: dataset name (default: ``flag`` or ``flag_size``).
        metadata: the HAM10000 manifest (``load_ham10000`` on a folder whose rows carry
            ``dermamnist_index``); its lesion id, site, age, sex, localization and
            image id are joined by (split, index), which makes lesion-grouped splits
            possible on the official arrays.

    Returns:
        A manifest with ``image`` = ``{split}/{split}_{index:05d}.png``, ``label`` =
        class code (``nv``, ``mel``...), ``split`` = the official split and
        ``medmnist_index``/``medmnist_label`` columns. Lesion ids are not in the file,
        so without ``metadata`` each image is its own group (the DermaMNIST split
        leaks 1,006 lesions).

    Raises:
        DataError: the file is missing, has the wrong MD5, or lacks the expected arrays.
    """
    if npz_path is None:
        if not download:
            url, _ = _lookup(flag, size)
            raise DataError(
                f"no local {medmnist_filename(flag, size)} given and download=False",
                fix=f"pass npz_path=... (offline copy) or download=True (fetches {url})",
            )
        npz = download_medmnist(flag, size, download_root, progress=progress)
    else:
        npz = Path(npz_path).expanduser()
        if not npz.is_file():
            raise DataError(
                "MedMNIST file does not exist",
                file=npz,
                fix="check the path, or use download=True on a machine with internet",
            )
        if check_md5 and flag in MEDMNIST_FILES and size in MEDMNIST_FILES[flag]:
            expected = MEDMNIST_FILES[flag][size][1]
            got = md5_file(npz)
            if got != expected:
                raise DataError(
                    f"MD5 is {got}, not the official {expected} for {flag} at {size} px",
                    file=npz,
                    fix="download the file again, pass the right size=, or check_md5=False "
                    "for a file you made yourself",
                )
    cache = Path(cache_dir) if cache_dir is not None else npz.parent / f"{npz.stem}_png"
    frame = _write_pngs(npz, cache, flag, progress=progress)
    if metadata is not None:
        frame = join_ham10000_metadata(frame, metadata, source=npz)
    return make_manifest(frame, cache, name or (flag if size == 28 else f"{flag}_{size}"))


def join_ham10000_metadata(
    frame: pd.DataFrame, metadata: Manifest, *, source: str | PathLike[str] = "npz"
) -> pd.DataFrame:
    """Add HAM10000 lesion ids, sites and demographics to DermaMNIST rows by (split, index).

    Raises:
        DataError: the metadata lacks the DermaMNIST index, or a row finds no match,
            or the diagnoses disagree (the arrays are not DermaMNIST's order).
    """
    meta = metadata.frame
    if "dermamnist_index" not in meta.columns or meta["split"].isna().all():
        raise DataError(
            "the metadata manifest has no DermaMNIST split/index",
            file=metadata.name,
            expected="columns split and dermamnist_index (load_ham10000 on the shared copy, "
            "or with split_csv=dermamnist_split_info.csv)",
        )
    keys = ["split", "dermamnist_index"]
    cols = ["lesion_id", "patient_id", "site", "image_id", "label"]
    cols += [c for c in ("dx_type", "age", "sex", "localization") if c in meta.columns]
    right = meta[keys + cols].rename(columns={"label": "ham10000_label"})
    right = right.astype({"dermamnist_index": int})
    left = frame.drop(columns=[c for c in cols if c in frame.columns and c != "label"])
    joined = left.merge(
        right, how="left", left_on=["split", "medmnist_index"], right_on=keys, validate="1:1"
    ).drop(columns="dermamnist_index")
    unmatched = joined["ham10000_label"].isna()
    disagree = ~unmatched & (joined["ham10000_label"] != joined["label"])
    if unmatched.any() or disagree.any():
        bad = joined.loc[unmatched | disagree, "image"].head(5).tolist()
        raise DataError(
            f"{int(unmatched.sum())} rows have no HAM10000 match and {int(disagree.sum())} "
            f"disagree on the diagnosis (e.g. {bad})",
            file=source,
            expected="DermaMNIST arrays in the order of dermamnist_split_info.csv",
            fix="pass the matching metadata, or load without metadata=",
        )
    return joined.drop(columns="ham10000_label")


def _write_pngs(npz: Path, cache: Path, flag: str, *, progress: bool) -> pd.DataFrame:
    marker = cache / _MARKER
    digest = md5_file(npz)
    manifest_csv = cache / "manifest.csv"
    if (
        marker.is_file()
        and manifest_csv.is_file()
        and json.loads(marker.read_text()).get("md5") == digest
    ):
        return pd.read_csv(manifest_csv, dtype={"image": str, "label": str})
    codes = MEDMNIST_LABELS.get(flag)
    with np.load(npz) as data:
        keys = set(data.files)
        needed = [f"{s}_{k}" for s in SPLITS for k in ("images", "labels")]
        missing = [k for k in needed if k not in keys]
        if missing:
            raise DataError(
                f"arrays {missing} are missing; found {sorted(keys)}",
                file=npz,
                expected="MedMNIST layout: train_images, train_labels, val_images, val_labels, "
                "test_images, test_labels",
                fix="use an official MedMNIST .npz",
            )
        rows = []
        for split in SPLITS:
            images, labels = data[f"{split}_images"], data[f"{split}_labels"]
            labels = _check_arrays(images, labels, split, npz, codes)
            rows += _write_split(images, labels, split, cache, codes, progress=progress)
    frame = pd.DataFrame(rows)
    frame["site"] = "unknown"
    frame["device"] = "unknown"
    frame.to_csv(manifest_csv, index=False)
    marker.write_text(json.dumps({"source": str(npz), "md5": digest}))
    return frame


def _check_arrays(
    images: np.ndarray, labels: np.ndarray, split: str, npz: Path, codes: tuple[str, ...] | None
) -> np.ndarray:
    if images.dtype != np.uint8 or images.ndim not in (3, 4):
        raise DataError(
            f"{split}_images has dtype {images.dtype} and shape {images.shape}",
            file=npz,
            expected="uint8 of shape N×H×W×3 or N×H×W",
        )
    labels = np.asarray(labels).reshape(len(labels), -1)
    if labels.shape != (len(images), 1):
        raise DataError(
            f"{split}_labels has shape {labels.shape} for {len(images)} images",
            file=npz,
            expected=f"({len(images)}, 1): one class index per image (multi-label is not "
            "supported)",
        )
    labels = labels[:, 0].astype(int)
    if codes is not None and (labels.min(initial=0) < 0 or labels.max(initial=0) >= len(codes)):
        raise DataError(
            f"{split}_labels holds values outside 0..{len(codes) - 1}",
            file=npz,
            expected=f"class indices for {list(codes)}",
        )
    return labels


def _write_split(
    images: np.ndarray,
    labels: np.ndarray,
    split: str,
    cache: Path,
    codes: tuple[str, ...] | None,
    *,
    progress: bool,
) -> list[dict[str, object]]:
    (cache / split).mkdir(parents=True, exist_ok=True)
    indices = range(len(images))
    if progress:
        from tqdm.auto import tqdm

        indices = tqdm(indices, desc=f"writing {split} PNGs", unit="img")
    rows = []
    for i in indices:
        rel = f"{split}/{split}_{i:05d}.png"
        Image.fromarray(images[i]).save(cache / rel, format="PNG")
        label = int(labels[i])
        rows.append(
            {
                "image": rel,
                "label": codes[label] if codes is not None else str(label),
                "split": split,
                "medmnist_index": i,
                "medmnist_label": label,
            }
        )
    return rows


def _lookup(flag: str, size: int) -> tuple[str, str]:
    if flag not in MEDMNIST_FILES:
        raise ConfigError(
            f"unknown MedMNIST flag {flag!r}",
            expected=f"one of {sorted(MEDMNIST_FILES)}",
            fix="pass npz_path= for other MedMNIST files (labels are then kept as indices)",
        )
    if size not in MEDMNIST_FILES[flag]:
        raise ConfigError(
            f"{flag} has no {size} px version",
            expected=f"one of {sorted(MEDMNIST_FILES[flag])}",
        )
    return MEDMNIST_FILES[flag][size]
