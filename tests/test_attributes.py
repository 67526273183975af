"""Attribute tables: per-customer tables joined by id into the customers the rules see."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import polars as pl
import pytest
import xlsxwriter
from cli_util import lifecycle
from conftest import write_csv

from lifecycle_cli import DataError, load, parse_rules, run
from lifecycle_cli.day.load import Tables

AS_OF = dt.date(2026, 11, 1)
RULES = """\
version: 1
stages: [{name: New}, {name: Promoter}, {name: Detractor}]
initial_stage: New
attributes:
  nps:
    columns: {customer_id: Account, score: "NPS score"}
  owners:
    columns: {customer_id: account}
transitions:
  - {id: promoter, from: New, to: Promoter, when: "score >= 9"}
  - {id: detractor, from: New, to: Detractor, when: "score <= 6"}
ctas:
  - {id: thanks, name: Thank them, on: enter, stage: Promoter, owner: csm, due_days: 3}
"""


def customers(tmp_path: Path, **extra: list[object]) -> Path:
    rows = {"customer_id": ["C1", "C2", "C3"], "name": ["Acme", "Globex", "Initech"], **extra}
    return write_csv(tmp_path / "customers.csv",
                     [dict(zip(rows, values, strict=True)) for values in zip(*rows.values(),
                                                                             strict=True)])


def nps(tmp_path: Path, text: str = "Account,NPS score,comment\nC1,10,great\nC2,3,slow\n"
        ) -> Path:
    path = tmp_path / "nps.csv"
    path.write_text(text)
    return path


def owners(tmp_path: Path, text: str = "account,csm\nC1,Ann\nC2,Bob\nC3,Cy\n") -> Path:
    path = tmp_path / "owners.csv"
    path.write_text(text)
    return path


def tables(tmp_path: Path) -> Tables:
    return Tables(attributes={"nps": nps(tmp_path), "owners": owners(tmp_path)})


def test_columns_join_the_customers_the_rules_see(tmp_path: Path) -> None:
    rules = parse_rules(RULES)
    result = run(rules, customers(tmp_path), [], AS_OF, tables=tables(tmp_path))
    final = result.day.final
    assert final.select("customer_id", "score", "comment", "csm").rows() == [
        ("C1", 10, "great", "Ann"), ("C2", 3, "slow", "Bob"),
        ("C3", None, None, "Cy")]  # a customer the table lacks gets NULLs
    assert result.transitions.filter(pl.col("hop") > 0).select(
        "customer_id", "rule_id", "reason").rows() == [("C1", "promoter", "score=10"),
                                                         ("C2", "detractor", "score=3")]
    # the CTA's owner comes from the owner sheet
    assert result.ctas.ctas.select("customer_id", "owner").rows() == [("C1", "Ann")]
    # the customers output keeps the export's own columns only (then the computed ones)
    assert result.customers.columns[:4] == ["customer_id", "name", "stage", "stage_entered_at"]
    assert "score" not in result.customers.columns and "csm" not in result.customers.columns


def test_a_column_in_both_tables_needs_wins(tmp_path: Path) -> None:
    rules = parse_rules(RULES, file="rules.yaml")
    export = customers(tmp_path, csm=["Old1", "Old2", "Old3"], score=[1, 1, 1])
    with pytest.raises(DataError) as info:
        load(rules, export, tables=tables(tmp_path))
    messages = sorted(p.message for p in info.value.problems)
    assert messages == [
        f"the column 'csm' is in both the customers export and the attribute table 'owners' "
        f"({tmp_path / 'owners.csv'})",
        f"the column 'score' is in both the customers export and the attribute table 'nps' "
        f"({tmp_path / 'nps.csv'})"]
    problem = next(p for p in info.value.problems if p.column == "csm")
    assert problem.file == "rules.yaml" and problem.line == 7
    assert problem.hint is not None and "wins: {csm: attributes}" in problem.hint
    # say which wins: the owner sheet for csm, the export for score
    said = parse_rules(RULES.replace("columns: {customer_id: account}",
                                     "columns: {customer_id: account}\n    wins: attributes")
                       .replace('score: "NPS score"}', 'score: "NPS score"}\n    wins: {score: '
                                'customers}'))
    loaded = load(said, export, tables=tables(tmp_path))
    assert loaded.typed.select("csm", "score").rows() == [("Ann", 1), ("Bob", 1), ("Cy", 1)]
    assert loaded.customers.attribute_columns == {"comment": "nps", "csm": "owners"}


def test_two_tables_with_one_column_is_an_error(tmp_path: Path) -> None:
    rules = parse_rules(RULES)
    with pytest.raises(DataError, match="the attribute tables 'nps' and 'owners' both have "
                                        "the column 'comment'"):
        load(rules, customers(tmp_path), tables=Tables(attributes={
            "nps": nps(tmp_path), "owners": owners(tmp_path, "account,csm,comment\nC1,A,x\n")}))


def test_ids_twice_are_an_error_and_strangers_a_warning(tmp_path: Path) -> None:
    rules = parse_rules(RULES)
    twice = Tables(attributes={"nps": nps(tmp_path, "Account,NPS score\nC1,9\nC2,5\nC1,3\n")})
    with pytest.raises(DataError) as info:
        load(rules, customers(tmp_path), tables=twice)
    [problem] = info.value.problems
    assert problem.line == 2 and problem.column == "Account"
    assert "lists 1 customer id(s) more than once: 'C1' on line 2, line 4" in problem.message
    strangers = Tables(attributes={"nps": nps(tmp_path, "Account,NPS score\nC1,9\nC7,5\n,4\n")})
    loaded = load(rules, customers(tmp_path), tables=strangers)
    assert any("1 id(s) of the attribute table 'nps'" in w and "'C7' (line 3)" in w
               for w in loaded.warnings)
    assert any("1 row(s) without a customer id (line 4)" in w for w in loaded.warnings)
    assert loaded.typed["score"].to_list() == [9, None, None]


def test_a_table_without_the_id_column_says_how_to_map_it(tmp_path: Path) -> None:
    rules = parse_rules(RULES)
    with pytest.raises(DataError) as info:
        load(rules, customers(tmp_path), tables=Tables(attributes={
            "owners": owners(tmp_path, "acount,csm\nC1,Ann\n")}))
    [problem] = info.value.problems
    assert problem.message == "the attribute table 'owners' has no customer id column 'account'"
    assert problem.hint is not None and "did you mean 'acount'?" in problem.hint


def test_an_owner_sheet_in_a_workbook_with_a_title(tmp_path: Path) -> None:
    book = tmp_path / "owners.xlsx"
    workbook = xlsxwriter.Workbook(book)
    workbook.add_worksheet("About").write(0, 0, "Owner assignments, Q4")
    sheet = workbook.add_worksheet("Owners")
    sheet.write(0, 0, "Owner assignments")
    sheet.write(1, 0, "as of 2026-10-01")
    sheet.write_row(3, 0, ["account", "csm", "region"])
    sheet.write_row(4, 0, ["C2", "Bob", "EMEA"])
    sheet.write_row(5, 0, ["C1", "Ann", "NA"])
    workbook.close()
    rules = parse_rules(RULES.replace("columns: {customer_id: account}",
                                      "columns: {customer_id: account}\n    sheet: Owners"))
    loaded = load(rules, customers(tmp_path), tables=Tables(attributes={"owners": book}))
    assert loaded.typed.select("csm", "region").rows() == [("Ann", "NA"), ("Bob", "EMEA"),
                                                            (None, None)]


def test_the_commands_take_attribute_tables(tmp_path: Path) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text(RULES + "compliance: {owner_column: csm}\n")
    export = customers(tmp_path, arr=[100, 200, 300])
    given = ["--attributes", f"nps={nps(tmp_path)}", "--attributes",
             f"owners={owners(tmp_path)}"]
    state = tmp_path / "state"
    proc = lifecycle("run", "--rules", rules, "--customers", export, *given, "--as-of",
                     "2026-11-01", "--state", state, "--out", tmp_path / "out")
    assert proc.returncode == 0, proc.stderr
    # the report over the state takes its owners from the owner sheet
    proc = lifecycle("report", "--rules", rules, "--state", state, "--customers", export,
                     *given, "--csv", tmp_path / "report", "--quiet")
    assert proc.returncode == 0, proc.stderr
    ctas = pl.read_csv(tmp_path / "report" / "ctas.csv")
    assert ctas.select("owner", "created").rows() == [("Ann", 1)]
    proc = lifecycle("check", "--rules", rules, "--customers", export, *given, "--as-of",
                     "2026-11-01", "--stdout", "--fail-on", "none")
    assert proc.returncode == 0, proc.stderr
    assert "no_owner" not in proc.stdout
    proc = lifecycle("explain", "C2", "--rules", rules, "--customers", export, *given,
                     "--as-of", "2026-11-01")
    assert proc.returncode == 0 and "detractor" in proc.stdout
    proc = lifecycle("validate", "--rules", rules, "--customers", export, "--attributes",
                     f"owner={owners(tmp_path)}")
    assert proc.returncode == 1  # validate reports it with the rest
    assert "the rules declare no attribute table 'owner'" in proc.stderr
    assert "did you mean 'owners'?" in proc.stderr
