"""Splitting by a customer column (`lifecycle_cli.report.groups`): the groups, the errors,
and the seam where a split must add up to the whole (reports and findings), on random
exports."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from cli_util import RULES
from conftest import examples, write_csv
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lifecycle_cli import check, load_rules, run
from lifecycle_cli.errors import OptionError
from lifecycle_cli.report.build import build_report, history_from_state
from lifecycle_cli.report.groups import (
    GROUP,
    MAX_GROUPS,
    NONE,
    as_group,
    attach,
    find_column,
    group_map,
    group_names,
)

DAY0 = dt.date(2026, 3, 1)
STAGES = ["Onboarding", "Launched", "Adopting", "Renewal", "Will Churn", "Churned"]
SEGMENTS = ["SMB", "Mid-Market", "Enterprise", None, ""]
RULE_SET = load_rules(RULES)


def test_a_group_is_the_value_as_text_and_none_when_missing_or_blank() -> None:
    frame = pl.DataFrame({"customer_id": [1, 2, 3, 4], "x": ["a", None, " ", " b "]})
    assert frame.select(as_group("x"))["x"].to_list() == ["a", NONE, NONE, "b"]
    numbers = pl.DataFrame({"customer_id": ["1"], "n": [3]})
    assert group_map(numbers, "n").rows() == [("1", "3")]


def test_groups_are_sorted_with_none_last() -> None:
    mapping = pl.DataFrame({"customer_id": list("abcd"), GROUP: ["b", NONE, "a", "b"]})
    assert group_names(mapping, "x") == ["a", "b", NONE]


def test_too_many_groups_is_an_error_naming_columns_that_would_do() -> None:
    source = pl.DataFrame({"customer_id": [str(i) for i in range(60)],
                           "segment": ["A", "B", "C"] * 20, "arr": list(range(60))})
    with pytest.raises(OptionError) as err:
        group_names(group_map(source, "arr"), "arr", source=source)
    text = str(err.value.problems[0].render())
    assert f"60 different values; a split shows at most {MAX_GROUPS}" in text
    assert "segment" in text and "customer_id" not in text.split("hint")[-1]
    assert len(group_names(group_map(source, "arr"), "arr", limit=None)) == 60


def test_an_unknown_column_names_the_columns_and_the_closest() -> None:
    with pytest.raises(OptionError) as err:
        find_column("segmnt", ["csm", "segment", "plan"])
    problem = err.value.problems[0]
    assert "--by segmnt" in problem.message
    assert problem.hint is not None and "did you mean 'segment'?" in problem.hint
    assert "csm, segment, plan" in problem.hint
    assert find_column("Segment Name", ["segment"], headers={"Segment Name": "segment"}) \
        == "segment"


def test_attach_puts_the_group_first_and_none_for_unknown_customers() -> None:
    frame = pl.DataFrame({"customer_id": ["1", "2"], "v": [1, 2]})
    mapping = pl.DataFrame({"customer_id": ["1"], GROUP: ["A"]})
    assert attach(frame, mapping).rows() == [("A", "1", 1), (NONE, "2", 2)]


# -- the seam: a split adds up to the whole ---------------------------------------------------


@st.composite
def exports(draw: Any) -> list[dict[str, Any]]:
    """Customers as the default rules read them, each with a segment (some with none)."""
    rows = []
    # each value is the customer's number shifted by a draw: even the simplest example
    # Hypothesis tries has every segment, several stages, healthy and risky customers
    for i in range(draw(st.integers(3, 16))):
        def pick(options: list[Any], i: int = i) -> Any:
            return options[(i + draw(st.integers(0, len(options) - 1))) % len(options)]

        stage = pick([None, *STAGES])
        entered = None
        if stage is not None and draw(st.integers(0, 4)) != 1:
            entered = DAY0 - dt.timedelta(days=(i * 17 + draw(st.integers(0, 150))) % 150)
        rows.append({
            "customer_id": f"C{i:03d}",
            "csm": pick(["Ana", "Bo", None]),
            "segment": pick(SEGMENTS),
            "arr": draw(st.integers(0, 5000)),
            "renewal_date": DAY0 + dt.timedelta(days=(i * 41 + draw(st.integers(0, 200)))
                                                % 220 - 20),
            "health_score": 10 + (i * 23 + draw(st.integers(0, 85))) % 86,
            "status": pick(["active"] * 4 + ["churned"]),
            "churn_notice": pick([False] * 3 + [True]),
            "stage": stage,
            "stage_entered_at": entered,
        })
    return rows


def _summed(table: pl.DataFrame, keys: list[str], values: list[str]) -> pl.DataFrame:
    return (table.group_by(keys).agg(pl.col(values).sum())
            .sort(keys, nulls_last=True).select(*keys, *values))


def _assert_adds_up(whole: pl.DataFrame, split: pl.DataFrame, by: str, keys: list[str],
                    values: list[str]) -> None:
    assert split.columns[0] == by
    expected = _summed(whole, keys, values).filter(pl.any_horizontal(pl.col(values) != 0))
    found = _summed(split.drop(by), keys, values).filter(
        pl.any_horizontal(pl.col(values) != 0))
    assert found.equals(expected), (found, expected)


@settings(max_examples=examples(12), deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(days=st.lists(exports(), min_size=2, max_size=3), gaps=st.lists(st.integers(1, 40),
                                                                        min_size=2, max_size=2))
def test_the_groups_add_up_to_the_whole(tmp_path_factory: pytest.TempPathFactory,
                                        days: list[list[dict[str, Any]]],
                                        gaps: list[int]) -> None:
    """Per segment, the customers by stage, the moves, the funnel, the time in stage, the
    overdue table and the findings add up to the report and check without --by."""
    folder = tmp_path_factory.mktemp("groups")
    state = folder / "state"
    day = DAY0
    first = days[0]
    for i, rows in enumerate(days):
        # the same customers every day, with the stages of the day's random export for some
        rows = [first[j] | {k: rows[j][k] for k in ("segment", "health_score", "status")}
                if j < len(rows) else first[j] for j in range(len(first))]
        path = write_csv(folder / f"customers-{i}.csv", rows)
        run(RULE_SET, path, as_of=day, state=state)
        day += dt.timedelta(days=gaps[i % len(gaps)])
    history = history_from_state(state, RULE_SET, customers=path)
    whole = build_report(history, min_exits=1)
    split = build_report(history, min_exits=1, by="segment")
    assert split.by == "segment" and split.customers == whole.customers
    assert split.groups == sorted({g for g in split.distribution["segment"]},
                                  key=lambda g: (g == NONE, g))
    _assert_adds_up(whole.distribution, split.distribution, "segment", ["stage"],
                    ["customers", "arr", "overdue", "stuck"])
    _assert_adds_up(whole.flows, split.flows, "segment", ["from_stage", "to_stage"],
                    ["moves", "by_hand", "customers"])
    stages = [c for c in whole.flow_matrix.columns if c not in ("from_stage", "total")]
    _assert_adds_up(whole.flow_matrix, split.flow_matrix, "segment", ["from_stage"],
                    [*stages, "total"])
    _assert_adds_up(whole.funnel, split.funnel, "segment", ["stage"],
                    ["customers", "to_next", "elsewhere_on_path", "outflow", "still_in"])
    _assert_adds_up(whole.time_in_stage, split.time_in_stage, "segment", ["stage"],
                    ["visits", "left", "still_in", "passed_through", "skipped"])
    _assert_adds_up(whole.overdue, split.overdue, "segment", ["stage", "owner"],
                    ["customers", "overdue", "stuck"])
    assert split.overdue_customers.drop("segment").sort("customer_id").equals(
        whole.overdue_customers.sort("customer_id"))
    assert whole.visits is not None and split.visits is not None
    assert split.visits.drop("segment").equals(whole.visits)
    # a group's curve is its own visits': with one group, the curve of the whole
    if len(split.groups) == 1:
        assert split.survival.drop("segment").equals(whole.survival)

    found = check(RULE_SET, path, as_of=day - dt.timedelta(days=gaps[(len(days) - 1) % 2]),
                  state_dir=state)
    by_segment = check(RULE_SET, path, as_of=found.as_of, state_dir=state, by="segment")
    assert by_segment.findings.columns[0] == "segment"
    assert by_segment.findings.drop("segment").equals(found.findings)
    counts = by_segment.by_group()
    assert counts["finding"].to_list() == list(found.counts())
    assert counts["total"].to_list() == list(found.counts().values())
    assert counts.select(pl.sum_horizontal(by_segment.groups)).to_series().to_list() == \
        list(found.counts().values())


def test_a_split_report_names_its_groups_in_the_about_table(tmp_path: Path) -> None:
    rows = [{"customer_id": f"C{i}", "csm": "Ana", "segment": s, "stage": "Onboarding",
             "stage_entered_at": DAY0, "renewal_date": DAY0, "health_score": 50,
             "status": "active", "churn_notice": False}
            for i, s in enumerate(["SMB", None, "Enterprise"])]
    path = write_csv(tmp_path / "customers.csv", rows)
    state = tmp_path / "state"
    run(RULE_SET, path, as_of=DAY0, state=state)
    report = build_report(history_from_state(state, RULE_SET, customers=path), by="segment")
    about = dict(report.about.iter_rows())
    assert about["by"] == "segment"
    assert about["groups"] == f"Enterprise, SMB, {NONE}"
    assert "note_by" in about
    plain = dict(build_report(history_from_state(state, RULE_SET, customers=path))
                 .about.iter_rows())
    assert "by" not in plain and "note_by" not in plain


KEEPS_PLAN = """\
version: 1
stages:
  - {name: New, expected_days: 5}
  - {name: Live}
