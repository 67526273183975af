"""`lifecycle backtest`: the rules replayed over history, their predictions scored.

Hand-computed cases (tests/cases/backtest/*.yaml), the seam with a backfill (the same
stages every day, on random exports), two rules files side by side, the outputs (terminal,
CSV, HTML), the errors, and that no state folder is read or written.
"""

from __future__ import annotations

import datetime as dt
import math
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import polars as pl
import pytest
import yaml
from cli_util import RULES, lifecycle, snapshot
from conftest import examples, write_csv
from hypothesis import HealthCheck, given, settings
from test_seams import DAY0, exports, write_exports

from lifecycle_cli import StateView, backfill, load_rules, parse_rules
from lifecycle_cli.errors import DataError, RulesError
from lifecycle_cli.jobs.backtest import backtest
from lifecycle_cli.render.backtest import render_backtest_html

CASES = Path(__file__).parent / "cases" / "backtest"


def load_cases() -> list[Any]:
    return [pytest.param(case, id=case["name"])
            for path in sorted(CASES.glob("*.yaml"))
            for case in yaml.safe_load(path.read_text(encoding="utf-8"))]


def write_case(folder: Path, case: dict[str, Any]) -> dict[str, Path]:
    """The case's rules, customers, usage (at 10:00 on each day) and outcomes as files."""
    rules = folder / "rules.yaml"
    rules.write_text(case["rules"], encoding="utf-8")
    customers = write_csv(folder / "customers.csv", [{"customer_id": c}
                                                     for c in case["customers"]])
    usage = write_csv(folder / "usage.csv", [
        {"customer_id": c, "timestamp": dt.datetime.combine(d, dt.time(10)), "event": e}
        for c, d, e in case["usage"]], ["customer_id", "timestamp", "event"])
    outcomes = write_csv(folder / "outcomes.csv", [
        {"customer_id": c, "outcome": o, "date": d} for c, o, d in case["outcomes"]],
        ["customer_id", "outcome", "date"])
    return {"rules": rules, "customers": customers, "usage": usage, "outcomes": outcomes}


def same(value: Any, expected: Any) -> bool:
    if isinstance(expected, float) and value is not None:
        return math.isclose(value, expected, rel_tol=1e-9)
    return bool(value == expected)


@pytest.mark.parametrize("case", load_cases())
def test_case(case: dict[str, Any], tmp_path: Path) -> None:
    files = write_case(tmp_path, case)
    rules = parse_rules(case["rules"], file=str(files["rules"]))
    result = backtest([("rules.yaml", rules)], files["customers"], [files["usage"]],
                      case["from"], case["to"], files["outcomes"],
                      observed_until=case.get("outcomes_until"))
    expect = case["expect"]
    assert result.observed_until == expect["observed_until"]
    for text in expect.get("warnings_contain", []):
        assert any(text in w for w in result.warnings), (text, result.warnings)
    summary = {r["prediction"]: r for r in result.summary.iter_rows(named=True)}
    for prediction, wanted in expect["summary"].items():
        for key, value in wanted.items():
            assert same(summary[prediction][key], value), (prediction, key,
                                                          summary[prediction][key], value)
    for prediction, rows in expect.get("flags", {}).items():
        got = result.flags.filter(pl.col("prediction") == prediction).select(
            "customer_id", "flagged_on", "verdict", "outcome_on", "lead_days").rows()
        assert got == [tuple(r) for r in rows], prediction
    for prediction, rows in expect.get("missed", {}).items():
        got = result.missed.filter(pl.col("prediction") == prediction).select(
            "customer_id", "outcome_on", "last_flagged_on", "never_flagged").rows()
        assert got == [tuple(r) for r in rows], prediction


# -- the seam: a backtest replays the days a backfill records -------------------------------

SEAM = settings(max_examples=examples(8), deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture,
                                       HealthCheck.too_slow])


