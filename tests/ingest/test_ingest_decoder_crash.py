"""Issue 15, point 3: a decoder that crashes its process rejects one file, not the ingest.

A real libjpeg/pydicom crash needs a crafted file per library version; the test
stands in a decoder that kills its process (``os._exit``, as a segfault would)
on one named file, and runs the ingest with worker processes.
"""

from __future__ import annotations

import os

import pytest

from skinml.ingest import IngestConfig, run_ingest
from skinml.ingest.normalise import normalise_file
from skinml.ingest.workers import CRASH_REASON, decode_alone


def crashing_decoder(job):
    """Module level, so that worker processes can unpickle it."""
    if job.source.name == "grey.png":
        os._exit(139)  # what a segmentation fault looks like to the parent
    return normalise_file(job)


@pytest.mark.parametrize(
    "config", [{"workers": 2}, {"workers": 1, "isolate_decoder": True}], ids=["2", "1-isolated"]
)
def test_crash_in_a_worker_rejects_only_that_file(deliveries, tmp_path, monkeypatch, sim, config):
    import skinml.ingest.pipeline as pipeline

    monkeypatch.setattr(pipeline, "normalise_file", crashing_decoder)
    result = run_ingest(
        [deliveries.north],
        tmp_path / "ds",
        sim.KEY,
        IngestConfig(max_pixels=sim.OVERSIZE_PIXELS, **config),
        progress=False,
    )
    rejected = result.rejected.set_index("source")
    assert rejected.loc["nevus/grey.png", "reason"] == CRASH_REASON
    assert len(result.manifest) == 11  # every other good image of the delivery


def test_decode_alone_turns_a_crash_into_an_error(tmp_path):
    from skinml.ingest.normalise import Job

    job = Job(tmp_path / "grey.png", tmp_path / "out.jpg", "jpeg", 95, None, 10_000)
    assert decode_alone(crashing_decoder, job) == {"error": CRASH_REASON}
