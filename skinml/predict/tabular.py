"""Score patients with a tabular psoriasis risk model: onnxruntime + numpy + stdlib only.

``skinml-predict MODEL.onnx patients.csv -o risk.csv`` or
``skinml-predict MODEL.onnx genotypes.vcf.gz --survey survey.csv -o risk.csv``.

Everything needed comes from the model metadata (``extra``): feature order,
weights table (alleles, frequencies), ambiguity policy, survey schema,
imputation means, risk categories, the ``high_risk`` threshold and, for the
logistic models, the coefficients for per-patient contributions. The input
steps are the training steps (:mod:`skinml.risk.harmonise`,
:mod:`skinml.risk.schema`, :mod:`skinml.risk.textvcf`, all numpy/stdlib), so
the ONNX graph sees the same numbers it was verified on.

Every sample gets one row. Problems that concern one sample (a non-numeric
or out-of-range answer, an unknown category, a sample present in only one
file, a duplicated ID) become ``status=error`` rows naming the file, row and
column; problems that make the whole input unusable (no SNP of the model in
the VCF, missing columns) raise :class:`skinml.errors.DataError`.

Contributions: for logistic models the predictor computes coefficient x
(value - training mean) per factor in numpy (log-odds scale, before
calibration); for LightGBM models ``top_factors`` stays empty (LightGBM's
``pred_contrib`` is not part of the ONNX graph; see the training report).
"""

from __future__ import annotations

import csv
import io
import math
import sys
from collections.abc import Mapping, Sequence
from os import PathLike
from pathlib import Path
from typing import Any

import numpy as np

from skinml.errors import DataError
from skinml.outputs import prepare_output_file
from skinml.risk import schema
from skinml.risk.harmonise import VariantInfo, WeightSnp, harmonise
from skinml.risk.textvcf import read_vcf_text
from skinml.textfiles import read_utf8

ID_COLUMN = "sample_id"
OUTPUT_COLUMNS = (
    "sample_id",
    "status",
    "risk",
    "risk_category",
    "high_risk_flag",
    "top_factors",
    "n_snps_used",
    "n_snps_imputed",
    "n_survey_imputed",
    "notes",
    "error",
    "source_row",
    "model_training_data",
)
_VCF_SUFFIXES = (".vcf", ".vcf.gz", ".vcf.bgz")


def _is_vcf(path: Path) -> bool:
    return path.name.lower().endswith(_VCF_SUFFIXES)


