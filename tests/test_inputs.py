"""Reading exports as they come: separators, BOMs, booleans, leading zeros, bad files."""

from __future__ import annotations

import datetime as dt
import gzip
from pathlib import Path

import polars as pl
import pytest

from lifecycle_cli import DataError, parse_rules
from lifecycle_cli.inputs.customers import read_customers
from lifecycle_cli.inputs.usage import scan_usage

RULES = parse_rules("""\
version: 1
stages: [{name: Onboarding}, {name: Launched}]
initial_stage: Onboarding
""")


def write(path: Path, text: str | bytes) -> Path:
    path.write_bytes(text.encode() if isinstance(text, str) else text)
    return path


@pytest.mark.parametrize("sep", [",", ";", "\t"])
def test_separators_and_bom(tmp_path: Path, sep: str) -> None:
    text = (
        sep.join(["customer_id", "stage", "active", "score"])
        + "\n"
        + sep.join(["00042", "Onboarding", "TRUE", ""])
        + "\n"
        + sep.join(["7", "", "false", "3.5"])
        + "\n"
    )
    path = write(tmp_path / "c.csv", b"\xef\xbb\xbf" + text.encode())
    customers = read_customers(path, RULES)
    typed = customers.typed
    assert typed["customer_id"].to_list() == ["00042", "7"]  # leading zeros kept, text
    assert typed["active"].dtype == pl.Boolean and typed["active"].to_list() == [True, False]
    assert typed["score"].dtype == pl.Float64 and typed["score"].to_list() == [None, 3.5]
    assert typed["stage"].to_list() == ["Onboarding", None]
    # the raw table keeps values exactly as written
    assert customers.raw.columns == ["customer_id", "stage", "active", "score"]
    assert customers.raw["active"].to_list() == ["TRUE", "false"]


def test_types_are_inferred_only_when_every_value_agrees(tmp_path: Path) -> None:
    path = write(
        tmp_path / "c.csv",
        "customer_id,zip,n,d,dt,mixed,flag\n"
        "1,00123,5,2026-01-02,2026-01-02 10:00:00,3,True\n"
        "2,04567,,2026-02-03,2026-01-02T11:30:00,x,False\n\n\n",
    )
    typed = read_customers(path, RULES).typed
    assert typed.height == 2  # trailing blank lines ignored
    assert typed["zip"].dtype == pl.String  # leading zeros: stays text
    assert typed["n"].dtype == pl.Int64 and typed["n"].to_list() == [5, None]
    assert typed["d"].dtype == pl.Date
    assert typed["dt"].to_list() == [dt.datetime(2026, 1, 2, 10), dt.datetime(2026, 1, 2, 11, 30)]
    assert typed["mixed"].dtype == pl.String
    assert typed["flag"].to_list() == [True, False]


def test_tsv_gzip_and_parquet(tmp_path: Path) -> None:
    frame = pl.DataFrame({"customer_id": ["a", "b"], "stage": ["Onboarding", None]})
    with gzip.open(tmp_path / "c.csv.gz", "wb") as fh:
        fh.write(b"customer_id,stage\na,Onboarding\nb,\n")
    write(tmp_path / "c.tsv", "customer_id\tstage\na\tOnboarding\nb\t\n")
    frame.write_parquet(tmp_path / "c.parquet")
    for name in ("c.csv.gz", "c.tsv", "c.parquet"):
        typed = read_customers(tmp_path / name, RULES).typed
        assert typed["customer_id"].to_list() == ["a", "b"], name
        assert typed["stage"].to_list() == ["Onboarding", None], name


def test_xlsx_customers(tmp_path: Path) -> None:
    frame = pl.DataFrame(
        {"customer_id": ["001", "002"], "stage": ["Launched", "Onboarding"], "arr": [100, 200]}
    )
    frame.write_excel(tmp_path / "c.xlsx")
    typed = read_customers(tmp_path / "c.xlsx", RULES).typed
    assert typed["customer_id"].to_list() == ["001", "002"]
    assert typed["stage"].to_list() == ["Launched", "Onboarding"]


def test_column_mapping_renames_for_the_rules(tmp_path: Path) -> None:
    rules = parse_rules("""\
version: 1
columns: {customers: {customer_id: "Account ID", stage: "Lifecycle Stage"}}
stages: [{name: Onboarding}]
initial_stage: Onboarding
""")
    path = write(tmp_path / "c.csv", "Account ID,Lifecycle Stage,stage\nA1,Onboarding,junk\n")
    customers = read_customers(path, rules)
    assert customers.typed["customer_id"].to_list() == ["A1"]
    assert customers.typed["stage"].to_list() == ["Onboarding"]  # the mapped column wins
    assert customers.external["stage"] == "Lifecycle Stage"


def problems(path: Path, rules=RULES) -> str:
    with pytest.raises(DataError) as info:
        read_customers(path, rules)
    return "\n".join(p.render() for p in info.value.problems)


def test_duplicate_and_empty_ids_name_the_lines(tmp_path: Path) -> None:
    text = problems(write(tmp_path / "c.csv", "customer_id\nA\nB\nA\n \n"))
    assert "'A' on line 2, line 4" in text
    assert "empty id: line 5" in text


def test_unknown_stage_names_value_count_and_closest(tmp_path: Path) -> None:
    text = problems(write(tmp_path / "c.csv", "customer_id,stage\n1,Onbording\n2,Onbording\n"))
    assert "unknown stage 'Onbording' on 2 customer(s), first on line 2" in text
    assert "did you mean 'Onboarding'?" in text


