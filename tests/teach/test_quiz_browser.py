"""A trainee takes the quiz in a real browser: Debian's chromium driven by chromium-driver.

The AI-support quiz end to end: answer part of it, close the browser, open it again with
the same profile and find the answers restored, finish, export, and score the export with
``skinml-teach score`` as it is; the numbers must be those of the answers given.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from skinml.cli.teach import main

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"

webdriver = pytest.importorskip(
    "selenium.webdriver", reason="selenium is not installed (pip install -e '.[dev]')"
)
if not (Path(CHROMIUM).is_file() and Path(CHROMEDRIVER).is_file()):
    pytest.skip(
        "Debian's chromium and chromium-driver are not installed "
        "(apt-get install -y chromium chromium-driver)",
        allow_module_level=True,
    )

from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402


class Browser:
    """One headless Chromium on a persistent profile (so a restart keeps localStorage)."""

    def __init__(self, profile: Path, downloads: Path) -> None:
        opts = webdriver.ChromeOptions()
        opts.binary_location = CHROMIUM
        for arg in (
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            "--disable-background-networking",
            f"--user-data-dir={profile}",
            "--window-size=1200,900",
        ):
            opts.add_argument(arg)
        opts.add_experimental_option(
            "prefs",
            {
                "download.default_directory": str(downloads),
                "download.prompt_for_download": False,
                # a second export from the page is what a trainee may do; headless Chromium
                # would otherwise deny its "download multiple files" prompt
                "profile.default_content_setting_values.automatic_downloads": 1,
            },
        )
        self.driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)
        # Browser-wide (Page.setDownloadBehavior is deprecated and binds to one page target).
        self.driver.execute_cdp_cmd(
            "Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(downloads)}
        )
        self.downloads = downloads

    def open(self, page: Path) -> None:
        self.driver.get(page.resolve().as_uri())

    def el(self, element_id: str):
        return self.driver.find_element(By.ID, element_id)

    def radio(self, name: str, value: str):
        return self.driver.find_element(By.CSS_SELECTOR, f'input[name="{name}"][value="{value}"]')

    def text(self, element_id: str) -> str:
        return self.el(element_id).text

    def export_answers(self, trainee: str, timeout_s: float = 90.0) -> Path:
        """Click Export and wait for the finished download (not its .crdownload).

        Generous on purpose: on a loaded CI host Chromium's download service can be slow,
        and a failure must say what was on the page and in the folder, not just time out.
        """

        def stamp(path: Path) -> tuple[str, int]:
            return path.name, path.stat().st_mtime_ns

        before = {stamp(p) for p in self.downloads.iterdir()}
        self.el("export").click()
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            files = sorted(self.downloads.glob(f"answers_{trainee}_*.csv"))
            new = [p for p in files if stamp(p) not in before]
            if new and not list(self.downloads.glob("*.crdownload")):
                return new[0]
            time.sleep(0.2)
        raise AssertionError(
            f"no answers_{trainee}_*.csv in {self.downloads} after {timeout_s:.0f} s; "
            f"folder holds {sorted(p.name for p in self.downloads.iterdir())}; "
            f"export note on the page: {self.text('export-note')!r}"
        )

    def quit(self) -> None:
        self.driver.quit()


@pytest.fixture
def browser_dirs(tmp_path: Path):
    profile, downloads = tmp_path / "profile", tmp_path / "downloads"
    downloads.mkdir()
    yield profile, downloads
    shutil.rmtree(profile, ignore_errors=True)


def _plan(ref: pd.DataFrame, ai: pd.DataFrame, classes: list[str]) -> list[tuple[str, str]]:
    """(own, final) answer per case: a mix of right, wrong, following and ignoring the AI."""
    plan = []
    for k, (truth, ai_dx) in enumerate(zip(ref["diagnosis"], ai["diagnosis"], strict=True)):
        wrong = next(c for c in classes if c != truth)
        own = truth if k % 2 == 0 else wrong
        final = ai_dx if k % 3 != 2 else own  # follows the AI on two cases in three
        plan.append((own, final))
    return plan


def test_quiz_end_to_end_close_resume_export_score(
    ai_quiz_set, browser_dirs, tmp_path, fits_laptop_screen
) -> None:
    ts, _, _ = ai_quiz_set
    profile, downloads = browser_dirs
    ref = ts.reference
    ai = pd.read_csv(ts.ai_answers)
    classes = list(ts.card["classes"])
    plan = _plan(ref, ai, classes)
    n = len(plan)
    first_part, blank = 4, n - 1  # close after 4 cases (+ the 5th locked); leave the last blank

    b = Browser(profile, downloads)
    try:
        b.open(ts.quiz_ai_support)
        b.el("trainee").send_keys("resident-07")
        b.el("years").send_keys("1.5")
        b.el("start").click()
        for k in range(first_part):
            assert b.text("case-id") == ref["case"][k]
            own, final = plan[k]
            b.radio("own_dx", own).click()
            b.radio("own_conf", "0.6").click()
            b.el("save-own").click()
            assert b.el("ai-step").is_displayed() and b.el("ai-heatmap").is_displayed()
            assert not b.radio("own_dx", own).is_enabled()  # the own answer is locked
            b.radio("final_dx", final).click()
            b.radio("final_conf", "0.8").click()
            b.el("save-final").click()
        b.radio("own_dx", plan[first_part][0]).click()  # 5th: own answer locked, no final yet
        b.el("save-own").click()
        assert f"{first_part} answered" in b.text("progress")
    finally:
        b.quit()  # the trainee closes the browser

    b = Browser(profile, downloads)
    try:
        b.open(ts.quiz_ai_support)
        assert b.el("trainee").get_attribute("value") == "resident-07"  # remembered
        assert f"{first_part} of {n} answered" in b.text("resume-info")
        assert b.el("years").get_attribute("value") == "1.5"
        b.el("start").click()
        assert b.text("case-id") == ref["case"][first_part]  # resumes at the first open case
        assert b.el("ai-step").is_displayed()  # ... in its AI step: the own answer was kept
        assert b.radio("own_dx", plan[first_part][0]).is_selected()
        nav = b.el("nav").find_elements(By.TAG_NAME, "button")
        assert [("done" in x.get_attribute("class")) for x in nav[:first_part]] == [True] * 4
        assert "half" in nav[first_part].get_attribute("class")
        nav[1].click()  # an earlier case shows what was answered
        assert b.radio("own_dx", plan[1][0]).is_selected()
        assert b.radio("final_dx", plan[1][1]).is_selected()
        nav[first_part].click()
        b.radio("final_dx", plan[first_part][1]).click()
        b.el("save-final").click()
        for k in range(first_part + 1, blank):
            assert b.text("case-id") == ref["case"][k]
            own, final = plan[k]
            b.radio("own_dx", own).click()
            b.el("save-own").click()
            b.radio("final_dx", final).click()
            b.el("save-final").click()
        assert f"{n - 1} answered" in b.text("progress")
        export = b.export_answers("resident-07")
        assert "1 cases are unanswered" in b.text("export-note")
    finally:
        b.quit()

    exports = list(downloads.glob("*.csv"))
    assert exports == [export]
    exported = pd.read_csv(export, dtype=str, keep_default_na=False)
    assert exported["case"].tolist() == ref["case"].tolist()  # every case, the blank one too
    assert exported["set_fingerprint"].unique().tolist() == [ts.card["fingerprint"]]
    assert (exported["seconds"].iloc[:blank].astype(float) >= 0).all()

    out = tmp_path / "reports"
    rc = main(
        ["score", "--reference", str(ts.reference_csv), "--answers", str(export),
         "--out", str(out), "--n-bootstrap", "200"]
    )  # fmt: skip
    assert rc == 0
    truth = ref["diagnosis"].to_numpy()
    own = np.array([p[0] for p in plan], dtype=object)
    final = np.array([p[1] for p in plan], dtype=object)
    own[blank] = final[blank] = ""
    summary = pd.read_csv(out / "summary.csv")
    assert summary["trainee"].tolist() == ["resident-07"]
    assert summary["n_unanswered"].tolist() == [1]
    assert summary["accuracy"].iloc[0] == pytest.approx((final == truth).mean())
    assert summary["years_training"].iloc[0] == 1.5
    effect = pd.read_csv(out / "ai_effect.csv").iloc[0]
    assert effect["unaided_accuracy"] == pytest.approx((own == truth).mean())
    assert effect["aided_accuracy"] == pytest.approx((final == truth).mean())
    assert effect["n_changed_to_correct"] == ((own != truth) & (final == truth)).sum()
    assert effect["n_changed_to_incorrect"] == ((own == truth) & (final != truth)).sum()
    ai_dx = ai["diagnosis"].to_numpy(dtype=object)
    differ = own != ai_dx
    assert effect["n_followed_wrong_ai"] == (differ & (ai_dx != truth) & (final == ai_dx)).sum()
    assert effect["n_overrode_right_ai"] == (differ & (ai_dx == truth) & (final != ai_dx)).sum()
    assert effect["experience"] == "1 to < 3 years"
    page = (out / "report_resident-07.html").read_text(encoding="utf-8")
    assert ">What the AI changed<" in page
    fits_laptop_screen(out / "ai_support.html")
    fits_laptop_screen(out / "report_resident-07.html")


def test_plain_quiz_export_scores_as_it_is(ai_quiz_set, browser_dirs, tmp_path) -> None:
    ts, _, _ = ai_quiz_set
    profile, downloads = browser_dirs
    ref = ts.reference
    b = Browser(profile, downloads)
    try:
        b.open(ts.quiz)
        assert not b.el("quiz").is_displayed()
        b.el("start").click()  # no ID: refused with a message
        assert "trainee ID" in b.text("start-error")
        b.el("trainee").send_keys("plain-01")
        b.el("start").click()
        for k in range(3):
            b.radio("own_dx", ref["diagnosis"][k]).click()
            b.el("save-own").click()
        assert not b.el("ai-step").is_displayed()
        b.driver.execute_script(  # record the download URLs the page creates and releases
            "window.made = []; window.released = [];"
            "const mk = URL.createObjectURL, rel = URL.revokeObjectURL;"
            "URL.createObjectURL = (x) => { const u = mk(x); made.push(u); return u; };"
            "URL.revokeObjectURL = (u) => { released.push(u); rel(u); };"
        )
        first = b.export_answers("plain-01")
        assert "6 cases are unanswered" in b.text("export-note")
        export = tmp_path / first.name  # kept: the second export may reuse the name
        export.write_bytes(first.read_bytes())
        b.radio("own_dx", ref["diagnosis"][3]).click()
        b.el("save-own").click()
        again = b.export_answers("plain-01")  # a second export (it may reuse the first name)
        made, released = b.driver.execute_script("return [window.made, window.released];")
    finally:
        b.quit()
    # An export's URL lives until the next export (no timer a slow PC could lose the race
    # against): the first was released by the second, the second is still live.
    assert len(made) == 2 and released == made[:1]
    assert len(pd.read_csv(again)) == len(pd.read_csv(export)) == len(ref)
    assert (pd.read_csv(again)["diagnosis"].notna()).sum() == 4
    out = tmp_path / "r"
    assert main(["score", "--reference", str(ts.reference_csv), "--answers", str(export),
                 "--out", str(out), "--n-bootstrap", "0", "--reports", "none"]) == 0  # fmt: skip
    summary = pd.read_csv(out / "summary.csv")
    assert summary["n_correct"].tolist() == [3] and summary["n_unanswered"].tolist() == [6]
    assert summary["ai_support"].tolist() == [False]
    assert not (out / "ai_effect.csv").exists()
