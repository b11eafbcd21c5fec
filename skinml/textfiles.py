"""Read a user's text file as UTF-8, or say which line is not and how to re-save it.

Spreadsheet exports are often Latin-1 or Windows-1252; guessing the encoding
would silently turn accented names into other names, so skinml refuses with
the line number instead.
"""

from __future__ import annotations

from os import PathLike
from pathlib import Path
from typing import Any

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
        raise _not_utf8(p, data, exc) from exc


def not_utf8(path: str | PathLike[str]) -> DataError:
    """The error for a file another reader (pandas) failed to decode, naming its first bad line.

    Readers that hand the file to pandas call this in their ``UnicodeDecodeError``
    handler: pandas' own message gives a byte offset inside a buffer, not a line.
    """
    p = Path(path)
    data = p.read_bytes()
    try:
        data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        return _not_utf8(p, data, exc)
    return DataError("not UTF-8 text", file=p, expected="a UTF-8 encoded text file", fix=UTF8_FIX)


def _not_utf8(p: Path, data: bytes, exc: UnicodeDecodeError) -> DataError:
    offset = exc.start + (3 if data.startswith(b"\xef\xbb\xbf") else 0)
    return DataError(
        f"not UTF-8 text (byte 0x{data[offset]:02x} cannot be decoded)",
        file=p,
        row=data[:offset].count(b"\n") + 1,
        expected="a UTF-8 encoded text file",
        fix=UTF8_FIX,
    )


def read_csv(path: str | PathLike[str], **kwargs: Any) -> Any:
    """``pandas.read_csv`` whose encoding failure names the file and its first non-UTF-8 line.

    Raises:
        DataError: the file is not UTF-8 (other pandas errors pass through unchanged).
    """
    import pandas as pd

    try:
        return pd.read_csv(path, **kwargs)
    except UnicodeDecodeError as exc:
        raise not_utf8(path) from exc
