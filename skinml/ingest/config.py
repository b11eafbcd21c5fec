"""Ingest settings and the fingerprint that decides whether a finished file can be reused.

Resuming is only safe when the earlier output was made with the same settings,
so every journal record carries :func:`settings_fingerprint` and a record made
under other settings is redone rather than trusted.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field

from skinml.errors import ConfigError
from skinml.imaging.read import DEFAULT_MAX_PIXELS
from skinml.vocabulary import LabelSpace

#: Bump when the normalisation itself changes (so old journal records are redone).
NORMALISER_VERSION = 1

FORMATS = {"jpeg": ".jpg", "png": ".png"}
ID_SCOPES = ("hospital", "global")

#: Structured metadata columns kept from a hospital CSV by default. Everything
#: else may be free text ("notes", "name", "referrer") and could carry names, so
#: it is dropped unless the data manager keeps it with ``--keep-column``.
DEFAULT_KEPT_COLUMNS = (
    "age",
    "age_approx",
    "sex",
    "localization",
    "anatom_site",
    "fitzpatrick",
    "diagnosis_confirm_type",
    "dx_type",
    "benign_malignant",
)


@dataclass(frozen=True)
class IngestConfig:
    """Everything that shapes the output dataset.

    Attributes:
        fmt: ``"jpeg"`` (quality ``quality``) or ``"png"`` (lossless).
        quality: JPEG quality; 95 keeps dermoscopic texture while cutting size.
        max_side: downscale so the longer side is at most this (``None`` keeps size).
        max_pixels: refuse larger images (decompression-bomb guard).
        max_file_bytes: refuse larger files before reading them at all.
        workers: processes for decoding/encoding (1 = in this process unless isolate_decoder).
        near_threshold: pHash Hamming distance at or below which two images
            count as near-duplicates (64-bit hash; distinct ISIC images are
            14 or more apart, re-encoded or resized copies 0-2).
        id_scope: ``"hospital"`` pseudonymises identifiers within their
            hospital (record numbers are local, so "123" at two hospitals are
            two people); ``"global"`` when identifiers are shared across sites.
        keep_columns: extra CSV columns to keep on top of the default list.
        isolate_decoder: decode in worker processes even when ``workers`` is 1, so
            that a crash in native decoder code (libjpeg, pydicom handlers) rejects
            one file instead of ending the run; ``skinml-ingest`` turns it on.
        classes: the diagnoses the dataset may hold (codes or synonyms); a label
            that fits none of them is rejected. None accepts any label. Either way
            labels go through the diagnosis vocabulary (``Melanoma/`` -> ``mel``).
    """

    fmt: str = "jpeg"
    quality: int = 95
    max_side: int | None = None
    max_pixels: int = DEFAULT_MAX_PIXELS
    max_file_bytes: int = 200 * 1024 * 1024
    workers: int = 1
    near_threshold: int = 8
    id_scope: str = "hospital"
    keep_columns: tuple[str, ...] = field(default_factory=tuple)
    isolate_decoder: bool = False
    classes: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        if self.classes is not None:
            LabelSpace(self.classes, name="the ingest classes")  # refuses a diagnosis listed twice
        if self.fmt not in FORMATS:
            raise ConfigError(
                f"unknown output format {self.fmt!r}", expected=f"one of {list(FORMATS)}"
            )
        if not 1 <= self.quality <= 100:
            raise ConfigError(f"JPEG quality {self.quality} out of range", expected="1..100")
        if self.max_side is not None and self.max_side < 16:
            raise ConfigError(
                f"max_side {self.max_side} is too small", expected="at least 16 pixels"
            )
        if self.workers < 1:
            raise ConfigError(f"workers must be at least 1, got {self.workers}")
        if self.id_scope not in ID_SCOPES:
            raise ConfigError(f"unknown id scope {self.id_scope!r}", expected=f"one of {ID_SCOPES}")
        if not 0 <= self.near_threshold <= 32:
            raise ConfigError(
                f"near_threshold {self.near_threshold} out of range", expected="0..32"
            )

    @property
    def suffix(self) -> str:
        return FORMATS[self.fmt]

    @property
    def kept_columns(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys((*DEFAULT_KEPT_COLUMNS, *self.keep_columns)))

    def image_settings(self) -> dict[str, object]:
        """The settings that change output pixels or bytes (what the journal must match)."""
        return {
            "normaliser_version": NORMALISER_VERSION,
            "format": self.fmt,
            "quality": self.quality if self.fmt == "jpeg" else None,
            "max_side": self.max_side,
            "max_pixels": self.max_pixels,
        }


def settings_fingerprint(config: IngestConfig) -> str:
    """Short stable hash of :meth:`IngestConfig.image_settings`."""
    blob = json.dumps(config.image_settings(), sort_keys=True).encode("utf-8")
    return hashlib.sha256(blob).hexdigest()[:16]


_SLUG = re.compile(r"[^A-Za-z0-9_.-]+")


def slug(name: str) -> str:
    """A file-system-safe folder name for a hospital (hospital names are not identifying)."""
    s = _SLUG.sub("_", name.strip()).strip("._")
    if not s:
        raise ConfigError(
            f"hospital name {name!r} has no usable characters",
            fix="pass --hospital with a plain name such as 'county_north'",
        )
    return s
