"""Shared fixtures: the real data by path (skipped with a reason when absent) and seeds."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("SKINML_SHARED_DATA", REPO.parent / "shared" / "data"))
os.environ.setdefault("MPLBACKEND", "Agg")


def _cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def threads_per_process(cpus: int, workers: int) -> int:
    """Threads per test process: the cores shared among the workers, at most 2."""
    return max(1, min(2, cpus // max(1, workers)))


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    """Share the cores among the test processes (CI has 2; oversubscription only slows
    tests down). Runs in each pytest-xdist worker before any test module imports torch,
    which sizes its thread pool from ``OMP_NUM_THREADS``; a value the user set is kept.

    The controller of an xdist run sets nothing: its environment is the workers', and a
    value set there would win over theirs.
    """
    is_worker = "PYTEST_XDIST_WORKER" in os.environ
    if not is_worker and getattr(config.option, "numprocesses", None):
        return
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    threads = str(threads_per_process(_cpus(), workers))
    os.environ.setdefault("OMP_NUM_THREADS", threads)
    os.environ.setdefault("MKL_NUM_THREADS", threads)


# At most this many workers for ``-n auto``: every worker builds its own session fixtures
# (small trained models, generated datasets), so beyond a few the copies cost more than the
# parallelism saves.
MAX_WORKERS = 4


def pytest_xdist_auto_num_workers(config: pytest.Config) -> int:
    """``-n auto``: one worker per usable CPU (logical; 2 on CI), at most ``MAX_WORKERS``."""
    return max(1, min(MAX_WORKERS, _cpus()))


def work_scope(nodeid: str) -> str:
    """The unit of work one xdist worker takes whole: a test module, or every federated
    test together (Ray clusters and Flower servers never run side by side)."""
    module = nodeid.split("::", 1)[0]
    return "tests/federated" if module.startswith("tests/federated/") else module


@pytest.hookimpl(tryfirst=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log):
    """``--dist loadscope`` with :func:`work_scope` as the scope: a module's tests stay on one
    worker, so its module-scoped fixtures (small training runs) are built once.

    Not ``--dist loadgroup`` with ``xdist_group`` marks: on pytest >= 9.2 xdist 3.8 no
    longer sees the group it writes into the node id, and silently spreads the tests out
    (pytest-xdist issue #1386).
    """
    if config.getvalue("dist") != "loadscope":
        return None
    from xdist.scheduler import LoadScopeScheduling

    class ModuleScheduling(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return work_scope(nodeid)

    return ModuleScheduling(config, log)


def shared_dataset(name: str) -> Path:
    """Path to ``../shared/data/<name>``, or skip the test saying what is missing."""
    path = SHARED_DATA / name
    if not path.exists():
        pytest.skip(
            f"real data {path} is absent (set SKINML_SHARED_DATA to the shared/data folder)"
        )
    return path


@pytest.fixture
def shared_data() -> Path:
    """The ``shared/data`` folder; tests that need it skip with a reason when it is absent."""
    if not SHARED_DATA.exists():
        pytest.skip(f"real data folder {SHARED_DATA} is absent")
    return SHARED_DATA


@pytest.fixture
def rng() -> np.random.Generator:
    """A seeded generator; tests must pass for any seed, this one is fixed for reproducibility."""
    return np.random.default_rng(12345)


@pytest.fixture
def fits_laptop_screen():
    """``fits_laptop_screen(page)``: open an HTML page 1,000 px wide in headless Chromium and
    assert nothing runs past the right edge and every image loads (skips without Chromium)."""
    from skinml.reporting.browser import find_chromium, measure_layout

    if find_chromium() is None:
        pytest.skip("chromium is not installed (apt-get update && apt-get install -y chromium)")

    def check(page: Path, width: int = 1000):
        layout = measure_layout(page, width=width)
        assert layout.fits, f"{page.name} at {width} px: {layout.overflowing}"
        assert layout.broken_images == [], f"{page.name}: {layout.broken_images}"
        return layout

    return check
