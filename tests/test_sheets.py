"""Excel as people make it: a sheet chosen by name, a title above the header; CSV title
lines."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from pathlib import Path

import polars as pl
import pytest
import xlsxwriter
from cli_util import lifecycle

from lifecycle_cli import DataError, load, parse_rules
from lifecycle_cli.day.load import Tables
from lifecycle_cli.inputs.customers import read_customers
from lifecycle_cli.metrics.compute import compute_metrics

HEAD = "version: 1\nstages: [{name: A}]\ninitial_stage: A\n"
RULES = parse_rules(HEAD + "columns: {customers: {customer_id: account_id}}\n")


def workbook(path: Path, sheets: dict[str, Sequence[tuple[int, int, Sequence[object]]]]
             ) -> Path:
    """A workbook: for each sheet, rows written at (row, column), 0-based."""
    book = xlsxwriter.Workbook(path)
    for name, rows in sheets.items():
        sheet = book.add_worksheet(name)
        for row, column, values in rows:
            sheet.write_row(row, column, list(values))
    book.close()
    return path


ACCOUNTS = [(3, 0, ["account_id", "name", "seats"]), (4, 0, ["A1", "Acme", 5]),
            (5, 0, ["A2", "Globex", 12])]
TITLE = [(0, 0, ["Accounts export"]), (1, 0, ["generated 2026-10-31"])]


def test_the_first_sheet_is_a_readme(tmp_path: Path) -> None:
    book = workbook(tmp_path / "crm.xlsx", {"README": [(0, 0, ["What is in here"])],
                                            "Accounts": TITLE + ACCOUNTS})
    with pytest.raises(DataError) as info:
        read_customers(book, RULES)
    [problem] = info.value.problems
    assert problem.message == ("the first sheet 'README' has no column 'account_id'; the "
                               "sheet 'Accounts' has it")
    assert problem.hint == "choose that sheet: --sheet 'Accounts' or customers: {sheet: " \
                           "'Accounts'}"
    # chosen on the command line, or in the rules (the command line wins)
    read = read_customers(book, RULES, sheet="Accounts")
    assert read.raw.columns == ["account_id", "name", "seats"]
    assert read.typed.select("customer_id", "seats").rows() == [("A1", 5), ("A2", 12)]
    in_rules = parse_rules(HEAD + "columns: {customers: {customer_id: account_id}}\n"
                                  "customers: {sheet: README}\n")
    assert read_customers(book, in_rules, sheet="Accounts").typed.height == 2


def test_a_sheet_that_is_missing_or_empty(tmp_path: Path) -> None:
    book = workbook(tmp_path / "crm.xlsx", {"Accounts": ACCOUNTS, "Notes": []})
    with pytest.raises(DataError) as info:
        read_customers(book, RULES, sheet="Acounts")
    [problem] = info.value.problems
    assert problem.message == "the workbook has no sheet 'Acounts'"
    assert problem.hint is not None and problem.hint.startswith("did you mean 'Accounts'?")
    assert "its sheets: 'Accounts', 'Notes'" in problem.hint
    with pytest.raises(DataError, match="the sheet 'Notes' is empty: expected a header row"):
        read_customers(book, RULES, sheet="Notes")
    header_only = workbook(tmp_path / "h.xlsx", {"Accounts": ACCOUNTS[:1]})
    with pytest.raises(DataError, match="the sheet 'Accounts' has a header but no customers"):
        read_customers(header_only, RULES, sheet="Accounts")


def test_a_header_below_a_title_is_found(tmp_path: Path) -> None:
    book = workbook(tmp_path / "crm.xlsx", {"Accounts": TITLE + ACCOUNTS})
    assert read_customers(book, RULES).raw.rows() == [("A1", "Acme", "5"),
                                                      ("A2", "Globex", "12")]


def test_header_row_counts_rows_as_the_spreadsheet_does(tmp_path: Path) -> None:
    # the sheet's first cell with a value is C3: the rows Polars sees begin there
    book = workbook(tmp_path / "crm.xlsx", {"S": [(2, 2, ["Title"]), (4, 2, ["id", "name"]),
                                                  (5, 2, ["A1", "x"]), (7, 2, ["A2", "y"])]})
    rules = parse_rules(HEAD + "columns: {customers: {customer_id: id}}\n"
                               "customers: {header_row: 5}\n")
    assert read_customers(book, rules).raw.rows() == [("A1", "x"), ("A2", "y")]
    blank = parse_rules(HEAD + "customers: {header_row: 4}\n")
    with pytest.raises(DataError, match=r"an empty row where its header should be \(row 4\)"):
        read_customers(book, blank)
    with pytest.raises(DataError, match="has no row 40"):
        read_customers(book, parse_rules(HEAD + "customers: {header_row: 40}\n"))


def test_a_header_cell_left_blank_names_the_column(tmp_path: Path) -> None:
    book = workbook(tmp_path / "crm.xlsx", {"S": [(0, 1, ["account_id", None, "name"]),
                                                  (1, 1, ["A1", "x", "y"])]})
    with pytest.raises(DataError, match="sheet 'S': column C has values but an empty header"):
        read_customers(book, RULES)


def test_a_csv_whose_first_line_is_a_title(tmp_path: Path) -> None:
    path = tmp_path / "accounts.csv"
    path.write_text("Accounts export 2026-10-31\n\naccount_id;name\nA1;Acme\nA2;Globex\nA1;x\n")
    with pytest.raises(DataError) as info:
        read_customers(path, RULES)
    [problem] = info.value.problems
    assert problem.line == 1
    assert problem.message == ("line 1 is not the header: the header (account_id ...) is on "
                               "line 3, below what looks like a title")
    assert problem.hint is not None and "customers: {header_row: 3}" in problem.hint
    rules = parse_rules(HEAD + "columns: {customers: {customer_id: account_id}}\n"
                               "customers: {header_row: 3}\n")
    # read from line 3 on; messages count the file's lines
    with pytest.raises(DataError) as info:
        read_customers(path, rules)
    [problem] = info.value.problems
    assert problem.line == 4
    assert "'A1' on line 4, line 6" in problem.message
    path.write_text("Accounts export 2026-10-31\n\naccount_id;name\nA1;Acme\nA2;Globex\n")
    assert read_customers(path, rules).raw.rows() == [("A1", "Acme"), ("A2", "Globex")]


def test_a_usage_source_and_a_lookup_in_workbooks(tmp_path: Path) -> None:
    customers = tmp_path / "accounts.csv"
    customers.write_text("account_id\nA1\nA2\n")
    usage = workbook(tmp_path / "usage.xlsx", {
        "About": [(0, 0, ["Feature usage export"])],
        "Usage": [(0, 0, ["Feature usage"]), (2, 0, ["subscription_id", "day", "n"]),
                  (3, 0, ["S1", "2026-10-30", 3]), (4, 0, ["S2", "2026-10-31", 4]),
                  (5, 0, ["S1", "2026-10-31", 5])]})
    subscriptions = workbook(tmp_path / "subs.xlsx", {"Subs": [
        (0, 0, ["Subscriptions"]), (1, 0, ["subscription_id", "account_id"]),
        (2, 0, ["S1", "A1"]), (3, 0, ["S2", "A2"])]})
    rules = parse_rules(HEAD + """\
