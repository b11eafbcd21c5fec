"""The single place where commands turn bad input into one message and exit code 2."""

from __future__ import annotations

import pytest

from skinml.cli_errors import EXIT_BAD_INPUT, domain_error, explain, run_command
from skinml.errors import DataError, ImageReadError, ManyErrors, with_fix


def test_many_errors_prints_the_shared_fix_once_and_counts_in_english():
    one = ImageReadError("truncated", file="a.jpg", row=3, fix="repair or remove")
    text = str(ManyErrors("1 image cannot be read", [one], fix="repair or remove"))
    assert "(1 problem)" in text
    assert text.count("Fix:") == 1
    assert text.splitlines()[-1] == "Fix: repair or remove"
    two = str(ManyErrors("bad", [one, DataError("x", fix="other")], fix="repair or remove"))
    assert "(2 problems)" in two and "Fix: other" in two and two.count("Fix:") == 2


def test_with_fix_swaps_the_advice_of_every_item():
    err = ManyErrors(
        "2 missing",
        [DataError("gone", file="m.csv", row=r, fix="on_missing='exclude'") for r in (2, 3)],
    )
    cli = str(with_fix(err, "pass --on-missing exclude"))
    assert "on_missing=" not in cli and "--on-missing exclude" in cli and "row 3" in cli


def test_wrapped_domain_errors_are_found_in_the_cause_chain():
    inner = DataError("bad row", file="x.csv", row=4)
    try:
        try:
            raise inner
        except DataError as exc:
            raise RuntimeError("Error in call to target") from exc
    except RuntimeError as outer:
        assert domain_error(outer) is inner


@pytest.mark.parametrize(
    ("exc", "needle"),
    [
        (IsADirectoryError(21, "Is a directory", "/tmp/out"), "is a folder"),
        (FileNotFoundError(2, "No such file", "/nope.csv"), "does not exist"),
        (PermissionError(13, "Permission denied", "/root/x"), "permission denied"),
    ],
)
def test_path_problems_become_messages_naming_the_file(exc, needle, capsys):
    def body() -> int:
        raise exc

    assert run_command("skinml-x", body) == EXIT_BAD_INPUT
    err = capsys.readouterr().err
    assert err.startswith("skinml-x: error: ") and needle in err and exc.filename in err


def test_non_utf8_text_is_explained():
    with pytest.raises(UnicodeDecodeError) as info:
        b"caf\xe9,1".decode("utf-8")
    assert "UTF-8" in explain(info.value)


def test_bugs_keep_their_traceback():
    def body() -> int:
        raise KeyError("a bug")

    with pytest.raises(KeyError):
        run_command("skinml-x", body)
    assert explain(OSError("no file name")) is None


def test_python_api_fixes_are_said_in_the_command_terms(capsys):
    from skinml.cli.train import FIXES

    def body() -> int:
        raise ManyErrors(
            "1 missing",
            [DataError("gone", file="m.csv", row=2, fix="pass on_missing='exclude' to skip")],
        )

    assert run_command("skinml-train", body, fixes=FIXES) == EXIT_BAD_INPUT
    err = capsys.readouterr().err
    assert "+data.source.on_missing=exclude" in err and "on_missing='exclude'" not in err
