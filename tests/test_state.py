"""The state folder: which stage a run starts from, atomic commits, garbage, the lock."""

from __future__ import annotations

import datetime as dt
import errno
import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from cli_util import snapshot

from lifecycle_cli.columns import STAGE_TABLE_SCHEMA
from lifecycle_cli.day.start import Start, empty_overrides, merge_start, stage_table
from lifecycle_cli.errors import OutputError
from lifecycle_cli.state import store as state_mod
from lifecycle_cli.state.lock import lock
from lifecycle_cli.state.store import DayWrite, State, StateError, Transaction
from lifecycle_cli.state.view import StateView

DAY = dt.date(2026, 11, 2)
D = dt.date


def export(rows: list[tuple[str, str | None, dt.date | None]]) -> pl.DataFrame:
    return pl.DataFrame(
        rows, schema={"customer_id": pl.String, "stage": pl.String, "stage_entered_at": pl.Date},
        orient="row",
    )


STATE_TABLE = pl.DataFrame(
    [
        # customer, stage, entered, last seen, what the export gave last time (stage, date)
        ("a", "Launched", D(2026, 10, 1), D(2026, 11, 1), "Onboarding", D(2026, 9, 1)),
        ("b", "Adopting", D(2026, 9, 1), D(2026, 11, 1), None, None),
        ("c", "Renewal", D(2026, 8, 1), D(2026, 11, 1), "Renewal", None),
        ("gone", "Churned", D(2026, 7, 1), D(2026, 10, 1), "Churned", D(2026, 7, 1)),
    ],
    schema=STAGE_TABLE_SCHEMA,
    orient="row",
)


def merge(typed: pl.DataFrame, table: pl.DataFrame = STATE_TABLE, prefer: str = "export"
          ) -> tuple[pl.DataFrame, pl.DataFrame, int]:
    merged = merge_start(typed, Start(stages=table, prefer=prefer), DAY)
    return merged.typed, merged.overrides, merged.lagging


def test_the_state_fills_what_the_export_leaves_empty() -> None:
    typed = export([("a", None, None), ("new", None, None)])
    merged, overrides, _ = merge(typed)
    assert merged.rows() == [("a", "Launched", D(2026, 10, 1)), ("new", None, None)]
    assert overrides.height == 0


def test_the_export_wins_and_a_hand_change_is_recorded() -> None:
    typed = export([
        ("a", "Launched", None),  # the CRM caught up with the state, no date: the state's date
        ("b", "Will Churn", D(2026, 10, 30)),  # changed by hand, with a new date
        ("c", "Adopting", None),  # changed by hand, no date: seen today
    ])
    merged, overrides, _ = merge(typed)
    assert merged.rows() == [
        ("a", "Launched", D(2026, 10, 1)),
        ("b", "Will Churn", D(2026, 10, 30)),
        ("c", "Adopting", DAY),
    ]
    assert overrides.select("customer_id", "state_stage", "export_stage", "kept").rows() == [
        ("b", "Adopting", "Will Churn", "export"),
        ("c", "Renewal", "Adopting", "export"),
    ]


def test_a_hand_changed_stage_whose_date_the_export_left_as_it_was_counts_from_today() -> None:
    """The CRM changed the stage but not its date field: that date was the old stage's."""
    typed = export([("a", "Renewal", D(2026, 9, 1))])
    merged, overrides, _ = merge(typed)
    assert merged.rows() == [("a", "Renewal", DAY)]
    assert overrides["export_stage"].to_list() == ["Renewal"]


def test_an_export_that_still_says_what_it_said_lags_and_the_state_wins() -> None:
    """The CRM was not updated from our outputs: its old stage is not a person's change."""
    typed = export([("a", "Onboarding", D(2026, 9, 1)), ("c", "Renewal", None)])
    merged, overrides, lagging = merge(typed)
    assert merged.rows() == [("a", "Launched", D(2026, 10, 1)), ("c", "Renewal", D(2026, 8, 1))]
    assert overrides.height == 0 and lagging == 1


