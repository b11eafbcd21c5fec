"""Atomic checkpoints: a ``kill -9`` mid-write never leaves a half-written ``last.pt``."""

from __future__ import annotations

import os
from os import PathLike
from pathlib import Path
from typing import Any


def save_checkpoint(state: dict[str, Any], path: str | PathLike[str]) -> Path:
    """Write to a temporary file, fsync, then rename over the target (atomic on POSIX)."""
    import torch

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as fh:
        torch.save(state, fh)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    return path


def load_checkpoint(path: str | PathLike[str]) -> dict[str, Any]:
    """Load a training checkpoint on CPU."""
    import torch

    return torch.load(Path(path), map_location="cpu", weights_only=False)
