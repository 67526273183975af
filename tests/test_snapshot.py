"""The CTA snapshot (`lifecycle_cli.ctas.snapshot`): what runs write, what the state keeps,
and that reading it gives what the CTA events give, for states of older versions too."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import polars as pl
from conftest import write_csv

from lifecycle_cli import parse_rules
from lifecycle_cli.columns import CTA_SCHEMA
from lifecycle_cli.ctas.decide import current
from lifecycle_cli.jobs.nightly import run
from lifecycle_cli.state.store import INDEX, SNAPSHOT_DAYS, SNAPSHOTS, DayRecord, State
from lifecycle_cli.state.view import StateView

RULES = parse_rules("""
version: 1
stages:
  - {name: Onboarding, expected_days: 3}
  - {name: Launched}
initial_stage: Onboarding
default_owner: CS Ops
transitions:
  - {id: live, from: Onboarding, to: Launched, when: "go"}
ctas:
  - {id: hello, name: Welcome, on: enter, stage: Onboarding, owner: csm, playbook: onboarding}
  - {id: late, name: Late, on: overdue, stage: Onboarding, due_days: 1, owner: csm}
  - {id: check, name: Check in, on: enter, stage: Launched, owner: csm, playbook: check}
playbooks:
  onboarding:
    - {task: Send the welcome pack, due_days: 1}
    - {task: Hold the kickoff, due_days: 5}
  check:
    - {task: Look at usage, due_days: 2}
