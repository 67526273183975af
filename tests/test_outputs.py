"""Writing outputs: atomic, never over an input, byte-identical, inert in spreadsheets."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import polars as pl
import pytest

from lifecycle_cli import OutputError, write_tables
from lifecycle_cli.render.tables import write_csv

DANGEROUS = ["=1+1", "+1+1", "-2+3", "@SUM(A1)", "=cmd|' /C calc'!A0", "http://example.com"]


def tables() -> dict[str, pl.DataFrame]:
    return {
        "customers": pl.DataFrame(
            {
                "customer_id": ["001", "002", "003", "004", "005", "006"],
                "name": DANGEROUS,
                "arr": [1, 2, 3, None, 5, 6],
                "score": [1.5, None, 2.0, 3.25, 0.0, -1.0],
                "entered": [dt.date(2026, 1, 1)] * 5 + [None],
                "seen": [dt.datetime(2026, 1, 1, 10, 30)] * 6,
                "flag": [True, False, None, True, True, False],
            }
        ),
        "transitions": pl.DataFrame({"customer_id": ["001"], "rule_id": ["r"]}),
    }


def test_csv_is_iso_and_blank_for_null(tmp_path: Path) -> None:
    [customers, _] = write_tables(tables(), tmp_path, "csv")
    lines = customers.read_text().splitlines()
    assert lines[0] == "customer_id,name,arr,score,entered,seen,flag"
    assert lines[1] == "001,=1+1,1,1.5,2026-01-01,2026-01-01 10:30:00,true"
    assert lines[6].startswith("006,http://example.com,6,-1.0,,")


def test_same_tables_give_byte_identical_files(tmp_path: Path) -> None:
    for fmt in ("csv", "parquet", "xlsx"):
        first = [
            p.read_bytes()
            for p in write_tables(tables(), tmp_path / "a", fmt, created=dt.date(2026, 1, 1))
        ]
        second = [
            p.read_bytes()
            for p in write_tables(tables(), tmp_path / "b", fmt, created=dt.date(2026, 1, 1))
        ]
        assert first == second, fmt


def test_xlsx_has_a_sheet_per_table_typed_cells_and_no_formulas(tmp_path: Path) -> None:
    import openpyxl

    [path] = write_tables(tables(), tmp_path, "xlsx")
    assert path.name == "lifecycle.xlsx"
    book = openpyxl.load_workbook(path)
    assert book.sheetnames == ["customers", "transitions"]
    sheet = book["customers"]
    assert sheet.freeze_panes == "A2"
    [table] = sheet.tables.values()  # an Excel table: header filters on every column
    assert table.ref == "A1:G7" and table.autoFilter is not None
    names = [sheet.cell(row=r, column=2) for r in range(2, 8)]
    assert [c.value for c in names] == DANGEROUS
    assert all(c.data_type == "s" for c in names)  # text, never a formula
    assert all(c.hyperlink is None for c in names)
    assert sheet.cell(row=2, column=1).value == "001"  # ids stay text
    assert sheet.cell(row=2, column=3).value == 1
    assert sheet.cell(row=2, column=5).is_date


def test_nothing_lands_on_an_input(tmp_path: Path) -> None:
    source = tmp_path / "customers.csv"
    source.write_text("customer_id\n1\n")
    before = source.read_bytes()
    with pytest.raises(OutputError, match="would replace the input file"):
        write_tables(tables(), tmp_path, "csv", inputs=[source])
    assert source.read_bytes() == before
    assert not (tmp_path / "transitions.csv").exists()


def test_a_failed_write_leaves_the_old_outputs_and_no_temp_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_tables(tables(), tmp_path, "csv")
    old = {p.name: p.read_bytes() for p in tmp_path.iterdir()}

    def disk_full(*_args, **_kwargs):
        raise OSError(28, "No space left on device")

    changed = {"customers": tables()["customers"].head(1), "transitions": tables()["transitions"]}
    monkeypatch.setattr("lifecycle_cli.render.tables.write_csv", disk_full)
    with pytest.raises(OutputError, match="No space left on device"):
        write_tables(changed, tmp_path, "csv")
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == old


def test_all_files_are_renamed_only_after_all_are_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_tables(tables(), tmp_path, "csv")
    old = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    real = write_csv
    calls = []

    def second_fails(frame, target):
        calls.append(target)
        if len(calls) == 2:
            raise OSError(5, "Input/output error")
        real(frame, target)

    monkeypatch.setattr("lifecycle_cli.render.tables.write_csv", second_fails)
    with pytest.raises(OutputError):
        write_tables(
            {"customers": tables()["customers"].head(2), "transitions": tables()["transitions"]},
            tmp_path,
            "csv",
        )
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == old
    assert not [p for p in os.listdir(tmp_path) if ".tmp-" in p]


def test_unknown_format_and_folder_that_is_a_file(tmp_path: Path) -> None:
    with pytest.raises(OutputError, match="unknown format"):
        write_tables(tables(), tmp_path, "json")
    (tmp_path / "f").write_text("x")
    with pytest.raises(OutputError, match="not a folder"):
        write_tables(tables(), tmp_path / "f", "csv")