@SEAM
@given(data=exports())
def test_each_day_has_the_stages_a_backfill_records(data: Any, tmp_path_factory: Any) -> None:
    folder = tmp_path_factory.mktemp("seam")
    customers, usage = write_exports(folder, *data)
    rules = load_rules(RULES)  # Will Churn predicts churned within 90 days
    outcomes = write_csv(folder / "outcomes.csv", [
        {"customer_id": "C000", "outcome": "churned", "date": DAY0 + dt.timedelta(days=5)}])
    start, end = DAY0, DAY0 + dt.timedelta(days=4)
    result = backtest([("rules", rules)], customers, usage, start, end, outcomes,
                      keep_stages=True)
    backfill(rules, None, customers, usage, start, end, folder / "state")
    view = StateView.open(folder / "state")
    assert view.days == sorted(result.stages["rules"])
    for day in view.days:
        recorded = view.stages(day)
        assert recorded is not None
        assert result.stages["rules"][day].equals(recorded), day
    # and a flag is an entry into Will Churn seen in those stage tables
    held = {d: set(view.stages(d).filter(pl.col("stage") == "Will Churn")["customer_id"])
            for d in view.days}
    entries = {(c, d) for i, d in enumerate(view.days)
               for c in held[d] - (held[view.days[i - 1]] if i else set())}
    assert set(result.flags.select("customer_id", "flagged_on").iter_rows()) == entries


# -- the command ----------------------------------------------------------------------------

CASE = load_cases()[0].values[0]


@pytest.fixture
def case_files(tmp_path: Path) -> dict[str, Path]:
    folder = tmp_path / "inputs"
    folder.mkdir()
    return write_case(folder, CASE)


def command(files: dict[str, Path], *extra: str | Path, rules: list[Path] | None = None
            ) -> list[str | Path]:
    return ["backtest", *[a for r in rules or [files["rules"]] for a in ("--rules", r)],
            "--customers", files["customers"], "--usage", files["usage"],
            "--from", "2026-01-01", "--to", "2026-01-31", "--outcomes", files["outcomes"],
            *extra]


def test_terminal_csv_and_nothing_else_written(case_files: dict[str, Path],
                                               tmp_path: Path) -> None:
    before = snapshot(case_files["rules"].parent)
    proc = lifecycle(*command(case_files, "--csv", tmp_path / "out"), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    first = proc.stdout.split("churn_14d: Will Churn predicts")[0]
    assert "churn_30d: Will Churn predicts churned within 30 days" in first

    def value(measure: str) -> str:
        line = next(line for line in first.splitlines() if line.strip().startswith(measure))
        return line.split("│")[-1].strip()

    assert (value("precision"), value("recall"), value("median lead time")) == (
        "28.6%", "50.0%", "22.5")
    assert (value("flags"), value("hits"), value("unresolved")) == ("8", "2", "1")
    assert "churn_30d: 8 flags, 2 of 4 outcomes missed (2 never flagged)" in proc.stderr
    assert "no state read or written" in proc.stderr
    # the inputs are as they were; the only files written are the three CSV files
    assert snapshot(case_files["rules"].parent) == before
    written = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*") if p.is_file()
                     and "inputs" not in p.parts)
    assert written == [Path("out/flags.csv"), Path("out/missed.csv"), Path("out/summary.csv")]
    summary = pl.read_csv(tmp_path / "out" / "summary.csv")
    assert summary.columns[:3] == ["rules", "prediction", "stages"]
    row = summary.filter(pl.col("prediction") == "churn_30d").row(0, named=True)
    assert (row["flags"], row["hits"], row["false_alarms"], row["unresolved"]) == (8, 2, 5, 1)
    assert math.isclose(row["precision"], 2 / 7) and row["recall"] == 0.5
    flags = pl.read_csv(tmp_path / "out" / "flags.csv", infer_schema=False)
    assert flags.height == 16 and set(flags["verdict"]) == {"hit", "false_alarm", "unresolved"}
    missed = pl.read_csv(tmp_path / "out" / "missed.csv", infer_schema=False)
    assert missed.filter(pl.col("prediction") == "churn_14d")["customer_id"].to_list() == [
        "J", "A", "C", "G"]


