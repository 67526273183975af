"""`previous(name)`: a customer's value at the state's previous run, night after night.

What the state keeps for it (the day's metrics, the values of the other names previous()
reads), what it gives without a state or a previous value (NULL), how `explain` and the
transitions' reasons show it, and the errors. The seam with backfills is in test_seams.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import polars as pl
import pytest
from cli_util import lifecycle
from conftest import write_csv

from lifecycle_cli import RulesError, StateView, parse_rules, run

D = dt.date
RULES_TEXT = """\
version: 1
stages: [{name: Healthy}, {name: Watch}]
initial_stage: Healthy
metrics:
  logins: {agg: count}
derived:
  health_drop: "previous(health_score) - health_score"
transitions:
  - {id: health_dropped, from: Healthy, to: Watch, when: "health_drop >= 20"}
  - {id: logins_fell, from: Healthy, to: Watch, when: "previous(logins) > logins + 1"}
"""


@pytest.fixture
def rules_file(tmp_path: Path) -> Path:
    path = tmp_path / "rules.yaml"
    path.write_text(RULES_TEXT, encoding="utf-8")
    return path


def nights(tmp_path: Path, scores: list[dict[str, int]], usage: list[dict] | None = None,
           rules_text: str = RULES_TEXT) -> tuple[Path, list]:
    """One run per night from 2026-03-01 with a state; ``scores``: id -> health per night."""
    rules = parse_rules(rules_text)
    tmp_path.mkdir(parents=True, exist_ok=True)
    state = tmp_path / "state"
    usage_file = write_csv(tmp_path / "usage.csv", usage or [
        {"customer_id": "A", "timestamp": "2026-02-20 10:00:00"}],
        ["customer_id", "timestamp"])
    results = []
    for i, night in enumerate(scores):
        crm = write_csv(tmp_path / f"crm-{i}.csv",
                        [{"customer_id": c, "health_score": h} for c, h in night.items()])
        results.append(run(rules, crm, [usage_file], D(2026, 3, 1) + dt.timedelta(days=i),
                           state=state))
    return state, results


def test_health_dropped_by_20_since_the_last_run_is_one_rule(tmp_path: Path) -> None:
    state, results = nights(tmp_path, [{"A": 80, "B": 80}, {"A": 55, "B": 70},
                                       {"A": 50, "B": 40}])
    first, second, third = (r.transitions.filter(pl.col("hop") > 0) for r in results)
    assert first.height == 0  # no previous run: previous() is NULL, and NULL is false
    assert second.select("customer_id", "rule_id", "reason").rows() == [
        ("A", "health_dropped", "health_drop=25")]
    assert third.select("customer_id", "rule_id", "reason").rows() == [
        ("B", "health_dropped", "health_drop=30")]
    out = results[1].customers
    assert out.columns[-2:] == ["health_drop", "logins"]  # previous(...) is no output column
    assert out["health_drop"].to_list() == [25, 10]
    view = StateView.open(state)
    assert view.table("values", D(2026, 3, 2)).rows() == [("A", 55), ("B", 70)]
    assert view.metrics(D(2026, 3, 2)).rows() == [("A", 1), ("B", 0)]


def test_a_condition_names_the_previous_value_in_its_reason(tmp_path: Path) -> None:
    """Three logins on 02-02: 28 days later they are in the window, a day after they are
    not; the metric kept from the first night is what previous(logins) reads."""
    usage = [{"customer_id": "A", "timestamp": "2026-02-02 10:00:00"}] * 3
    text = RULES_TEXT.replace("logins: {agg: count}", "logins: {agg: count, window_days: 28}")
    _, results = nights(tmp_path, [{"A": 80}, {"A": 80}], usage, text)
    assert results[0].customers["logins"].to_list() == [3]
    moved = results[1].transitions.filter(pl.col("hop") > 0)
    assert moved.select("rule_id", "reason").rows() == [
        ("logins_fell", "previous(logins)=3; logins=0")]


def test_a_customer_new_since_the_last_run_has_no_previous_value(tmp_path: Path) -> None:
    _, results = nights(tmp_path, [{"A": 80}, {"A": 80, "B": 10}])
    new = results[1].customers.filter(pl.col("customer_id") == "B")
    assert new["health_drop"].to_list() == [None]


def test_without_a_state_previous_is_null(tmp_path: Path) -> None:
    crm = write_csv(tmp_path / "crm.csv", [{"customer_id": "A", "health_score": 10}])
    result = run(parse_rules(RULES_TEXT), crm, [], D(2026, 3, 1))
    assert result.customers["health_drop"].to_list() == [None]
    assert result.transitions.filter(pl.col("hop") > 0).height == 0


def test_a_previous_read_the_last_run_did_not_keep_is_null_with_a_warning(tmp_path: Path) -> None:
    text = RULES_TEXT.replace('"previous(health_score) - health_score"', '"0"')
    state, _ = nights(tmp_path, [{"A": 80}], rules_text=text)
    assert StateView.open(state).table("values", D(2026, 3, 1)) is None  # nothing to keep
    crm = write_csv(tmp_path / "crm-next.csv", [{"customer_id": "A", "health_score": 50}])
    result = run(parse_rules(RULES_TEXT), crm, [], D(2026, 3, 2), state=state)
    assert result.customers["health_drop"].to_list() == [None]
    assert any("the state's run of 2026-03-01 kept no value of health_score" in w
               for w in result.warnings)


def test_a_value_kept_under_another_type_is_null_not_a_wrong_value(tmp_path: Path) -> None:
    """The rules changed a derived value from text to a number: yesterday's text is no
    number, so previous() gives NULL."""
    template = """
