"""Set and check the image-quality thresholds from data, on the predictor's own decode path.

In distribution: a 1,500-image sample of the HAM10000 DermaMNIST training split (where the
thresholds are read off), then the whole DermaMNIST test split and the 113 full-resolution
CC0 ISIC (UDA-1) photos (where the flag rate is checked). Degraded copies of the test images
and photos, written back as JPEG and read like any other input: Gaussian blur (sigma 1.5 % of
the longer side), under-exposure (x0.25) and over-exposure (x3, clipped). Every image goes
through ``decode_image(min_decoded_side=256)`` and ``quality_measures`` as in ``skinml-predict``
for a 64-128 px model.

    .venv/bin/python experiments/quality_thresholds/run.py \
        --data ../shared/data --out experiments/quality_thresholds/results.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image, ImageFilter
from tqdm import tqdm

from skinml.imaging import quality
from skinml.imaging.read import decode_image, read_image
from skinml.stats.proportion import wilson_ci

DEGRADATIONS = {
    "blurred": "blurry",
    "underexposed": "underexposed",
    "overexposed": "overexposed",
}
DECODE_SIDE = 256


def degrade(img: Image.Image, kind: str) -> Image.Image:
    if kind == "blurred":
        return img.filter(ImageFilter.GaussianBlur(0.015 * max(img.size)))
    arr = np.asarray(img, dtype=np.float32) * (0.25 if kind == "underexposed" else 3.0)
    return Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8))


def measure(path: Path) -> dict:
    d = decode_image(path, min_decoded_side=DECODE_SIDE)
    m = quality.quality_measures(d.image, original_size=d.original_size)
    return {**vars(m), "flags": ",".join(quality.quality_flags(m))}


def measure_degraded(path: Path, kind: str, tmp: Path) -> dict:
    out = tmp / f"{kind}.jpg"
    degrade(read_image(path), kind).save(out, quality=92)
    return measure(out)


def rate(flags: pd.Series, flag: str | None = None) -> dict:
    hits = flags.str.len() > 0 if flag is None else flags.str.split(",").map(lambda f: flag in f)
    k, n = int(hits.sum()), len(flags)
    lo, hi = wilson_ci(k, n)
    return {"flagged": k, "n": n, "rate": k / n, "ci95": [lo, hi]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--data", type=Path, default=Path("../shared/data"))
    ap.add_argument("--out", type=Path, default=Path(__file__).with_name("results.json"))
    ap.add_argument("--train-sample", type=int, default=1500)
    args = ap.parse_args()

    ham = args.data / "ham10000_images_200x150"
    man = pd.read_csv(ham / "manifest.csv")
    train = man[man.dermamnist_split == "train"].sample(args.train_sample, random_state=0)
    sets = {
        "ham10000_train_sample": [ham / f for f in train.file],
        "ham10000_test": [ham / f for f in man[man.dermamnist_split == "test"].file],
        "uda1_full_resolution": sorted((args.data / "isic_archive_uda1" / "images").glob("*.jpg")),
    }
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, paths in sets.items():
            for p in tqdm(paths, desc=name, unit="img"):
                rows.append({"set": name, "kind": "original", **measure(p)})
                if name == "ham10000_train_sample":
                    continue
                for kind in DEGRADATIONS:
                    rows.append({"set": name, "kind": kind, **measure_degraded(p, kind, Path(tmp))})
    frame = pd.DataFrame(rows).fillna({"flags": ""})

    train_m = frame[frame.set == "ham10000_train_sample"]
    quantiles = {
        col: {f"q{q:g}": float(train_m[col].quantile(q / 100)) for q in (0.5, 1, 50, 99, 99.5)}
        for col in ("sharpness", "brightness", "clipped_fraction")
    }
    results = {
        "thresholds": {
            "blur_variance_min": quality.BLUR_VARIANCE_MIN,
            "dark_mean_max": quality.DARK_MEAN_MAX,
            "bright_mean_min": quality.BRIGHT_MEAN_MIN,
            "clipped_fraction_max": quality.CLIPPED_FRACTION_MAX,
            "min_side": quality.MIN_SIDE,
            "working_side": quality.MEASURE_SIDE,
            "decode_min_side": DECODE_SIDE,
        },
        "train_sample_quantiles": quantiles,
        "in_distribution_flag_rate": {},
        "degraded_flagged_rate": {},
    }
    for name in sets:
        orig = frame[(frame.set == name) & (frame.kind == "original")]
        results["in_distribution_flag_rate"][name] = {
            "any": rate(orig.flags),
            **{
                f: rate(orig.flags, f) for f in ("blurry", "underexposed", "overexposed", "clipped")
            },
        }
        if name == "ham10000_train_sample":
            continue
        for kind, flag in DEGRADATIONS.items():
            sub = frame[(frame.set == name) & (frame.kind == kind)]
            intended = rate(sub.flags, flag)
            if kind == "overexposed":  # blown highlights are clipped as often as bright
                either = sub.flags.str.contains("overexposed|clipped")
                intended = rate(sub.flags.where(either, ""))
            results["degraded_flagged_rate"][f"{name}/{kind}"] = {
                "intended_flag": intended,
                "any": rate(sub.flags),
            }
    test = frame[frame.kind == "original"]
    results["in_distribution_flag_rate_checked_sets"] = rate(
        test[test.set != "ham10000_train_sample"].flags
    )
    deg = frame[frame.kind != "original"]
    results["degraded_flagged_rate_all"] = rate(deg.flags)
    results["machine"] = {"python": platform.python_version(), "cpu_count": os.cpu_count()}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(
        json.dumps(
            {
                k: results[k]
                for k in ("in_distribution_flag_rate_checked_sets", "degraded_flagged_rate_all")
            },
            indent=1,
        )
    )


if __name__ == "__main__":
    main()
