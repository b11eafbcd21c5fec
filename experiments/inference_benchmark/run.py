"""Inference benchmark: PyTorch eager vs ONNX fp32 vs ONNX int8, and the end-to-end predictor.

One run, one machine, one model, the same real images (HAM10000 200x150 JPEGs):

1. export the model with ``skinml.export.export_bundle`` (verification + int8),
2. pure-inference images/s on preprocessed arrays (PyTorch eager, ONNX fp32, ONNX int8),
3. the end-to-end predictor (decode -> CSV) over 10,000+ images in a fresh light process,
   three passes, each preceded by a pure-inference pass in the same process; the ratio is
   best end-to-end pass over best pure pass (the least-disturbed estimate of each on a
   shared host whose speed drifts), with RSS sampled every 1,000 images,
4. predictor cold start (import + model load) in fresh processes.

Usage::

    .venv/bin/python experiments/inference_benchmark/run.py            # full run
    .venv/bin/python experiments/inference_benchmark/run.py --quick    # smoke run

Writes ``results.json`` beside this file (``--out`` to change).
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
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
DATA = Path(os.environ.get("SKINML_SHARED_DATA", HERE.parents[2] / "shared" / "data"))
HAM = DATA / "ham10000_images_200x150"
CLASSES = ("akiec", "bcc", "bkl", "df", "mel", "nv", "vasc")
MALIGNANT = ("akiec", "bcc", "mel")


def rss_mib() -> float:
    """Resident set size of this process in MiB (Linux /proc)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024.0
    return float("nan")


def write_split_manifest(workdir: Path) -> Path:
    """A skinml manifest (absolute image paths) with the DermaMNIST split of HAM10000."""
    out = workdir / "ham10000_dermamnist_split_manifest.csv"
    with open(HAM / "manifest.csv", newline="") as fh, open(out, "w", newline="") as dst:
        w = csv.writer(dst)
        w.writerow(["image", "label", "lesion_id", "site", "split"])
        for r in csv.DictReader(fh):
            w.writerow(
                [str(HAM / r["file"]), r["dx"], r["lesion_id"], r["dataset"], r["dermamnist_split"]]
            )
    return out


def time_engines(engines: dict, batches: list[np.ndarray], repeats: int) -> dict[str, float]:
    """Best images/s per engine; passes are interleaved (A, B, C, A, B, C...) so that load
    from other jobs on the shared machine hits every engine alike."""
    for fn in engines.values():
        fn(batches[0])  # warm-up
    n = sum(len(b) for b in batches)
    best = dict.fromkeys(engines, 0.0)
    for _ in range(repeats):
        for name, fn in engines.items():
            t0 = time.perf_counter()
            for b in batches:
                fn(b)
            best[name] = max(best[name], n / (time.perf_counter() - t0))
    return best


def pure_inference(export, bundle, images: list[Path], threads: int, batch: int, repeats: int):
    import onnxruntime as ort
    import torch

    from skinml.export.graph import ExportableClassifier
    from skinml.imaging.preprocess import preprocess
    from skinml.imaging.read import read_image

    prep = export.metadata.preprocessing
    arrays = np.stack([preprocess(read_image(p), prep) for p in images])
    batches = [arrays[i : i + batch] for i in range(0, len(arrays), batch)]
    torch.set_num_threads(threads)
    wrapper = ExportableClassifier(bundle.build_model(), export.metadata.calibration.temperature)
    wrapper.eval()

    def eager(x):
        with torch.inference_mode():
            return wrapper(torch.from_numpy(x))

    def session(path):
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        s = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        return lambda x: s.run(None, {"image": x})

    engines = {"torch_eager": eager, "onnx_fp32": session(export.onnx_path)}
    if export.int8_path is not None:
        engines["onnx_int8"] = session(export.int8_path)
    out: dict = {"n_images": len(arrays), "batch_size": batch, "threads": threads}
    out.update(time_engines(engines, batches, repeats))
    return out


