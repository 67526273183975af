"""The input formats (`lifecycle_cli.inputs.formats`): a format is one registration, and
the rest of the reading follows it."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from pathlib import Path

import polars as pl
import pytest
from cli_util import ROOT

from lifecycle_cli import DataError, load, parse_rules, run_day
from lifecycle_cli.inputs import formats
from lifecycle_cli.inputs.formats import FORMATS, Format, format_of, register, unregister

RULES = parse_rules("""
version: 1
stages: [{name: New}, {name: Active}]
initial_stage: New
metrics:
  logins: {agg: count, where: "event = 'login'"}
transitions:
  - {id: active, from: New, to: Active, when: "logins >= 2"}
""")


@pytest.fixture
def json_lines() -> Iterator[Format]:
    """A test-only format: JSON lines."""
    fmt = register(Format(
        "JSON lines", (".jsonl",),
        read=lambda path, _: pl.read_ndjson(path).cast(pl.String),
        scan=lambda path, _, text: pl.scan_ndjson(path).with_columns(
            pl.col(c).cast(pl.String) for c in text),
    ))
    yield fmt
    unregister(fmt.name)


def test_a_registered_format_reads_customers_and_usage(tmp_path: Path, json_lines: Format
                                                       ) -> None:
    customers = tmp_path / "customers.JSONL"  # suffixes ignore case
    customers.write_text('{"customer_id": "007", "plan": "Pro"}\n{"customer_id": "008"}\n')
    usage = tmp_path / "usage"
    usage.mkdir()
    (usage / "part-1.jsonl").write_text(
        '{"customer_id": "007", "timestamp": "2026-11-01 09:00:00", "event": "login"}\n'
        '{"customer_id": "007", "timestamp": "2026-11-01 10:00:00", "event": "login"}\n')
    assert format_of(customers) is json_lines
    day = run_day(RULES, load(RULES, customers, [usage]), dt.date(2026, 11, 1))
    assert day.customers.select("customer_id", "stage").rows() == [("007", "Active"),
                                                                  ("008", "New")]


def test_an_unknown_suffix_names_every_registered_one(tmp_path: Path, json_lines: Format
                                                      ) -> None:
    odd = tmp_path / "customers.json"
    odd.write_text("{}")
    with pytest.raises(DataError, match="unknown file type") as info:
        load(RULES, odd)
    assert ".jsonl" in str(info.value) and ".parquet" in str(info.value)
    unregister(json_lines.name)
    assert format_of(tmp_path / "x.jsonl") is None


def test_two_formats_cannot_claim_one_suffix() -> None:
    with pytest.raises(ValueError, match="exists"):
        register(Format("Another CSV", (".csv",), formats.CSV.read, formats.CSV.scan))


def test_docs_list_every_format_with_its_suffixes() -> None:
    text = (ROOT / "docs" / "exports.md").read_text(encoding="utf-8")
    table = text[text.index("## File formats"):text.index("## Cases")]
    rows = {m[0]: set(re.findall(r"`(\.[a-z.]+)`", m[1]))
            for m in re.findall(r"^\| ([^|]+?) \| ([^|]+) \|", table, re.M)
            if m[0] not in ("format", "---")}
    assert rows == {f.name: set(f.suffixes) for f in FORMATS}
