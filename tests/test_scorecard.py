"""Health scorecards (``scorecard:``): the score night after night in the state
(``previous(health)``, ``report --value health``), `explain`'s contribution lines, the
validation of the section, and the seam: `explain` and `run` give the same score, and
both the score a row-by-row reference computes, on random data.

Scores on hand-computed rows, edges, NULLs and rules reading them are the data-driven
cases in tests/cases/scorecard.yaml (on every engine).
"""

from __future__ import annotations

import datetime as dt
import math
import shlex
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from cli_util import ROOT, lifecycle
from conftest import examples, write_csv
from golden_util import assert_golden
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_docs import sessions_and_files

from lifecycle_cli import LifecycleError, RulesError, StateView, explain, parse_rules, run
from lifecycle_cli.rules.scorecard import Measure, Scorecard

D = dt.date
RULES_TEXT = """\
version: 1
stages: [{name: Healthy}, {name: Watch}]
initial_stage: Healthy
metrics:
  logins_30d: {agg: count, where: "event = 'login'", window_days: 30}
scorecard:
  measures:
    - {id: logins, value: logins_30d, weight: 40,
       thresholds: [{below: 5, points: 0}, {below: 20, points: 50}, {else: 100}]}
    - {id: users, value: active_users, weight: 30, linear: {from: 0, to: 5}}
    - {id: nps, value: nps, weight: 30, linear: {from: 0, to: 10}, missing: 50}
  bands: [{name: red, below: 40}, {name: amber, below: 70}, {name: green}]
transitions:
  - {id: health_fell, from: Healthy, to: Watch, when: "previous(health) - health >= 20"}
"""


def crm(path: Path, rows: dict[str, tuple[Any, Any]]) -> Path:
    """A customers export: id -> (active_users, nps)."""
    return write_csv(path, [{"customer_id": c, "active_users": u, "nps": n}
                            for c, (u, n) in rows.items()])


def usage(path: Path, logins: dict[str, int], day: dt.date) -> Path:
    rows = [{"customer_id": c, "timestamp": f"{day} 10:00:00", "event": "login"}
            for c, n in logins.items() for _ in range(n)]
    return write_csv(path, rows, ["customer_id", "timestamp", "event"])


# -- the state: previous(health), the values table, report --value health ----------------


def two_nights(tmp_path: Path) -> tuple[Path, list[Any]]:
    rules = parse_rules(RULES_TEXT)
    state = tmp_path / "state"
    events = usage(tmp_path / "usage.csv", {"A": 25, "B": 25}, D(2026, 2, 20))
    nights = [
        # A: 100, 100, 100 -> 100; B: 100, 100, 100 -> 100
        {"A": (5, 10), "B": (5, 10)},
        # A: 100, 20 (1 user), 100 -> 76: fell 24, moves; B: 100, 100, 70 -> 91: fell 9
        {"A": (1, 10), "B": (5, 7)},
    ]
    results = []
    for i, night in enumerate(nights):
        day = D(2026, 3, 1) + dt.timedelta(days=i)
        results.append(run(rules, crm(tmp_path / f"crm-{i}.csv", night), [events], day,
                           state=state))
    return state, results


def test_previous_health_reads_the_score_of_the_states_previous_run(tmp_path: Path) -> None:
    state, (first, second) = two_nights(tmp_path)
    assert first.transitions.filter(pl.col("hop") > 0).height == 0  # no previous run yet
    scores = dict(second.customers.select("customer_id", "health").iter_rows())
    assert scores == {"A": 76.0, "B": 91.0}
    moved = second.transitions.filter(pl.col("hop") > 0)
    assert moved.select("customer_id", "rule_id", "reason").rows() == [
        ("A", "health_fell", "previous(health)=100.0; health=76.0")]


def test_the_state_keeps_the_score_its_band_and_points_every_day(tmp_path: Path) -> None:
    state, _ = two_nights(tmp_path)
    view = StateView.open(state)
    for day, expected in ((D(2026, 3, 1), {"A": (100.0, "green", 100.0)}),
                          (D(2026, 3, 2), {"A": (76.0, "green", 20.0)})):
        values = view.table("values", day)
        assert values is not None
        assert values.columns == ["customer_id", "health", "health_band",
                                  "health_logins_points", "health_users_points",
                                  "health_nps_points"]
        row = values.filter(pl.col("customer_id") == "A").row(0, named=True)
        score, band, users = expected["A"]
        assert (row["health"], row["health_band"], row["health_users_points"]) == (
            score, band, users)


