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
from test_inputs import RULES, write

from lifecycle_cli import DataError, parse_rules
from lifecycle_cli.inputs.customers import read_customers
from lifecycle_cli.inputs.usage import scan_usage


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


def test_a_quote_inside_an_unquoted_value_names_line_column_and_the_fix(tmp_path: Path) -> None:
    path = write(tmp_path / "c.csv", 'customer_id,name,arr\n1,a,3\n2,27" Monitors Ltd,4\n3,b,5\n')
    text = problems(path)
    assert "c.csv:3, column 'name': 1 value(s) have a double quote (\") inside but are not in " \
           "quotes" in text
    assert '27" Monitors Ltd' in text and '"27"" Monitors Ltd"' in text
    assert "CSV malformed" not in text


def test_balanced_quotes_inside_an_unquoted_value_are_read_as_they_are(tmp_path: Path) -> None:
    path = write(tmp_path / "c.csv", 'customer_id,name\n1,The "Best" Shop\n2,"a ""b"""\n')
    assert read_customers(path, RULES).raw["name"].to_list() == ['The "Best" Shop', 'a "b"']


def test_an_unclosed_quote_names_the_line_where_it_opens(tmp_path: Path) -> None:
    path = write(tmp_path / "c.csv",
                 'customer_id,name,arr\n1,"Acme,3\n2,"Globex",4\n3,Initech,5\n')
    text = problems(path)
    assert "c.csv:2: a quote opened on line 2 closes only on line 3" in text
    assert "Error tokenizing" not in text and "expected after" not in text


def test_text_after_a_closing_quote_says_how_to_quote_it(tmp_path: Path) -> None:
    text = problems(write(tmp_path / "c.csv", 'customer_id,name\n1,"Acme" Inc\n'))
    assert "c.csv:2: line 2 has a value in quotes followed by more text" in text
    assert '"""Acme"" Inc"' in text


def test_usage_with_a_stray_quote_is_an_error_not_a_crash(tmp_path: Path) -> None:
    path = write(tmp_path / "u.csv",
                 'customer_id,timestamp,event\nc1,2026-01-01,log"in\nc2,2026-01-02,x\n')
    with pytest.raises(DataError, match="u.csv:2, column 'event'"):
        scan_usage([path], RULES, pl.String)


def test_usage_with_a_short_row(tmp_path: Path) -> None:
    path = write(tmp_path / "u.csv", "customer_id,timestamp,event\nc1,2026-01-01,login\nc2\n")
    with pytest.raises(DataError, match="line 3 has 1"):
        scan_usage([path], RULES, pl.String)


# -- dates, N/A, blanks -------------------------------------------------------------------


def rules_with(extra: str) -> object:
    return parse_rules(f"version: 1\n{extra}stages: [{{name: Onboarding}}]\n"
                       "initial_stage: Onboarding\n")


def test_ambiguous_dates_are_an_error_listing_values_and_column(tmp_path: Path) -> None:
    path = write(
        tmp_path / "c.csv",
        "customer_id,stage,stage_entered_at\n1,Onboarding,03/04/2024\n2,Onboarding,01/01/2024\n"
        "3,Onboarding,05/06/2024\n",
    )
    text = problems(path)
    assert "column 'stage_entered_at'" in text and "c.csv:2" in text
    assert "day first or month first: line 2: '03/04/2024', line 4: '05/06/2024'" in text
    assert 'date_format: "%d/%m/%Y"' in text
    assert "not dates" not in text  # one clear message, not two
    # any date-like column, not only stage_entered_at
    other = write(tmp_path / "o.csv", "customer_id,renewal_date\n1,03/04/2024\n2,04/03/2024\n")
    assert "column 'renewal_date'" in problems(other)


def test_dates_that_fit_one_reading_are_read_so_with_a_warning(tmp_path: Path) -> None:
    path = write(
        tmp_path / "c.csv",
        "customer_id,stage,stage_entered_at,renewal_date\n"
        "1,Onboarding,25/12/2024,12/25/2026\n2,Onboarding,03/04/2024,04/03/2027\n",
    )
    customers = read_customers(path, RULES)
    typed = customers.typed
    assert typed["stage_entered_at"].to_list() == [dt.date(2024, 12, 25), dt.date(2024, 4, 3)]
    assert typed["renewal_date"].to_list() == [dt.date(2026, 12, 25), dt.date(2027, 4, 3)]
    assert any("'renewal_date': dates read as MM/DD/YYYY" in w for w in customers.warnings)
    assert customers.raw["renewal_date"].to_list() == ["12/25/2026", "04/03/2027"]