def test_two_rules_files_side_by_side(case_files: dict[str, Path], tmp_path: Path) -> None:
    draft = tmp_path / "draft.yaml"  # flags only at 14 days: the 30-day prediction is gone
    draft.write_text(case_files["rules"].read_text().replace(
        "  - {id: churn_30d, stage: Will Churn, outcome: churned, horizon_days: 30}\n", "")
        .replace("risk_1d >= 1", "risk_1d >= 1 AND customer_id <> 'A'"), encoding="utf-8")
    html = tmp_path / "backtest.html"
    proc = lifecycle(*command(case_files, "--html", html, "--csv", tmp_path / "out",
                              rules=[case_files["rules"], draft]))
    assert proc.returncode == 0, proc.stderr
    header = next(line for line in proc.stdout.splitlines() if "measure" in line)
    assert str(case_files["rules"]) in header and str(draft) in header
    thirty, fourteen = proc.stdout.split("churn_14d: Will Churn predicts")

    def values(table: str, measure: str) -> list[str]:
        line = next(line for line in table.splitlines() if line.strip().startswith(measure))
        return [c.strip() for c in line.split("│")][1:]

    # churn_30d exists in the first file only: the draft's column is empty
    assert values(thirty, "flags") == ["8", "—"]
    # the draft never flags A: one flag fewer, and A's churn is missed, never flagged
    assert values(fourteen, "flags") == ["8", "7"]
    assert values(fourteen, "missed, never flagged") == ["2", "3"]
    summary = pl.read_csv(tmp_path / "out" / "summary.csv")
    assert summary.select("rules", "prediction").rows() == [
        (str(case_files["rules"]), "churn_30d"), (str(case_files["rules"]), "churn_14d"),
        (str(draft), "churn_14d")]
    text = html.read_text(encoding="utf-8")
    assert text.count(str(draft)) >= 2  # a column of each table, and the KPIs