def test_the_state_keeps_the_score_without_previous_in_the_rules(tmp_path: Path) -> None:
    """Kept for the history and reports even when no rule reads previous(health)."""
    text = RULES_TEXT.replace('"previous(health) - health >= 20"', '"health < 10"')
    rules = parse_rules(text)
    assert rules.previous_names == []
    events = usage(tmp_path / "usage.csv", {"A": 1}, D(2026, 2, 20))
    run(rules, crm(tmp_path / "crm.csv", {"A": (2, 4)}), [events], D(2026, 3, 1),
        state=tmp_path / "state")
    values = StateView.open(tmp_path / "state").table("values", D(2026, 3, 1))
    assert values is not None
    # 40*0 + 30*40 + 30*40 = 2400 / 100
    assert values.select("health", "health_band").row(0) == (24.0, "red")


def test_a_backfill_carries_the_score_to_the_next_day_as_nightly_runs_do(tmp_path: Path
                                                                        ) -> None:
    from lifecycle_cli import backfill

    rules = parse_rules(RULES_TEXT)
    events = usage(tmp_path / "usage.csv", {"A": 25}, D(2026, 2, 20))
    customers = crm(tmp_path / "crm.csv", {"A": (5, 10)})
    backfill(rules, None, customers, [events], D(2026, 3, 1), D(2026, 3, 2),
             tmp_path / "replayed")
    for day in (D(2026, 3, 1), D(2026, 3, 2)):
        run(rules, customers, [events], day, state=tmp_path / "nightly")
    replayed, nightly = StateView.open(tmp_path / "replayed"), StateView.open(
        tmp_path / "nightly")
    for day in (D(2026, 3, 1), D(2026, 3, 2)):
        a, b = replayed.table("values", day), nightly.table("values", day)
        assert a is not None and b is not None
        assert a.equals(b)


def test_report_value_health_sums_the_states_scores_per_stage(tmp_path: Path) -> None:
    state, _ = two_nights(tmp_path)
    rules = tmp_path / "rules.yaml"
    rules.write_text(RULES_TEXT, encoding="utf-8")
    result = lifecycle("report", "--state", state, "--rules", rules, "--customers",
                       tmp_path / "crm-1.csv", "--value", "health", "--csv", tmp_path / "rep",
                       "--quiet")
    assert result.returncode == 0, result.stderr
    dist = pl.read_csv(tmp_path / "rep" / "distribution.csv")
    by_stage = {r["stage"]: r for r in dist.iter_rows(named=True)}
    value = next(c for c in dist.columns if c.startswith("health"))
    assert by_stage["Watch"][value] == 76.0  # A, moved on the second night
    assert by_stage["Healthy"][value] == 91.0  # B


# -- explain -----------------------------------------------------------------------------


def explain_fixture(tmp_path: Path) -> tuple[Path, Path, Path]:
    rules = tmp_path / "rules.yaml"
    rules.write_text(RULES_TEXT.replace(
        "{id: health_fell, from: Healthy, to: Watch, when: \"previous(health) - health >= 20\"}",
        "{id: unhealthy, from: Healthy, to: Watch, when: \"health < 40\"}"), encoding="utf-8")
    customers = crm(tmp_path / "crm.csv", {"A": (3, 7), "B": (None, None), "C": (None, 2)})
    events = usage(tmp_path / "usage.csv", {"A": 7, "C": 0}, D(2026, 10, 20))
    return rules, customers, events


