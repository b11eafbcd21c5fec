"""Export of a fine-tuned pretrained backbone: verification, static int8, and speed.

Takes a finished ``skinml-train`` run (e.g. the HAM10000 EfficientNet-Lite0 run), exports it
with ``skinml.export.export_bundle`` (verified against PyTorch on validation images, then
static QDQ int8 calibrated on training images and measured on validation images), and times
pure inference on the same preprocessed validation images:

* PyTorch eager (NCHW and channels_last), ONNX Runtime fp32, ONNX Runtime int8,
* batch 32, ``--threads`` intra-op threads, best of ``--repeats`` passes each.

The int8 file is always written here (``max_accuracy_loss=1``) so that it can be measured;
``int8_accepted_at_0_5_points`` says whether skinml-export's default 0.5-point rule would
have accepted it.

Usage::

    .venv/bin/python experiments/pretrained_export/run.py outputs/ham10000_lesion_lite0/seed0
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent


def best_rate(fn, x: np.ndarray, batch: int, repeats: int) -> float:
    """Best images/s over ``repeats`` passes of ``fn`` over ``x`` in batches."""
    fn(x[:batch])  # warm-up
    rates = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for i in range(0, len(x), batch):
            fn(x[i : i + batch])
        rates.append(len(x) / (time.perf_counter() - t0))
    return max(rates)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--images", type=int, default=512, help="validation images timed")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--out", type=Path, default=HERE / "results.json")
    args = parser.parse_args()

    import onnxruntime as ort
    import torch

    from skinml.export import export_bundle
    from skinml.export.images import resolve_manifest, split_images
    from skinml.imaging.preprocess import preprocess
    from skinml.imaging.read import read_image
    from skinml.training.bundle import ModelBundle

    torch.set_num_threads(args.threads)
    bundle = ModelBundle.load(args.run_dir)
    prep = bundle.metadata.preprocessing
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        result = export_bundle(
            bundle,
            Path(tmp) / "model.onnx",
            quantize="int8",
            max_accuracy_loss=1.0,
            max_validation_images=2000,
        )
        export_s = time.perf_counter() - t0
        q = result.quantization
        ver = result.verification
        sizes = {
            "fp32": result.onnx_path.stat().st_size,
            "int8": result.int8_path.stat().st_size,
        }
        manifest = resolve_manifest(bundle.split_manifest, args.run_dir)
        val = split_images(manifest, "val", limit=args.images, seed=0)
        x = np.stack([preprocess(read_image(p), prep) for p in val.paths]).astype(np.float32)

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = args.threads
        opts.inter_op_num_threads = 1
        sessions = {
            k: ort.InferenceSession(str(p), opts, providers=["CPUExecutionProvider"])
            for k, p in (("fp32", result.onnx_path), ("int8", result.int8_path))
        }
        model = bundle.build_model()

        def torch_fn(memory_format):
            net = model.to(memory_format=memory_format).eval()

            def run(b):
                with torch.inference_mode():
                    net(torch.from_numpy(b).contiguous(memory_format=memory_format))

            return run

        rates = {
            "torch_eager_nchw": best_rate(
                torch_fn(torch.contiguous_format), x, args.batch_size, args.repeats
            ),
            "torch_eager_channels_last": best_rate(
                torch_fn(torch.channels_last), x, args.batch_size, args.repeats
            ),
        }
        for k, sess in sessions.items():
            rates[f"onnx_{k}"] = best_rate(
                lambda b, s=sess: s.run(["probabilities"], {"image": b}),
                x,
                args.batch_size,
                args.repeats,
            )
    best_torch = max(rates["torch_eager_nchw"], rates["torch_eager_channels_last"])
    results = {
        "run_dir": str(args.run_dir),
        "model": bundle.architecture,
        "image_size": list(prep.input_size),
        "backbone": bundle.metadata.extra.get("backbone"),
        "export_seconds": round(export_s, 1),
        "exporter": result.exporter,
        "verification_images": ver.n_images,
        "verification_max_abs_diff_probabilities": ver.max_abs_diff_probabilities,
        "verification_max_abs_diff_logits": ver.max_abs_diff_logits,
        "verification_top1_disagreements": ver.top1_disagreements,
        "int8_validation_images": q.validation_images,
        "val_acc_fp32": q.accuracy_fp32,
        "val_acc_int8": q.accuracy_int8,
        "int8_accuracy_loss_points": q.accuracy_loss_points,
        "int8_top1_agreement_with_fp32": q.top1_agreement_with_fp32,
        "int8_max_abs_diff_probabilities_vs_fp32": q.max_abs_diff_probabilities_vs_fp32,
        "int8_accepted_at_0_5_points": bool(
            q.accuracy_loss_points is not None and q.accuracy_loss_points <= 0.5
        ),
        "file_mib": {k: round(v / 2**20, 2) for k, v in sizes.items()},
        "timed_images": len(x),
        "batch_size": args.batch_size,
        "threads": args.threads,
        **{f"images_per_s_{k}": round(v, 1) for k, v in rates.items()},
        "onnx_fp32_speedup_vs_best_torch": round(rates["onnx_fp32"] / best_torch, 3),
        "onnx_int8_speedup_vs_fp32": round(rates["onnx_int8"] / rates["onnx_fp32"], 3),
        "machine": {
            "cores": os.cpu_count(),
            "torch": torch.__version__,
            "onnxruntime": ort.__version__,
            "python": platform.python_version(),
        },
    }
    from skinml.tracking.provenance import command_provenance
    from skinml.training.bundle import run_provenance

    results["provenance"] = {
        "training_run": run_provenance(args.run_dir),
        "this_script": command_provenance(),
    }
    args.out.write_text(json.dumps(results, indent=2, default=float) + "\n")
    print(json.dumps(results, indent=2, default=float))


if __name__ == "__main__":
    main()
