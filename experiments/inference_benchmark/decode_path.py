"""The predictor with reduced-scale JPEG decoding against the exact decode, side by side.

One process, one model file, two predictors that differ only in the decode policy
(``Preprocessing.decode_min_side``: None = every pixel, as before schema 1.3; the fast
value = max(256, 2 x input side), what new training runs record):

1. **Same answers** on the 113 full-resolution CC0 ISIC photos and on the DermaMNIST test
   split of HAM10000 (200x150): top-1 agreement, max |delta p| over all classes, and the
   malignancy AUC of each path with bootstrap CIs.
2. **Throughput**, paired and interleaved (exact, fast, pure, exact, fast, pure, ...; best
   pass kept, as in ``run.py``): ``predict_to_csv`` end to end (decode, quality, preprocess,
   onnxruntime, CSV) on the photos and on the thumbnails, and pure inference of the
   predictor's own session on the same images preprocessed in memory.
3. **Memory** over 10,000 inputs (the photos, repeated) on the fast path: RSS every 1,000.
4. **Cold start**: a fresh process imports ``skinml.predict`` and loads the model.
5. **Per-step cost**, one thread: decode (exact vs fast), quality measures, resize.

    .venv/bin/python experiments/inference_benchmark/decode_path.py \
        outputs/dermamnist_lite0_128/seed0/model.onnx --data ../shared/data \
        --out experiments/inference_benchmark/decode_path.json
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd

from skinml.imaging.preprocess import fast_decode_min_side, resize_for_model
from skinml.imaging.quality import quality_measures
from skinml.imaging.read import decode_image
from skinml.predict import ImagePredictor, predict_to_csv
from skinml.stats import bootstrap_ci
from skinml.tracking.provenance import git_commit


def rss_mib() -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def with_decode(pred: ImagePredictor, side: int | None) -> ImagePredictor:
    """The same predictor and session with another decode policy (the only difference)."""
    prep = replace(pred.metadata.preprocessing, decode_min_side=side)
    pred.metadata = replace(pred.metadata, preprocessing=prep)
    return pred


def write_list(paths: list[Path], dest: Path) -> Path:
    with open(dest, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["image"])
        w.writerows([[str(p)] for p in paths])
    return dest


def probabilities(rows: list[dict], classes) -> np.ndarray:
    return np.array([[float(r[f"p_{c}"]) for c in classes] for r in rows])


def auc_ci(y: np.ndarray, score: np.ndarray) -> dict:
    from sklearn.metrics import roc_auc_score

    ci = bootstrap_ci(roc_auc_score, y, score, n_bootstrap=1000, seed=0)
    return {"auc": ci.value, "ci95": [ci.ci_low, ci.ci_high], "n": len(y), "n_pos": int(y.sum())}


def agreement(name, paths, malignant, exact, fast, classes, mal_idx) -> dict:
    rows_e = exact.predict_paths(paths)
    rows_f = fast.predict_paths(paths)
    pe, pf = probabilities(rows_e, classes), probabilities(rows_f, classes)
    reductions = [decode_image(p, min_decoded_side=fast_side(fast)).reduction for p in paths]
    y = np.asarray(malignant, dtype=int)
    return {
        "set": name,
        "n": len(paths),
        "decoded_at_reduced_scale": int(sum(r > 1 for r in reductions)),
        "reductions": {
            str(k): int(v) for k, v in zip(*np.unique(reductions, return_counts=True), strict=True)
        },
        "top1_agreement": float((pe.argmax(1) == pf.argmax(1)).mean()),
        "top1_disagreements": int((pe.argmax(1) != pf.argmax(1)).sum()),
        "max_abs_delta_p": float(np.abs(pe - pf).max()),
        "mean_abs_delta_p_malignant": float(
            np.abs(pe[:, mal_idx].sum(1) - pf[:, mal_idx].sum(1)).mean()
        ),
        "malignant_auc_exact": auc_ci(y, pe[:, mal_idx].sum(1)),
        "malignant_auc_fast": auc_ci(y, pf[:, mal_idx].sum(1)),
    }


def fast_side(pred: ImagePredictor) -> int | None:
    return pred.metadata.preprocessing.decode_min_side


def throughput(label, listing, arrays, preds, repeats, batch) -> dict:
    """Interleaved passes: end to end for each predictor, then pure inference; best kept."""
    passes: dict[str, list[float]] = {f"end_to_end_{k}": [] for k in preds} | {"pure": []}
    first = next(iter(preds.values()))
    name = first.tensors["input"]
    batches = [arrays[i : i + batch] for i in range(0, len(arrays), batch)]
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(repeats):
            for key, pred in preds.items():
                t = time.perf_counter()
                s = predict_to_csv(
                    pred.model_path,
                    listing,
                    Path(tmp) / "p.csv",
                    batch_size=batch,
                    progress=False,
                    predictor=pred,
                )
                assert s.n_error == 0, f"{s.n_error} errors in {label}"
                passes[f"end_to_end_{key}"].append(s.n_rows / (time.perf_counter() - t))
            t = time.perf_counter()
            for b in batches:
                first.session.run(None, {name: b})
            passes["pure"].append(len(arrays) / (time.perf_counter() - t))
    best = {k: max(v) for k, v in passes.items()}
    out = {f"{k}_images_per_s": v for k, v in best.items()}
    out["end_to_end_over_pure"] = best["end_to_end_fast"] / best["pure"]
    out["end_to_end_exact_over_pure"] = best["end_to_end_exact"] / best["pure"]
    out["speedup_vs_exact_decode"] = best["end_to_end_fast"] / best["end_to_end_exact"]
    out["all_passes_images_per_s"] = passes
    return out


def step_costs(paths: list[Path], side: int, prep) -> dict:
    """Milliseconds per image, one thread: decode exact / fast, quality, resize (fast image)."""
    out = {}
    for key, s in (("decode_exact_ms", None), ("decode_fast_ms", side)):
        t = time.perf_counter()
        for p in paths:
            decode_image(p, min_decoded_side=s)
        out[key] = (time.perf_counter() - t) / len(paths) * 1e3
    decoded = [decode_image(p, min_decoded_side=side) for p in paths]
    t = time.perf_counter()
    for d in decoded:
        quality_measures(d.image, original_size=d.original_size)
    out["quality_fast_ms"] = (time.perf_counter() - t) / len(paths) * 1e3
    t = time.perf_counter()
    for d in decoded:
        resize_for_model(d.image, prep)
    out["resize_fast_ms"] = (time.perf_counter() - t) / len(paths) * 1e3
    exact = [decode_image(p).image for p in paths[:40]]
    t = time.perf_counter()
    for img in exact:
        quality_measures(img)
        resize_for_model(img, prep)
    out["quality_and_resize_exact_ms"] = (time.perf_counter() - t) / len(exact) * 1e3
    return out


def memory(pred: ImagePredictor, photos: list[Path], n: int, batch: int) -> list[dict]:
    from skinml.predict.inputs import InputItem

    items = (InputItem(str(p), p, None) for i in range(n) for p in [photos[i % len(photos)]])
    samples = [{"images": 0, "rss_mib": round(rss_mib(), 1)}]
    for i, _ in enumerate(pred.iter_rows(items, batch_size=batch), start=1):
        if i % 1000 == 0:
            samples.append({"images": i, "rss_mib": round(rss_mib(), 1)})
    return samples


def cold_start(model: Path, threads: int, repeats: int = 3) -> dict:
    code = (
        "import time; t=time.perf_counter(); from skinml.predict import ImagePredictor; "
        f"ImagePredictor({str(model)!r}, threads={threads}); print(time.perf_counter()-t)"
    )
    inner, outer = [], []
    for _ in range(repeats):
        t = time.perf_counter()
        res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
        outer.append(time.perf_counter() - t)
        inner.append(float(res.stdout.strip().splitlines()[-1]))
    return {"import_and_load_s_best": min(inner), "process_wall_s_best": min(outer)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("model", type=Path)
    ap.add_argument("--data", type=Path, default=Path("../shared/data"))
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--memory-images", type=int, default=10_000)
    ap.add_argument("--thumbnails", type=int, default=None, help="cap the HAM10000 test images")
    ap.add_argument(
        "--decode-min-side",
        type=int,
        default=None,
        help="the fast path's shorter side (default: what training records, 2 x input side)",
    )
    ap.add_argument("--agreement-only", action="store_true")
    args = ap.parse_args()

    exact = with_decode(ImagePredictor(args.model, threads=args.threads), None)
    fast_value = args.decode_min_side or fast_decode_min_side(
        exact.metadata.preprocessing.input_size
    )
    fast = with_decode(
        ImagePredictor(args.model, threads=args.threads, session=exact.session), fast_value
    )
    meta = exact.metadata
    classes = list(meta.classes)
    mal_idx = [classes.index(c) for c in meta.malignant]

    data = args.data.resolve()  # the worklist CSVs name absolute paths
    uda = data / "isic_archive_uda1"
    uda_meta = pd.read_csv(uda / "metadata.csv")
    uda_meta = uda_meta[uda_meta.included == 1]
    photos = [uda / "images" / f"{i}.jpg" for i in uda_meta.image_id]
    photo_malignant = (uda_meta.benign_malignant == "malignant").to_numpy()
    ham = data / "ham10000_images_200x150"
    man = pd.read_csv(ham / "manifest.csv")
    test = man[man.dermamnist_split == "test"].sort_values("image_id")
    if args.thumbnails:
        test = test.head(args.thumbnails)
    thumbs = [ham / f for f in test.file]
    thumb_malignant = test.dx.isin(["mel", "bcc", "akiec"]).to_numpy()

    results: dict = {
        "model": str(args.model),
        "input_size": list(meta.preprocessing.input_size),
        "decode_min_side_fast": fast_value,
        "threads": args.threads,
        "batch": args.batch,
        "machine": {
            "cpu_count": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
        "started_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "git_commit": git_commit(),
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
    }
    print("agreement ...", flush=True)
    results["agreement"] = {
        "full_resolution": agreement(
            "uda1_113", photos, photo_malignant, exact, fast, classes, mal_idx
        ),
        "thumbnails": agreement(
            "ham10000_test", thumbs, thumb_malignant, exact, fast, classes, mal_idx
        ),
    }
    if args.agreement_only:
        args.out.write_text(json.dumps(results, indent=2) + "\n")
        return
    print("step costs ...", flush=True)
    results["step_costs_one_thread_full_resolution"] = step_costs(
        photos, fast_value, meta.preprocessing
    )
    with tempfile.TemporaryDirectory() as tmp:
        for key, paths in (("full_resolution", photos), ("thumbnails", thumbs)):
            print(f"throughput {key} ...", flush=True)
            listing = write_list(paths, Path(tmp) / f"{key}.csv")
            arrays = np.stack([fast.load(i, _item(p)).array for i, p in enumerate(paths)])
            results[key] = throughput(
                key, listing, arrays, {"exact": exact, "fast": fast}, args.repeats, args.batch
            )
    print("memory ...", flush=True)
    results["memory_fast_full_resolution"] = memory(fast, photos, args.memory_images, args.batch)
    results["cold_start"] = cold_start(args.model, args.threads)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    brief = {
        k: {kk: v[kk] for kk in ("end_to_end_over_pure", "speedup_vs_exact_decode")}
        for k, v in results.items()
        if k in ("full_resolution", "thumbnails")
    }
    print(json.dumps(brief, indent=1))


def _item(p: Path):
    from skinml.predict.inputs import InputItem

    return InputItem(str(p), p, None)


if __name__ == "__main__":
    main()
