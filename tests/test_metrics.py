"""Metrics in batches of rows give exactly what one pass gives."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest
from conftest import examples
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

from lifecycle_cli import parse_rules
from lifecycle_cli.errors import DataError
from lifecycle_cli.inputs.usage import scan_usage
from lifecycle_cli.metrics import compute
from lifecycle_cli.metrics.compute import compute_metrics
from lifecycle_cli.metrics.replay import MetricsReplay

AS_OF = dt.date(2026, 11, 1)
RULES = parse_rules("""\
version: 1
stages: [{name: A}]
initial_stage: A
metrics:
  rows: {agg: count}
  logins_7d: {agg: count, where: "event = 'login'", window_days: 7}
  minutes: {agg: sum, column: minutes}
  avg_minutes_7d: {agg: mean, column: minutes, window_days: 7}
  shortest: {agg: min, column: minutes, where: "event = 'login'"}
  last_seen: {agg: max, column: timestamp}
  exported: {agg: any, where: "event = 'export'"}
  users: {agg: n_unique, column: user_id}
  first_event: {agg: first, column: event}
  last_event_7d: {agg: last, column: event, window_days: 7}
  last_login_user: {agg: last, column: user_id, where: "event = 'login'", default: none}
""")


def usage_parts(folder: Path, n: int, parts: int, seed: int) -> Path:
    """Random usage with many timestamp ties, NULLs and unknown customers, in parts."""
    rng = np.random.default_rng(seed)
    base = dt.datetime(2026, 10, 20)
    frame = pl.DataFrame({
        "customer_id": [f"c{i}" for i in rng.integers(0, 40, n)],
        # whole days only: lots of ties, so first/last must break them by input order
        "timestamp": [base + dt.timedelta(days=int(d)) for d in rng.integers(0, 16, n)],
        "event": rng.choice(["login", "export", "view"], n).tolist(),
        "user_id": [None if u == 0 else f"u{u}" for u in rng.integers(0, 6, n)],
        "minutes": [None if m < 0 else float(m) for m in rng.integers(-3, 30, n)],
    })
    folder.mkdir()
    for i, chunk in enumerate(frame.iter_slices(n // parts + 1)):
        chunk.write_parquet(folder / f"part-{i:03d}.parquet")
    return folder


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_batches_equal_one_pass(tmp_path: Path, seed: int) -> None:
    folder = usage_parts(tmp_path / "usage", 3_000, 4, seed)
    usage = scan_usage([folder], RULES, pl.String)
    ids = pl.DataFrame({"customer_id": [f"c{i}" for i in range(45)]})
    whole = compute_metrics(RULES, usage, ids, AS_OF)
    for batch_rows in (97, 500, 1_000):
        batched = compute_metrics(RULES, usage, ids, AS_OF, batch_rows=batch_rows)
        assert batched.values.equals(whole.values), batch_rows
        assert batched.usage_rows == whole.usage_rows
    assert whole.values.filter(pl.col("customer_id") == "c44")["last_login_user"][0] == "none"
    assert whole.unknown_customer_rows == 0


def test_csv_usage_in_batches_equals_one_pass(tmp_path: Path) -> None:
    folder = usage_parts(tmp_path / "usage", 2_000, 1, 5)
    csv_path = tmp_path / "usage.csv"
    pl.read_parquet(folder / "part-000.parquet").write_csv(csv_path)
    usage = scan_usage([csv_path], RULES, pl.String)
    ids = pl.DataFrame({"customer_id": [f"c{i}" for i in range(40)]})
    whole = compute_metrics(RULES, usage, ids, AS_OF)
    batched = compute_metrics(RULES, usage, ids, AS_OF, batch_rows=333)
    assert batched.values.equals(whole.values)
    assert whole.usage_rows + whole.after_as_of_rows == 2_000 and whole.after_as_of_rows > 0


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_replay_equals_compute_metrics_every_day(tmp_path: Path, seed: int) -> None:
    """Backfill's per-day metrics (merged daily partials) equal a full pass for each day."""
    folder = usage_parts(tmp_path / "usage", 3_000, 2, seed)
    usage = scan_usage([folder], RULES, pl.String)
    rows = usage.frame.collect()
    ids = pl.DataFrame({"customer_id": [f"c{i}" for i in range(45)]})
    start = dt.date(2026, 10, 18)  # before the first usage day: empty days come first
    replay = MetricsReplay(RULES, rows, usage.schema, ids, start)
    assert replay.supported
    for offset in range(0, 20):
        day = start + dt.timedelta(days=offset)
        got = replay.metrics(day)
        want = compute_metrics(RULES, usage, ids, day)
        assert_frame_equal(got.values, want.values, check_exact=False, rel_tol=1e-12)
        assert (got.usage_rows, got.unknown_customer_rows, got.after_as_of_rows) == (
            want.usage_rows, want.unknown_customer_rows, want.after_as_of_rows), day


