"""Set and check the image-quality thresholds from data, on the predictor's own decode path.

In distribution: a 1,500-image sample of the HAM10000 DermaMNIST training split (where the
thresholds are read off), then the whole DermaMNIST test split and the 113 full-resolution
CC0 ISIC (UDA-1) photos (where the flag rate is checked). Degraded copies of the test images
and photos, written back as JPEG and read like any other input: Gaussian blur (sigma 1.5 % of
the longer side), under-exposure (x0.25) and over-exposure (x3, clipped); and milder copies
(sigma 0.75 %, x0.5, x2). Every image goes through ``decode_image(min_decoded_side=256)`` and
``quality_measures`` as in ``skinml-predict`` for a 128 px model.

    .venv/bin/python experiments/quality_thresholds/run.py \
        --data ../shared/data --out experiments/quality_thresholds/results.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image, ImageFilter
from tqdm import tqdm

from skinml.imaging import quality
from skinml.imaging.read import decode_image, read_image
from skinml.stats.proportion import wilson_ci
from skinml.tracking.provenance import git_commit

#: degraded copy -> (the flag it should raise, strength). "mild" copies show where the
#: thresholds stop seeing a problem; the goal (>= 90 % flagged) is on the strong ones.
DEGRADATIONS = {
    "blurred": ("blurry", 0.015),  # Gaussian sigma, fraction of the longer side
    "underexposed": ("underexposed", 0.25),  # pixel values multiplied by this
    "overexposed": ("overexposed", 3.0),
    "blurred_mild": ("blurry", 0.0075),
    "underexposed_mild": ("underexposed", 0.5),
    "overexposed_mild": ("overexposed", 2.0),
}
DECODE_SIDE = 256


def degrade(img: Image.Image, kind: str) -> Image.Image:
    strength = DEGRADATIONS[kind][1]
    if kind.startswith("blurred"):
        return img.filter(ImageFilter.GaussianBlur(strength * max(img.size)))
    arr = np.asarray(img, dtype=np.float32) * strength
    return Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8))


def measure(path: Path) -> dict:
    d = decode_image(path, min_decoded_side=DECODE_SIDE)
    m = quality.quality_measures(d.image, original_size=d.original_size)
    return {**vars(m), "quality_flags": ",".join(quality.quality_flags(m))}


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
                for kind in DEGRADATIONS:
                    rows.append({"set": name, "kind": kind, **measure_degraded(p, kind, Path(tmp))})
    frame = pd.DataFrame(rows).fillna({"quality_flags": ""})

    train_m = frame[(frame.set == "ham10000_train_sample") & (frame.kind == "original")]
    quantiles = {
        col: {f"q{q:g}": float(train_m[col].quantile(q / 100)) for q in (0.5, 1, 50, 99, 99.5)}
        for col in ("sharpness", "brightness", "clipped_fraction")
    }

    def train_q(kind: str, col: str, q: float) -> float:
        sub = frame[(frame.set == "ham10000_train_sample") & (frame.kind == kind)]
        return float(sub[col].quantile(q))

    # The rule: midway between the in-distribution 0.5th percentile and the strongly
    # degraded copies' 99.5th (geometric for sharpness, a scale-like quantity).
    suggested = {
        "blur_variance_min": (
            train_q("original", "sharpness", 0.005) * train_q("blurred", "sharpness", 0.995)
        )
        ** 0.5,
        "dark_mean_max": (
            train_q("original", "brightness", 0.005) + train_q("underexposed", "brightness", 0.995)
        )
        / 2,
        "bright_mean_min": (
            train_q("original", "brightness", 0.995) + train_q("overexposed", "brightness", 0.005)
        )
        / 2,
    }
    results = {
        "suggested_by_rule_on_train_sample": suggested,
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
            "any": rate(orig["quality_flags"]),
            **{
                f: rate(orig["quality_flags"], f)
                for f in ("blurry", "underexposed", "overexposed", "clipped")
            },
        }
        for kind, (flag, _) in DEGRADATIONS.items():
            sub = frame[(frame.set == name) & (frame.kind == kind)]
            intended = rate(sub["quality_flags"], flag)
            if flag == "overexposed":  # blown highlights are clipped as often as bright
                either = sub["quality_flags"].str.contains("overexposed|clipped")
                intended = rate(sub["quality_flags"].where(either, ""))
            results["degraded_flagged_rate"][f"{name}/{kind}"] = {
                "intended_flag": intended,
                "any": rate(sub["quality_flags"]),
            }
    test = frame[frame.kind == "original"]
    results["in_distribution_flag_rate_checked_sets"] = rate(
        test[test.set != "ham10000_train_sample"]["quality_flags"]
    )
    checked = frame.set != "ham10000_train_sample"
    strong = checked & frame.kind.isin([k for k in DEGRADATIONS if not k.endswith("_mild")])
    results["degraded_flagged_rate_all"] = rate(frame[strong]["quality_flags"])
    mild = checked & frame.kind.str.endswith("_mild")
    results["degraded_mild_flagged_rate_all"] = rate(frame[mild]["quality_flags"])
    results["machine"] = {"python": platform.python_version(), "cpu_count": os.cpu_count()}
    results["provenance"] = {
        "git_commit": git_commit(),
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
    }
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