def test_a_date_the_export_did_not_change_is_the_crm_lagging() -> None:
    """Same stage, an older date the export gave last time too: the state's date stands
    (the tool moved the customer out and back since; its visit began later)."""
    table = STATE_TABLE.with_columns(
        pl.when(pl.col("customer_id") == "a").then(pl.lit("Launched"))
        .otherwise(pl.col("export_stage")).alias("export_stage"))
    typed = export([("a", "Launched", D(2026, 9, 1))])
    merged, overrides, lagging = merge(typed, table)
    assert merged.rows() == [("a", "Launched", D(2026, 10, 1))]
    assert overrides.height == 0 and lagging == 0


def test_a_date_changed_by_hand_wins_and_is_recorded() -> None:
    typed = export([("gone", "Churned", D(2026, 7, 15)), ("c", "Renewal", D(2026, 8, 1))])
    merged, overrides, _ = merge(typed)
    assert merged.rows() == [("gone", "Churned", D(2026, 7, 15)), ("c", "Renewal", D(2026, 8, 1))]
    # c's date is new to the export, but the state has it already: no edit to record
    assert overrides.select("customer_id", "state_entered_at", "export_entered_at").rows() == [
        ("gone", D(2026, 7, 1), D(2026, 7, 15))]


def test_a_state_without_the_export_s_dates_reads_its_dates_as_unchanged() -> None:
    """States written before the export's date was remembered."""
    old = STATE_TABLE.drop("export_entered_at")
    typed = export([("gone", "Churned", D(2026, 7, 15)), ("b", "Will Churn", D(2026, 10, 30))])
    merged, _, _ = merge(typed, old)
    assert merged.rows() == [("gone", "Churned", D(2026, 7, 1)),
                             ("b", "Will Churn", D(2026, 10, 30))]


def test_prefer_state_keeps_the_state_and_still_records() -> None:
    typed = export([("b", "Will Churn", D(2026, 10, 30)), ("new", "Onboarding", None)])
    merged, overrides, _ = merge(typed, prefer="state")
    assert merged.rows() == [("b", "Adopting", D(2026, 9, 1)), ("new", "Onboarding", None)]
    assert overrides["kept"].to_list() == ["state"]


def test_an_export_that_does_not_speak_for_the_day_is_ignored_but_remembered() -> None:
    """A backfill replays past days with today's export."""
    typed = export([("a", "Renewal", D(2026, 10, 30)), ("new", "Onboarding", D(2026, 10, 1))])
    merged = merge_start(typed, Start(stages=STATE_TABLE, use_export_stages=False), DAY)
    assert merged.typed.rows() == [("a", "Launched", D(2026, 10, 1)), ("new", None, None)]
    assert merged.overrides.height == 0


def test_ids_match_across_types() -> None:
    """An id read as a number today matches the same id stored as text."""
    typed = pl.DataFrame({"customer_id": [7], "stage": [None], "stage_entered_at": [None]},
                         schema={"customer_id": pl.Int64, "stage": pl.String,
                                 "stage_entered_at": pl.Date})
    table = STATE_TABLE.with_columns(pl.lit("7").alias("customer_id")).head(1)
    merged, _, _ = merge(typed, table)
    assert merged["stage"].to_list() == ["Launched"]


def test_stage_table_keeps_customers_missing_from_the_export() -> None:
    final = export([("a", "Adopting", DAY), ("new", "Onboarding", DAY)])
    given = export([("a", "Launched", D(2026, 9, 1)), ("new", None, None)])
    table = stage_table(final, STATE_TABLE, DAY, export=given)
    assert table["customer_id"].to_list() == ["a", "new", "b", "c", "gone"]
    assert table["export_stage"].to_list() == ["Launched", None, None, "Renewal", "Churned"]
    assert table["export_entered_at"].to_list()[:2] == [D(2026, 9, 1), None]
    assert table.filter(pl.col("customer_id") == "gone")["last_seen"][0] == D(2026, 10, 1)
    assert table.filter(pl.col("customer_id") == "a")["last_seen"][0] == DAY


def day_write(day: dt.date, stage: str = "Launched") -> DayWrite:
    return DayWrite(
        as_of=day,
        stages=stage_table(export([("a", stage, day)]), None, day),
        transitions=pl.DataFrame({"as_of": [day], "customer_id": ["a"], "rule_id": ["r"]}),
        overrides=empty_overrides(),
        manifest={"as_of": day.isoformat(), "rows": {"customers": 1}},
    )