def test_replay_with_numeric_ids_and_skipped_days(tmp_path: Path) -> None:
    folder = usage_parts(tmp_path / "usage", 1_000, 1, 7)
    frame = pl.read_parquet(folder).with_columns(
        pl.col("customer_id").str.slice(1).cast(pl.Int64))
    frame.write_parquet(folder / "part-000.parquet")
    usage = scan_usage([folder], RULES, pl.Int64)
    ids = pl.DataFrame({"customer_id": list(range(40))})
    replay = MetricsReplay(RULES, usage.frame.collect(), usage.schema, ids, AS_OF)
    for day in (dt.date(2026, 10, 22), dt.date(2026, 10, 29), dt.date(2026, 11, 3)):
        want = compute_metrics(RULES, usage, ids, day)
        assert_frame_equal(replay.metrics(day).values, want.values, check_exact=False)
    with pytest.raises(ValueError):
        replay.metrics(dt.date(2026, 10, 1))


def test_replay_declines_a_where_that_reads_the_as_of_date(tmp_path: Path) -> None:
    rules = parse_rules("""\
version: 1
stages: [{name: A}]
initial_stage: A
metrics:
  recent: {agg: count, where: "days_since(timestamp) < 3"}
""")
    folder = usage_parts(tmp_path / "usage", 100, 1, 1)
    usage = scan_usage([folder], rules, pl.String)
    ids = pl.DataFrame({"customer_id": ["c1"]})
    assert not MetricsReplay(rules, usage.frame.collect(), usage.schema, ids, AS_OF).supported


AGGS = [("count", None), ("sum", "minutes"), ("mean", "minutes"), ("min", "minutes"),
        ("max", "timestamp"), ("any", None), ("n_unique", "user_id"), ("first", "event"),
        ("last", "user_id")]


@settings(max_examples=examples(25), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    metrics=st.lists(
        st.tuples(st.sampled_from(AGGS), st.sampled_from([None, 1, 3, 7]),
                  st.sampled_from([None, "event = 'login'", "minutes > 10"])),
        min_size=1, max_size=4),
    seed=st.integers(0, 10_000),
    start_offset=st.integers(-3, 18),
    days=st.integers(1, 6),
)
def test_replay_equals_compute_metrics_on_random_rules(
        tmp_path_factory: pytest.TempPathFactory, metrics: list, seed: int, start_offset: int,
        days: int) -> None:
    lines = []
    for i, ((agg, column), window, where) in enumerate(metrics):
        parts = [f"agg: {agg}"]
        if column:
            parts.append(f"column: {column}")
        if window:
            parts.append(f"window_days: {window}")
        if where:
            parts.append(f'where: "{where}"')
        lines.append(f"  m{i}: {{{', '.join(parts)}}}")
    rules = parse_rules("version: 1\nstages: [{name: A}]\ninitial_stage: A\nmetrics:\n"
                        + "\n".join(lines) + "\n")
    folder = usage_parts(tmp_path_factory.mktemp("u") / "usage", 300, 2, seed)
    usage = scan_usage([folder], rules, pl.String)
    ids = pl.DataFrame({"customer_id": [f"c{i}" for i in range(42)]})
    start = dt.date(2026, 10, 20) + dt.timedelta(days=start_offset)
    replay = MetricsReplay(rules, usage.frame, usage.schema, ids, start)
    for offset in range(days):
        day = start + dt.timedelta(days=offset)
        want = compute_metrics(rules, usage, ids, day)
        got = replay.metrics(day)
        assert_frame_equal(got.values, want.values, check_exact=False, rel_tol=1e-12)
        assert got.usage_rows == want.usage_rows


