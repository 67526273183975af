"""Kaplan-Meier estimates: hand-computed cases, and a row-by-row reference on random visits."""

from __future__ import annotations

import polars as pl
import pytest
from conftest import examples
from hypothesis import given, settings
from hypothesis import strategies as st

from lifecycle_cli.report.survival import kaplan_meier, quantile_days, survival_at


def curve_of(rows: list[tuple[str, int, bool, int]]) -> pl.DataFrame:
    """Visits as (group, days, left, observed_from)."""
    visits = pl.DataFrame(rows, schema=["stage", "days", "left", "entry"], orient="row")
    return kaplan_meier(visits, by="stage", duration="days", event="left", entry="entry")


def test_censored_visits_stay_at_risk_until_they_are_censored() -> None:
    # 7 visits: left after 2, 4, 4, 6 days; still in the stage after 3, 5, 8 days.
    # By hand: S(2) = 6/7; at 3 one is censored; S(4) = 6/7 * (1 - 2/5) = 18/35;
    # at 5 one censored; S(6) = 18/35 * (1 - 1/2) = 9/35; at 8 the last is censored.
    rows = [("A", d, e, 0) for d, e in
            [(2, True), (3, False), (4, True), (4, True), (5, False), (6, True), (8, False)]]
    curve = curve_of(rows)
    assert curve.select("days", "at_risk", "left", "censored").rows() == [
        (2, 7, 1, 0), (3, 6, 0, 1), (4, 5, 2, 0), (5, 3, 0, 1), (6, 2, 1, 0), (8, 1, 0, 1)]
    assert curve["survival"].to_list() == pytest.approx(
        [6 / 7, 6 / 7, 18 / 35, 18 / 35, 9 / 35, 9 / 35])
    # the median is the first day the curve is at or below one half: 18/35 > 1/2 at day 4
    assert quantile_days(curve, "stage", 0.5, "median").rows() == [("A", 6)]
    # 90% never left: not reached, so the group is absent
    assert quantile_days(curve, "stage", 0.1, "p90").height == 0
    # dropping the censored visits, as a naive average would, shortens the time
    naive = curve_of([r for r in rows if r[2]])
    assert quantile_days(naive, "stage", 0.5, "median").rows() == [("A", 4)]


def test_a_curve_that_halves_exactly_reaches_its_median_there() -> None:
    curve = curve_of([("A", 3, True, 0), ("A", 5, False, 0)])
    assert curve["survival"].to_list() == [0.5, 0.5]
    assert quantile_days(curve, "stage", 0.5, "median").rows() == [("A", 3)]


def test_left_truncated_visits_are_at_risk_only_from_their_entry() -> None:
    # (entry, days, left): (0, 3, yes), (2, 5, yes), (4, 6, no), (0, 2, no).
    # Day 2: at risk those with entry <= 2 <= days: 3 (the (4, 6) one is not yet
    # observed); one censored. Day 3: 2 at risk, 1 left: S = 1/2.
    # Day 5: at risk (2,5) and (4,6): 2, one left: S = 1/4. Day 6: 1 at risk, censored.
    curve = curve_of([("B", 3, True, 0), ("B", 5, True, 2), ("B", 6, False, 4),
                      ("B", 2, False, 0)])
    assert curve.select("days", "at_risk", "left", "censored").rows() == [
        (2, 3, 0, 1), (3, 2, 1, 0), (5, 2, 1, 0), (6, 1, 0, 1)]
    assert curve["survival"].to_list() == pytest.approx([1.0, 0.5, 0.25, 0.25])
    assert quantile_days(curve, "stage", 0.5, "median").rows() == [("B", 3)]


def test_visits_that_end_on_their_first_day_count_at_day_zero() -> None:
    curve = curve_of([("C", 0, True, 0), ("C", 0, True, 0), ("C", 1, True, 0),
                      ("C", 4, False, 0)])
    assert curve.select("days", "at_risk", "left").rows() == [(0, 4, 2), (1, 2, 1), (4, 1, 0)]
    assert quantile_days(curve, "stage", 0.5, "median").rows() == [("C", 0)]
    assert quantile_days(curve, "stage", 0.1, "p90").height == 0


def test_groups_are_estimated_apart() -> None:
    curve = curve_of([("A", 1, True, 0), ("A", 2, True, 0), ("B", 5, True, 0),
                      ("B", 9, False, 0)])
    assert curve.select("stage", "days", "survival").rows() == [
        ("A", 1, 0.5), ("A", 2, 0.0), ("B", 5, 0.5), ("B", 9, 0.5)]
    medians = quantile_days(curve, "stage", 0.5, "median").sort("stage")
    assert medians.rows() == [("A", 1), ("B", 5)]
    assert quantile_days(curve, "stage", 0.1, "p90").rows() == [("A", 2)]


def test_survival_at_a_day_per_group() -> None:
    curve = curve_of([("A", 2, True, 0), ("A", 4, True, 0), ("A", 6, False, 0)])
    points = pl.DataFrame({"stage": ["A", "A2", "A"], "at": [1, 3, None]})
    # before the first exit everyone is still in: 1.0; a group with no curve: NULL
    at = survival_at(curve, points.head(2), "stage", "at", "s")
    assert at.rows() == [("A", 1, 1.0), ("A2", 3, None)]
    at = survival_at(curve, pl.DataFrame({"stage": ["A"], "at": [4]}), "stage", "at", "s")
    assert at["s"].to_list() == pytest.approx([1 / 3])  # 2/3 then 1/2 of that


def reference(visits: list[tuple[int, int, bool]]) -> list[tuple[int, int, int, int, float]]:
    """Kaplan-Meier row by row, straight from its definition: (day, at risk, left,
    censored, survival) on each day a visit ends."""
    survival, out = 1.0, []
    for day in sorted({days for _, days, _ in visits}):
        at_risk = sum(1 for entry, days, _ in visits if entry <= day <= days)
        left = sum(1 for _, days, ended in visits if days == day and ended)
        censored = sum(1 for _, days, ended in visits if days == day and not ended)
        if at_risk:
            survival *= 1 - left / at_risk
        out.append((day, at_risk, left, censored, survival))
    return out


visit = st.tuples(st.integers(0, 30), st.integers(0, 30), st.booleans()).map(
    lambda v: (min(v[0], v[1]), max(v[0], v[1]), v[2]))  # entry <= days


@settings(max_examples=examples(150), deadline=None)
@given(groups=st.dictionaries(st.sampled_from(["A", "B", "C"]),
                              st.lists(visit, min_size=1, max_size=40), min_size=1))
def test_vectorised_equals_the_row_by_row_reference(
        groups: dict[str, list[tuple[int, int, bool]]]) -> None:
    rows = [(g, days, ended, entry) for g, vs in groups.items() for entry, days, ended in vs]
    curve = curve_of(rows)
    medians = dict(quantile_days(curve, "stage", 0.5, "median").rows())
    for group, visits in groups.items():
        expected = reference(visits)
        got = curve.filter(pl.col("stage") == group).drop("stage").rows()
        assert [r[:4] for r in got] == [r[:4] for r in expected]
        assert [r[4] for r in got] == pytest.approx([r[4] for r in expected])
        median = next((r[0] for r in expected if r[4] <= 0.5 + 1e-9), None)
        assert medians.get(group) == median
