"""Export an untrained (random-init) timm network to a skinml model file, for speed only.

Throughput does not depend on the weights; every accuracy figure of such a file is
meaningless (the file says so in its intended use). It records the decode policy of a new
training run (``decode_min_side`` = 2 x input side), like any file exported today.

    .venv/bin/python experiments/inference_benchmark/make_untrained.py \
        --architecture resnet10t --size 64 --out /tmp/exp/resnet10t_64/model.onnx
"""

from __future__ import annotations

import argparse
from pathlib import Path

from run import untrained_bundle, write_split_manifest

from skinml.export import export_bundle


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--architecture", default="resnet10t")
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    bundle = untrained_bundle(
        write_split_manifest(args.out.parent), args.architecture, args.size, args.seed
    )
    result = export_bundle(bundle, args.out, max_validation_images=200, seed=args.seed)
    print(result.onnx_path)


if __name__ == "__main__":
    main()
