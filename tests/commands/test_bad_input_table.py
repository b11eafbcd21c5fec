"""Issue 15, as a property: every command meets every kind of bad input with one message.

Each row of the table builds a bad input in ``tmp_path`` (files, CSVs, configs,
model files, VCFs, paths) and runs one command on it. The command must return
exit code 2, print ``<command>: error:`` with something that locates the problem
(the file name, the column, the flag), and raise nothing (in-process), or print no
traceback (the Hydra commands, run as subprocesses of this checkout's Python).
Where a command *can* go on (``skinml-predict`` on awkward rows), it must write
exactly one row per input: nothing lost.

The ``fuzz`` tests generate many CSV shapes (seeded) and damaged model-metadata documents
(``hypothesis``, derandomized so that CI sees the same cases every run).
"""

from __future__ import annotations

import contextlib
import csv
import gzip
import json
import os
import random
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ..predict.conftest import lesion_image, tiny_graph, tiny_metadata, write_tiny_model

Case = Callable[[Path], tuple[list[str], list[str]]]  # tmp -> (argv, words the error must name)


def _image(path: Path, seed: int = 0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    lesion_image(seed).save(path)
    return path


def _latin1(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text.encode("latin-1"))
    return path


def _model(tmp: Path, name: str = "m.onnx", **meta) -> Path:
    return write_tiny_model(tmp / name, tiny_metadata(**meta) if meta else None)


def _manifest(tmp: Path, n: int = 6, *, missing: int = 0) -> Path:
    rows = ["image,label,patient_id,lesion_id,site,device"]
    for i in range(n):
        if i >= missing:
            _image(tmp / "img" / f"{i}.png", i)
        rows.append(f"img/{i}.png,{'mel' if i % 2 else 'nv'},P{i},L{i},s{i % 2},d")
    path = tmp / "manifest.csv"
    path.write_text("\n".join(rows) + "\n")
    return path


# -- skinml-predict -------------------------------------------------------------------------


def _predict_cases() -> dict[str, Case]:
    def model_missing(t):
        return [t / "nope.onnx", _image(t / "a.jpg")], ["nope.onnx", "does not exist"]

    def model_is_text(t):
        (t / "m.onnx").write_text("not a model")
        return [t / "m.onnx", _image(t / "a.jpg")], ["m.onnx"]

    def model_without_metadata(t):
        import onnx

        onnx.save_model(tiny_graph(), str(t / "plain.onnx"))
        return [t / "plain.onnx", _image(t / "a.jpg")], ["plain.onnx", "no skinml metadata"]

    def sidecar_mismatch(t):
        m = _model(t)
        Path(f"{m}.sha256").write_text("0" * 64 + "  m.onnx\n")
        return [m, _image(t / "a.jpg")], ["checksum mismatch"]

    def model_gone_sidecar_left(t):
        m = _model(t)
        m.unlink()
        return [m, _image(t / "a.jpg")], ["m.onnx", "does not exist"]

    def short_class_list(t):
        return [_model(t, classes=("nv", "mel")), _image(t / "a.jpg")], ["2 classes"]

    def input_missing(t):
        return [_model(t), t / "nothing"], ["nothing", "does not exist"]

    def csv_without_image_column(t):
        (t / "l.csv").write_text("name,age\na.jpg,3\n")
        return [_model(t), t / "l.csv"], ["l.csv", "image"]

    def csv_latin1(t):
        _image(t / "a.jpg")
        return [_model(t), _latin1(t / "l.csv", "image,note\na.jpg,Gen\xe8ve\n")], [
            "l.csv",
            "row 2",
        ]

    def csv_empty_file(t):
        (t / "l.csv").write_bytes(b"")
        return [_model(t), t / "l.csv"], ["l.csv"]

    def output_is_a_folder(t):
        (t / "out").mkdir()
        return [_model(t), _image(t / "a.jpg"), "-o", t / "out"], ["out", "folder"]

    def output_under_a_file(t):
        a = _image(t / "a.jpg")
        return [_model(t), a, "-o", a / "p.csv"], ["a.jpg"]

    def batch_size_zero(t):
        return [_model(t), _image(t / "a.jpg"), "--batch-size", "0"], ["--batch-size"]

    def survey_with_an_image_model(t):
        return [_model(t), _image(t / "a.jpg"), "--survey", t / "s.csv"], ["--survey"]

    def threads_zero(t):
        return [_model(t), _image(t / "a.jpg"), "--threads", "0"], ["--threads"]

    def workers_negative(t):
        return [_model(t), _image(t / "a.jpg"), "--workers", "-1"], ["--workers"]

    def heatmaps_dir_is_a_file(t):
        a = _image(t / "a.jpg")
        return [_model(t), a, "--heatmaps", a], ["a.jpg"]

    return {k: v for k, v in locals().items() if callable(v)}


@pytest.mark.parametrize("name", sorted(_predict_cases()))
def test_predict_bad_input_is_one_message(name, tmp_path, capsys):
    from skinml.predict.cli import main

    argv, words = _predict_cases()[name](tmp_path)
    argv = [str(a) for a in argv]
    if "-o" not in argv:
        argv += ["-o", str(tmp_path / "predictions.csv")]
    _expect_error(main, [*argv, "--no-progress"], "skinml-predict", words, capsys)


def _expect_error(main, argv, prog, words, capsys) -> str:
    assert main([str(a) for a in argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith(prog) and "error: " in err and "Traceback" not in err, err
    for python_api in ("on_missing=", "columns={", "npz_path="):  # a command speaks in flags
        assert python_api not in err, err
    for word in words:
        assert word in err, f"{word!r} not in {err!r}"
    return err


def test_predict_keeps_one_row_per_awkward_input(tmp_path, capsys):
    """Nothing lost: blank cells, missing files, folders, text, truncated and good images."""
    from skinml.predict.cli import main

    good = _image(tmp_path / "good.jpg")
    (tmp_path / "text.jpg").write_text("a note")
    (tmp_path / "trunc.jpg").write_bytes(good.read_bytes()[:200])
    (tmp_path / "folder.jpg").mkdir()
    entries = ["good.jpg", "", "missing.jpg", "folder.jpg", "text.jpg", "trunc.jpg", "good.jpg"]
    sheet = tmp_path / "list.csv"
    sheet.write_text("image\n" + "\n".join(f'"{e}"' for e in entries) + "\n")
    out = tmp_path / "p.csv"
    assert main([str(_model(tmp_path)), str(sheet), "-o", str(out), "--no-progress"]) == 0
    rows = _rows(out)
    assert [r["input"] for r in rows] == entries
    assert [r["status"] for r in rows] == ["ok"] + ["error"] * 5 + ["ok"]
    assert all(r["error"] for r in rows if r["status"] == "error")


def _rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


@pytest.mark.parametrize("seed", range(12))
def test_fuzz_predict_csv_shapes(seed, tmp_path, capsys):
    """Random worklist CSVs: exit 0 with one row per data row, or exit 2 with a message."""
    from skinml.predict.cli import main

    rnd = random.Random(seed)
    _image(tmp_path / "a.jpg")
    header = rnd.choice(["image", "path", "Image ", "file,age", "name", "", "image;age"])
    cells = ["a.jpg", "", "b.jpg", "a.jpg ", "../a.jpg", "\u00e9.jpg", '"a.jpg"', "a.jpg,7"]
    lines = [header] + [rnd.choice(cells) for _ in range(rnd.randint(0, 6))]
    text = "\n".join(lines) + rnd.choice(["\n", "", "\r\n"])
    sheet = tmp_path / "w.csv"
    sheet.write_bytes(text.encode(rnd.choice(["utf-8", "utf-8-sig", "latin-1", "utf-16"])))
    out = tmp_path / "p.csv"
    code = main([str(_model(tmp_path)), str(sheet), "-o", str(out), "--no-progress"])
    err = capsys.readouterr().err
    assert code in (0, 2) and "Traceback" not in err
    if code == 2:
        assert "w.csv" in err
    else:
        with open(sheet, newline="", encoding="utf-8-sig") as fh:
            n_data = len(list(csv.DictReader(fh)))
        assert len(_rows(out)) == n_data


_JUNK = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-3, 10**6),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=6),
    st.lists(st.one_of(st.none(), st.integers(), st.text(max_size=2)), max_size=4),
    st.dictionaries(st.text(max_size=3), st.one_of(st.none(), st.integers()), max_size=2),
)
#: One piece of damage: (inside preprocessing?, which key, delete it?, the junk value).
_DAMAGE = st.tuples(st.booleans(), st.integers(0, 10**6), st.booleans(), _JUNK)