def e2e_child(args: argparse.Namespace) -> None:
    """Run in a fresh light process: paired passes of pure inference and the predictor.

    The host is shared and its speed drifts by 10-30 % within minutes, so the
    pure-inference passes (the predictor's own onnxruntime session on the first
    ``--pure-images`` images, preprocessed in memory) run in this same process,
    one just before each end-to-end pass over the whole list. RSS is sampled
    every 1,000 images of every pass.
    """
    t0 = time.perf_counter()
    from skinml.predict import ImagePredictor, predict_to_csv
    from skinml.predict.inputs import InputItem

    samples: list[dict[str, float]] = []
    pass_no = [0]

    class Sampled(ImagePredictor):
        def iter_rows(self, items, **kw):
            start = time.perf_counter()
            for i, row in enumerate(super().iter_rows(items, **kw), start=1):
                if i % 1000 == 0:
                    samples.append(
                        {
                            "pass": pass_no[0],
                            "images": i,
                            "rss_mib": round(rss_mib(), 1),
                            "seconds": round(time.perf_counter() - start, 2),
                        }
                    )
                yield row

    pred = Sampled(args.model, threads=args.threads)
    loaded = time.perf_counter()
    with open(args.list, newline="") as fh:
        paths = [Path(r["image"]) for r in csv.DictReader(fh)][: args.pure_images]
    # One thread, one image at a time: what reading, checking and preprocessing cost.
    t = time.perf_counter()
    arrays = [pred.load(i, InputItem(str(p), p, None)).array for i, p in enumerate(paths)]
    load_core_ms = (time.perf_counter() - t) / len(paths) * 1e3
    stacked = np.stack(arrays)
    batches = [stacked[i : i + args.batch_size] for i in range(0, len(stacked), args.batch_size)]
    name = pred.tensors["input"]

    def pure_pass() -> float:
        start = time.perf_counter()
        for b in batches:
            pred.session.run(None, {name: b})
        return len(stacked) / (time.perf_counter() - start)

    pure_pass()  # warm-up
    pairs = []
    for k in range(args.repeats):
        pass_no[0] = k + 1
        pure = pure_pass()
        t1 = time.perf_counter()
        summary = predict_to_csv(
            args.model,
            args.list,
            args.output,
            batch_size=args.batch_size,
            progress=False,
            predictor=pred,
        )
        wall = time.perf_counter() - t1
        e2e = summary.n_rows / wall
        pairs.append(
            {
                "pure_onnx_fp32_images_per_s": pure,
                "end_to_end_images_per_s": e2e,
                "wall_s": wall,
                "ratio": e2e / pure,
            }
        )
    # With perfect overlap on `threads` cores, end to end ÷ pure inference is at most
    # inference core-ms / (inference core-ms + load core-ms); onnxruntime scales ~linearly.
    median_pure = float(np.median([p["pure_onnx_fp32_images_per_s"] for p in pairs]))
    inference_core_ms = args.threads / median_pure * 1e3
    heavy = sorted(m for m in sys.modules if m.split(".")[0] in ("torch", "pandas", "onnx"))
    print(
        json.dumps(
            {
                "n_rows": summary.n_rows,
                "n_ok": summary.n_ok,
                "n_error": summary.n_error,
                "pairs": pairs,
                "import_and_load_s": loaded - t0,
                "load_core_ms_per_image": load_core_ms,
                "inference_core_ms_per_image": inference_core_ms,
                "ceiling_ratio_perfect_overlap": inference_core_ms
                / (inference_core_ms + load_core_ms),
                "rss_samples": samples,
                "heavy_modules": heavy,
            }
        )
    )


def cold_start(model: Path, threads: int, repeats: int = 3) -> dict[str, float]:
    """Fresh-process time to import skinml.predict and load the model (best of ``repeats``)."""
    code = (
        "import time; t=time.perf_counter(); from skinml.predict import ImagePredictor; "
        f"ImagePredictor({str(model)!r}, threads={threads}); "
        "print(time.perf_counter()-t)"
    )
    inner, outer = [], []
    for _ in range(repeats):
        t = time.perf_counter()
        res = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True
        )
        outer.append(time.perf_counter() - t)
        inner.append(float(res.stdout.strip().splitlines()[-1]))
    return {
        "import_and_load_s_best": min(inner),
        "process_wall_s_best": min(outer),
        "import_and_load_s_all": inner,
        "process_wall_s_all": outer,
    }


