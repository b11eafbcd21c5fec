"""Errors raised while exporting a model file; all say what was measured and what to do."""

from __future__ import annotations

from typing import Any

from skinml.errors import ModelFileError


class ExportError(ModelFileError):
    """The model cannot be exported as a verified, self-contained skinml model file."""


class ExportVerificationError(ExportError):
    """onnxruntime's output differs from PyTorch's beyond tolerance on validation images."""


class QuantizationRefusedError(ExportError):
    """int8 quantization lost more validation accuracy than allowed; no int8 file was kept.

    Attributes:
        result: the export result of the fp32 model, which was written and is valid.
        report: the measured quantization report (accuracies, agreement, bound).
    """

    def __init__(self, problem: str, *, result: Any = None, report: Any = None, **kwargs: Any):
        super().__init__(problem, **kwargs)
        self.result = result
        self.report = report