def test_explain_shows_each_measures_contribution_the_score_and_its_band(tmp_path: Path
                                                                         ) -> None:
    rules, customers, events = explain_fixture(tmp_path)
    result = lifecycle("explain", "A", "B", "--customers", customers, "--usage", events,
                       "--rules", rules, "--as-of", "2026-11-01")
    assert result.returncode == 0, result.stderr
    # A: 40*50 + 30*60 + 30*70 = 5900 / 100 = 59 (amber); B: logins 0 (40), users left
    # out, nps missing 50 (30): 1500 / 70 = 21.4 (red)
    assert "health = 20.00 + 18.00 + 21.00 = 59: amber (40 to under 70)" in result.stdout
    assert "health = 0.00 + 21.43 = 21.4: red (under 40)" in result.stdout
    assert "users: no value, left out; the weights of the others (70 of 100)" in result.stdout
    assert_golden(result.stdout, "explain_scorecard.txt")


def test_explain_json_has_the_scorecard(tmp_path: Path) -> None:
    rules, customers, events = explain_fixture(tmp_path)
    [why] = explain(parse_rules(rules.read_text()), customers, [events], ["C"], D(2026, 11, 1))
    card = why.to_dict()["scorecard"]
    # logins 0 -> 0 (40), users NULL left out, nps 2 -> 20 (30): 600 / 70 = 8.57 -> 8.6
    assert (card["score"], card["band"], card["band_from"], card["band_below"]) == (
        8.6, "red", None, 40.0)
    assert [(m["id"], m["value"], m["points"], m["weight"]) for m in card["measures"]] == [
        ("logins", 0, 0.0, 40.0), ("users", None, None, 30.0), ("nps", 2, 20.0, 30.0)]
    assert card["measures"][2]["contribution"] == pytest.approx(20 * 30 / 70)
    assert card["measures"][1]["contribution"] is None
    assert (card["weight_counted"], card["weight_total"]) == (70.0, 100.0)


# -- validation --------------------------------------------------------------------------

BROKEN = """\
version: 1
stages: [{name: A}]
initial_stage: A
metrics:
  logins_30d: {agg: count}
derived:
  boosted: "health + 10"
scorecard:
  measures:
    - id: logins
      value: logins_30d
      weight: 40
      thresholds: [{below: 20, points: 0}, {below: 5, points: 50}, {else: 100}]
    - {id: logins, value: logins_30d, weight: 10, linear: {from: 3, to: 3}}
    - {id: both, value: logins_30d, weight: 10, linear: {from: 0, to: 1}, thresholds: [{else: 1}]}
    - {id: steps, value: logins_30d, weight: 10, thresholds: [{below: 1, points: 0}]}
  bands: [{name: red, below: 70}, {name: amber, below: 40}, {name: green}]
"""


def problems_of(text: str) -> list[str]:
    with pytest.raises(RulesError) as info:
        parse_rules(text, file="rules.yaml")
    return [p.render() for p in info.value.problems]


def test_every_problem_of_the_section_at_once_with_its_line() -> None:
    found = "\n".join(problems_of(BROKEN))
    for expected in (
        "rules.yaml:7, derived.boosted, rule 'boosted': 'health' is a scorecard column, "
        "computed after every derived value",
        "rules.yaml:13, scorecard.measures[0].thresholds[1].below, rule 'logins': thresholds "
        "go up: below 5 comes after below 20",
        "rules.yaml:14, scorecard.measures[1].id, rule 'logins': duplicate measure id "
        "'logins' (also measures[0])",
        "rules.yaml:14, scorecard.measures[1].linear, rule 'logins': `linear` needs two "
        "different numbers (from: 3, to: 3)",
        "rules.yaml:15, scorecard.measures[2], rule 'both': the measure 'both' needs either "
        "`thresholds` or `linear` (not both)",
        "rules.yaml:16, scorecard.measures[3].thresholds[0], rule 'steps': the last "
        "threshold must be {else: POINTS}",
        "rules.yaml:17, scorecard.bands[1].below: bands go up: below 40 comes after below 70",
    ):
        assert expected in found, f"{expected!r} not in:\n{found}"