def commit(path: Path, *days: DayWrite, drop_after: dt.date | None = None) -> StateView:
    state = State.open(path)
    txn = Transaction(state)
    for day in days:
        txn.put(day)
    if drop_after:
        txn.drop_after(drop_after)
    txn.commit()
    return StateView.open(path)


def test_a_repeated_date_replaces_its_records(tmp_path: Path) -> None:
    commit(tmp_path, day_write(D(2026, 11, 1)), day_write(D(2026, 11, 2)))
    first = snapshot(tmp_path)
    state = commit(tmp_path, day_write(D(2026, 11, 2)))
    assert snapshot(tmp_path) == first  # content-named files: the same bytes, the same names
    state = commit(tmp_path, day_write(D(2026, 11, 2), stage="Adopting"))
    assert list(state.days) == [D(2026, 11, 1), D(2026, 11, 2)]
    assert state.history("transitions").height == 2
    assert state.stages(D(2026, 11, 2))["stage"].to_list() == ["Adopting"]
    # the replaced files are gone: one file per table and date
    assert len(list((tmp_path / "stages").rglob("*.parquet"))) == 2


def test_a_read_that_races_a_commit_reads_the_index_again(tmp_path: Path) -> None:
    """Readers take no lock: a run that commits meanwhile may remove a file the index they
    read named (it replaced that date). The view reads the new index and tries again."""
    view = commit(tmp_path, day_write(D(2026, 11, 1)))
    commit(tmp_path, day_write(D(2026, 11, 1), stage="Adopting"))  # the old file is gone
    assert view.stages(D(2026, 11, 1))["stage"].to_list() == ["Adopting"]
    assert view.history("transitions").height == 1


def test_rewind_drops_later_dates_and_their_files(tmp_path: Path) -> None:
    commit(tmp_path, *(day_write(D(2026, 11, d)) for d in (1, 2, 3)))
    state = commit(tmp_path, day_write(D(2026, 11, 2)), drop_after=D(2026, 11, 2))
    assert list(state.days) == [D(2026, 11, 1), D(2026, 11, 2)]
    assert not (tmp_path / "transitions" / "as_of=2026-11-03").exists()
    assert state.before(D(2026, 11, 2)) == D(2026, 11, 1)
    assert state.manifest(D(2026, 11, 1))["as_of"] == "2026-11-01"


def folders(path: Path) -> list[str]:
    return sorted(str(p.relative_to(path)) for p in path.rglob("*") if p.is_dir())


