"""Provenance of a run: git commit, package versions, host, time.

Written next to every run and into MLflow so that any number in a report can
be traced to the exact code and environment that produced it.
"""

from __future__ import annotations

import platform
import subprocess
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

TRACKED_PACKAGES = (
    "skinml",
    "torch",
    "torchvision",
    "timm",
    "albumentations",
    "numpy",
    "scikit-learn",
    "lightgbm",
    "onnx",
    "onnxruntime",
    "mlflow",
    "hydra-core",
    "pandas",
    "statsmodels",
)


def git_commit(path: str | Path | None = None) -> str | None:
    """The commit of the repository containing ``path`` (``+dirty`` if modified), or None."""
    cwd = Path(path) if path is not None else Path(__file__).resolve().parent
    try:
        sha = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return f"{sha}+dirty" if dirty else sha


def package_versions(names: tuple[str, ...] = TRACKED_PACKAGES) -> dict[str, str]:
    """Installed versions of the packages that shape results (absent ones omitted)."""
    out = {}
    for name in names:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            continue
    return out


def utc_now() -> str:
    """ISO-8601 UTC timestamp with seconds."""
    return datetime.now(UTC).replace(microsecond=0).isoformat()


def provenance_record() -> dict[str, object]:
    """Everything about the environment worth storing with a run."""
    return {
        "git_commit": git_commit(),
        "created_utc": utc_now(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "packages": package_versions(),
    }


def command_provenance(argv: list[str] | None = None) -> dict[str, object]:
    """:func:`provenance_record` plus the exact command that produced a result file.

    Written into every experiment's ``results.json`` so that a figure can be traced to
    the code (git commit), the environment and the command, and re-run.
    """
    import shlex
    import sys

    args = list(sys.argv if argv is None else argv)
    return {**provenance_record(), "command": " ".join(shlex.quote(a) for a in args)}
