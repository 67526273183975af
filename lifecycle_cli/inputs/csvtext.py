"""CSV exports as text: encodings, and rows that do not fit the header.

Polars reads many broken exports without a word: it fills short rows with
nulls and reads a file cut off mid-row as if it were whole. So before Polars
reads a CSV, :func:`check_rows` makes one vectorised pass over its lines
(field counts, quotes, NUL bytes). Only when that pass sees something odd
does a slow scan with Python's csv module work out the exact lines for the
message; multi-line quoted fields, which are legal, also take that path.

Exports in another encoding (``--encoding cp1252``) are transcoded to a
UTF-8 temporary copy in chunks, so a large usage file never sits in memory.
"""

from __future__ import annotations

import atexit
import codecs
import csv
import gzip
import re
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, cast

import polars as pl

from ..errors import DataError, OptionError, Problem

_CHUNK = 1 << 20
_SHOWN = 5  # lines named in one message


def _open_bytes(path: Path) -> IO[bytes]:
    if path.name.lower().endswith(".gz"):
        return cast(IO[bytes], gzip.open(path, "rb"))
    return path.open("rb")


# -- encodings ------------------------------------------------------------------------------


def codec_name(encoding: str | None) -> str | None:
    """The canonical codec name for ``--encoding``, None for UTF-8 (nothing to do)."""
    if encoding is None:
        return None
    try:
        name = codecs.lookup(encoding).name
    except LookupError:
        raise OptionError(
            Problem(
                f"unknown encoding '{encoding}'",
                hint="use a Python codec name such as utf-8, cp1252, latin-1 or utf-16",
            )
        ) from None
    return None if name in ("utf-8", "utf-8-sig") else name


_tmp_root: Path | None = None


def tmp_dir() -> Path:
    global _tmp_root
    if _tmp_root is None:
        _tmp_root = Path(tempfile.mkdtemp(prefix="lifecycle-"))
        atexit.register(shutil.rmtree, _tmp_root, ignore_errors=True)
    return Path(tempfile.mkdtemp(dir=_tmp_root))


def transcode(path: Path, encoding: str) -> Path:
    """A UTF-8 copy of the text file ``path`` (gzipped or not), written in chunks.

    The copy keeps the file's name without ``.gz`` (the name decides the separator of
    a .tsv) and lives until the process ends. Raises :class:`DataError` naming the
    line of the first byte that is not ``encoding`` text.
    """
    name = path.name[:-3] if path.name.lower().endswith(".gz") else path.name
    target = tmp_dir() / name
    decoder = codecs.getincrementaldecoder(encoding)(errors="strict")
    lines = 0
    try:
        with _open_bytes(path) as src, target.open("w", encoding="utf-8", newline="") as dst:
            while True:
                chunk = src.read(_CHUNK)
                try:
                    text = decoder.decode(chunk, final=not chunk)
                except UnicodeDecodeError as err:
                    before = codecs.decode(chunk[: err.start], encoding, errors="replace")
                    bad = err.object[err.start : err.start + 1].hex().upper()
                    raise DataError(
                        Problem(
                            f"byte 0x{bad} is not {encoding} text",
                            file=str(path),
                            line=lines + before.count("\n") + 1,
                            hint="check the --encoding: most exports are utf-8 or cp1252; "
                            "latin-1 reads any byte",
                        )
                    ) from None
                dst.write(text.removeprefix("\ufeff") if lines == 0 else text)
                lines += text.count("\n")
                if not chunk:
                    break
    except OSError as err:
        raise DataError(
            Problem(f"cannot read the file: {err.strerror or err}", file=str(path))
        ) from None
    return target


def first_non_utf8(path: Path) -> tuple[int, str]:
    """(line, byte in hex) of the first byte that is not UTF-8; for error messages only."""
    decoder = codecs.getincrementaldecoder("utf-8")(errors="strict")
    lines = 0
    with _open_bytes(path) as fh:
        while chunk := fh.read(_CHUNK):
            try:
                lines += decoder.decode(chunk).count("\n")
            except UnicodeDecodeError as err:
                head = chunk[: err.start].decode("utf-8", errors="replace")
                return lines + head.count("\n") + 1, chunk[err.start : err.start + 1].hex().upper()
    return lines + 1, "?"


