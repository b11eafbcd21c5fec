"""Small real datasets that ship with skinml, loaded like scikit-learn's ``load_*``.

* :func:`load_isic_uda1`: 113 CC0 dermoscopy images (ISIC Archive UDA-1),
  nevus vs melanoma, as a :class:`~skinml.data.manifest.Manifest` with its card.
* :func:`load_uci_dermatology`: 366 patients, 34 clinical/histopathological
  attributes, 6 erythemato-squamous diagnoses (psoriasis = class 1).

Licences and attributions are in ``embedded/*/NOTICE.md``; every file is listed
in ``embedded/SHA256SUMS`` (:func:`verify_embedded`).
"""

from skinml.datasets._embedded import embedded_dir, verify_embedded
from skinml.datasets._isic_uda1 import load_isic_uda1
from skinml.datasets._uci import (
    UCI_CLASSES,
    UCI_DERMATOLOGY_INFO,
    UCI_FEATURES,
    load_uci_dermatology,
)

__all__ = [
    "UCI_CLASSES",
    "UCI_DERMATOLOGY_INFO",
    "UCI_FEATURES",
    "embedded_dir",
    "load_isic_uda1",
    "load_uci_dermatology",
    "verify_embedded",
]