def test_unparseable_dates_list_values_and_lines(tmp_path: Path) -> None:
    text = problems(
        write(
            tmp_path / "c.csv",
            "customer_id,stage,stage_entered_at\n"
            "1,Onboarding,2026-01-01\n2,Onboarding,03/04/2024\n",
        )
    )
    assert "line 3: '03/04/2024'" in text
    assert "c.csv:3" in text


def test_missing_id_column(tmp_path: Path) -> None:
    text = problems(write(tmp_path / "c.csv", "Account ID,stage\n1,Onboarding\n"))
    assert "the required column 'customer_id' is missing" in text
    assert "'Account ID'" in text


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "the file is empty"),
        (b"customer_id,stage\n", "has a header but no customers"),
        (b"\xff\xfec\x00u\x00", "UTF-16"),
        (b"customer_id,a,a\n1,2,3\n", "duplicate column 'a'"),
        (b"customer_id,caf\xe9\n1,2\n", "not UTF-8"),
    ],
)
def test_unusable_files(tmp_path: Path, content: bytes, message: str) -> None:
    assert message in problems(write(tmp_path / "c.csv", content))


def test_missing_file_and_unknown_type(tmp_path: Path) -> None:
    assert "file not found" in problems(tmp_path / "nope.csv")
    assert "unknown file type '.json'" in problems(write(tmp_path / "c.json", "{}"))


def test_usage_from_folder_glob_and_files(tmp_path: Path) -> None:
    folder = tmp_path / "usage"
    folder.mkdir()
    for i in range(3):
        pl.DataFrame(
            {"customer_id": [f"c{i}"], "timestamp": [dt.datetime(2026, 1, i + 1)]}
        ).write_parquet(folder / f"part-{i}.parquet")
    write(tmp_path / "more.csv", "customer_id,timestamp\nc9,2026-01-09T10:00:00Z\nc8,\n")
    for specs, n in (
        ([folder], 3),
        ([str(folder / "*.parquet")], 3),
        ([folder, tmp_path / "more.csv"], 5),
    ):
        usage = scan_usage(specs, RULES, pl.String)
        frame = usage.frame.collect()
        assert frame.height == n
        assert frame.schema["timestamp"] == pl.Datetime("us")


def test_usage_text_timestamps_zones_and_bad_values(tmp_path: Path) -> None:
    rules = parse_rules(
        "version: 1\ntimezone: Europe/Berlin\nstages: [{name: A}]\ninitial_stage: A\n"
    )
    path = write(
        tmp_path / "u.csv", "customer_id,timestamp\n1,2026-01-01T23:30:00Z\n2,2026-01-01 23:30:00\n"
    )
    frame = scan_usage([path], rules, pl.String).frame.collect()
    # zoned timestamps are converted to the rules' zone; naive ones are taken as already in it
    assert frame["timestamp"].to_list() == [
        dt.datetime(2026, 1, 2, 0, 30),
        dt.datetime(2026, 1, 1, 23, 30),
    ]
    bad = write(tmp_path / "bad.csv", "customer_id,timestamp\n1,2026-01-01\n2,yesterday\n")
    with pytest.raises(DataError, match="line 3: 'yesterday'"):
        scan_usage([bad], rules, pl.String)


def test_usage_missing_required_column(tmp_path: Path) -> None:
    path = write(tmp_path / "u.csv", "account,event_time\n1,2026-01-01\n")
    with pytest.raises(DataError) as info:
        scan_usage([path], RULES, pl.String)
    text = "\n".join(p.render() for p in info.value.problems)
    assert "the required usage column 'customer_id' is missing" in text
    assert "the required usage column 'timestamp' is missing" in text
    assert "did you mean 'event_time'?" in text or "event_time" in text


def test_zoned_datetimes_in_customer_columns_are_read_in_the_rules_zone(tmp_path: Path) -> None:
    rules = parse_rules("version: 1\ntimezone: Europe/Berlin\nstages: [{name: A}]\n"
                        "initial_stage: A\n")
    path = write(tmp_path / "c.csv", "customer_id,last_contact\n1,2026-10-31T23:30:00Z\n")
    typed = read_customers(path, rules).typed
    assert typed["last_contact"].to_list() == [dt.datetime(2026, 11, 1, 0, 30)]


def test_a_plain_column_named_like_a_mapped_one_is_not_read_as_it(tmp_path: Path) -> None:
    rules = parse_rules("""\
version: 1
columns: {customers: {stage: "Lifecycle Stage"}}
stages: [{name: Onboarding}]
initial_stage: Onboarding
""")
    path = write(tmp_path / "c.csv", "customer_id,stage\n1,Junk\n")
    customers = read_customers(path, rules)  # 'stage' is an ordinary column here
    assert customers.typed["stage"].to_list() == [None]
    assert customers.raw["stage"].to_list() == ["Junk"]


def test_usage_timestamps_in_several_iso_formats_all_parse(tmp_path: Path) -> None:
    # the format is guessed from the first rows; a file that changes format later still reads
    lines = [f"c1,2026-01-01 10:00:{i % 60:02d}" for i in range(1_500)]
    lines += ["c2,2026-01-02", "c3,2026-01-03T04:05:06Z", "c4,"]
    path = write(tmp_path / "u.csv", "customer_id,timestamp\n" + "\n".join(lines) + "\n")
    frame = scan_usage([path], RULES, pl.String).frame.collect()
    assert frame["timestamp"].to_list()[-3:] == [
        dt.datetime(2026, 1, 2), dt.datetime(2026, 1, 3, 4, 5, 6), None]
    assert frame["timestamp"].null_count() == 1