def test_a_full_disk_leaves_the_state_as_it_was(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    commit(tmp_path, day_write(D(2026, 11, 1)))
    before, before_folders = snapshot(tmp_path), folders(tmp_path)
    real_open = open
    opened = []

    class HalfWritten(io.BufferedWriter):
        def write(self, data: Any) -> int:  # half of it fits, then the disk is full
            super().write(bytes(data)[: len(data) // 2])
            self.flush()
            raise OSError(errno.ENOSPC, "No space left on device")

    def full_disk(path: Any, mode: str = "r", *args: Any, **kwargs: Any) -> Any:
        opened.append(path)
        if len(opened) == 3:  # the third file
            return HalfWritten(real_open(path, mode, buffering=0))
        return real_open(path, mode, *args, **kwargs)

    monkeypatch.setattr(state_mod, "open", full_disk, raising=False)
    with pytest.raises(OutputError, match="No space left"):
        commit(tmp_path, day_write(D(2026, 11, 2)))
    monkeypatch.undo()
    # no temporary file, not even the half-written one, and no folder made for the new day
    assert snapshot(tmp_path) == before
    assert folders(tmp_path) == before_folders
    assert list(State.open(tmp_path).days) == [D(2026, 11, 1)]


def test_a_failed_commit_removes_the_files_it_moved(tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """The files are renamed to their names, then the index cannot be written: the files
    that the old index does not name go, those it names (same bytes) stay."""
    commit(tmp_path, day_write(D(2026, 11, 1)))
    before = snapshot(tmp_path)

    def no_index(target: Path, data: bytes) -> None:
        raise OSError(errno.EFBIG, "File too large")

    monkeypatch.setattr(state_mod, "write_atomic", no_index)
    with pytest.raises(OutputError, match="File too large"):
        commit(tmp_path, day_write(D(2026, 11, 1)), day_write(D(2026, 11, 2)))
    monkeypatch.undo()
    assert snapshot(tmp_path) == before
    assert list(StateView.open(tmp_path).days) == [D(2026, 11, 1)]


def test_collect_garbage_removes_what_a_killed_run_left(tmp_path: Path) -> None:
    commit(tmp_path, day_write(D(2026, 11, 1)))
    before = snapshot(tmp_path)
    assert not (tmp_path / state_mod.WRITING).exists()  # a commit clears its marker
    (tmp_path / ".state.json.tmp-4242").write_text('{"format": 1, "da')
    (tmp_path / "transitions" / "as_of=2026-11-01" / ".part-x.parquet.tmp-4242").write_text("x")
    (tmp_path / "ctas" / "as_of=2026-11-02").mkdir(parents=True)
    (tmp_path / "ctas" / "as_of=2026-11-02" / "part-y.parquet").write_text("y")
    # a killed run's marker: the data folders are walked
    (tmp_path / state_mod.WRITING).touch()
    assert state_mod.collect_garbage(State.open(tmp_path)) == 3
    assert snapshot(tmp_path) == before
    assert not (tmp_path / "ctas" / "as_of=2026-11-02").exists()
    assert not (tmp_path / state_mod.WRITING).exists()


def test_collect_garbage_walks_nothing_after_clean_runs(tmp_path: Path) -> None:
    """Without a killed run's marker only the index's temporary files are looked for: a
    nightly run's cost does not grow with the history."""
    commit(tmp_path, day_write(D(2026, 11, 1)))
    (tmp_path / ".state.json.tmp-4242").write_text("{")
    stray = tmp_path / "transitions" / "as_of=2026-11-01" / "part-stray.parquet"
    stray.write_text("x")
    assert state_mod.collect_garbage(State.open(tmp_path)) == 1
    assert stray.exists()


def test_a_commit_removes_the_files_of_what_it_replaced(tmp_path: Path) -> None:
    commit(tmp_path, day_write(D(2026, 11, 1)))
    old = {p for p in tmp_path.rglob("*.parquet")}
    commit(tmp_path, day_write(D(2026, 11, 1), stage="Adopting"))
    new = {p for p in tmp_path.rglob("*.parquet")}
    assert old - new and new - old  # the replaced date's changed tables went
    named = {tmp_path / f for r in State.open(tmp_path).days.values() for f in r.files.values()}
    assert new == {p for p in named if p.suffix == ".parquet"}


def test_a_damaged_index_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "state.json").write_text("{not json")
    with pytest.raises(StateError, match="cannot read the state index"):
        State.open(tmp_path)
    (tmp_path / "state.json").write_text(json.dumps({"format": 99, "days": {}}))
    with pytest.raises(StateError, match="format 99"):
        State.open(tmp_path)


HOLD = """
import sys, time
from pathlib import Path
from lifecycle_cli.state.lock import lock
with lock(Path(sys.argv[1]), "lifecycle run --as-of 2026-11-02"):
    print("locked", flush=True)
    time.sleep(60)
"""


def hold_lock(path: Path) -> subprocess.Popen[str]:
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(path)], stdout=subprocess.PIPE,
                            text=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "locked"
    return proc


def test_a_second_holder_is_refused_with_who_and_since(tmp_path: Path) -> None:
    holder = hold_lock(tmp_path)
    try:
        with pytest.raises(StateError) as info, lock(tmp_path, "lifecycle run"):
            pass
        message = info.value.problems[0].message
        assert f"pid {holder.pid}" in message
        assert "lifecycle run --as-of 2026-11-02" in message and "since 20" in message
    finally:
        holder.kill()
        holder.wait()


def test_a_killed_holder_leaves_a_stale_lock_that_is_cleared(tmp_path: Path) -> None:
    holder = hold_lock(tmp_path)
    os.kill(holder.pid, signal.SIGKILL)
    holder.wait()
    assert str(holder.pid) in (tmp_path / "lock").read_text()  # it could not clean up
    started = time.monotonic()
    with lock(tmp_path, "lifecycle run") as stale:
        assert stale is not None and stale.pid == holder.pid
    assert time.monotonic() - started < 5
    assert (tmp_path / "lock").read_text() == ""  # released cleanly this time
    with lock(tmp_path, "lifecycle run") as stale:
        assert stale is None