""")
DAY0 = dt.date(2026, 11, 1)


def day(i: int) -> dt.date:
    return DAY0 + dt.timedelta(days=i)


def customers(tmp: Path, i: int) -> Path:
    """Day i's export: a customer goes live every other day, a new one arrives each day."""
    rows = [{"customer_id": f"{n:03d}", "csm": ["ann", "bo", ""][n % 3],
             "name": f"Customer {n}", "go": str(n < i // 2).lower()} for n in range(i + 2)]
    return write_csv(tmp / f"customers-{i}.csv", rows)


def nights(tmp: Path, state: Path, days: range, **kw: Any) -> None:
    for i in days:
        run(RULES, customers(tmp, i), [], day(i), state=state, **kw)


def without_snapshots(state: Path) -> StateView:
    """The state as a version before snapshots wrote it (the index names no snapshot)."""
    old = State.open(state)
    old.days = {d: DayRecord({k: v for k, v in r.files.items() if k not in SNAPSHOTS})
                for d, r in old.days.items()}
    return StateView(old)


def by_id(frame: pl.DataFrame, columns: list[str] | None = None) -> pl.DataFrame:
    return frame.select(columns or frame.columns).sort("cta_id", *(
        ["seq"] if "seq" in frame.columns else []))


def test_each_run_writes_its_snapshot_and_the_state_keeps_the_latest_two(tmp_path: Path) -> None:
    state = tmp_path / "state"
    nights(tmp_path, state, range(5))
    index = json.loads((state / INDEX).read_text())["days"]
    with_snapshot = [d for d, files in index.items() if set(SNAPSHOTS) <= set(files)]
    assert with_snapshot == [day(3).isoformat(), day(4).isoformat()]
    assert SNAPSHOT_DAYS == 2
    for table in SNAPSHOTS:  # the older dates' files are gone from the folder too
        assert sorted(p.parent.name for p in (state / table).rglob("*.parquet")) == [
            f"as_of={day(3)}", f"as_of={day(4)}"]


def test_the_snapshot_holds_what_the_events_give(tmp_path: Path) -> None:
    state = tmp_path / "state"
    nights(tmp_path, state, range(6))
    view, old = StateView.open(state), without_snapshots(state)
    events = view.history("ctas")
    assert events["status"].to_list().count("closed") > 0  # CTAs closed along the way
    for d in view.days:
        snap = view.snapshot(d)
        # each CTA's latest row, as a reduction of every earlier date's events gives it:
        # the snapshot's and the archive's
        expected = current(events.filter(pl.col("as_of") <= d))
        assert by_id(view.ctas(d), list(CTA_SCHEMA)).equals(by_id(expected)), d
        # the snapshot: the open CTAs, and the closed ones of visits that go on (a date
        # whose snapshot the state no longer keeps rebuilds every CTA from the events)
        assert snap.complete == (d < view.days[-SNAPSHOT_DAYS]), d
        stages = view.stages(d)
        assert stages is not None
        visit = ["customer_id", "stage", "stage_entered_at"]
        going_on = expected.join(stages.select(visit), on=visit, how="semi", nulls_equal=True)
        kept = pl.concat([expected.filter(pl.col("status") == "open"),
                          going_on.filter(pl.col("status") == "closed")])
        assert by_id(snap.ctas, list(CTA_SCHEMA)).equals(by_id(expected if snap.complete
                                                             else kept)), d
        # the open ones first, so a reader of the open ones skips the rest
        status = snap.ctas["status"].to_list()
        assert status == sorted(status, key=lambda s: s != "open")
        # the tasks of the open CTAs, none done
        open_ids = expected.filter(pl.col("status") == "open")["cta_id"]
        tasks = view.history("tasks", None, d).filter(pl.col("cta_id").is_in(open_ids.implode()))
        assert by_id(snap.tasks, tasks.columns).equals(by_id(tasks)), d
        assert snap.tasks["done_on"].null_count() == snap.tasks.height
        # and a state without snapshots rebuilds the same (every CTA, the same tasks)
        rebuilt = old.snapshot(d)
        assert by_id(old.ctas(d)).equals(by_id(view.ctas(d))), d
        assert by_id(rebuilt.open).equals(by_id(snap.open)), d
        assert by_id(rebuilt.tasks).equals(by_id(snap.tasks)), d
    assert view.worklist().items.equals(old.worklist().items)


def test_a_state_written_before_snapshots_reads_the_same_and_the_next_run_writes_one(
        tmp_path: Path) -> None:
    new, old = tmp_path / "new", tmp_path / "old"
    nights(tmp_path, new, range(4))
    nights(tmp_path, old, range(4))
    # what an older version left: no snapshot named in the index, and no files for it
    index = json.loads((old / INDEX).read_text())
    for files in index["days"].values():
        for table in SNAPSHOTS:
            files.pop(table, None)
    (old / INDEX).write_text(json.dumps(index))
    assert StateView.open(old).worklist().items.equals(StateView.open(new).worklist().items)
    nights(tmp_path, old, range(4, 6))
    nights(tmp_path, new, range(4, 6))
    for d in (day(4), day(5)):
        a, b = StateView.open(old).snapshot(d), StateView.open(new).snapshot(d)
        assert by_id(a.ctas).equals(by_id(b.ctas)) and by_id(a.tasks).equals(by_id(b.tasks))
    assert set(SNAPSHOTS) <= set(State.open(old).days[day(5)].files)


def test_a_rerun_of_the_latest_date_starts_from_the_snapshot_before_it(tmp_path: Path) -> None:
    state = tmp_path / "state"
    nights(tmp_path, state, range(4))

    def files() -> dict[str, str]:  # the manifest holds the run's duration: left out
        return {k: v for k, v in State.open(state).days[day(3)].files.items() if k != "manifest"}

    before = files()
    assert set(SNAPSHOTS) <= set(before)
    nights(tmp_path, state, range(3, 4))  # the same date again: the same files
    assert files() == before


def test_a_rewind_rebuilds_the_snapshot_from_the_events(tmp_path: Path) -> None:
    state, short = tmp_path / "state", tmp_path / "short"
    nights(tmp_path, state, range(6))
    run(RULES, customers(tmp_path, 2), [], day(2), state=state, rewind=True)
    nights(tmp_path, short, range(3))
    a, b = StateView.open(state), StateView.open(short)
    assert a.days == b.days
    # the rewound date has its snapshot again; the one before it rebuilds from the events
    assert [d for d, r in State.open(state).days.items() if "cta_snapshot" in r.files] == [day(2)]
    for d in a.days:
        assert by_id(a.ctas(d)).equals(by_id(b.ctas(d))), d
    assert a.worklist().items.equals(b.worklist().items)


def test_closed_ctas_whose_visit_ended_leave_the_snapshot_for_the_archive(tmp_path: Path
                                                                         ) -> None:
    state = tmp_path / "state"
    nights(tmp_path, state, range(8))
    view = StateView.open(state)
    everything, snap = view.ctas(), view.snapshot()
    archived = view.history("cta_archive")
    assert archived.height and archived["status"].unique().to_list() == ["closed"]
    assert snap.ctas.height + archived["cta_id"].n_unique() == everything.height
    assert snap.ctas.height < everything.height


RESUMED = parse_rules("""
version: 1
stages: [{name: Adopting}, {name: Renewal}]
initial_stage: Adopting
ctas:
  - {id: qbr, name: QBR, on: when, stage: Adopting, when: "true"}
""")


def test_a_hand_edit_back_to_an_old_visit_brings_its_ctas_back_from_the_archive(
        tmp_path: Path) -> None:
    """The CRM moves a customer out of Adopting and back, with the old start date: the same
    visit, whose CTA the rule must not create again."""
    state = tmp_path / "state"
    exports = [("Adopting", "2026-10-01"), ("Renewal", "2026-11-02"),
               ("Adopting", "2026-10-01"), ("Adopting", "2026-10-01")]
    for i, (stage, since) in enumerate(exports):
        crm = write_csv(tmp_path / f"crm-{i}.csv", [
            {"customer_id": "P1", "stage": stage, "stage_entered_at": since}])
        run(RESUMED, crm, [], day(i), state=state)
    view = StateView.open(state)
    events = view.history("ctas").select("as_of", "cta_id", "status")
    assert events.rows() == [(day(0), "qbr:P1:Adopting:2026-10-01", "open"),
                             (day(1), "qbr:P1:Adopting:2026-10-01", "closed")]
    assert view.history("cta_archive")["as_of"].to_list() == [day(1)]
    # back in that visit, its closed CTA is in the snapshot again
    assert view.snapshot().ctas.select("cta_id", "status").rows() == [
        ("qbr:P1:Adopting:2026-10-01", "closed")]
    assert view.ctas().height == 1