@settings(max_examples=200, deadline=None, derandomize=True)
@given(damage=st.lists(_DAMAGE, min_size=1, max_size=4))
def test_fuzz_metadata_shapes(damage):
    """Hypothesis-generated damage to the metadata document: parsed, or a ModelFileError."""
    from skinml.errors import ModelFileError
    from skinml.modelfile.metadata import ModelMetadata

    doc = json.loads(tiny_metadata().to_json())
    for in_preprocessing, which, delete, junk in damage:
        target = doc
        if in_preprocessing and isinstance(doc.get("preprocessing"), dict):
            target = doc["preprocessing"]
        if not target:
            continue
        key = sorted(target)[which % len(target)]
        if delete:
            del target[key]
        else:
            target[key] = junk
    with contextlib.suppress(ModelFileError):
        ModelMetadata.from_json(json.dumps(doc))


# -- skinml-data, skinml-teach, skinml-qc, skinml-ingest, skinml-export ---------------------


def _other_cases() -> dict[str, tuple[str, Case]]:
    def data_unknown_name(t):
        return ["card", "ham1000"], ["ham1000"]

    def data_manifest_missing_column(t):
        (t / "m.csv").write_text("image,label\nimg/0.png,nv\n")
        return ["card", t / "m.csv"], ["m.csv"]

    def data_manifest_latin1(t):
        m = _latin1(t / "m.csv", "image,label\nimg/\xe9.png,nv\n")
        return ["card", m], ["m.csv", "row 2", "UTF-8"]

    def data_manifest_missing_images(t):
        return ["split", _manifest(t, missing=2), "-o", t / "s.csv"], ["0.png", "--on-missing"]

    def data_dermamnist_npz_missing(t):
        return ["card", "dermamnist", "--root", t], ["dermamnist.npz", "--root"]

    def data_registered_root_without_manifest(t):
        return ["verify", "isic_uda1", "--root", t], ["manifest.csv", "check the path"]

    def data_split_output_is_a_folder(t):
        m = _manifest(t, n=40)
        (t / "out").mkdir()
        return ["split", m, "-o", t / "out"], ["out"]

    def data_split_too_few_lesions(t):
        return ["split", _manifest(t, n=2), "-o", t / "s.csv"], ["'manifest'", "2 groups"]

    def data_split_fractions_out_of_range(t):
        return ["split", _manifest(t), "--val", "-1", "-o", t / "s.csv"], ["--val", "--test"]

    def teach_reference_missing(t):
        (t / "a.csv").write_text("case,diagnosis\ncase_001,mel\n")
        return [
            "score",
            "--reference",
            t / "nope.csv",
            "--answers",
            t / "a.csv",
            "--out",
            t / "o",
        ], ["nope.csv"]

    def teach_build_manifest_missing(t):
        return ["build", t / "none.csv", "-n", "3", "--out", t / "set"], ["none.csv"]

    def qc_records_missing(t):
        return ["records", t / "r.csv", "--out", t / "o"], ["r.csv"]

    def qc_records_without_hospital(t):
        (t / "r.csv").write_text("case,diagnosis\n1,mel\n")
        return ["records", t / "r.csv", "--out", t / "o"], ["r.csv"]

    def qc_records_latin1(t):
        return [
            "records",
            _latin1(t / "r.csv", "hospital,case,diagnosis\nS\xe9te,1,mel\n"),
            "--out",
            t / "o",
        ], ["r.csv"]

    def qc_out_is_a_file(t):
        (t / "r.csv").write_text("hospital,case,diagnosis\nA,1,mel\nB,2,nv\n")
        (t / "o").write_text("a file")
        return ["records", t / "r.csv", "--out", t / "o", "--quiet"], ["o", "file"]

    def teach_answers_latin1(t):
        ref = t / "reference.csv"
        ref.write_text("case,diagnosis,malignant\ncase_001,mel,1\n")
        ans = _latin1(t / "a.csv", "case,diagnosis\ncase_001,m\xe9l\n")
        return ["score", "--reference", ref, "--answers", ans, "--out", t / "o"], ["a.csv", "row 2"]

    def ingest_cases_csv_latin1(t):
        _image(t / "d" / "nv" / "a.png")
        _latin1(t / "d" / "cases.csv", "image,label\nnv/a.png,n\xe9v\n")
        (t / "k").write_text("k" * 40)
        return ["run", t / "d", "--out", t / "ds", "--key-file", t / "k", "--quiet"], [
            "cases.csv",
            "row 2",
        ]

    def ingest_delivery_missing(t):
        (t / "k").write_text("k" * 40)
        return ["run", t / "nodelivery", "--out", t / "ds", "--key-file", t / "k"], ["nodelivery"]

    def ingest_key_missing(t):
        (t / "d").mkdir()
        return ["run", t / "d", "--out", t / "ds", "--key-file", t / "nokey"], ["nokey"]

    def ingest_verify_missing(t):
        return ["verify", t / "nods"], ["nods"]

    def export_run_missing(t):
        return [t / "norun", "-o", t / "m.onnx"], ["norun"]

    def export_bundle_is_text(t):
        (t / "model_bundle.pt").write_text("not a bundle")
        return [t / "model_bundle.pt", "-o", t / "m.onnx"], ["model_bundle.pt"]

    table = {
        "data": "skinml.cli.data",
        "teach": "skinml.cli.teach",
        "qc": "skinml.cli.qc",
        "ingest": "skinml.cli.ingest",
        "export": "skinml.cli.export",
    }
    return {
        name: (table[name.split("_")[0]], fn)
        for name, fn in locals().items()
        if callable(fn) and name.split("_")[0] in table
    }


