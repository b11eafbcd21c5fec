"""Static int8 for a fine-tuned EfficientNet-Lite0: which calibration recipe keeps accuracy?

Exports a finished ``skinml-train`` run to fp32 ONNX (verified against PyTorch, as
``skinml-export`` does), then quantizes it with each :class:`~skinml.export.quantize.Int8Recipe`
below: calibration method (MinMax, percentile, entropy) and whether depthwise convolutions
stay in float. For each recipe it reports what ``skinml-export`` decides on (validation
accuracy loss against the 0.5-point bound, top-1 agreement with fp32), the same on the test
split (never used for any choice), the calibration time, and pure-inference images/s of
ONNX Runtime on preprocessed validation images (batch 32, best of ``--repeats`` passes).

Usage::

    .venv/bin/python experiments/int8_calibration/run.py outputs/ham10000_lesion_lite0/seed0
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]

# Recipes measured on 2026-12-02 with full 8-bit weights (the names in results.json then),
# and the 7-bit-weight recipes added on 2026-12-03 (skinml's default since:
# percentile_99.999_7bit).
RECIPES = {
    "minmax": {"calibration": "minmax", "reduce_range": False},
    "percentile_99.999": {"calibration": "percentile", "percentile": 99.999, "reduce_range": False},
    "percentile_99.99": {"calibration": "percentile", "percentile": 99.99, "reduce_range": False},
    "entropy": {"calibration": "entropy", "reduce_range": False},
    "minmax_float_depthwise": {
        "calibration": "minmax",
        "float_depthwise": True,
        "reduce_range": False,
    },
    "percentile_99.999_float_depthwise": {
        "calibration": "percentile",
        "percentile": 99.999,
        "float_depthwise": True,
        "reduce_range": False,
    },
    "minmax_7bit": {"calibration": "minmax", "reduce_range": True},
    "percentile_99.999_7bit": {
        "calibration": "percentile",
        "percentile": 99.999,
        "reduce_range": True,
    },
    # 2026-12-03, Part 3: the first convolutions after the stem in float
    **{
        f"percentile_99.999_7bit_float_first{k}": {
            "calibration": "percentile",
            "percentile": 99.999,
            "float_first_convs": k,
            "reduce_range": True,
        }
        for k in (2, 5, 8, 14)
    },
    "percentile_99.999_7bit_float_depthwise": {
        "calibration": "percentile",
        "percentile": 99.999,
        "float_depthwise": True,
        "reduce_range": True,
    },
}


def best_rate(session, batches: list[dict[str, np.ndarray]], repeats: int) -> float:
    """Best images/s over ``repeats`` passes of ``session`` over the feed ``batches``."""
    session.run(["probabilities"], batches[0])  # warm-up
    n = sum(len(b["image"]) for b in batches)
    rates = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for feeds in batches:
            session.run(["probabilities"], feeds)
        rates.append(n / (time.perf_counter() - t0))
    return max(rates)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--calibration-images", type=int, default=200)
    parser.add_argument("--recipes", nargs="+", default=list(RECIPES), choices=list(RECIPES))
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--timed-images", type=int, default=512)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, default=HERE / "results.json")
    args = parser.parse_args()

    import onnxruntime as ort

    from skinml.export import export_bundle
    from skinml.export.api import metadata_encoding
    from skinml.export.images import iter_feeds, resolve_manifest, split_images
    from skinml.export.quantize import Int8Recipe, compare_int8, quantize_int8
    from skinml.tracking.provenance import command_provenance
    from skinml.training.bundle import ModelBundle, run_provenance

    bundle = ModelBundle.load(args.run_dir)
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = args.threads
    opts.inter_op_num_threads = 1

    def session(path: Path):
        return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])

    results: dict = {
        "run_dir": str(args.run_dir),
        "model": bundle.architecture,
        "calibration_images": args.calibration_images,
        "recipes": {},
    }
    with tempfile.TemporaryDirectory() as tmp:
        fp32 = export_bundle(bundle, Path(tmp) / "model.onnx", max_validation_images=None)
        prep, classes = fp32.metadata.preprocessing, fp32.metadata.classes
        manifest = resolve_manifest(bundle.split_manifest, args.run_dir)
        encoding = metadata_encoding(bundle, bundle.build_model())  # fusion models: metadata
        val = split_images(manifest, "val", encoding=encoding)
        test = split_images(manifest, "test", encoding=encoding)
        train = split_images(
            manifest, "train", limit=args.calibration_images, seed=0, encoding=encoding
        )
        batches = [f for f, _, _ in iter_feeds(val, prep, 32)][: args.timed_images // 32]
        s32 = session(fp32.onnx_path)
        results["images_per_s_onnx_fp32"] = round(best_rate(s32, batches, args.repeats), 1)
        results["validation_images"] = len(val.paths)
        results["test_images"] = len(test.paths)
        for name in args.recipes:
            recipe = Int8Recipe(**RECIPES[name])
            out = Path(tmp) / f"{name}.onnx"
            t0 = time.perf_counter()
            _, n_cal, kept = quantize_int8(fp32.onnx_path, out, train, prep, tmp, recipe)
            calib_s = time.perf_counter() - t0
            s8 = session(out)
            v = compare_int8(s32, s8, val, prep, classes)
            t = compare_int8(s32, s8, test, prep, classes)
            row = {
                "recipe": RECIPES[name],
                "calibration_seconds": round(calib_s, 1),
                "calibration_images_read": n_cal,
                "kept_in_float_nodes": kept,
                "val_acc_fp32": v["accuracy_fp32"],
                "val_acc_int8": v["accuracy_int8"],
                "val_accuracy_loss_points": 100 * (v["accuracy_fp32"] - v["accuracy_int8"]),
                "val_top1_agreement_with_fp32": v["top1_agreement_with_fp32"],
                "val_max_abs_diff_probabilities": v["max_abs_diff_probabilities_vs_fp32"],
                "test_acc_fp32": t["accuracy_fp32"],
                "test_acc_int8": t["accuracy_int8"],
                "test_accuracy_loss_points": 100 * (t["accuracy_fp32"] - t["accuracy_int8"]),
                "test_top1_agreement_with_fp32": t["top1_agreement_with_fp32"],
                "images_per_s_onnx_int8": round(best_rate(s8, batches, args.repeats), 1),
            }
            row["int8_speedup_vs_fp32"] = round(
                row["images_per_s_onnx_int8"] / results["images_per_s_onnx_fp32"], 3
            )
            row["accepted_at_0_5_points"] = bool(row["val_accuracy_loss_points"] <= 0.5)
            results["recipes"][name] = row
            print(name, json.dumps({k: v for k, v in row.items() if k != "recipe"}), flush=True)
    results["provenance"] = {
        "run": run_provenance(args.run_dir),
        "command": command_provenance(),
    }
    args.out.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