def test_date_format_in_the_rules_settles_ambiguous_dates(tmp_path: Path) -> None:
    rules = rules_with('date_format: "%d.%m.%Y"\n')
    path = write(
        tmp_path / "c.csv",
        "customer_id,stage,stage_entered_at,renewal_date\n"
        "1,Onboarding,03.04.2024,01.02.2027\n2,Onboarding,2024-05-06,\n",
    )
    typed = read_customers(path, rules).typed
    assert typed["stage_entered_at"].to_list() == [dt.date(2024, 4, 3), dt.date(2024, 5, 6)]
    assert typed["renewal_date"].to_list() == [dt.date(2027, 2, 1), None]


def test_date_format_must_be_a_date_format() -> None:
    with pytest.raises(Exception, match="not a date format with day, month and year"):
        rules_with('date_format: "%Y"\n')


def test_excel_serial_days_in_stage_entered_at(tmp_path: Path) -> None:
    path = write(
        tmp_path / "c.csv",
        "customer_id,stage,stage_entered_at\n1,Onboarding,45234\n2,Onboarding,2024-01-05\n",
    )
    customers = read_customers(path, RULES)
    assert customers.typed["stage_entered_at"].to_list() == [
        dt.date(2023, 11, 4), dt.date(2024, 1, 5)]
    assert any("Excel serial day numbers" in w and "45234 = 2023-11-04" in w
               for w in customers.warnings)
    # out of any plausible range: still an error
    bad = write(tmp_path / "b.csv", "customer_id,stage,stage_entered_at\n1,Onboarding,123\n")
    assert "line 2: '123'" in problems(bad)


def test_blank_numbers_are_null(tmp_path: Path) -> None:
    path = write(tmp_path / "c.csv", "customer_id,arr,score\n1,100,\n2,, \n3,7,2.5\n")
    typed = read_customers(path, RULES).typed
    assert typed["arr"].dtype == pl.Int64 and typed["arr"].to_list() == [100, None, 7]
    assert typed["score"].to_list() == [None, None, 2.5]


def test_null_markers_in_typed_columns_are_null_and_kept_in_the_output(tmp_path: Path) -> None:
    path = write(
        tmp_path / "c.csv",
        "customer_id,arr,renewal_date,region,stage_entered_at\n"
        "1,N/A,2027-01-01,NA,n/a\n2,#N/A,null,EU,2024-01-02\n3,5.5,-,US,\n4,None,NULL,na,\n",
    )
    customers = read_customers(path, RULES)
    typed = customers.typed
    assert typed["arr"].dtype == pl.Float64 and typed["arr"].to_list() == [None, None, 5.5, None]
    assert typed["renewal_date"].to_list() == [dt.date(2027, 1, 1), None, None, None]
    assert typed["region"].to_list() == ["NA", "EU", "US", "na"]  # text keeps its values
    assert typed["stage_entered_at"].to_list() == [None, dt.date(2024, 1, 2), None, None]
    assert customers.raw["arr"].to_list() == ["N/A", "#N/A", "5.5", "None"]
    warnings = "\n".join(customers.warnings)
    assert "column 'arr': 3 value(s) such as 'N/A' read as empty" in warnings
    assert "column 'renewal_date': 3 value(s)" in warnings


def test_a_column_of_only_null_markers_stays_text(tmp_path: Path) -> None:
    path = write(tmp_path / "c.csv", "customer_id,reason\n1,None\n2,none\n")
    assert read_customers(path, RULES).typed["reason"].to_list() == ["None", "none"]


# -- the real command -----------------------------------------------------------------------

CLI_RULES = """\
version: 1
columns: {customers: {customer_id: "Account ID"}}
stages: [{name: Onboarding}, {name: Launched}]
initial_stage: Onboarding
"""