@pytest.mark.parametrize("name", sorted(_other_cases()))
def test_command_bad_input_is_one_message(name, tmp_path, capsys, monkeypatch):
    import importlib

    module, build = _other_cases()[name]
    if module.endswith("export"):
        pytest.importorskip("torch")
    monkeypatch.setenv("SKINML_SHARED_DATA", str(tmp_path / "no_shared_data"))
    argv, words = build(tmp_path)
    main = importlib.import_module(module).main
    prog = "skinml-" + module.rsplit(".", 1)[1]
    _expect_error(main, argv, prog, words, capsys)


# -- the Hydra commands, as subprocesses of this checkout ---------------------------------


def _hydra(module: str, tmp: Path, *overrides: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    env["OMP_NUM_THREADS"] = "1"
    return subprocess.run(
        [sys.executable, "-m", module, *overrides, f"hydra.run.dir={tmp / 'run'}"],
        capture_output=True,
        text=True,
        cwd=tmp,
        env=env,
        timeout=180,
    )


def _bad_vcf(tmp: Path) -> Path:
    path = tmp / "cohort.vcf.gz"
    with gzip.open(path, "wt") as fh:
        fh.write(
            "##fileformat=VCFv4.2\n##contig=<ID=6>\n"
            '##FORMAT=<ID=GT,Number=1,Type=String,Description="Genotype">\n'
            "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\tFORMAT\tS1\tS2\n"
            "6\t31274555\trs10484554\tC\tT\t.\tPASS\t.\tGT\t0/1\t0/X\n"
        )
    survey = tmp / "survey.csv"
    survey.write_text(
        "sample_id,psoriasis,smoking,bmi,alcohol,family_history,stressful_life_events,age\n"
        "S1,1,never,25,0,1,0,40\nS2,0,current,30,1,0,1,50\n"
    )
    return path


def _cohort(tmp: Path, n: int, *, latin1: bool = False) -> list[str]:
    """A VCF + survey of ``n`` subjects, a quarter of them cases (tiny on purpose)."""
    ids = [f"S{i}" for i in range(1, n + 1)]
    vcf = tmp / "g.vcf"
    vcf.write_text(
        "##fileformat=VCFv4.2\n##contig=<ID=6>\n"
        '##FORMAT=<ID=GT,Number=1,Type=String,Description="Genotype">\n'
        "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\tFORMAT\t" + "\t".join(ids) + "\n"
        "6\t31274555\trs10484554\tC\tT\t.\tPASS\t.\tGT\t" + "\t".join(["0/1"] * n) + "\n"
    )
    never = "n\xe9ver" if latin1 else "never"
    rows = [f"{s},{int(i % 4 == 0)},{never},25,0,1,0,40" for i, s in enumerate(ids)]
    survey = tmp / "survey.csv"
    survey.write_bytes(
        (
            "sample_id,psoriasis,smoking,bmi,alcohol,family_history,stressful_life_events,age\n"
            + "\n".join(rows)
            + "\n"
        ).encode("latin-1")
    )
    return [
        "risk/data=files",
        f"data.genotypes={vcf}",
        f"data.survey={survey}",
        f"tracking.tracking_uri=sqlite:///{tmp}/mlflow.db",
    ]


HYDRA_CASES = {
    "risk_cohort_too_small": ("skinml.cli.risk", lambda t: _cohort(t, 12), ["2 cases", "cv."]),
    "risk_survey_latin1": (
        "skinml.cli.risk",
        lambda t: _cohort(t, 12, latin1=True),
        ["survey.csv", "row 2", "UTF-8"],
    ),
    "train_misspelt_key": ("skinml.cli.train", lambda t: ["trainer.max_epoch=3"], ["max_epochs"]),
    "train_resume_without_dir": ("skinml.cli.train", None, ["hydra.run.dir"]),
    "train_manifest_missing": (
        "skinml.cli.train",
        lambda t: [f"data.source.path={t / 'none.csv'}", "data=manifest"],
        ["none.csv"],
    ),
    "train_image_size_zero": ("skinml.cli.train", lambda t: ["data.image_size=0"], ["image_size"]),
    "train_unknown_group_option": ("skinml.cli.train", lambda t: ["data=nonexistent"], ["data"]),
    "risk_misspelt_group": ("skinml.cli.risk", lambda t: ["modle=lightgbm"], ["'model'"]),
    "risk_malformed_genotype": (
        "skinml.cli.risk",
        lambda t: [
            "risk/data=files",
            f"data.genotypes={_bad_vcf(t)}",
            f"data.survey={t / 'survey.csv'}",
            f"tracking.tracking_uri=sqlite:///{t}/mlflow.db",
        ],
        ["cohort.vcf.gz", "0/X", "'S2'"],
    ),
}


@pytest.mark.parametrize("name", sorted(HYDRA_CASES))
def test_hydra_command_bad_input_is_one_message(name, tmp_path):
    pytest.importorskip("hydra")
    module, build, words = HYDRA_CASES[name]
    if build is None:  # resume=auto must come without hydra.run.dir
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
        proc = subprocess.run(
            [sys.executable, "-m", module, "resume=auto"],
            capture_output=True,
            text=True,
            cwd=tmp_path,
            env=env,
            timeout=180,
        )
    else:
        proc = _hydra(module, tmp_path, *build(tmp_path))
    assert proc.returncode == 2, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr and "error: " in proc.stderr, proc.stderr[-3000:]
    for word in words:
        assert word in proc.stderr, proc.stderr[-3000:]


def test_qc_indicator_without_cases_is_a_note_not_a_crash(tmp_path, capsys):
    """Every reference says mel: 'called mel when the reference says not mel' has no cases."""
    from skinml.cli.qc import main

    records = tmp_path / "r.csv"
    records.write_text("hospital,case,diagnosis,reference\nA,1,mel,mel\nB,2,nv,mel\n")
    assert main(["records", str(records), "--out", str(tmp_path / "q"), "--quiet"]) == 0
    assert (tmp_path / "q" / "flags.csv").is_file()


def test_every_console_script_goes_through_the_one_error_handler():
    """A new ``skinml-*`` command must route its body through ``run_command`` too."""
    import importlib
    import inspect
    import tomllib

    pyproject = Path(__file__).resolve().parents[2] / "pyproject.toml"
    scripts = tomllib.loads(pyproject.read_text())["project"]["scripts"]
    assert len(scripts) >= 8
    for name, target in scripts.items():
        module = importlib.import_module(target.split(":")[0])
        assert "run_command(" in inspect.getsource(module), f"{name} ({target}) bypasses it"
