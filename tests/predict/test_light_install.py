"""skinml-predict runs where only onnxruntime, numpy, Pillow and tqdm are importable."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
import textwrap

BLOCKED = (
    "torch",
    "timm",
    "pandas",
    "sklearn",
    "lightgbm",
    "onnx",
    "matplotlib",
    "albumentations",
    "scipy",
    "mlflow",
)

SITECUSTOMIZE = f"""
import sys

BLOCKED = {BLOCKED!r}


class _Blocker:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ImportError(f"{{name}} is blocked: simulating the light install")
        return None


sys.meta_path.insert(0, _Blocker())
"""

CHECK = textwrap.dedent(
    """
    import sys
    from skinml.predict.cli import main
    code = main(sys.argv[1:])
    heavy = sorted(m for m in sys.modules if m.split('.')[0] in {blocked!r})
    print('HEAVY_MODULES', heavy)
    raise SystemExit(code)
    """
).format(blocked=BLOCKED)


def test_predict_cli_runs_without_heavy_packages(tiny_model, image_folder, tmp_path):
    (tmp_path / "site").mkdir()
    (tmp_path / "site" / "sitecustomize.py").write_text(SITECUSTOMIZE)
    env = {**os.environ, "PYTHONPATH": str(tmp_path / "site")}
    probe = subprocess.run(
        [sys.executable, "-c", "import torch"], env=env, capture_output=True, text=True, timeout=120
    )
    assert probe.returncode != 0 and "blocked" in probe.stderr  # the blocker is active
    out = tmp_path / "p.csv"
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            CHECK,
            str(tiny_model),
            str(image_folder),
            "-o",
            str(out),
            "--heatmaps",
            str(tmp_path / "heat"),
            "--tta",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert "HEAVY_MODULES []" in proc.stdout
    with open(out, newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 6 and {r["status"] for r in rows} == {"ok"}
    assert all(os.path.isfile(r["heatmap"]) for r in rows)


def test_python_dash_m_entry_point_prints_help(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "skinml.predict", "--help"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0 and "skinml-predict model.onnx lesion.jpg" in proc.stdout
