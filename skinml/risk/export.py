"""Export a calibrated risk model to ONNX, with its metadata, and prove the export.

The graph is ``features`` (``[N, n_features]``, imputed, in the metadata's
feature order; double for the logistic models, float for LightGBM, whose
ONNX tree operator is float) -> base model -> calibrator (double) -> ``risk``
(``[N]``, calibrated probability of the positive class), plus ``score`` (``[N]``, the
base model's response the calibrator reads: its log-odds, for LightGBM the
logit of the tree ensemble's probability, as scikit-learn calibrates
LightGBM's ``decision_function``).

The base model is converted by the libraries (skl2onnx for the linear form of
:class:`~skinml.risk.models.GrsLogisticClassifier`, onnxmltools
``convert_lightgbm(..., zipmap=False)`` for LightGBM). The calibrator is
appended as a few standard ONNX nodes (Platt: ``1 / (1 + exp(a*s + b))``;
isotonic: piecewise-linear interpolation with clipping) because skl2onnx's
``CalibratedClassifierCV`` converter does not reproduce scikit-learn here
(measured: isotonic off by 0.03, LightGBM base off by 0.4, skl2onnx 1.20).
"""

from __future__ import annotations

from os import PathLike
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from skinml.modelfile import METADATA_KEY, ModelMetadata, write_sidecar
from skinml.risk.models import GrsLogisticClassifier, base_estimator

INPUT_NAME = "features"
RISK_OUTPUT = "risk"
SCORE_OUTPUT = "score"
OPSET = 17
LIGHTGBM_OPSET = 15  # the highest onnxmltools 1.16 supports for LightGBM


def _base_graph(base: Any, n_features: int) -> Any:
    if isinstance(base, GrsLogisticClassifier):
        # double precision: an isotonic calibrator's steep segments amplify float32 logit error
        from skl2onnx.common.data_types import DoubleTensorType

        types = [(INPUT_NAME, DoubleTensorType([None, n_features]))]
        from skl2onnx import convert_sklearn
        from sklearn.linear_model import LogisticRegression

        lr = LogisticRegression()
        lr.coef_ = base.coef_full_[None, :].astype(float)
        lr.intercept_ = np.array([base.intercept_full_])
        lr.classes_ = np.array([0, 1])
        return convert_sklearn(
            lr,
            initial_types=types,
            options={id(lr): {"zipmap": False, "raw_scores": True}},
            target_opset={"": OPSET, "ai.onnx.ml": 3},
        )
    if hasattr(base, "booster_"):
        from onnxmltools import convert_lightgbm
        from onnxmltools.convert.common.data_types import FloatTensorType

        types = [(INPUT_NAME, FloatTensorType([None, n_features]))]
        return convert_lightgbm(
            base, initial_types=types, zipmap=False, target_opset=LIGHTGBM_OPSET
        )
    raise TypeError(
        f"cannot export {type(base).__name__}; supported: GrsLogisticClassifier, LGBMClassifier"
    )


def _calibration_nodes(
    calibrator: Any, score: str, out: str
) -> tuple[list[Any], list[Any], dict[str, Any]]:
    """ONNX nodes + initialisers mapping the base score to the calibrated risk."""
    from onnx import helper, numpy_helper

    f32 = np.float64  # the calibrator runs in double precision (score is cast first)
    if hasattr(calibrator, "a_"):  # sklearn _SigmoidCalibration: expit(-(a*s + b))
        a, b = float(calibrator.a_), float(calibrator.b_)
        inits = [
            numpy_helper.from_array(np.array(a, f32), "cal_a"),
            numpy_helper.from_array(np.array(b, f32), "cal_b"),
        ]
        nodes = [
            helper.make_node("Mul", [score, "cal_a"], ["cal_as"]),
            helper.make_node("Add", ["cal_as", "cal_b"], ["cal_lin"]),
            helper.make_node("Neg", ["cal_lin"], ["cal_neg"]),
            helper.make_node("Sigmoid", ["cal_neg"], [out]),
        ]
        return nodes, inits, {"method": "platt", "a": a, "b": b}
    xs = np.asarray(calibrator.X_thresholds_, float)
    ys = np.asarray(calibrator.y_thresholds_, float)
    if len(xs) < 2:
        val = float(ys[0]) if len(ys) else 0.0
        inits = [
            numpy_helper.from_array(np.array(0.0, f32), "cal_zero"),
            numpy_helper.from_array(np.array(val, f32), "cal_val"),
        ]
        nodes = [
            helper.make_node("Mul", [score, "cal_zero"], ["cal_z"]),
            helper.make_node("Add", ["cal_z", "cal_val"], [out]),
        ]
        return nodes, inits, {"method": "isotonic", "x": xs.tolist(), "y": ys.tolist()}
    dx = np.diff(xs)
    slopes = np.diff(ys) / dx
    inits = [
        numpy_helper.from_array(np.array(xs[0], f32), "cal_xmin"),
        numpy_helper.from_array(np.array(xs[-1], f32), "cal_xmax"),
        numpy_helper.from_array(xs[:-1].astype(f32)[None, :], "cal_x"),
        numpy_helper.from_array(dx.astype(f32)[None, :], "cal_dx"),
        numpy_helper.from_array(np.array(0.0, f32), "cal_zero"),
        numpy_helper.from_array(slopes.astype(f32)[:, None], "cal_slopes"),
        numpy_helper.from_array(np.array(ys[0], f32), "cal_y0"),
        numpy_helper.from_array(np.array([-1, 1], np.int64), "cal_col"),
        numpy_helper.from_array(np.array([-1], np.int64), "cal_flat"),
    ]
    nodes = [
        # Max/Min rather than Clip: the LightGBM graph may use an opset where Clip takes no inputs
        helper.make_node("Max", [score, "cal_xmin"], ["cal_lo"]),
        helper.make_node("Min", ["cal_lo", "cal_xmax"], ["cal_clip"]),
        helper.make_node("Reshape", ["cal_clip", "cal_col"], ["cal_col_s"]),
        helper.make_node("Sub", ["cal_col_s", "cal_x"], ["cal_d"]),
        helper.make_node("Max", ["cal_d", "cal_zero"], ["cal_d0"]),
        helper.make_node("Min", ["cal_d0", "cal_dx"], ["cal_d1"]),
        helper.make_node("MatMul", ["cal_d1", "cal_slopes"], ["cal_mm"]),
        helper.make_node("Reshape", ["cal_mm", "cal_flat"], ["cal_lin"]),
        helper.make_node("Add", ["cal_lin", "cal_y0"], [out]),
    ]
    return nodes, inits, {"method": "isotonic", "n_knots": len(xs)}


