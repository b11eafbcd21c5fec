"""How the suite splits across pytest-xdist workers (tests/conftest.py)."""

from __future__ import annotations

from tests.conftest import threads_per_process, work_scope


def test_a_module_or_every_federated_test_is_one_unit_of_work():
    assert work_scope("tests/core/test_stats.py::test_x") == "tests/core/test_stats.py"
    assert work_scope("tests/core/test_stats.py::TestY::test_z[a::b]") == "tests/core/test_stats.py"
    federated = {
        work_scope("tests/federated/test_rounds.py::test_x[1]"),
        work_scope("tests/federated/test_deployment.py::test_y"),
    }
    assert federated == {"tests/federated"}


def test_workers_share_the_cores():
    assert threads_per_process(cpus=2, workers=2) == 1  # CI: 2 cores, 2 workers
    assert threads_per_process(cpus=2, workers=1) == 2  # -n 0
    assert threads_per_process(cpus=16, workers=4) == 2  # never more than 2 per test
    assert threads_per_process(cpus=1, workers=4) == 1
