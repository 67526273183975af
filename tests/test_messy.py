"""Messy real exports: each case gets a clear error or a documented, safe behaviour.

See docs/exports.md. Library-level tests here; the CLI tests at the end run the real
command and check exit code, message, no traceback and that nothing was written.
"""

from __future__ import annotations

import datetime as dt
import gzip
from pathlib import Path

import polars as pl
import pytest
from cli_util import lifecycle, snapshot

from lifecycle_cli import DataError, parse_rules
from lifecycle_cli.inputs import read_customers, scan_usage

RULES = parse_rules("""\
version: 1
stages: [{name: Onboarding}, {name: Launched}]
initial_stage: Onboarding
""")


def write(path: Path, text: str | bytes) -> Path:
    path.write_bytes(text.encode() if isinstance(text, str) else text)
    return path


def problems(path: Path, rules=RULES, **kwargs) -> str:
    with pytest.raises(DataError) as info:
        read_customers(path, rules, **kwargs)
    return "\n".join(p.render() for p in info.value.problems)


# -- separators, blank lines, headers, NUL ---------------------------------------------------


def test_semicolon_separated_file(tmp_path: Path) -> None:
    path = write(tmp_path / "c.csv", "customer_id;stage;arr\n1;Onboarding;1,5\n2;;7\n")
    typed = read_customers(path, RULES).typed
    assert typed["customer_id"].to_list() == ["1", "2"]
    assert typed["stage"].to_list() == ["Onboarding", None]
    assert typed["arr"].to_list() == ["1,5", "7"]  # a decimal comma is text, never 15


def test_trailing_blank_lines_are_ignored(tmp_path: Path) -> None:
    path = write(tmp_path / "c.csv", "customer_id,stage\r\n1,Onboarding\r\n2,\r\n\r\n\r\n")
    assert read_customers(path, RULES).typed["customer_id"].to_list() == ["1", "2"]


def test_duplicate_headers_are_an_error(tmp_path: Path) -> None:
    text = problems(write(tmp_path / "c.csv", "customer_id,arr,arr\n1,2,3\n"))
    assert "c.csv:1" in text and "duplicate column 'arr' (columns 2 and 3)" in text


def test_nul_bytes_are_an_error_naming_the_line(tmp_path: Path) -> None:
    text = problems(write(tmp_path / "c.csv", b"customer_id,stage\n1,Onboarding\n2,On\x00b\n"))
    assert "c.csv:3" in text and "NUL bytes (first on line 3)" in text


def test_utf16_is_an_error_with_a_hint_or_read_with_encoding(tmp_path: Path) -> None:
    path = write(tmp_path / "c.csv", "customer_id,name\n1,Zoë\n".encode("utf-16"))
    text = problems(path)
    assert "UTF-16" in text and "--encoding utf-16" in text
    typed = read_customers(path, RULES, encoding="utf-16").typed
    assert typed["name"].to_list() == ["Zoë"]


# -- encodings ----------------------------------------------------------------------------


def test_cp1252_bytes_name_the_line_and_suggest_the_encoding(tmp_path: Path) -> None:
    path = write(tmp_path / "c.csv", "customer_id,name\n1,Ann\n2,Café – Paris\n".encode("cp1252"))
    text = problems(path)
    assert "c.csv:3" in text and "not UTF-8" in text and "--encoding cp1252" in text
    customers = read_customers(path, RULES, encoding="cp1252")
    assert customers.raw["name"].to_list() == ["Ann", "Café – Paris"]
    assert customers.path == path  # messages and outputs name the user's file


def test_header_not_utf8_suggests_the_encoding(tmp_path: Path) -> None:
    path = write(tmp_path / "c.csv", "customer_id,Straße\n1,x\n".encode("latin-1"))
    assert "--encoding cp1252" in problems(path)
    assert read_customers(path, RULES, encoding="latin-1").raw.columns[1] == "Straße"


def test_bytes_not_in_the_given_encoding_name_the_line(tmp_path: Path) -> None:
    path = write(tmp_path / "c.csv", b"customer_id,name\n1,a\n2,\x81\n")
    text = problems(path, encoding="cp1252")
    assert "c.csv:3" in text and "byte 0x81 is not cp1252 text" in text


def test_usage_in_cp1252_gzipped_is_transcoded(tmp_path: Path) -> None:
    rows = "".join(f"c{i},2026-01-0{1 + i % 9},Ré{i}\n" for i in range(50))
    path = tmp_path / "u.csv.gz"
    with gzip.open(path, "wb") as fh:
        fh.write(("customer_id,timestamp,event\n" + rows).encode("cp1252"))
    with pytest.raises(DataError, match="not UTF-8"):
        scan_usage([path], RULES, pl.String)
    usage = scan_usage([path], RULES, pl.String, encoding="cp1252")
    frame = usage.frame.collect()
    assert frame.height == 50 and frame["event"][0] == "Ré0"
    assert usage.paths == [path]


# -- rows that do not fit the header ---------------------------------------------------------


def test_short_and_long_rows_name_lines_and_field_counts(tmp_path: Path) -> None:
    path = write(
        tmp_path / "c.csv",
        'customer_id,name,arr\n1,"Acme, Inc.",3\n2,Globex\n3,Initech,4,extra\n4,x,5\n5,y\n',
    )
    text = problems(path)
    assert "2 row(s) have fewer fields than the header's 3: line 3 has 2, line 6 has 2" in text
    assert "1 row(s) have more fields than the header's 3: line 4 has 4" in text
    assert "c.csv:3" in text and "c.csv:4" in text


def test_quoted_line_breaks_are_fine(tmp_path: Path) -> None:
    path = write(tmp_path / "c.csv", 'customer_id,note,arr\n1,"two\nlines, here",3\n2,x,4\n')
    assert read_customers(path, RULES).raw["note"].to_list() == ["two\nlines, here", "x"]


def test_file_cut_mid_row_names_the_last_line(tmp_path: Path) -> None:
    text = problems(write(tmp_path / "c.csv", "customer_id,name,arr\n1,a,3\n2,Glo"))
    assert "c.csv:3" in text and "ends in the middle of a row: line 3 has 2 of the 3" in text


def test_file_cut_inside_a_quote_names_the_line_it_opened(tmp_path: Path) -> None:
    text = problems(write(tmp_path / "c.csv", 'customer_id,name,arr\n1,a,3\n2,"Glob\nex'))
    assert "c.csv:3" in text and "ends inside a quoted field that starts on line 3" in text


def test_usage_with_a_short_row(tmp_path: Path) -> None:
    path = write(tmp_path / "u.csv", "customer_id,timestamp,event\nc1,2026-01-01,login\nc2\n")
    with pytest.raises(DataError, match="line 3 has 1"):
        scan_usage([path], RULES, pl.String)
