"""Read a user's text file as UTF-8, or say which line is not and how to re-save it.

Spreadsheet exports are often Latin-1 or Windows-1252; guessing the encoding
would silently turn accented names into other names, so skinml refuses with
the line number instead.
"""

from __future__ import annotations

from os import PathLike
from pathlib import Path

from skinml.errors import DataError

UTF8_FIX = (
    "re-save the file as UTF-8 (Excel: Save As 'CSV UTF-8'; or "
    "iconv -f latin1 -t utf-8 IN.csv > OUT.csv)"
)


def read_utf8(path: str | PathLike[str]) -> str:
    """The file's text (a UTF-8 byte-order mark is dropped).

    Raises:
        DataError: naming the file and the first line that is not UTF-8.
    """
    p = Path(path)
    data = p.read_bytes()
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise DataError(
            f"not UTF-8 text (byte 0x{data[exc.start]:02x} cannot be decoded)",
            file=p,
            row=line,
            expected="a UTF-8 encoded text file",
            fix=UTF8_FIX,
        ) from exc
