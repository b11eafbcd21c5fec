"""One diagnosis vocabulary for manifests, model files, teaching answers, QC records and ingest.

``diagnoses.tsv`` lists each diagnosis once: canonical code, display name,
whether it is malignant, the broader class it falls under, and its synonyms
(British and American spellings, abbreviations such as ``pso`` or ``sek``).
:class:`LabelSpace` maps written labels onto one context's classes;
:func:`canonical` gives the code where no class list applies. Standard library
only, so the light predictor install can use it.
"""

from skinml.vocabulary.labels import (
    LABEL_FIX,
    TABLE_POINTER,
    LabelSpace,
    map_labels,
    unknown_label,
)
from skinml.vocabulary.table import (
    Diagnosis,
    DiagnosisTable,
    canonical,
    diagnosis_table,
    display_name,
    label_key,
    lookup,
    malignant_codes,
    markdown_table,
    parse_table,
)

__all__ = [
    "LABEL_FIX",
    "TABLE_POINTER",
    "Diagnosis",
    "DiagnosisTable",
    "LabelSpace",
    "canonical",
    "diagnosis_table",
    "display_name",
    "label_key",
    "lookup",
    "malignant_codes",
    "map_labels",
    "markdown_table",
    "parse_table",
    "unknown_label",
]