class _Page(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.sections: list[str] = []
        self.cells: list[str] = []
        self._in_cell = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        if tag == "section":
            self.sections.append(dict(attrs).get("id") or "")
        self._in_cell = tag in ("td", "th")

    def handle_data(self, data: str) -> None:
        if self._in_cell:
            self.cells.append(data)

    def handle_endtag(self, tag: str) -> None:
        self._in_cell = False


def test_html_is_self_contained_and_holds_the_numbers(case_files: dict[str, Path]) -> None:
    rules = parse_rules(case_files["rules"].read_text(), file=str(case_files["rules"]))
    result = backtest([("rules.yaml", rules)], case_files["customers"], [case_files["usage"]],
                      CASE["from"], CASE["to"], case_files["outcomes"])
    text = render_backtest_html(result)
    assert text == render_backtest_html(result)  # the same bytes every time
    page = _Page()
    page.feed(text)
    assert "script" not in page.tags and "Content-Security-Policy" in text
    assert page.sections == ["prediction-0", "prediction-1", "notes", "definitions"]
    cells = page.cells
    precision = cells.index("precision")
    assert cells[precision + 1] == "28.6%"
    assert cells[cells.index("median lead time (days)") + 1] == "22.5"
    assert cells[cells.index("recall", precision) + 1] == "50.0%"
    # the missed outcomes of the first prediction, by customer
    assert "J" in cells and "C" in cells
    assert text.count("<svg") == 2  # a chart of verdicts per prediction


def test_a_customer_name_cannot_inject_html(tmp_path: Path) -> None:
    case = dict(CASE, customers=["<script>alert(1)</script>", *CASE["customers"]],
                outcomes=[["<script>alert(1)</script>", "churned", "2026-01-09"],
                          *CASE["outcomes"]])
    files = write_case(tmp_path, case)
    rules = parse_rules(case["rules"])
    text = render_backtest_html(backtest([("r", rules)], files["customers"], [files["usage"]],
                                         CASE["from"], CASE["to"], files["outcomes"]))
    assert "<script>" not in text and "&lt;script&gt;" in text


# -- mistakes ------------------------------------------------------------------------------

def test_unknown_stage_in_predictions_names_the_line(tmp_path: Path) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text(CASE["rules"].replace("stage: Will Churn, outcome: churned, horizon_days: 14",
                                           "stage: Will Chrun, outcome: churned, horizon_days: 14"))
    proc = lifecycle("validate", "--rules", rules)
    assert proc.returncode == 1
    assert (f"{rules}:12, predictions[1].stage, rule 'churn_14d': unknown stage "
            "'Will Chrun'") in proc.stderr
    assert "did you mean 'Will Churn'?" in proc.stderr


def test_prediction_keys_are_checked_like_the_others(tmp_path: Path) -> None:
    text = CASE["rules"].replace("horizon_days: 14}", "horizon: 14}")
    with pytest.raises(RulesError) as error:
        parse_rules(text, file="rules.yaml")
    rendered = [p.render() for p in error.value.problems]
    assert rendered == [
        "rules.yaml:12, predictions[1].horizon_days, rule 'churn_14d': required key "
        "'horizon_days' is missing",
        "rules.yaml:12, predictions[1].horizon, rule 'churn_14d': unknown key 'horizon' "
        "(did you mean 'horizon_days'?)"]


def test_two_predictions_of_one_name(tmp_path: Path) -> None:
    text = CASE["rules"].replace("id: churn_14d", "id: churn_30d")
    with pytest.raises(RulesError, match="two predictions are called 'churn_30d'"):
        parse_rules(text)


def test_outcome_missing_from_the_file(case_files: dict[str, Path]) -> None:
    rules = case_files["rules"]
    rules.write_text(rules.read_text().replace("outcome: churned, horizon_days: 14",
                                               "outcome: churn, horizon_days: 14"))
    proc = lifecycle(*command(case_files))
    assert proc.returncode == 1
    assert (f"{rules}:12, predictions[1].outcome, rule 'churn_14d': no row of the outcomes "
            f"file {case_files['outcomes']} has the outcome 'churn'") in proc.stderr
    assert "did you mean 'churned'?" in proc.stderr


def test_outcomes_file_without_its_columns(case_files: dict[str, Path]) -> None:
    outcomes = case_files["outcomes"]
    outcomes.write_text("customer_id,outcome,churn_day\nA,churned,2026-01-20\n")
    proc = lifecycle(*command(case_files))
    assert proc.returncode == 1
    assert f"{outcomes}:1, column 'date': the outcomes file has no column 'date'" in proc.stderr
    assert "map it in the rules: columns: {outcomes: {date: ...}}" in proc.stderr
    # mapped in the rules, it reads
    rules = case_files["rules"]
    rules.write_text(rules.read_text() + "columns: {outcomes: {date: churn_day}}\n")
    assert lifecycle(*command(case_files)).returncode == 0


def test_outcomes_file_with_bad_rows(case_files: dict[str, Path]) -> None:
    outcomes = case_files["outcomes"]
    outcomes.write_text("customer_id,outcome,date\nA,churned,2026-01-20\nB,churned,20/01/2026\n"
                        ",churned,2026-01-21\n")
    proc = lifecycle(*command(case_files))
    assert proc.returncode == 1
    assert f"{outcomes}:3, column 'date': 1 date(s) of the outcomes file are not dates: " \
        "line 3: '20/01/2026'" in proc.stderr
    assert f"{outcomes}:4, column 'customer_id': 1 row(s) of the outcomes file have no " \
        "customer id: line 4" in proc.stderr


def test_one_kind_of_event_per_file(case_files: dict[str, Path], tmp_path: Path) -> None:
    """A churn_events file has no outcome column: every row is the predicted outcome; the
    id may be named as in the customers export; --outcome says it outright."""
    events = write_csv(tmp_path / "churn_events.csv", [
        {"account": c, "churn_date": d} for c, o, d in CASE["outcomes"] if o == "churned"])
    rules = case_files["rules"]
    rules.write_text(rules.read_text() + "columns: {customers: {customer_id: account}, "
                     "outcomes: {date: churn_date}}\n")
    customers = write_csv(tmp_path / "accounts.csv", [{"account": c}
                                                     for c in CASE["customers"]])
    files = dict(case_files, outcomes=events, customers=customers)
    proc = lifecycle(*command(files, "--csv", tmp_path / "out"))
    assert proc.returncode == 0, proc.stderr
    assert "has no outcome column: every row counts as 'churned'" in proc.stderr
    summary = pl.read_csv(tmp_path / "out" / "summary.csv")
    assert summary["hits"].to_list() == [2, 0] and summary["outcomes"].to_list() == [4, 4]
    proc = lifecycle(*command(files, "--outcome", "cancelled"))
    assert proc.returncode == 1 and "has the outcome 'churned'" in proc.stderr


def test_rules_without_predictions(case_files: dict[str, Path]) -> None:
    rules = case_files["rules"]
    rules.write_text(rules.read_text().split("predictions:")[0])
    proc = lifecycle(*command(case_files))
    assert proc.returncode == 1
    assert f"{rules}: the rules have no predictions to score" in proc.stderr


def test_options(case_files: dict[str, Path]) -> None:
    rules = case_files["rules"]
    proc = lifecycle(*command(case_files, rules=[rules, rules, rules]))
    assert proc.returncode == 2 and "give --rules once, or twice" in proc.stderr
    proc = lifecycle(*command(case_files)[:-4], "--from", "2026-02-01", "--to", "2026-01-01",
                     "--outcomes", case_files["outcomes"])
    assert proc.returncode == 2 and "is before --from" in proc.stderr


def test_library_errors_are_values(case_files: dict[str, Path]) -> None:
    rules = parse_rules(CASE["rules"])
    with pytest.raises(DataError, match="file not found"):
        backtest([("r", rules)], case_files["customers"], [case_files["usage"]],
                 CASE["from"], CASE["to"], case_files["outcomes"].with_name("nope.csv"))


@pytest.mark.parametrize("suffix", ["parquet", "xlsx"])
def test_outcomes_in_parquet_and_excel(case_files: dict[str, Path], tmp_path: Path,
                                       suffix: str) -> None:
    """Typed dates (Parquet) and a workbook read like the CSV file: the same scores."""
    table = pl.read_csv(case_files["outcomes"], try_parse_dates=True)
    assert table.schema["date"] == pl.Date
    path = tmp_path / f"outcomes.{suffix}"
    if suffix == "parquet":
        table.write_parquet(path)
    else:
        table.write_excel(path)
    rules = parse_rules(CASE["rules"])
    scores = [backtest([("r", rules)], case_files["customers"], [case_files["usage"]],
                       CASE["from"], CASE["to"], outcomes).summary
              for outcomes in (case_files["outcomes"], path)]
    assert scores[0].equals(scores[1])


def test_a_csv_folder_in_the_way_writes_no_html_either(case_files: dict[str, Path],
                                                       tmp_path: Path) -> None:
    taken = tmp_path / "taken"
    taken.write_text("a file where the folder should go")
    result = lifecycle(*command(case_files, "--html", tmp_path / "b.html", "--csv", taken))
    assert result.returncode == 1, result.stderr
    assert "not a folder" in result.stderr
    assert not (tmp_path / "b.html").exists()