def _calibrator_reads_logit(base: Any) -> bool:
    """Whether scikit-learn fed the calibrator ``decision_function`` (else ``predict_proba``)."""
    from sklearn.utils.validation import _check_response_method

    return (
        _check_response_method(base, ["decision_function", "predict_proba"]).__name__
        == "decision_function"
    )


def to_onnx(model: Any, feature_names: list[str]) -> tuple[Any, dict[str, Any]]:
    """Convert a fitted ``CalibratedClassifierCV(ensemble=False)`` to one ONNX graph.

    Returns:
        ``(onnx.ModelProto, calibration parameters)``.
    """
    from onnx import TensorProto, helper, numpy_helper

    base = base_estimator(model)
    calibrator = model.calibrated_classifiers_[0].calibrators[0]
    onx = _base_graph(base, len(feature_names))
    g = onx.graph
    prob_name = next(o.name for o in g.output if o.name != "label" and "label" not in o.name)
    for o in list(g.output):
        g.output.remove(o)
    g.initializer.append(numpy_helper.from_array(np.array([1], np.int64), "score_col"))
    g.initializer.append(numpy_helper.from_array(np.array([-1], np.int64), "score_flat"))
    g.node.append(helper.make_node("Gather", [prob_name, "score_col"], ["score_2d"], axis=1))
    g.node.append(helper.make_node("Reshape", ["score_2d", "score_flat"], ["score_raw"]))
    if _calibrator_reads_logit(base) and not isinstance(base, GrsLogisticClassifier):
        # scikit-learn calibrates LightGBM's decision_function (raw log-odds); the ONNX
        # tree ensemble gives probabilities, so take their logit (in double precision)
        g.initializer.append(numpy_helper.from_array(np.array(1.0, np.float64), "score_one"))
        g.node.extend(
            [
                helper.make_node("Cast", ["score_raw"], ["score_p"], to=TensorProto.DOUBLE),
                helper.make_node("Sub", ["score_one", "score_p"], ["score_q"]),
                helper.make_node("Div", ["score_p", "score_q"], ["score_odds"]),
                helper.make_node("Log", ["score_odds"], [SCORE_OUTPUT]),
            ]
        )
    else:
        g.node.append(
            helper.make_node("Cast", ["score_raw"], [SCORE_OUTPUT], to=TensorProto.DOUBLE)
        )
    nodes, inits, cal = _calibration_nodes(calibrator, SCORE_OUTPUT, RISK_OUTPUT)
    g.node.extend(nodes)
    g.initializer.extend(inits)
    g.output.append(helper.make_tensor_value_info(RISK_OUTPUT, TensorProto.DOUBLE, [None]))
    g.output.append(helper.make_tensor_value_info(SCORE_OUTPUT, TensorProto.DOUBLE, [None]))
    g.input[0].doc_string = "imputed features in metadata extra['feature_names'] order"
    g.output[0].doc_string = "calibrated probability of the positive class"
    g.output[1].doc_string = "base-model response read by the calibrator (logit or raw probability)"
    g.name = "skinml_tabular_risk"
    import onnx

    onnx.checker.check_model(onx)
    return onx, cal


def onnx_probabilities(onx: Any, X: pd.DataFrame | np.ndarray) -> np.ndarray:  # noqa: N803
    """Run the graph in onnxruntime (what the predictor does) and return ``risk``."""
    import onnxruntime as ort

    sess = ort.InferenceSession(onx.SerializeToString(), providers=["CPUExecutionProvider"])
    arr = np.asarray(X, dtype=np.float64 if "double" in sess.get_inputs()[0].type else np.float32)
    return sess.run([RISK_OUTPUT], {INPUT_NAME: arr})[0].astype(float)


def verify_export(onx: Any, model: Any, X: pd.DataFrame) -> dict[str, float]:  # noqa: N803
    """Max and mean absolute difference between onnxruntime and scikit-learn probabilities."""
    ref = model.predict_proba(X)[:, 1]
    got = onnx_probabilities(onx, X)
    diff = np.abs(ref - got)
    return {"max_abs_diff": float(diff.max()), "mean_abs_diff": float(diff.mean()), "n": len(diff)}


def save_model(onx: Any, metadata: ModelMetadata, path: str | PathLike[str]) -> Path:
    """Embed the metadata document, write the ``.onnx`` and its SHA-256 sidecar."""
    import onnx

    del onx.metadata_props[:]
    entry = onx.metadata_props.add()
    entry.key, entry.value = METADATA_KEY, metadata.to_json()
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(onx, str(p))
    write_sidecar(p)
    return p
