"""Explain-area fixtures: one torch thread, because the CI machine's 2 cores are shared.

With several jobs on two cores, torch's intra-op threads spin against each
other and a 64 px ResNet backward pass takes seconds instead of a fraction.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest


@pytest.fixture(autouse=True, scope="module")
def _single_torch_thread() -> Iterator[None]:
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