version: 1
stages: [{name: Healthy}]
initial_stage: Healthy
derived:
  score: "%s"
  change: "CASE WHEN previous(score) IS NULL THEN 'none' ELSE 'some' END"
"""
    state = tmp_path / "state"
    crm = write_csv(tmp_path / "crm.csv", [{"customer_id": "A", "health_score": 40}])
    run(parse_rules(template % "'high'"), crm, [], D(2026, 3, 1), state=state)
    assert StateView.open(state).table("values", D(2026, 3, 1)).rows() == [("A", "high")]
    result = run(parse_rules(template % "health_score"), crm, [], D(2026, 3, 2), state=state)
    assert result.customers["change"].to_list() == ["none"]
    result = run(parse_rules(template % "health_score"), crm, [], D(2026, 3, 3), state=state)
    assert result.customers["change"].to_list() == ["some"]


def test_explain_shows_the_previous_values_it_starts_from(tmp_path: Path,
                                                          rules_file: Path) -> None:
    state, _ = nights(tmp_path, [{"A": 80}])
    crm = write_csv(tmp_path / "crm-2.csv", [{"customer_id": "A", "health_score": 50}])
    common = ["--customers", crm, "--rules", rules_file, "--as-of", "2026-03-02", "--state",
              state]
    proc = lifecycle("explain", "A", *common, "--format", "json")
    assert proc.returncode == 0, proc.stderr
    [explained] = json.loads(proc.stdout)
    assert explained["previous"] == {"health_score": 80, "logins": 1}
    assert explained["previous_run"] == "2026-03-01"
    assert explained["hops"][0]["verdicts"][1]["values"] == "previous(logins)=1; logins=0"
    assert explained["stage"] == "Watch"
    proc = lifecycle("explain", "A", *common)
    assert proc.returncode == 0, proc.stderr
    assert "previous(health_score)" in proc.stdout and "run of 2026-03-01" in proc.stdout


def test_previous_of_an_unknown_name_is_located_with_a_suggestion(tmp_path: Path) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text(RULES_TEXT.replace("previous(health_score)", "previous(health_scor)"),
                     encoding="utf-8")
    crm = write_csv(tmp_path / "crm.csv", [{"customer_id": "A", "health_score": 1}])
    proc = lifecycle("validate", "--rules", rules, "--customers", crm)
    assert proc.returncode == 1
    assert (f"{rules}:7, derived.health_drop, rule 'health_drop': unknown name 'health_scor' in "
            "previous(health_scor)") in proc.stderr
    assert "did you mean 'health_score'?" in proc.stderr


def test_previous_is_checked_without_data_where_it_cannot_be() -> None:
    with pytest.raises(RulesError) as info:
        parse_rules(RULES_TEXT.replace("logins: {agg: count}",
                                       'logins: {agg: count, where: "previous(event) = 1"}')
                    .replace('"previous(logins) > logins + 1"', '"previous(logins + 1) > 0"'))
    text = str(info.value)
    assert "metrics.logins.where, rule 'logins': previous(event) is not allowed in a " \
        "metric's `where`" in text
    assert "transitions[1].when, rule 'logins_fell': previous(logins + 1): previous() takes " \
        "one name" in text


def test_the_rules_say_which_names_previous_reads() -> None:
    rules = parse_rules(RULES_TEXT + """
ctas:
  - {id: c, name: C, on: when, when: "previous(health_drop) > 0 AND previous(logins) > 0"}
""")
    assert rules.previous_names == ["health_score", "logins", "health_drop"]
