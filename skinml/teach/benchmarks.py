"""Reference levels from the literature that place a trainee's score.

Two sources:

* **Rinner et al. 2020** (DermaChallenge, a web-based dermoscopy training
  platform): mean accuracy of single readers, non-experts 58.6% and experts
  68.4%. Rinner C, Kittler H, Rosendahl C, Tschandl P. "Analysis of Collective
  Human Intelligence for Diagnosis of Pigmented Skin Lesions Harnessed by
  Gamification Via a Web-Based Training Platform: Simulation Reader Study."
  J Med Internet Res 2020;22(1):e15597, doi:10.2196/15597 (30-image tests,
  7 HAM10000-style categories). Two published numbers, shipped here.
* **TODIV reader study** (DermFM-Zero RS2A; Yan et al., arXiv:2602.10624,
  2026): 1,090 clinician session scores by profession. The data are
  CC BY-NC-ND 4.0, so skinml ships none of it: the distribution is computed at
  run time from ``todiv_humans.csv`` when its folder is given (or found under
  ``$SKINML_SHARED_DATA``), and the report falls back to the Rinner anchors
  when it is absent.

Both are different tests from a local teaching set (other cases), so a placement
is a rough orientation at best, and only where the task is the same: the set
must ask for the same classes as the published test (:func:`comparable_levels`).
DermaChallenge used HAM10000's seven categories. TODIV has nine classes whose
list is not published with the scores, so no set can be shown to match it, and
the report says so instead of placing the trainee.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from os import PathLike
from pathlib import Path

import numpy as np
import pandas as pd

from skinml.errors import DataError
from skinml.teach.cohort import percentile_of

#: DermaChallenge's seven categories (HAM10000's codes).
DERMACHALLENGE_CLASSES = ("akiec", "bcc", "bkl", "df", "mel", "nv", "vasc")
TODIV_N_CLASSES = 9

RINNER_2020 = {
    "citation": (
        "Rinner C, Kittler H, Rosendahl C, Tschandl P. Analysis of collective human "
        "intelligence for diagnosis of pigmented skin lesions harnessed by gamification via a "
        "web-based training platform: simulation reader study. J Med Internet Res "
        "2020;22(1):e15597, doi:10.2196/15597 (DermaChallenge; 30-image tests, 7 categories)."
    ),
    "single_non_expert_accuracy": 0.586,
    "single_expert_accuracy": 0.684,
}

TODIV_CITATION = (
    "Yan S, Li X, Mo D, Tschandl P, ..., Kittler H, Ge Z. A vision-language foundation model "
    "for zero-shot clinical collaboration and automated concept discovery in dermatology "
    "(DermFM-Zero), arXiv:2602.10624, 2026; TODIV reader-study session scores (RS2A), "
    "CC BY-NC-ND 4.0, read from the user's copy at run time."
)
TODIV_FOLDER = "dermfm_zero_todiv_reader_scores"
TODIV_FILE = "todiv_humans.csv"
#: Professions with enough sessions to form a reference distribution.
TODIV_GROUPS = ("Dermatologist", "General Practitioner")


@dataclass(frozen=True)
class ReaderScores:
    """Clinician session scores (fraction correct) by group, read at run time."""

    scores: dict[str, np.ndarray]
    source: str
    citation: str = TODIV_CITATION

    def summary(self) -> pd.DataFrame:
        """n, mean and quartiles per group (derived numbers only, for the report)."""
        rows = []
        for group, s in self.scores.items():
            q = np.quantile(s, [0.25, 0.5, 0.75])
            rows.append(
                {
                    "group": group,
                    "n_sessions": len(s),
                    "mean": float(s.mean()),
                    "q25": q[0],
                    "median": q[1],
                    "q75": q[2],
                }
            )
        return pd.DataFrame(rows)

    def place(self, accuracy: float) -> dict[str, float]:
        """Percentile of ``accuracy`` within each group."""
        return {g: float(percentile_of(np.array([accuracy]), s)[0]) for g, s in self.scores.items()}


def find_reader_scores(path: str | PathLike[str] | None = None) -> Path | None:
    """The TODIV folder: ``path`` if given, else ``$SKINML_SHARED_DATA/<folder>``, else None."""
    if path is not None:
        return Path(path)
    shared = os.environ.get("SKINML_SHARED_DATA")
    if shared and (Path(shared) / TODIV_FOLDER / TODIV_FILE).is_file():
        return Path(shared) / TODIV_FOLDER
    return None


def load_reader_scores(path: str | PathLike[str]) -> ReaderScores:
    """Read ``todiv_humans.csv`` (a folder or the file) into score distributions.

    Raises:
        DataError: when the file is missing or lacks ``score``/``Job`` columns.
    """
    p = Path(path)
    csv = p / TODIV_FILE if p.is_dir() else p
    if not csv.is_file():
        raise DataError(
            "TODIV reader scores not found",
            file=csv,
            fix=f"pass the {TODIV_FOLDER} folder, or leave out --reader-scores",
        )
    frame = pd.read_csv(csv)
    if not {"score", "Job"} <= set(frame.columns):
        raise DataError(
            f"expected columns score and Job; found {list(frame.columns)}",
            file=csv,
            fix=f"pass the unmodified {TODIV_FILE}",
        )
    scores = {"all clinicians": frame["score"].to_numpy(float) / 100.0}
    for group in TODIV_GROUPS:
        s = frame.loc[frame["Job"] == group, "score"].to_numpy(float) / 100.0
        if len(s):
            scores[group.lower() + "s"] = s
    if "Since when" in frame.columns:
        s = frame.loc[frame["Since when"] == "< 1 year", "score"].to_numpy(float) / 100.0
        if len(s):
            scores["clinicians with < 1 year of dermoscopy"] = s
    return ReaderScores(scores=scores, source=str(csv))


def rinner_placement(accuracy: float) -> str:
    """One sentence placing an accuracy against the Rinner 2020 anchors."""
    ne, ex = RINNER_2020["single_non_expert_accuracy"], RINNER_2020["single_expert_accuracy"]
    if not np.isfinite(accuracy):
        return "No accuracy to compare."
    if accuracy >= ex:
        where = "at or above the average expert"
    elif accuracy >= ne:
        where = "between the average non-expert and the average expert"
    else:
        where = "below the average single non-expert"
    return (
        f"{accuracy:.0%} is {where} in DermaChallenge (single non-experts {ne:.1%}, "
        f"experts {ex:.1%}; Rinner 2020)."
    )


@dataclass(frozen=True)
class Comparability:
    """Which published reference levels fit a teaching set, and the reason in words."""

    dermachallenge: bool
    todiv: bool
    reason: str

    @property
    def any(self) -> bool:
        return self.dermachallenge or self.todiv


def comparable_levels(classes: tuple[str, ...] | list[str]) -> Comparability:
    """Published levels whose test asked for the same classes as this set (pure function)."""
    mine = sorted(set(classes))
    same = mine == sorted(DERMACHALLENGE_CLASSES)
    todiv = (
        f"TODIV is a {TODIV_N_CLASSES}-class test whose class list is not published with its "
        "scores, so it is not shown"
    )
    if same:
        reason = f"this set asks for DermaChallenge's 7 categories; {todiv}."
    else:
        reason = (
            f"DermaChallenge (Rinner 2020) is a 7-class test ({', '.join(DERMACHALLENGE_CLASSES)}) "
            f"and this set asks for {len(mine)} classes ({', '.join(mine)}); {todiv}. "
            "A score on another task would mislead, so no published level is shown."
        )
    return Comparability(dermachallenge=same, todiv=False, reason=reason)