columns: {customers: {customer_id: account_id}}
sources:
  usage: {columns: {timestamp: day}, customer_id: {via: subs}, sheet: Usage}
lookups:
  subs: {key: subscription_id, customer_id: account_id}
metrics:
  total: {agg: sum, column: n}
""")
    loaded = load(rules, customers, [usage], tables=Tables(lookups={"subs": subscriptions}))
    result = compute_metrics(rules, loaded.sources, loaded.typed.select("customer_id"),
                             dt.date(2026, 10, 31))
    assert result.values.rows() == [("A1", 8.0), ("A2", 4.0)]


def test_a_sheet_or_header_row_that_the_file_cannot_have(tmp_path: Path) -> None:
    path = tmp_path / "accounts.csv"
    path.write_text("account_id\nA1\n")
    with pytest.raises(DataError, match="a sheet \\('Accounts'\\) was chosen, but a CSV file "
                                        "has no sheets"):
        read_customers(path, RULES, sheet="Accounts")
    parquet = tmp_path / "accounts.parquet"
    pl.DataFrame({"account_id": ["A1"]}).write_parquet(parquet)
    with pytest.raises(DataError, match="header_row applies to CSV and Excel files, not to "
                                        "Parquet"):
        read_customers(parquet, parse_rules(HEAD + "customers: {header_row: 2}\n"))


def test_sheet_on_the_command_line(tmp_path: Path) -> None:
    book = workbook(tmp_path / "crm.xlsx", {"README": [(0, 0, ["What is in here"])],
                                            "Accounts": TITLE + ACCOUNTS})
    rules = tmp_path / "rules.yaml"
    rules.write_text(HEAD + "columns: {customers: {customer_id: account_id}}\n")
    proc = lifecycle("run", "--rules", rules, "--customers", book, "--dry-run")
    assert proc.returncode == 1 and "--sheet 'Accounts'" in proc.stderr
    proc = lifecycle("run", "--rules", rules, "--customers", book, "--sheet", "Accounts",
                     "--as-of", "2026-11-01", "--stdout", "customers")
    assert proc.returncode == 0, proc.stderr
    assert pl.read_csv(proc.stdout.encode())["account_id"].to_list() == ["A1", "A2"]
    proc = lifecycle("validate", "--rules", rules, "--sheet", "Accounts")
    assert proc.returncode == 2 and "--sheet needs --customers" in proc.stderr


def test_a_file_that_is_no_workbook(tmp_path: Path) -> None:
    path = tmp_path / "crm.xlsx"
    path.write_text("account_id\nA1\n")  # a CSV saved under the wrong name
    with pytest.raises(DataError, match="cannot read the workbook") as info:
        read_customers(path, RULES)
    assert info.value.problems[0].hint is not None