def _text_keyed(monkeypatch: pytest.MonkeyPatch) -> None:
    """Group by the text ids themselves (the customers' ids are not text-hashed)."""
    monkeypatch.setattr(compute, "_hashed_ids", lambda customer_ids: None)


@pytest.mark.parametrize("seed", [1, 2])
def test_hashed_ids_equal_text_ids(tmp_path: Path, seed: int,
                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """Grouping by a hash of the text id gives what grouping by the text gives."""
    folder = usage_parts(tmp_path / "usage", 3_000, 3, seed)
    usage = scan_usage([folder], RULES, pl.String)
    ids = pl.DataFrame({"customer_id": [f"c{i}" for i in range(30)]})  # c30..c39 unknown
    hashed = compute_metrics(RULES, usage, ids, AS_OF, batch_rows=700)
    _text_keyed(monkeypatch)
    text = compute_metrics(RULES, usage, ids, AS_OF, batch_rows=700)
    assert hashed.values.equals(text.values)
    assert hashed.counts() == text.counts() and hashed.unknown_customer_rows > 0


@pytest.mark.parametrize("dtype", [pl.Int8, pl.Int64, pl.UInt64, pl.UInt32, pl.String])
def test_distinct_values_of_any_integer_type_count_alike_by_hash_and_by_text(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, dtype: pl.DataType) -> None:
    """Under hashed ids, a distinct count packs (value, key) into one 128-bit integer: the
    counts equal those of the (id, value) pairs and of Python's sets, for negative values
    and values above 2^63 too, and a window's."""
    rng = np.random.default_rng(4)
    n = 4_000
    extremes = {pl.Int8: [-128, -1, 0, 127], pl.Int64: [-2**63, -1, 0, 2**63 - 1],
                pl.UInt64: [0, 1, 2**63, 2**64 - 1], pl.UInt32: [0, 7, 2**32 - 1, 5],
                pl.String: ["a", "b", "", "é"]}[dtype]
    frame = pl.DataFrame({
        "customer_id": [f"c{i}" for i in rng.integers(0, 50, n)],
        "timestamp": [dt.datetime(2026, 10, 20) + dt.timedelta(days=int(d))
                      for d in rng.integers(0, 14, n)],
        "code": [None if i == 4 else extremes[i] for i in rng.integers(0, 5, n)],
    }, schema_overrides={"code": dtype})
    (tmp_path / "u").mkdir()
    frame.write_parquet(tmp_path / "u" / "part.parquet")
    rules = parse_rules("""\
version: 1
stages: [{name: A}]
initial_stage: A
metrics:
  codes: {agg: n_unique, column: code}
  codes_3d: {agg: n_unique, column: code, window_days: 3}
""")
    usage = scan_usage([tmp_path / "u"], rules, pl.String)
    ids = pl.DataFrame({"customer_id": [f"c{i}" for i in range(45)]})
    hashed = compute_metrics(rules, usage, ids, AS_OF, batch_rows=900)
    _text_keyed(monkeypatch)
    text = compute_metrics(rules, usage, ids, AS_OF, batch_rows=900)
    assert hashed.values.equals(text.values)
    recent, end = dt.datetime(2026, 10, 30), dt.datetime(2026, 11, 2)  # as of 11-01
    for cid, codes, codes_3d in hashed.values.select("customer_id", "codes", "codes_3d").rows():
        mine = frame.filter(pl.col("customer_id") == cid, pl.col("code").is_not_null(),
                            pl.col("timestamp") < end)
        assert codes == len(set(mine["code"].to_list())), cid
        assert codes_3d == len(set(mine.filter(pl.col("timestamp") >= recent)["code"]
                                   .to_list())), cid


def test_a_hash_shared_by_two_ids_falls_back_to_text(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """An unknown id whose key equals a customer's does not add its rows to that customer:
    the second hash catches it, and the rows are grouped by their text."""
    folder = usage_parts(tmp_path / "usage", 2_000, 2, 7)
    usage = scan_usage([folder], RULES, pl.String)
    ids = pl.DataFrame({"customer_id": ["c1", "c2", "c3"]})  # c10..c19 share c1's key below
    _text_keyed(monkeypatch)
    want = compute_metrics(RULES, usage, ids, AS_OF)
    monkeypatch.undo()
    calls: list[str] = []
    real = compute._grouped

    def grouped(*args, **kwargs):  # type: ignore[no-untyped-def]
        calls.append("hashed" if args[-1].hashed else "text")
        return real(*args, **kwargs)

    monkeypatch.setattr(compute, "_grouped", grouped)
    monkeypatch.setattr(compute, "id_key", lambda ids: ids.str.slice(0, 2).hash(3))
    got = compute_metrics(RULES, usage, ids, AS_OF)
    assert calls == ["hashed", "text"]
    assert got.values.equals(want.values) and got.counts() == want.counts()
    assert got.unknown_customer_rows > 0


def test_csv_spilled_once_blank_timestamps_dropped_bad_ones_named(tmp_path: Path) -> None:
    """A CSV is parsed once into Parquet: blank timestamps are counted and dropped, text
    that is not a date is an error naming its line."""
    good = tmp_path / "usage.csv"
    good.write_text("customer_id,timestamp,event\nc1,2026-10-30 10:00:00,login\n"
                    "c1,   ,login\nc2,,login\nc1,2026-10-31,export\n")
    usage = scan_usage([good], RULES, pl.String)
    assert usage.rows.explain().startswith("Parquet SCAN") or "Parquet" in usage.rows.explain()
    got = compute_metrics(RULES.model_copy(update={"metrics": {
        n: RULES.metrics[n] for n in ("rows", "exported")}}), usage,
        pl.DataFrame({"customer_id": ["c1", "c2"]}), AS_OF)
    assert got.values["rows"].to_list() == [2, 0] and got.null_timestamp_rows == 2
    bad = tmp_path / "bad.csv"
    bad.write_text("customer_id,timestamp,event\nc1,2026-10-30,login\nc1,yesterday,login\n")
    with pytest.raises(DataError) as err:
        scan_usage([bad], RULES, pl.String)
    text = str(err.value)
    assert "yesterday" in text and "line 3" in text


@settings(max_examples=examples(60), deadline=None)
@given(ids=st.lists(st.sampled_from(["a", "b", "c", "d", None]), max_size=5),
       order=st.randoms(use_true_random=False), keep=st.integers(0, 5))
def test_join_values_is_the_left_join_whether_or_not_the_keys_line_up(
        ids: list[str | None], order: Any, keep: int) -> None:
    """`join_values` puts the columns side by side when the keys are the frame's, in its
    order, none NULL; every other case (shuffled, fewer, NULL keys) joins."""
    frame = pl.DataFrame({"customer_id": ids, "x": list(range(len(ids)))},
                         schema={"customer_id": pl.String, "x": pl.Int64})
    unique = list(dict.fromkeys(ids))
    if order.random() < 0.5:
        order.shuffle(unique)
    unique = unique[:keep] if order.random() < 0.3 else unique
    values = pl.DataFrame({"customer_id": unique, "m": [f"v{k}" for k in unique]},
                          schema={"customer_id": pl.String, "m": pl.String})
    want = frame.join(values, on="customer_id", how="left", maintain_order="left")
    assert_frame_equal(compute.join_values(frame, values, "customer_id"), want)