def not_utf8_problem(path: Path, shown: Path) -> Problem:
    line, byte = first_non_utf8(path)
    return Problem(
        f"the file is not UTF-8 text: line {line} has the byte 0x{byte}",
        file=str(shown),
        line=line,
        hint="exports from Excel on Windows are usually cp1252: pass --encoding cp1252, "
        "or save the file as 'CSV UTF-8'",
    )


# -- rows that do not fit the header --------------------------------------------------------


def check_rows(path: Path, separator: str, n_fields: int, shown: Path | None = None,
               skip: int = 0) -> None:
    """Raise :class:`DataError` for rows with more or fewer fields than the header,
    a file that ends inside a row, NUL bytes or bytes that are not UTF-8.

    ``path`` is the UTF-8 file to check; ``shown`` the file named in messages; ``skip``
    lines (title lines above the header) are not rows.
    """
    shown = shown or path
    line = pl.col("line")
    sep = re.escape(separator)
    # most lines: no quote, no NUL, exactly n_fields - 1 separators (counting a literal is
    # faster than one regex: 3.3 s against 4.3 s on 2.5 GB)
    plain = ((line.str.count_matches(separator, literal=True) == n_fields - 1)
             & ~line.str.contains('["\x00]'))
    # the others: count separators outside quoted fields. A line that opens a quote
    # without closing it (a multi-line field, or a cut-off file) is odd too, and sends
    # us to the exact scan.
    outside = line.str.replace_all(r'"[^"]*("|$)', "").str.count_matches(separator, literal=True)
    # a quote is where CSV puts one: around a whole value, or doubled inside a quoted one
    field = f'(?:"(?:[^"]|"")*"|[^{sep}"]*)'
    quoted_as_csv = line.str.contains(f"^{field}(?:{sep}{field})*\r?$")
    suspicious = (
        ((outside != n_fields - 1) & (line.str.strip_chars() != ""))
        | (line.str.count_matches('"', literal=True) % 2 == 1)
        | ~quoted_as_csv
        | line.str.contains("\x00", literal=True)
    )
    try:
        found = (
            pl.scan_lines(path).slice(skip).filter(~plain).select(suspicious.any())
            .collect().item()
        )
    except pl.exceptions.ComputeError as err:
        if "utf8" in str(err).replace("-", "").lower():
            raise DataError(not_utf8_problem(path, shown)) from None
        raise
    if found:
        problems = diagnose_rows(path, separator, n_fields, shown, skip)
        if problems:
            raise DataError(problems)


def _lines_text(lines: list[tuple[int, int]], total: int) -> str:
    shown = ", ".join(f"line {ln} has {n}" for ln, n in lines[:_SHOWN])
    return shown + (" ..." if total > _SHOWN else "")