@pytest.mark.parametrize(("change", "expected"), [
    ("weight: 40", "rules.yaml:12, scorecard.measures[0].weight, rule 'logins': input should "
     "be greater than 0 (found -1)"),
    ("      weight: 40\n", "rules.yaml:12, scorecard.measures[0].wieght, rule 'logins': "
     "unknown key 'wieght' (did you mean 'weight'?)"),
    ("{else: 100}", "scorecard.measures[0].thresholds[2].else, rule 'logins': input should be "
     "less than or equal to 100 (found 150)"),
    ("bands:", "rules.yaml:17, scorecard.bandz: unknown key 'bandz' (did you mean 'bands'?)"),
    ("  measures:", "rules.yaml:9, scorecard.measure: unknown key 'measure' (did you mean "
     "'measures'?)"),
])
def test_a_wrong_key_or_number_names_its_line_and_the_likely_key(change: str, expected: str
                                                                 ) -> None:
    replacement = {"weight: 40": "weight: -1", "      weight: 40\n": "      wieght: 40\n",
                   "{else: 100}": "{else: 150}", "bands:": "bandz:",
                   "  measures:": "  measure:"}[change]
    text = BROKEN.replace(change, replacement, 1)
    assert text != BROKEN
    assert expected in "\n".join(problems_of(text))


def test_a_scorecard_column_may_not_take_a_metrics_name() -> None:
    text = """\
version: 1
stages: [{name: A}]
initial_stage: A
metrics:
  health_band: {agg: count}
scorecard:
  measures: [{id: x, value: health_band, weight: 1, linear: {from: 0, to: 1}}]
"""
    found = "\n".join(problems_of(text))
    assert "rules.yaml:6, scorecard: the scorecard's column 'health_band' is also the metric " \
           "'health_band'" in found
    assert "(rename the scorecard (`name:`), the measure or the other one)" in found


def test_an_unknown_name_in_a_measure_is_named_with_its_line_and_the_closest(tmp_path: Path
                                                                            ) -> None:
    rules_file = tmp_path / "rules.yaml"
    rules_file.write_text(RULES_TEXT.replace("value: active_users", "value: active_user"),
                          encoding="utf-8")
    customers = crm(tmp_path / "crm.csv", {"A": (1, 2)})
    result = lifecycle("validate", "--rules", rules_file, "--customers", customers)
    assert result.returncode == 1
    assert f"{rules_file}:10, scorecard.measures[1].value, rule 'users': unknown name " \
           "'active_user'" in result.stderr
    assert "hint: did you mean 'active_users'?" in result.stderr
    with pytest.raises(LifecycleError):
        run(parse_rules(rules_file.read_text()), customers, [], D(2026, 3, 1))


def test_a_measure_of_a_flag_says_how_to_score_it(tmp_path: Path) -> None:
    rules_file = tmp_path / "rules.yaml"
    rules_file.write_text(RULES_TEXT.replace("value: nps", "value: nps > 5"), encoding="utf-8")
    customers = crm(tmp_path / "crm.csv", {"A": (1, 2)})
    result = lifecycle("validate", "--rules", rules_file, "--customers", customers)
    assert result.returncode == 1
    assert "scorecard.measures[2].value, rule 'nps': the measure 'nps' scores 'nps > 5', a " \
           "true/false; a measure's value must be a number" in result.stderr
    assert 'hint: score a flag as a number: value: "CASE WHEN trained THEN 1 ELSE 0 END"' \
        in result.stderr


# -- the seam: run, explain and a row-by-row reference agree on random data ---------------


def reference_points(m: Measure, value: float | None) -> float | None:
    """A measure's points, row by row, as docs/rules.md says (before rounding)."""
    if value is None:
        return m.missing
    if m.thresholds is not None:
        for t in m.thresholds:
            if t.below is not None and value < t.below:
                return t.points
        return m.thresholds[-1].else_
    assert m.linear is not None
    low, high = m.linear.from_, m.linear.to
    share = (value - low) / (high - low)
    return 100 * min(1.0, max(0.0, share))


numbers = st.one_of(st.none(), st.integers(-5, 60), st.floats(-5, 60, allow_nan=False)
                    .map(lambda x: round(x, 2)))


