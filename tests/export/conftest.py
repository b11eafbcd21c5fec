"""Export fixtures: a simulated image set, an untrained timm bundle, and one shared export.

Exporting costs seconds (torch.export + ONNX translation), so the CLI export
with int8 runs once per session and the tests inspect what it wrote.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from skinml.export.synthetic import random_init_bundle, write_simulated_images
from skinml.training.bundle import ModelBundle

INPUT_SIZE = (64, 64)


@dataclass
class Exported:
    bundle: ModelBundle
    bundle_path: Path
    manifest: Path
    onnx_path: Path
    int8_path: Path
    stdout: str


@pytest.fixture(scope="session")
def simulated_manifest(tmp_path_factory) -> Path:
    return write_simulated_images(
        tmp_path_factory.mktemp("simulated_images"),
        per_class={"train": 8, "val": 8, "test": 2},
        size=(72, 56),
        seed=1,
    )


@pytest.fixture(scope="session")
def bundle_file(simulated_manifest, tmp_path_factory) -> tuple[ModelBundle, Path]:
    bundle = random_init_bundle(
        simulated_manifest, input_size=INPUT_SIZE, resize="resize_shorter_center_crop", seed=3
    )
    path = bundle.save(tmp_path_factory.mktemp("run") / "model_bundle.pt")
    return bundle, path


@pytest.fixture(scope="session")
def exported(bundle_file, simulated_manifest, tmp_path_factory) -> Exported:
    """``skinml-export RUN_DIR -o model.onnx --quantize int8`` run once through ``main()``."""
    import contextlib
    import io

    from skinml.cli.export import main

    bundle, path = bundle_file
    out = tmp_path_factory.mktemp("exported") / "model.onnx"
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        code = main(
            [
                str(path.parent),
                "-o",
                str(out),
                "--quantize",
                "int8",
                "--max-accuracy-loss",
                "1.0",
                "--calibration-images",
                "16",
            ]
        )
    assert code == 0, buf.getvalue()
    return Exported(
        bundle, path, simulated_manifest, out, out.with_name("model.int8.onnx"), buf.getvalue()
    )