def diagnose_rows(path: Path, separator: str, n_fields: int, shown: Path,
                  skip: int = 0) -> list[Problem]:
    """The slow, exact scan behind :func:`check_rows`: problems with their lines."""
    with _open_bytes(path) as raw:
        first_nul = None
        lines = 0
        for number, text in enumerate(raw, start=1):
            lines = number
            if b"\x00" in text and first_nul is None:
                first_nul = number
        ends_with_newline = True
        if lines:
            ends_with_newline = text.endswith((b"\n", b"\r"))
    if first_nul is not None:
        return [
            Problem(
                f"the file contains NUL bytes (first on line {first_nul}): "
                "it is not a text export, or it is UTF-16",
                file=str(shown),
                line=first_nul,
                hint="save it as 'CSV UTF-8', or pass --encoding utf-16 if it is UTF-16",
            )
        ]
    short: list[tuple[int, int]] = []
    long: list[tuple[int, int]] = []
    n_short = n_long = 0
    bare: list[tuple[int, str, str]] = []  # (line, column, value) with a stray quote
    n_bare = 0
    header: list[str] = []
    last: tuple[int, int] | None = None  # (first line, fields) of the last record
    with _open_text(path) as fh:
        pending: list[str] = []  # the lines of the record being read

        def read_lines() -> Iterator[str]:
            for text in fh:
                pending.append(text)
                yield text

        reader = csv.reader(read_lines(), delimiter=separator, strict=True)
        start = 1
        try:
            for row in reader:
                record = "".join(pending)
                pending.clear()
                if start <= skip:  # a title line above the header
                    start = reader.line_num + 1
                    continue
                header = header or row
                for i, value in enumerate(row):
                    if _stray_quote(value, record, separator):
                        n_bare += 1
                        if len(bare) < _SHOWN:
                            column = header[i] if i < len(header) else f"column {i + 1}"
                            bare.append((start, column, value))
                if len(row) > 1 or (row and row[0].strip()):  # blank lines are skipped
                    last = (start, len(row))
                    if len(row) < n_fields:
                        n_short += 1
                        if len(short) < _SHOWN:
                            short.append((start, len(row)))
                    elif len(row) > n_fields:
                        n_long += 1
                        if len(long) < _SHOWN:
                            long.append((start, len(row)))
                start = reader.line_num + 1
        except csv.Error as err:
            if "unexpected end of data" in str(err):
                return [
                    Problem(
                        f"the file ends inside a quoted field that starts on line {start}: "
                        "the export was cut off, or a closing quote (\") is missing",
                        file=str(shown),
                        line=start,
                        hint="export the file again; check that every \" is closed",
                    )
                ]
            if "expected after" in str(err) and reader.line_num > start:
                return [
                    Problem(
                        f"a quote opened on line {start} closes only on line "
                        f"{reader.line_num}: a closing quote (\") is probably missing on "
                        f"line {start}",
                        file=str(shown),
                        line=start,
                        hint='close it; a value with quotes inside is written "like ""this"""',
                    )
                ]
            if "expected after" in str(err):  # "Acme" Inc: text after a closing quote
                return [
                    Problem(
                        f"line {reader.line_num} has a value in quotes followed by more text "
                        'before the next separator, such as "Acme" Inc',
                        file=str(shown),
                        line=reader.line_num,
                        hint='quote the whole value and double the quotes inside it: '
                        '"""Acme"" Inc"',
                    )
                ]
            return [
                Problem(
                    f"line {reader.line_num} is not valid CSV ({err})",
                    file=str(shown),
                    line=reader.line_num,
                    hint='a value with quotes is written "like ""this"""',
                )
            ]
    problems = []
    if not ends_with_newline and short and short[-1] == last:
        # the last row is short and has no line end: it was cut, say so
        short.pop()
        n_short -= 1
        problems.append(
            Problem(
                f"the file ends in the middle of a row: line {last[0]} has {last[1]} of "
                f"the {n_fields} fields and no line end; the export was cut off",
                file=str(shown),
                line=last[0],
                hint="export the file again",
            )
        )
    sep_name = {"\t": "tab", ",": "','", ";": "';'", "|": "'|'"}.get(separator, repr(separator))
    if bare:
        shown_values = ", ".join(f"line {ln}, column '{col}': {value}" for ln, col, value in bare)
        problems.append(
            Problem(
                f"{n_bare} value(s) have a double quote (\") inside but are not in quotes, "
                f"so a CSV reader takes the quote as the start of a quoted value: "
                + shown_values + (" ..." if n_bare > len(bare) else ""),
                file=str(shown),
                line=bare[0][0],
                column=bare[0][1],
                hint='write such a value in double quotes and double the quote inside: '
                f'"{_quoted(bare[0][2])}" (as Excel saves it)',
            )
        )
    if short:
        problems.append(
            Problem(
                f"{n_short} row(s) have fewer fields than the header's {n_fields}: "
                + _lines_text(short, n_short),
                file=str(shown),
                line=short[0][0],
                hint=f"each row needs {n_fields} values separated by {sep_name}; "
                "a line break inside a value must be in double quotes",
            )
        )
    if long:
        problems.append(
            Problem(
                f"{n_long} row(s) have more fields than the header's {n_fields}: "
                + _lines_text(long, n_long),
                file=str(shown),
                line=long[0][0],
                hint=f"a value that contains {sep_name} must be in double quotes "
                '("Acme, Inc.")',
            )
        )
    problems.sort(key=lambda p: p.line or 0)
    return problems


def _stray_quote(value: str, record: str, separator: str) -> bool:
    """Whether ``value`` holds an odd number of quotes that stand in ``record`` as they are
    (a quoted value shows its quotes doubled): a quote inside a value that is not quoted,
    which Polars reads as the start of a quoted value, running into the next ones."""
    if value.count('"') % 2 == 0:
        return False
    at = record.find(value)
    return at >= 0 and (at == 0 or record[at - 1] == separator)


def _quoted(value: str) -> str:
    return value.replace('"', '""')


def _open_text(path: Path) -> IO[str]:
    if path.name.lower().endswith(".gz"):
        return gzip.open(path, "rt", encoding="utf-8-sig", errors="replace", newline="")
    return path.open(encoding="utf-8-sig", errors="replace", newline="")
