"""The clinician's predictor: onnxruntime, numpy and Pillow only (never torch).

``skinml-predict MODEL.onnx INPUT -o predictions.csv`` or, from Python,
:func:`run_predictions` and :class:`ImagePredictor`.
"""

from skinml.predict.inputs import InputItem, expand_inputs
from skinml.predict.predictor import ImagePredictor, output_columns
from skinml.predict.run import PredictionSummary, predict_to_csv, run_predictions

__all__ = [
    "ImagePredictor",
    "InputItem",
    "PredictionSummary",
    "expand_inputs",
    "output_columns",
    "predict_to_csv",
    "run_predictions",
]
