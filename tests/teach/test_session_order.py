"""Issue 15: one trainee without a session column must not turn everyone's dates into text."""

from __future__ import annotations

import numpy as np
import pandas as pd

from skinml.teach.cohort import latest_sessions, session_order


def test_blank_sessions_keep_dates_in_date_order():
    order = session_order(pd.Series(["", "12 Mar 2025", "9 Jan 2025", "1 Feb 2025"]))
    assert order[0] < order[2] < order[3] < order[1]


def test_latest_session_is_the_latest_date_when_another_trainee_has_none():
    sheets = pd.DataFrame(
        {
            "trainee": ["ann", "bob", "bob"],
            "session": ["", "12 Mar 2025", "9 Jan 2025"],
            "file": ["ann.csv", "bob_mar.csv", "bob_jan.csv"],
        }
    )
    latest = latest_sessions(sheets)
    assert sheets.loc[latest, "file"].tolist() == ["ann.csv", "bob_mar.csv"]


def test_labels_that_are_not_dates_still_sort_as_text():
    order = session_order(pd.Series(["week b", "week a", ""]))
    assert np.argsort(order).tolist() == [2, 1, 0]