@st.composite
def measures(draw: Any, i: int) -> dict[str, Any]:
    weight = draw(st.sampled_from([1, 2.5, 10, 30, 40]))
    missing = draw(st.one_of(st.none(), st.sampled_from([0, 50, 100])))
    if draw(st.booleans()):
        cuts = sorted(draw(st.sets(st.integers(0, 50), min_size=1, max_size=3)))
        steps = [{"below": c, "points": draw(st.integers(0, 100))} for c in cuts]
        shape: dict[str, Any] = {"thresholds": [*steps, {"else": draw(st.integers(0, 100))}]}
    else:
        low, high = draw(st.lists(st.integers(0, 50), min_size=2, max_size=2, unique=True))
        shape = {"linear": {"from": low, "to": high}}
    return {"id": f"m{i}", "value": f"v{i}", "weight": weight,
            **({"missing": missing} if missing is not None else {}), **shape}


@settings(max_examples=examples(20), deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_run_explain_and_a_reference_give_the_same_score(tmp_path: Path, data: Any) -> None:
    n = data.draw(st.integers(1, 3), label="measures")
    card = [data.draw(measures(i), label=f"measure {i}") for i in range(n)]
    rows = [{"customer_id": f"C{j}", "stage": "A",
             **{f"v{i}": data.draw(numbers, label=f"v{i}") for i in range(n)}}
            for j in range(data.draw(st.integers(1, 6), label="customers"))]
    import yaml

    text = yaml.safe_dump({"version": 1, "stages": [{"name": "A"}], "initial_stage": "A",
                           "scorecard": {"measures": card}}, sort_keys=False)
    rules = parse_rules(text)
    customers = write_csv(tmp_path / "customers.csv", rows,
                          ["customer_id", "stage", *[f"v{i}" for i in range(n)]])
    result = run(rules, customers, [], D(2026, 11, 1))
    assert rules.scorecard is not None
    scorecard: Scorecard = rules.scorecard
    out = {r["customer_id"]: r for r in result.customers.iter_rows(named=True)}
    ids = [r["customer_id"] for r in rows]
    explained = {str(e.customer_id): e for e in explain(rules, customers, [], ids,
                                                         D(2026, 11, 1))}
    for row in rows:
        got = out[row["customer_id"]]
        weighted = weights = 0.0
        for m in scorecard.measures:
            value = got[m.value]
            want = reference_points(m, None if value is None else float(value))
            points = got[scorecard.points_column(m.id)]
            if want is None:
                assert points is None
                continue
            assert points == pytest.approx(want, abs=0.05 + 1e-9), (m, value)
            weighted += points * m.weight
            weights += m.weight
        score = got["health"]
        if weights == 0:
            assert score is None and got["health_band"] is None
        else:
            assert score == pytest.approx(weighted / weights, abs=0.05 + 1e-9)
            band = next(b.name for b in scorecard.bands if b.below is None or score < b.below)
            assert got["health_band"] == band
        # explain: the same score, band and points, and contributions that add up to it
        why = explained[row["customer_id"]].scorecard
        assert why is not None
        assert (why.score, why.band) == (score, got["health_band"])
        assert [m.points for m in why.measures] == [
            got[scorecard.points_column(m.id)] for m in scorecard.measures]
        if score is not None:
            total = sum(m.contribution for m in why.measures if m.contribution is not None)
            assert math.isclose(total, score, abs_tol=0.05 + 1e-9)


# -- docs/scorecards.md: the worked example prints what the tool prints --------------------


def test_the_scorecards_pages_sessions_print_what_the_tool_prints(tmp_path: Path) -> None:
    sessions, files = sessions_and_files((ROOT / "docs" / "scorecards.md").read_text())
    assert sessions and "scorecard.yaml" in files
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    (tmp_path / "sample_data").symlink_to(ROOT / "sample_data")
    for session in sessions:
        for command, expected in session:
            result = lifecycle(*shlex.split(command)[1:], cwd=tmp_path)
            assert result.returncode == 0, result.stderr
            assert (result.stdout + result.stderr).splitlines() == expected, command


def test_a_band_name_misspelt_in_a_condition_is_a_warning_with_the_closest_band() -> None:
    rules = parse_rules(RULES_TEXT + """\
ctas:
  - {id: red, name: Red, on: when, when: "health_band IN ('Red', 'amber')"}
""", file="rules.yaml")
    assert [w.render() for w in rules.warnings] == [
        "rules.yaml:16, ctas[0].when, rule 'red': 'Red' is compared with `health_band` but is "
        "not a band, so that comparison never matches (did you mean 'red'?)"]