initial_stage: New
derived:
  plan_before: "previous(plan)"
transitions:
  - {id: go, from: New, to: Live, when: "plan = 'Pro' AND plan_before = 'Pro'"}
"""


def test_a_state_s_kept_values_can_split_a_report_without_the_export(tmp_path: Path) -> None:
    """The state keeps `plan` (the rules read previous(plan)): --by plan needs no export."""
    from lifecycle_cli.rules.load import parse_rules

    rules = parse_rules(KEEPS_PLAN)
    path = write_csv(tmp_path / "customers.csv", [
        {"customer_id": f"C{i}", "plan": plan} for i, plan in
        enumerate(["Pro", "Pro", "Starter", None])])
    state = tmp_path / "state"
    for day in (DAY0, DAY0 + dt.timedelta(days=1)):
        run(rules, path, as_of=day, state=state)
    history = history_from_state(state, rules)
    report = build_report(history, by="plan", min_exits=1)
    assert report.groups == ["Pro", "Starter", NONE]
    assert report.distribution.filter(pl.col("customers") > 0).rows() == [
        ("Pro", "Live", 2, 1.0, 0, 0), ("Starter", "New", 1, 1.0, 0, 0),
        (NONE, "New", 1, 1.0, 0, 0)]
    assert report.flows.filter(pl.col("from_stage") == "New").rows() == [
        ("Pro", "New", "Live", 2, 0, 2)]
    with pytest.raises(OptionError, match="did you mean 'plan'"):
        build_report(history, by="plan_b4")