def _read_csv(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    if not path.is_file():
        raise DataError("input file does not exist", file=path, fix="check the path")
    text = read_utf8(path)
    try:
        dialect = csv.Sniffer().sniff(text[:4096], delimiters=",;\t")
    except csv.Error:
        dialect = csv.excel
    reader = csv.DictReader(io.StringIO(text, newline=""), dialect=dialect)
    header = [h.strip() for h in (reader.fieldnames or [])]
    rows = [{(k or "").strip(): (v or "") for k, v in r.items()} for r in reader]
    if ID_COLUMN not in header:
        raise DataError(
            f"no {ID_COLUMN!r} column (columns: {header[:8]})",
            file=path,
            fix=f"add the pseudonymised identifier column {ID_COLUMN!r}",
        )
    return header, rows


def _snp_columns(header: Sequence[str], snps: Sequence[str]) -> dict[str, tuple[str, str | None]]:
    """Column -> (snp, counted allele) for columns named ``rs1`` or ``rs1_A`` (PLINK .raw)."""
    wanted = set(snps)
    out: dict[str, tuple[str, str | None]] = {}
    for col in header:
        if col in wanted:
            out[col] = (col, None)
            continue
        base, _, allele = col.rpartition("_")
        if base in wanted and allele and set(allele.upper()) <= set("ACGT"):
            out[col] = (base, allele.upper())
    return out


def _dosage(value: str) -> tuple[float, str | None]:
    text = value.strip()
    if text.lower() in schema.MISSING_TOKENS:
        return math.nan, None
    try:
        x = float(text)
    except ValueError:
        return math.nan, f"dosage {text!r} is not a number"
    if not 0.0 <= x <= 2.0:
        return math.nan, f"dosage {text} is outside [0, 2]"
    return x, None


class _Batch:
    """Samples of one input, with per-sample errors and notes, in output order."""

    def __init__(self) -> None:
        self.ids: list[str] = []
        self.rows: list[str] = []
        self.errors: list[list[str]] = []
        self.notes: list[list[str]] = []

    def add(self, sid: str, row: str) -> int:
        self.ids.append(sid)
        self.rows.append(row)
        self.errors.append([])
        self.notes.append([])
        return len(self.ids) - 1


def _genotypes_from_table(
    path: Path,
    header: Sequence[str],
    rows: Sequence[Mapping[str, str]],
    snps: Sequence[str],
    batch: _Batch,
    index: Sequence[int],
) -> tuple[list[VariantInfo], np.ndarray]:
    cols = _snp_columns(header, snps)
    variants = [VariantInfo(snp, allele, None) for snp, allele in cols.values()]
    dos = np.full((len(rows), len(cols)), np.nan)
    for i, r in enumerate(rows):
        for j, col in enumerate(cols):
            x, err = _dosage(r.get(col, ""))
            if err:
                batch.errors[index[i]].append(
                    f"file {str(path)!r} row {i + 2} column {col!r}: {err}; use 0/1/2"
                )
            dos[i, j] = x
    return variants, dos


def _assemble(
    meta_extra: Mapping[str, Any], path: Path, survey_path: Path | None
) -> tuple[_Batch, np.ndarray, list[dict[str, str]], dict[str, int]]:
    """Read inputs into (batch, snp dosages aligned to batch, survey rows aligned to batch)."""
    snps = list(meta_extra.get("snp_features") or [])
    fields = list(meta_extra.get("survey_fields") or [])
    weights = [WeightSnp.from_mapping(w) for w in meta_extra.get("weights_table") or []]
    batch = _Batch()
    survey_rows: list[dict[str, str]] = []
    counts: dict[str, int] = {}
    if _is_vcf(path):
        if not snps:
            raise DataError(
                "this model uses no genotypes, but the input is a VCF",
                file=path,
                fix="pass the patient table (CSV) instead",
            )
        if fields and survey_path is None:
            raise DataError(
                "a VCF input needs the survey answers too",
                file=path,
                fix="add --survey survey.csv (one row per sample_id)",
            )
        keep = set(snps) | {f"{w.chrom}:{w.pos}" for w in weights if w.chrom and w.pos}
        vcf = read_vcf_text(path, keep=keep)
        variants, dos_raw, geno_ids = vcf.variants, vcf.dosages, vcf.samples
        sheader, srows = _read_csv(survey_path) if survey_path is not None else ([ID_COLUMN], [])
        missing = schema.missing_columns(sheader, fields)
        if missing:
            # Mean-imputing a whole missing column would score every patient "ok" on
            # an average answer; the file is wrong, not the patients.
            raise DataError(
                f"survey columns {missing} are missing (found {list(sheader)[:10]})",
                file=survey_path,
                fix="add the columns the model was trained with (see the model card)",
            )
        by_id: dict[str, list[int]] = {}
        for k, r in enumerate(srows):
            by_id.setdefault(r[ID_COLUMN].strip(), []).append(k)
        order: list[int] = []
        seen: set[str] = set()
        for g, sid in enumerate(geno_ids):
            i = batch.add(sid, f"VCF sample column {g + 10}")
            order.append(g)
            batch.errors[i].extend(vcf.errors[g] if g < len(vcf.errors) else [])
            hits = by_id.get(sid, [])
            if sid in seen:
                batch.errors[i].append(
                    f"sample {sid!r} appears twice in {path.name}; "
                    "keep one genotype column per sample"
                )
            seen.add(sid)
            if fields and not hits:
                batch.errors[i].append(
                    f"no survey answers for {sid!r} in {survey_path}; "
                    "add its row or check the pseudonym key"
                )
            elif len(hits) > 1:
                batch.errors[i].append(
                    f"{sid!r} has {len(hits)} rows in {survey_path} "
                    f"(rows {[h + 2 for h in hits]}); keep one"
                )
            survey_rows.append(srows[hits[0]] if hits else {})
        for sid, hits in by_id.items():
            if sid not in seen:
                for h in hits:
                    i = batch.add(sid, f"survey row {h + 2}")
                    batch.errors[i].append(
                        f"{sid!r} (row {h + 2} of {survey_path}) is not in the VCF {path.name}"
                    )
                    survey_rows.append(srows[h])
        counted = np.full((len(batch.ids), len(variants)), np.nan)
        if len(order):
            counted[: len(order)] = dos_raw[np.array(order)]
    else:
        header, rows = _read_csv(path)
        index = []
        seen_ids: dict[str, int] = {}
        for k, r in enumerate(rows):
            sid = r[ID_COLUMN].strip()
            i = batch.add(sid, f"row {k + 2}")
            index.append(i)
            if not sid:
                batch.errors[i].append(f"file {str(path)!r} row {k + 2}: empty {ID_COLUMN}")
            elif sid in seen_ids:
                batch.errors[i].append(
                    f"{sid!r} also in row {seen_ids[sid]} of {path.name}; keep one row per sample"
                )
            else:
                seen_ids[sid] = k + 2
        if survey_path is not None:  # the table holds dosages, the survey is separate
            sheader, srows = _read_csv(survey_path)
            by_id = {}
            for k, r in enumerate(srows):
                by_id.setdefault(r[ID_COLUMN].strip(), []).append(k)
            for i in index:
                hits = by_id.get(batch.ids[i], [])
                if fields and not hits:
                    batch.errors[i].append(
                        f"no survey answers for {batch.ids[i]!r} in {survey_path}"
                    )
                survey_rows.append(srows[hits[0]] if hits else {})
            missing = schema.missing_columns(sheader, fields)
            src_header = sheader
        else:
            survey_rows = [dict(r) for r in rows]
            missing = schema.missing_columns(header, fields)
            src_header = header
        if missing:
            raise DataError(
                f"survey columns {missing} are missing (found {list(src_header)[:10]})",
                file=survey_path or path,
                fix="add the columns the model was trained with (see the model card)",
            )
        variants, counted = (
            _genotypes_from_table(path, header, rows, snps, batch, index)
            if snps
            else ([], np.zeros((len(rows), 0)))
        )
        if snps and not variants:
            raise DataError(
                f"none of the model's {len(snps)} SNP columns is in the table (e.g. {snps[:3]})",
                file=path,
                fix="add dosage columns named like the SNPs (rs10484554 or rs10484554_T), "
                "or score a VCF "
                "with --survey",
            )
    if snps:
        h = harmonise(
            weights,
            variants,
            counted,
            ambiguous=str(meta_extra.get("ambiguous_policy", "frequency")),
            freq_margin=float(meta_extra.get("freq_margin", 0.1)),
            known_ambiguous=meta_extra.get("ambiguous_resolved") or {},
        )
        counts = h.counts()
        if h.n_usable() == 0:
            raise DataError(
                f"no SNP of the model can be used ({counts})",
                file=path,
                fix="check that the VCF uses rsIDs (or GRCh38 chrom:pos) and contains the "
                "scored SNPs; "
                "check the alleles (allele_mismatch) against the model's weights table",
            )
        snp_dos = h.dosages
    else:
        snp_dos = np.zeros((len(batch.ids), 0))
    return batch, snp_dos, survey_rows, counts


def run_tabular_predictions(
    model_path: str | PathLike[str],
    metadata: Any,
    session: Any,
    input_path: str | PathLike[str],
    output_csv: str | PathLike[str],
    **opts: Any,
) -> Path:
    """Score every sample of ``input_path`` and write one CSV row per sample.

    Args:
        model_path: the ``.onnx`` file (for messages).
        metadata: its :class:`skinml.modelfile.ModelMetadata` (task ``tabular_risk``).
        session: an onnxruntime session of the model.
        input_path: patient table (CSV with ``sample_id``, survey answers and
            SNP dosage columns) or a VCF (``.vcf``/``.vcf.gz``).
        output_csv: where to write.
        **opts: ``survey=PATH`` (survey CSV for VCF or dosage-table input),
            ``progress`` (print a summary line to stderr), ``top_k`` (factors
            listed per patient, default 3); other options are ignored.

    Returns:
        The written CSV path.
    """
    extra = metadata.extra
    inp = Path(input_path)
    survey = opts.get("survey")
    survey_path = None if survey is None else Path(survey)
    batch, snp_dos, survey_rows, counts = _assemble(extra, inp, survey_path)
    fields = list(extra.get("survey_fields") or [])
    enc = (
        schema.encode_rows(survey_rows, fields)
        if fields
        else schema.EncodedSurvey(
            np.zeros((len(batch.ids), 0)),
            [],
            [[] for _ in batch.ids],
            np.zeros(len(batch.ids), int),
        )
    )
    src = survey_path or inp
    for i, errs in enumerate(enc.errors):
        where = batch.rows[i] if survey_path is None else f"sample {batch.ids[i]!r}"
        if errs and survey_rows[i]:
            batch.errors[i].extend(f"file {str(src)!r} {where}: {e}" for e in errs)
    names = list(extra["feature_names"])
    snp_names = list(extra.get("snp_features") or [])
    col = {n: k for k, n in enumerate(snp_names)}
    col.update({n: len(snp_names) + k for k, n in enumerate(enc.feature_names)})
    raw = np.hstack([snp_dos, enc.features])
    missing_feat = [n for n in names if n not in col]
    if missing_feat:
        raise DataError(
            f"cannot build model features {missing_feat[:5]} from the input",
            file=inp,
            fix="the model's survey schema and the input disagree; "
            "re-export or check the model card",
        )
    X = raw[:, [col[n] for n in names]]
    n_snp_imputed = (
        np.isnan(X[:, : len(snp_names)]).sum(axis=1) if snp_names else np.zeros(len(X), int)
    )
    means = np.array([float(extra["imputation_means"][n]) for n in names])
    nan = np.isnan(X)
    X[nan] = np.broadcast_to(means, X.shape)[nan]
    ok = np.array([not e for e in batch.errors], dtype=bool)
    risk = np.full(len(X), np.nan)
    if ok.any():
        inp_meta = session.get_inputs()[0]
        dtype = np.float64 if "double" in inp_meta.type else np.float32
        risk[ok] = np.asarray(
            session.run(["risk"], {inp_meta.name: X[ok].astype(dtype)})[0], float
        ).reshape(-1)
    factors = _top_factors(extra.get("contributions") or {}, names, X, int(opts.get("top_k", 3)))
    cats = extra.get("risk_categories") or {}
    thr = metadata.threshold("high_risk")
    usable = sum(
        counts.get(s, 0) for s in ("matched", "flipped", "ambiguous_kept", "assumed_effect_allele")
    )
    origin = "simulated" if extra.get("simulated_training_data") else "real"
    out = prepare_output_file(output_csv, what="predictions CSV")
    with out.open("w", encoding="utf-8", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=OUTPUT_COLUMNS)
        w.writeheader()
        for i, sid in enumerate(batch.ids):
            notes = list(batch.notes[i])
            if snp_names and n_snp_imputed[i]:
                notes.append(f"{int(n_snp_imputed[i])} SNP genotypes mean-imputed")
            if enc.n_missing[i]:
                notes.append(f"{int(enc.n_missing[i])} survey answers missing (mean-imputed)")
            row = {
                "sample_id": sid,
                "source_row": batch.rows[i],
                "model_training_data": origin,
                "n_snps_used": usable if snp_names else 0,
                "n_snps_imputed": int(n_snp_imputed[i]),
                "n_survey_imputed": int(enc.n_missing[i]),
                "notes": "; ".join(notes),
            }
            if ok[i]:
                p = float(risk[i])
                row.update(
                    status="ok",
                    risk=f"{p:.10g}",
                    risk_category=_category(p, cats),
                    high_risk_flag="" if thr is None else int(p >= thr.threshold),
                    top_factors=factors[i],
                    error="",
                )
            else:
                row.update(
                    status="error",
                    risk="",
                    risk_category="",
                    high_risk_flag="",
                    top_factors="",
                    error=" | ".join(batch.errors[i]),
                )
            w.writerow(row)
    if opts.get("progress"):
        n_err = int((~ok).sum())
        msg = f"scored {int(ok.sum())} samples, {n_err} error rows"
        if counts:
            msg += "; SNPs " + ", ".join(f"{k} {v}" for k, v in counts.items() if v)
        print(msg, file=sys.stderr)
    return out


def _category(p: float, cats: Mapping[str, Any]) -> str:
    names, cut = list(cats.get("names") or []), list(cats.get("cutoffs") or [])
    if not names:
        return ""
    k = sum(p >= c for c in cut)
    return str(names[min(k, len(names) - 1)])


def _top_factors(
    contrib: Mapping[str, Any],
    names: Sequence[str],
    X: np.ndarray,  # noqa: N803
    k: int,
) -> list[str]:
    """Largest risk-raising factors per patient, from the logistic coefficients in the metadata."""
    if contrib.get("method") != "linear":
        return [""] * len(X)
    coef = np.asarray(contrib["coef"], float)
    mean = np.asarray(contrib["feature_mean"], float)
    groups = dict(contrib.get("groups") or {})
    per = (X - mean) * coef
    labels = [groups.get(n) for n in names]
    uniq = list(dict.fromkeys(g for g in labels if g))
    out = []
    for row in per:
        tot = {g: 0.0 for g in uniq}
        for v, g in zip(row, labels, strict=True):
            if g:
                tot[g] += float(v)
        best = sorted(((v, g) for g, v in tot.items() if v > 0), reverse=True)[:k]
        out.append("; ".join(f"{g} ({v:+.2f})" for v, g in best))
    return out
