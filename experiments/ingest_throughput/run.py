"""Benchmark: files per second of ``skinml-ingest run`` on the 113 real ISIC UDA-1 images.

The images (full resolution, 98 sizes, 0.4-10 MP) are copied into three
*simulated* hospital deliveries (label folders by diagnosis; the first one also
carries the published MD5SUMS lines, so arrival checks are exercised) in a
temporary folder, then ingested into a fresh dataset folder with 1 and with 2
worker processes, alternating, ``--repeats`` times each. A resumed run (same
arguments, nothing left to do) is timed as well.

Usage:
    .venv/bin/python experiments/ingest_throughput/run.py [--repeats 3] [--data PATH]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import PIL

from skinml.ingest import IngestConfig, near_pairs, run_ingest

HERE = Path(__file__).resolve().parent
DEFAULT_DATA = HERE.parents[1].parent / "shared" / "data" / "isic_archive_uda1"
KEY = b"benchmark-key-not-secret-0123456789"
HOSPITALS = ("simulated_hospital_a", "simulated_hospital_b", "simulated_hospital_c")


def build_deliveries(data: Path, root: Path) -> list[Path]:
    """Spread the 113 images over three simulated hospitals (round robin by image id)."""
    meta = pd.read_csv(data / "metadata.csv")
    meta = meta[meta["included"] == 1].sort_values("image_id").reset_index(drop=True)
    md5 = {
        Path(name).name: digest
        for digest, name in (
            line.split(maxsplit=1) for line in (data / "MD5SUMS").read_text().splitlines()
        )
    }
    deliveries = [root / h for h in HOSPITALS]
    sums: list[str] = []
    for i, rec in meta.iterrows():
        dest = deliveries[i % 3] / rec["diagnosis"] / f"{rec['image_id']}.jpg"
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(data / "images" / f"{rec['image_id']}.jpg", dest)
        if i % 3 == 0:
            sums.append(f"{md5[rec['image_id'] + '.jpg']}  {rec['diagnosis']}/{dest.name}\n")
    (deliveries[0] / "MD5SUMS").write_text("".join(sums))
    return deliveries


def _cpu_seconds() -> float:
    """User + system CPU time of this process and its finished worker processes."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def time_run(deliveries: list[Path], out: Path, workers: int) -> tuple[float, float, object]:
    """Wall-clock and CPU seconds of one ingest into ``out``."""
    cpu, start = _cpu_seconds(), time.perf_counter()
    result = run_ingest(deliveries, out, KEY, IngestConfig(workers=workers), progress=False)
    return time.perf_counter() - start, _cpu_seconds() - cpu, result


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--out", type=Path, default=HERE / "results.json")
    args = parser.parse_args()

    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="ingest_bench_") as tmp:
        tmp = Path(tmp)
        deliveries = build_deliveries(args.data, tmp / "inbox")
        files = [p for d in deliveries for p in d.rglob("*.jpg")]
        n, total_bytes = len(files), sum(p.stat().st_size for p in files)
        runs: dict[int, list[float]] = {1: [], 2: []}
        cpu: dict[int, list[float]] = {1: [], 2: []}
        resume_seconds: list[float] = []
        last = None
        for r in range(args.repeats):
            for workers in (1, 2) if r % 2 == 0 else (2, 1):
                out = tmp / f"ds_w{workers}_r{r}"
                seconds, cpu_seconds, last = time_run(deliveries, out, workers)
                cpu[workers].append(cpu_seconds)
                assert len(last.manifest) == n and last.rejected.empty, last.lines
                runs[workers].append(seconds)
                print(f"repeat {r} workers {workers}: {seconds:.2f} s = {n / seconds:.2f} files/s")
                if workers == 1:
                    again, _, res = time_run(deliveries, out, 1)
                    assert res.n_resumed == n
                    resume_seconds.append(again)
                shutil.rmtree(out)
        out_megapixels = float((last.manifest["width"] * last.manifest["height"]).sum() / 1e6)
        # how far apart distinct real images are in pHash (supports the near-duplicate threshold)
        distances = [dist for _, _, dist in near_pairs(list(last.manifest["phash"]), 64)]
        duplicate_images = int((last.manifest["duplicate_kind"] != "none").sum())
    load_after = os.getloadavg()

    def summary(seconds: list[float], cpu_seconds: list[float]) -> dict:
        rates = [n / s for s in seconds]
        return {
            "seconds_per_run": [round(s, 3) for s in seconds],
            "cpu_seconds_per_run": [round(s, 3) for s in cpu_seconds],
            "files_per_cpu_second_median": round(n / statistics.median(cpu_seconds), 3),
            "files_per_second_median": round(statistics.median(rates), 3),
            "files_per_second_min": round(min(rates), 3),
            "files_per_second_max": round(max(rates), 3),
        }

    results = {
        "data": "ISIC Archive UDA-1, 113 original full-resolution JPEGs (CC0), spread over 3 "
        "simulated hospitals",
        "n_images": n,
        "input_megabytes": round(total_bytes / 1e6, 2),
        "megapixels_total": round(out_megapixels, 1),
        "settings": "jpeg quality 95, full resolution (no --max-side), near-duplicate pHash",
        "repeats": args.repeats,
        "workers_1": summary(runs[1], cpu[1]),
        "workers_2": summary(runs[2], cpu[2]),
        "speedup_2_vs_1_median": round(statistics.median(runs[1]) / statistics.median(runs[2]), 3),
        "resumed_run_files_per_second_median": round(n / statistics.median(resume_seconds), 3),
        "duplicate_images_found_among_real": duplicate_images,
        "phash_distance_between_distinct_real_images": {
            "pairs": len(distances),
            "min": min(distances),
            "percentile_1": float(np.percentile(distances, 1)),
            "median": float(np.median(distances)),
            "near_threshold_used": IngestConfig().near_threshold,
        },
        "machine": {
            "cpu_count": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
            "pillow": PIL.__version__,
            "load_average_1_5_15_before": [round(x, 2) for x in load_before],
            "load_average_1_5_15_after": [round(x, 2) for x in load_after],
            "shared_with_other_jobs": True,
        },
    }
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
