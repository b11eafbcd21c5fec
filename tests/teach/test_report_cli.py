"""The command line end to end, the HTML report's content, and a real-browser screenshot."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from skinml.cli.teach import build_parser, main
from skinml.teach.reference import read_reference
from skinml.teach.simulate import simulate_answers

REPO = Path(__file__).resolve().parents[2]


def _screenshot_module():
    spec = importlib.util.spec_from_file_location(
        "screenshot_report", REPO / "scripts" / "screenshot_report.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_help_teaches_with_examples(capsys) -> None:
    parser = build_parser()
    assert "skinml-teach build manifest.csv -n 40" in parser.format_help()
    with pytest.raises(SystemExit):
        main(["score", "--help"])
    text = capsys.readouterr().out
    assert "examples:" in text and "--n-bootstrap" in text and "synonyms" in text


@pytest.fixture(scope="module")
def scored(tmp_path_factory, ham_set):
    """CLI build from the real HAM test split, then CLI score of SIMULATED trainees."""
    ts, _, manifest = ham_set
    work = tmp_path_factory.mktemp("cli")
    ref = read_reference(ts.reference_csv)
    args = (ref.cases, ref.diagnosis, ref.classes)
    alice = simulate_answers(*args, accuracy=0.95, confusions={"mel": "nv"}, seed=1)
    alice["diagnosis"] = alice["diagnosis"].replace({"nv": "Naevus", "bcc": "basal cell carcinoma"})
    alice.to_csv(work / "simulated_alice.csv", index=False)
    long = pd.concat(
        [
            simulate_answers(
                *args, accuracy=0.55, seed=2, trainee="simulated_bob", session="2026-09-01"
            ),
            simulate_answers(
                *args,
                accuracy=0.8,
                seed=3,
                trainee="simulated_bob",
                session="2026-11-01",
                unanswered=0.05,
            ),
            simulate_answers(
                *args, accuracy=0.7, seed=4, trainee="simulated_cy", session="2026-11-01"
            ),
        ]
    )
    long.to_csv(work / "simulated_cohort.csv", index=False)
    out = work / "reports"
    rc = main(
        [
            "score",
            "--reference",
            str(ts.reference_csv),
            "--answers",
            str(work / "simulated_alice.csv"),
            str(work / "simulated_cohort.csv"),
            "--out",
            str(out),
            "--n-bootstrap",
            "200",
            "--reader-scores",
            str(manifest.root.parent / "dermfm_zero_todiv_reader_scores"),
            "--note",
            "SIMULATED trainees on real HAM10000 test images; SIMULATED AI answers.",
        ]
    )
    assert rc == 0
    return ts, out


def test_cli_build_from_manifest_csv(tiny_manifest, tmp_path: Path, capsys) -> None:
    manifest_csv = tiny_manifest.root / "manifest.csv"
    rc = main(
        ["build", str(manifest_csv), "-n", "7", "--out", str(tmp_path / "set"), "--seed", "2"]
    )
    assert rc == 0
    out = capsys.readouterr().out
    assert "teaching set with 7 cases written to" in out and "hand out:" in out
    assert len(list((tmp_path / "set" / "cases").glob("case_*.jpg"))) == 7


def test_cli_score_outputs(scored, capsys) -> None:
    ts, out = scored
    summary = pd.read_csv(out / "summary.csv")
    assert summary["trainee"].tolist() == ["simulated_alice", "simulated_bob", "simulated_cy"]
    assert (summary["session"].fillna("") == ["", "2026-11-01", "2026-11-01"]).all()
    sessions = pd.read_csv(out / "sessions.csv")
    assert len(sessions) == 4
    alice = summary.iloc[0]
    assert alice["sensitivity_mel"] == 0.0  # synonyms ("Naevus") were mapped, not rejected
    assert alice["n_missed_malignant"] >= (ts.reference["diagnosis"] == "mel").sum()
    for name in (
        "report_simulated_alice.html",
        "report_simulated_bob.html",
        "per_diagnosis.csv",
        "missed_malignancies.csv",
        "cohort.json",
    ):
        assert (out / name).is_file(), name


def test_report_content(scored) -> None:
    ts, out = scored
    page = (out / "report_simulated_alice.html").read_text(encoding="utf-8")
    assert page.index("You named") < page.index("Missed malignancies")  # verdict first
    assert "To study: melanoma (mel)" in page
    assert "SIMULATED trainees" in page
    for heading in (
        "Missed malignancies",
        "Diagnosis by diagnosis",
        "Where your answers went",
        "You and the AI on the same cases",
        "You and your cohort",
        "Against published reference levels",
        "How this was scored",
    ):
        assert f">{heading}<" in page, heading
    n_mel = int((ts.reference["diagnosis"] == "mel").sum())
    assert page.count('class="case missed"') >= n_mel
    assert "&#x27;Naevus&#x27; → nv" in page
    assert "TODIV" in page and "Rinner" in page
    assert not re.search(r'src="(?!data:)', page)  # self-contained: every image embedded
    bob = (out / "report_simulated_bob.html").read_text(encoding="utf-8")
    assert ">Progress across sessions<" in bob and "2026-09-01" in bob


def test_cli_bad_answers_exit_2_with_message(scored, tmp_path: Path, capsys) -> None:
    ts, _ = scored
    bad = tmp_path / "bad.csv"
    pd.DataFrame({"case": ["case_001", "case_777"], "diagnosis": ["wart", "nv"]}).to_csv(
        bad, index=False
    )
    rc = main(
        [
            "score",
            "--reference",
            str(ts.reference_csv),
            "--answers",
            str(bad),
            "--out",
            str(tmp_path / "r"),
        ]
    )
    err = capsys.readouterr().err
    assert rc == 2
    assert "unknown case ID 'case_777'" in err and "unknown diagnosis 'wart'" in err
    assert "bad.csv" in err and not (tmp_path / "r" / "summary.csv").exists()


def test_report_in_headless_chromium(scored, tmp_path: Path) -> None:
    shot = _screenshot_module()
    if shot.find_chromium() is None:
        pytest.skip("chromium is not installed (apt-get update && apt-get install -y chromium)")
    _, out = scored
    png = shot.screenshot(
        out / "report_simulated_alice.html", tmp_path / "alice.png", width=1200, height=2400
    )
    with Image.open(png) as img:
        assert img.size == (1200, 2400)
        arr = np.asarray(img.convert("RGB"), dtype=float)
    # a rendered page, not a blank one: text, the red verdict frame and images add variance
    assert arr.std() > 20
    reds = (arr[..., 0] > 150) & (arr[..., 1] < 90) & (arr[..., 2] < 90)
    assert reds.sum() > 500  # the red frames of the missed-malignancy cards are visible


def test_screenshot_script_reports_missing_chromium(tmp_path: Path, monkeypatch) -> None:
    import skinml.reporting.browser as browser

    shot = _screenshot_module()
    monkeypatch.setattr(browser, "find_chromium", lambda: None)
    html = tmp_path / "x.html"
    html.write_text("<html></html>")
    assert shot.main([str(html), "-o", str(tmp_path / "x.png")]) == 1


def test_teach_reports_fit_a_laptop_screen_in_chromium(scored, fits_laptop_screen) -> None:
    _, out = scored
    pages = sorted(out.glob("*.html"))
    assert len(pages) >= 2
    for page in pages:
        fits_laptop_screen(page)
