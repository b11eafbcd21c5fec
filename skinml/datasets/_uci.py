"""``load_uci_dermatology``: the UCI Dermatology table (366 patients) that ships with skinml."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.utils import Bunch

from skinml.data.card import DatasetInfo, card_for_labels
from skinml.datasets._embedded import embedded_dir
from skinml.errors import DataError

#: Column order of ``dermatology.data`` (from ``dermatology.names``); the last is the class.
UCI_FEATURES = (
    "erythema",
    "scaling",
    "definite_borders",
    "itching",
    "koebner_phenomenon",
    "polygonal_papules",
    "follicular_papules",
    "oral_mucosal_involvement",
    "knee_and_elbow_involvement",
    "scalp_involvement",
    "family_history",
    "melanin_incontinence",
    "eosinophils_in_the_infiltrate",
    "pnl_infiltrate",
    "fibrosis_of_the_papillary_dermis",
    "exocytosis",
    "acanthosis",
    "hyperkeratosis",
    "parakeratosis",
    "clubbing_of_the_rete_ridges",
    "elongation_of_the_rete_ridges",
    "thinning_of_the_suprapapillary_epidermis",
    "spongiform_pustule",
    "munro_microabcess",
    "focal_hypergranulosis",
    "disappearance_of_the_granular_layer",
    "vacuolisation_and_damage_of_basal_layer",
    "spongiosis",
    "saw_tooth_appearance_of_retes",
    "follicular_horn_plug",
    "perifollicular_parakeratosis",
    "inflammatory_monoluclear_infiltrate",
    "band_like_infiltrate",
    "age",
)
#: Class code (1-6) -> diagnosis; psoriasis is class 1.
UCI_CLASSES = {
    1: "psoriasis",
    2: "seborrheic dermatitis",
    3: "lichen planus",
    4: "pityriasis rosea",
    5: "chronic dermatitis",
    6: "pityriasis rubra pilaris",
}

UCI_DERMATOLOGY_INFO = DatasetInfo(
    name="uci_dermatology",
    title="UCI Dermatology: differential diagnosis of erythemato-squamous diseases",
    description=(
        "366 patients from Turkey with 12 clinical and 22 histopathological attributes "
        "(degrees 0-3), family history (0/1) and age; 6 diagnoses, psoriasis = class 1."
    ),
    class_names={str(k): v for k, v in UCI_CLASSES.items()},
    malignant=(),
    licence="UCI ML Repository terms (UCI lists CC BY 4.0; not verified offline)",
    citation=(
        "Demiroz G, Guvenir HA, Ilter N. Learning differential diagnosis of erythemato-squamous "
        "diseases using voting feature intervals. Artificial Intelligence in Medicine, 1998; "
        "UCI Machine Learning Repository, dataset 33"
    ),
    source="UCI Machine Learning Repository, Dermatology (donated 1998 by N. Ilter, H. A. Guvenir)",
    caveats=(
        "Tiny and largely histopathological: near-perfect accuracy is common, so it is a smoke "
        "test, not a realistic benchmark.",
        "Age is missing for 8 patients and 0 for one (probably an entry error).",
        "No patient, site or date identifiers.",
    ),
)


def load_uci_dermatology(*, as_frame: bool = True, return_X_y: bool = False) -> Bunch | tuple:  # noqa: N803 (sklearn name)
    """Load the embedded UCI Dermatology table, like scikit-learn's ``load_*`` functions.

    Args:
        as_frame: return pandas objects (``data`` DataFrame, ``target`` Series,
            ``frame`` with both); otherwise numpy arrays.
        return_X_y: return ``(data, target)`` only.

    Returns:
        A Bunch with ``data`` (366 × 34; missing ages are NaN), ``target`` (class
        1-6), ``target_names`` (diagnosis per class, index 0 = class 1),
        ``feature_names``, ``frame`` (when ``as_frame``), ``card`` and ``DESCR``.

    Raises:
        DataError: the embedded file is damaged (wrong column count or values).
    """
    path = embedded_dir() / "uci_dermatology" / "dermatology.data"
    raw = pd.read_csv(path, header=None, na_values="?")
    if raw.shape[1] != len(UCI_FEATURES) + 1:
        raise DataError(
            f"{raw.shape[1]} columns",
            file=path,
            expected=f"{len(UCI_FEATURES) + 1} (34 attributes and the class)",
            fix="reinstall skinml or regenerate the embedded data",
        )
    raw.columns = [*UCI_FEATURES, "diagnosis"]
    data = raw[list(UCI_FEATURES)].astype(float)
    target = raw["diagnosis"].astype(int)
    bad = ~target.isin(list(UCI_CLASSES))
    if bad.any():
        raise DataError(
            f"class values {sorted(target[bad].unique())} outside 1-6",
            file=path,
            row=int(np.flatnonzero(bad)[0]) + 1,
        )
    if return_X_y:
        return (data, target) if as_frame else (data.to_numpy(), target.to_numpy())
    card = card_for_labels(
        target.astype(str),
        UCI_DERMATOLOGY_INFO,
        metadata={
            "age": f"median {data['age'].median():g} years, missing for "
            f"{int(data['age'].isna().sum())} of {len(data)}",
            "family_history": f"1 in {int(data['family_history'].sum())} of {len(data)}",
        },
    )
    frame = pd.concat([data, target.rename("diagnosis")], axis=1)
    return Bunch(
        data=data if as_frame else data.to_numpy(),
        target=target if as_frame else target.to_numpy(),
        frame=frame if as_frame else None,
        feature_names=list(UCI_FEATURES),
        target_names=[UCI_CLASSES[k] for k in sorted(UCI_CLASSES)],
        card=card,
        DESCR=card.to_markdown(),
    )
