"""Teaching sets: build anonymised dermoscopy quizzes and score residents on them.

* :func:`build_teaching_set` — cases, key, answer sheet, AI answers and quiz from a manifest.
* :func:`write_quiz` — the offline browser quiz (plain, or with an AI-support step).
* :func:`score_session` — read, check and score answer sheets; write tables and reports.
* :func:`score_teaching_set` / :func:`score_answers` — the (vectorised) scoring core.
* :func:`trainee_report` — one self-contained HTML report per trainee.
* :func:`ai_effect` — what AI support changed: unaided vs aided answers, paired.
"""

from skinml.teach.ai_effect import AiEffect, ai_effect
from skinml.teach.answers import NO_ANSWER, AnswerMatrix, read_answers
from skinml.teach.build import TeachingSet, allocate, build_teaching_set
from skinml.teach.pipeline import ScoringOutput, score_session
from skinml.teach.quiz import write_quiz
from skinml.teach.reference import Reference, read_reference
from skinml.teach.report import trainee_report
from skinml.teach.results import TeachingScores, score_teaching_set
from skinml.teach.scoring import ScoreArrays, kappa_with_ci, mcnemar_vs, score_answers
from skinml.teach.vocabulary import HAM10000_MALIGNANT, normalise_diagnoses

__all__ = [
    "HAM10000_MALIGNANT",
    "NO_ANSWER",
    "AiEffect",
    "AnswerMatrix",
    "Reference",
    "ScoreArrays",
    "ScoringOutput",
    "TeachingScores",
    "TeachingSet",
    "ai_effect",
    "allocate",
    "build_teaching_set",
    "kappa_with_ci",
    "mcnemar_vs",
    "normalise_diagnoses",
    "read_answers",
    "read_reference",
    "score_answers",
    "score_session",
    "score_teaching_set",
    "trainee_report",
    "write_quiz",
]
