"""Per-image cost of each predictor step on one thread: read, quality measures, preprocessing.

Shows where the predictor's time goes outside the network, for the small HAM10000
JPEGs (200x150) of the main benchmark and for full-resolution clinical photos
(the 113 CC0 ISIC images, 0.4-6 MP), which is what a clinic actually sends.

Usage::

    .venv/bin/python experiments/inference_benchmark/step_costs.py MODEL.onnx [--out FILE]

Prints and writes JSON: milliseconds per image and step (mean over all images,
best of ``--repeats`` passes), images and mean megapixels per set.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
DATA = Path(os.environ.get("SKINML_SHARED_DATA", HERE.parents[2] / "shared" / "data"))
SETS = {
    "ham10000_200x150_first_1000": lambda: sorted(
        (DATA / "ham10000_images_200x150" / "images").glob("*.jpg")
    )[:1000],
    "isic_full_resolution_113": lambda: sorted(
        p for p in (DATA / "isic_archive_uda1").rglob("*") if p.suffix.lower() in {".jpg", ".jpeg"}
    ),
}


def step_costs(paths: list[Path], prep, repeats: int) -> dict[str, float]:
    """Best-of-``repeats`` mean milliseconds per image for each step, on one thread."""
    from skinml.imaging.preprocess import preprocess
    from skinml.imaging.quality import quality_measures
    from skinml.imaging.read import read_image

    best = {"read_ms": np.inf, "quality_ms": np.inf, "preprocess_ms": np.inf}
    pixels = 0
    for _ in range(repeats):
        spent = np.zeros(3)
        pixels = 0
        for p in paths:
            t0 = time.perf_counter()
            img = read_image(p)
            t1 = time.perf_counter()
            quality_measures(img)
            t2 = time.perf_counter()
            preprocess(img, prep)
            t3 = time.perf_counter()
            spent += (t1 - t0, t2 - t1, t3 - t2)
            pixels += img.width * img.height
        for key, value in zip(best, spent / len(paths) * 1e3, strict=True):
            best[key] = min(best[key], float(value))
    return {"images": len(paths), "mean_megapixels": pixels / len(paths) / 1e6, **best}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("model", type=Path, help="an exported skinml .onnx image model")
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--out", type=Path, default=None, help="also write the JSON here")
    args = ap.parse_args(argv)

    from skinml.errors import ModelFileError
    from skinml.modelfile import read_metadata

    try:
        prep = read_metadata(args.model).preprocessing
    except ModelFileError as exc:
        ap.error(str(exc))
    result: dict[str, object] = {
        "model_input_size": list(prep.input_size),
        "interpolation": prep.interpolation,
        "threads": 1,
    }
    for name, listing in SETS.items():
        paths = listing()
        if not paths:
            result[name] = f"absent: no images under {DATA}"
            continue
        result[name] = step_costs(paths, prep, args.repeats)
    text = json.dumps(result, indent=2)
    print(text)
    if args.out is not None:
        args.out.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