def untrained_bundle(manifest, architecture: str, size: int, seed: int):
    """A random-init bundle of the benchmark's classes, for throughput only."""
    from skinml.export.synthetic import random_init_bundle

    return random_init_bundle(
        manifest,
        architecture=architecture,
        classes=CLASSES,
        malignant=MALIGNANT,
        input_size=(size, size),
        temperature=1.0,
        seed=seed,
    )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument(
        "--bundle",
        type=Path,
        default=None,
        help="a trained skinml bundle; default: untrained resnet18 (random init)",
    )
    p.add_argument("--architecture", default="resnet18")
    p.add_argument("--size", type=int, default=64)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--inference-images", type=int, default=1000)
    p.add_argument("--e2e-images", type=int, default=10015)
    p.add_argument("--repeats", type=int, default=2, help="pure-inference passes per engine")
    p.add_argument(
        "--e2e-repeats", type=int, default=3, help="paired pure + end-to-end passes in the child"
    )
    p.add_argument("--quick", action="store_true", help="small smoke run")
    p.add_argument("--workdir", type=Path, default=None)
    p.add_argument("--out", type=Path, default=HERE / "results.json")
    p.add_argument("--seed", type=int, default=0)
    # child mode (internal)
    p.add_argument("--e2e-child", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--model", type=Path, help=argparse.SUPPRESS)
    p.add_argument("--list", type=Path, help=argparse.SUPPRESS)
    p.add_argument("--output", type=Path, help=argparse.SUPPRESS)
    p.add_argument("--pure-images", type=int, default=1000, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.e2e_child:
        e2e_child(args)
        return 0
    if args.quick:
        args.inference_images, args.e2e_images, args.repeats, args.e2e_repeats = 256, 1500, 1, 1
    if not HAM.exists():
        print(f"real data {HAM} is absent; set SKINML_SHARED_DATA", file=sys.stderr)
        return 2
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="skinml-inference-benchmark-"))
    workdir.mkdir(parents=True, exist_ok=True)
    started = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    load_start = os.getloadavg()

    from skinml.export import QuantizationRefusedError, export_bundle
    from skinml.training.bundle import ModelBundle

    manifest = write_split_manifest(workdir)
    if args.bundle is not None:
        bundle, model_note = ModelBundle.load(args.bundle), f"trained bundle {args.bundle}"
    else:
        bundle = untrained_bundle(manifest, args.architecture, args.size, args.seed)
        model_note = (
            f"timm {args.architecture} at {args.size} px, UNTRAINED (random init, "
            f"seed {args.seed}); throughput does not depend on the weights, accuracy "
            "figures are meaningless"
        )
    t = time.perf_counter()
    refused = None
    try:
        export = export_bundle(
            bundle,
            workdir / "model.onnx",
            quantize="int8",
            max_accuracy_loss=0.005,
            max_validation_images=1000,
            calibration_images=200,
            seed=args.seed,
        )
    except QuantizationRefusedError as exc:
        refused = str(exc)
        export = export_bundle(
            bundle,
            workdir / "model.onnx",
            quantize="int8",
            max_accuracy_loss=1.0,
            max_validation_images=1000,
            calibration_images=200,
            seed=args.seed,
        )
    export_s = time.perf_counter() - t
    q = export.quantization

    images = sorted((HAM / "images").glob("*.jpg"))
    inf = pure_inference(
        export, bundle, images[: args.inference_images], args.threads, args.batch_size, args.repeats
    )

    listing = workdir / "e2e_list.csv"
    with open(listing, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["image"])
        w.writerows([[str(p)] for p in images[: args.e2e_images]])
    child = subprocess.run(
        [
            sys.executable,
            __file__,
            "--e2e-child",
            "--model",
            str(export.onnx_path),
            "--list",
            str(listing),
            "--output",
            str(workdir / "predictions.csv"),
            "--threads",
            str(args.threads),
            "--batch-size",
            str(args.batch_size),
            "--repeats",
            str(args.e2e_repeats),
            "--pure-images",
            str(args.inference_images),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    e2e = json.loads(child.stdout.strip().splitlines()[-1])
    cold = cold_start(export.onnx_path, args.threads)

    rss = [s["rss_mib"] for s in e2e["rss_samples"]]
    ratios = [p["ratio"] for p in e2e["pairs"]]
    pair_e2e = [p["end_to_end_images_per_s"] for p in e2e["pairs"]]
    pair_pure = [p["pure_onnx_fp32_images_per_s"] for p in e2e["pairs"]]
    results = {
        "started": started,
        "machine": {
            "cpu": platform.processor() or _cpu_model(),
            "logical_cores": os.cpu_count(),
            "load_average_1_5_15_at_start": load_start,
            "load_average_1_5_15_at_end": os.getloadavg(),
            "shared_with_other_jobs": True,
            "python": platform.python_version(),
        },
        "model": model_note,
        "data": f"{HAM} (HAM10000 JPEGs 200x150); inference on the first "
        f"{inf['n_images']} files sorted by name, end to end on {e2e['n_rows']}",
        "seed": args.seed,
        "export": {
            "seconds": export_s,
            "exporter": export.exporter,
            "verification": export.verification.as_dict(),
            "int8_refused_at_0.5_points": refused,
        },
        "pure_inference_images_per_s": {
            k: inf[k] for k in ("torch_eager", "onnx_fp32", "onnx_int8") if k in inf
        },
        "pure_inference_setup": {k: inf[k] for k in ("n_images", "batch_size", "threads")},
        "speedup_vs_torch_eager": {
            "onnx_fp32": inf["onnx_fp32"] / inf["torch_eager"],
            "onnx_int8": inf.get("onnx_int8", float("nan")) / inf["torch_eager"],
        },
        "int8_validation": None if q is None else q.as_dict(),
        "end_to_end": {
            "images": e2e["n_rows"],
            "ok": e2e["n_ok"],
            "errors": e2e["n_error"],
            "passes": e2e["pairs"],
            "images_per_s_best": max(pair_e2e),
            "pure_onnx_fp32_images_per_s_best_in_child": max(pair_pure),
            # best over best: the least-disturbed estimate of each on a shared host
            "ratio_to_pure_onnx_fp32_inference": max(pair_e2e) / max(pair_pure),
            "ratio_per_pair_range": [min(ratios), max(ratios)],
            "load_core_ms_per_image": e2e["load_core_ms_per_image"],
            "inference_core_ms_per_image": e2e["inference_core_ms_per_image"],
            "ceiling_ratio_perfect_overlap": e2e["ceiling_ratio_perfect_overlap"],
            "heavy_modules_imported": e2e["heavy_modules"],
        },
        "memory_rss_mib_every_1000_images": e2e["rss_samples"],
        "memory_rss_growth_mib_first_to_last_sample": (rss[-1] - rss[0]) if rss else None,
        "cold_start": cold,
    }
    sp = results["speedup_vs_torch_eager"]
    loss = None if q is None else q.accuracy_loss_points
    results["goals"] = {
        "onnx_fp32_at_least_1.5x_eager": sp["onnx_fp32"] >= 1.5,
        "onnx_int8_at_least_2.5x_eager": sp["onnx_int8"] >= 2.5,
        "int8_accuracy_loss_at_most_0.5_points": None if loss is None else loss <= 0.5,
        "end_to_end_at_least_0.8_of_pure_inference": results["end_to_end"][
            "ratio_to_pure_onnx_fp32_inference"
        ]
        >= 0.8,
        "memory_flat_growth_below_50_mib": None
        if not rss
        else results["memory_rss_growth_mib_first_to_last_sample"] < 50,
    }
    args.out.write_text(json.dumps(results, indent=2, default=float) + "\n")
    print(
        json.dumps(
            {
                k: results[k]
                for k in ("pure_inference_images_per_s", "speedup_vs_torch_eager", "goals")
            },
            indent=2,
        )
    )
    print(f"wrote {args.out}; work files in {workdir}")
    return 0


def _cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return "unknown"


if __name__ == "__main__":
    raise SystemExit(main())