BAD_EXPORTS = {
    "short_row": (b"Account ID,name,arr\n1,a,3\n2,b\n", "line 3 has 2"),
    "long_row": (b"Account ID,name,arr\n1,a,3\n2,Acme, Inc.,4\n", "line 3 has 4"),
    "cut_mid_row": (b"Account ID,name,arr\n1,a,3\n2,b", "ends in the middle of a row: line 3"),
    "cut_in_quote": (b'Account ID,name,arr\n1,"a\n', "quoted field that starts on line 2"),
    "unclosed_quote": (b'Account ID,name,arr\n1,"a,3\n2,"b",4\n', "quote opened on line 2"),
    "stray_quote": (b'Account ID,name,arr\n1,a,3\n2,b"c,4\n', 'double quote (") inside'),
    "cp1252": ("Account ID,name\n1,a\n2,Café\n".encode("cp1252"), "--encoding cp1252"),
    "utf16": ("Account ID,name\n1,a\n".encode("utf-16"), "--encoding utf-16"),
    "nul": (b"Account ID,name\n1,a\x00\n", "NUL bytes"),
    "duplicate_header": (b"Account ID,a,a\n1,2,3\n", "duplicate column 'a'"),
    "ambiguous_dates": (b"Account ID,d\n1,03/04/2024\n2,04/03/2024\n", "day first or month"),
}


@pytest.mark.parametrize("case", sorted(BAD_EXPORTS))
@pytest.mark.parametrize("command", ["run", "validate"])
def test_messy_exports_exit_1_with_file_line_and_hint(
    tmp_path: Path, case: str, command: str
) -> None:
    content, message = BAD_EXPORTS[case]
    inputs = tmp_path / "in"
    inputs.mkdir()
    write(inputs / "customers.csv", content)
    write(inputs / "rules.yaml", CLI_RULES)
    before = snapshot(inputs)
    args = ["--customers", inputs / "customers.csv", "--rules", inputs / "rules.yaml"]
    if command == "run":
        args += ["--as-of", "2026-11-01", "--out", tmp_path / "out"]
    result = lifecycle(command, *args)
    assert result.returncode == 1, result.stderr
    assert message in result.stderr
    assert "customers.csv" in result.stderr and "hint:" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "out").exists()
    assert snapshot(inputs) == before


def test_encoding_option_reads_cp1252_exports(tmp_path: Path) -> None:
    write(tmp_path / "rules.yaml", CLI_RULES)
    write(tmp_path / "c.csv", "Account ID,name\n1,Café – Zoë\n".encode("cp1252"))
    write(tmp_path / "u.csv", "customer_id,timestamp,event\n1,2026-10-01,connexión\n"
          .encode("cp1252"))
    common = ["--customers", tmp_path / "c.csv", "--usage", tmp_path / "u.csv",
              "--rules", tmp_path / "rules.yaml", "--as-of", "2026-11-01", "--encoding"]
    result = lifecycle("run", *common, "cp1252", "--stdout", "customers")
    assert result.returncode == 0, result.stderr
    assert "Café – Zoë" in result.stdout
    assert lifecycle("validate", *common[:-3], "--encoding", "latin-1").returncode == 0
    explained = lifecycle("explain", "1", *common, "cp1252")
    assert explained.returncode == 0, explained.stderr
    unknown = lifecycle("run", *common, "klingon", "--out", tmp_path / "out")
    assert unknown.returncode == 2 and "unknown encoding 'klingon'" in unknown.stderr
    assert not (tmp_path / "out").exists()


def test_usage_that_matches_no_customer_warns(tmp_path: Path) -> None:
    from lifecycle_cli import run

    customers = write(tmp_path / "c.csv", "customer_id\nA-1\nA-2\n")
    usage = write(tmp_path / "u.csv", "customer_id,timestamp\nS-1,2026-01-01\nS-2,2026-01-02\n")
    result = run(RULES, customers, [usage], dt.date(2026, 2, 1))
    assert any("none of the 2 usage rows belongs to a customer" in w for w in result.warnings)


def test_stage_dates_in_another_format_after_the_sampled_rows_are_still_read(
        tmp_path: Path) -> None:
    """The format of `stage_entered_at` comes from a sample of the first rows; a value
    further down in another format (a datetime, an Excel serial day, a day-first date)
    is read as it would be without the sample, and a wrong one still is an error."""
    rows = "".join(f"{i},Onboarding,2024-01-05\n" for i in range(3_000))
    late = "3000,Onboarding,2024-02-06 10:30\n3001,Onboarding,45234\n3002,Onboarding,\n"
    path = write(tmp_path / "c.csv", "customer_id,stage,stage_entered_at\n" + rows + late)
    customers = read_customers(path, RULES)
    assert customers.typed["stage_entered_at"].tail(3).to_list() == [
        dt.date(2024, 2, 6), dt.date(2023, 11, 4), None]
    bad = write(tmp_path / "b.csv", "customer_id,stage,stage_entered_at\n" + rows
                + "3000,Onboarding,2024-13-45\n")
    assert "line 3002: '2024-13-45'" in problems(bad)
