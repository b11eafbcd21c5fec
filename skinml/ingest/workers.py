"""Decode images in worker processes so that a crash in native code costs one file, not the run.

Pillow (libjpeg, libpng, libtiff) and pydicom's pixel handlers are C code; a
crafted or damaged file can make them crash the process that decodes it. The
ingest already decodes in worker processes; when one dies, Python's pool is
broken and every unfinished file fails with it. Here the unfinished files are
then decoded again one process each, so only the file that crashes again is
rejected, naming the reason; all others are ingested.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from typing import Any

#: The rejection reason of a file whose decoder took its process down.
CRASH_REASON = (
    "the image decoder crashed on this file (native code in Pillow/pydicom); the file is "
    "damaged or crafted; fix: ask the sender to re-export it"
)


def decode_in_workers(
    jobs: Mapping[str, Any],
    work: Callable[[Any], dict[str, Any]],
    workers: int,
    finish: Callable[[str, dict[str, Any]], None],
) -> None:
    """Run ``work(job)`` for every job in ``workers`` processes and call ``finish(key, result)``.

    A job whose process crashes twice (once in the shared pool, once alone) is
    finished with ``{"error": CRASH_REASON}``.
    """
    pending = dict(jobs)
    with ProcessPoolExecutor(max_workers=max(1, min(workers, len(jobs)))) as pool:
        futures = {pool.submit(work, job): key for key, job in pending.items()}
        try:
            for fut in as_completed(futures):
                try:
                    result = fut.result()
                except BrokenProcessPool:
                    break  # a worker died; the rest are retried one process each below
                key = futures[fut]
                pending.pop(key)
                finish(key, result)
        except BaseException:
            pool.shutdown(wait=True, cancel_futures=True)
            raise
    for key, job in pending.items():
        finish(key, decode_alone(work, job))


def decode_alone(work: Callable[[Any], dict[str, Any]], job: Any) -> dict[str, Any]:
    """``work(job)`` in a process of its own; a crash there becomes an error result."""
    with ProcessPoolExecutor(max_workers=1) as one:
        try:
            return one.submit(work, job).result()
        except BrokenProcessPool:
            return {"error": CRASH_REASON}
