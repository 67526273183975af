"""CTAs handled by people (`lifecycle_cli.ctas.actions`, `jobs/cta_actions.py`): close,
snooze, assign, done, and a CRM's statuses imported; across runs, re-runs, backfills and
rewinds; through the library and through `lifecycle ctas ...`."""

from __future__ import annotations

import datetime as dt
import getpass
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from cli_util import ROOT, commands, lifecycle, snapshot
from conftest import examples, write_csv
from hypothesis import given, settings
from hypothesis import strategies as st

from lifecycle_cli import parse_rules
from lifecycle_cli.ctas import snapshot as cta_snapshot
from lifecycle_cli.ctas.actions import action_rows, empty_actions
from lifecycle_cli.jobs.backfill import backfill
from lifecycle_cli.jobs.cta_actions import act, import_statuses
from lifecycle_cli.jobs.nightly import run
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
  - {id: hello, name: Welcome, on: enter, stage: Onboarding, due_days: 2, owner: csm,
     playbook: onboarding}
  - {id: late, name: Late, on: overdue, stage: Onboarding, due_days: 1, owner: csm}
playbooks:
  onboarding:
    - {task: Send the welcome pack, due_days: 1}
    - {task: Hold the kickoff, due_days: 5}
    - {task: Sign the order form, due_days: 3, owner: ae}
""")
D0 = dt.date(2026, 11, 2)
HELLO = "hello:001:Onboarding:2026-11-02"
OTHER = "hello:002:Onboarding:2026-11-02"


def day(i: int) -> dt.date:
    return D0 + dt.timedelta(days=i)


class Nights:
    """A state folder and the customers export each night, run as cron runs them."""

    def __init__(self, tmp: Path) -> None:
        self.tmp, self.state = tmp, tmp / "state"
        tmp.mkdir(exist_ok=True)

    def export(self, go: bool = False) -> Path:
        rows = [{"customer_id": "001", "name": "Acme", "csm": "ann", "ae": "zed",
                 "go": str(go).lower()},
                {"customer_id": "002", "name": "Birch", "csm": "bo", "ae": "",
                 "go": "false"}]
        return write_csv(self.tmp / f"customers-{go}.csv", rows)

    def run(self, i: int, go: bool = False, **kw: Any) -> Any:
        return run(RULES, self.export(go), [], day(i), state=self.state, **kw)

    @property
    def view(self) -> StateView:
        return StateView.open(self.state)

    def row(self, cta_id: str = HELLO, on: dt.date | None = None) -> dict[str, Any]:
        return self.view.ctas(on).filter(pl.col("cta_id") == cta_id).row(0, named=True)

    def listed(self, on: dt.date | None = None, **kw: Any) -> list[tuple[str, int]]:
        return self.view.worklist(on, **kw).items.select("cta_id", "seq").rows()


def test_closed_by_hand_it_stays_closed_and_the_visit_gets_no_other(tmp_path: Path) -> None:
    n = Nights(tmp_path)
    n.run(0)
    done = act(n.state, "close", [HELLO], by="ana", reason="kickoff held")
    assert done.recorded.select("action", "cta_id", "by", "reason").rows() == [
        ("close", HELLO, "ana", "kickoff held")]
    assert all(c != HELLO for c, _ in n.listed())
    for i in range(1, 6):  # overdue from day 4: `late` fires, `hello` never again
        n.run(i)
    row = n.row()
    assert (row["status"], row["close_reason"], row["closed_on"], row["updated_by"]) == (
        "closed", "by hand: kickoff held", day(0), "ana")
    events = n.view.history("ctas")
    assert events.filter(pl.col("cta_id") == HELLO).height == 1  # created; runs added none
    assert "late:001:Onboarding:2026-11-02" in events["cta_id"].to_list()
    n.run(6, go=True)  # the visit ends: nothing to close any more
    assert n.view.history("ctas").filter(pl.col("cta_id") == HELLO).height == 1


def test_a_snoozed_cta_is_out_of_the_worklist_until_its_date(tmp_path: Path) -> None:
    n = Nights(tmp_path)
    n.run(0)
    act(n.state, "snooze", [HELLO], until=day(3))
    wl = n.view.worklist()
    assert all(c != HELLO for c, _ in wl.items.select("cta_id", "seq").rows())
    assert wl.snoozed == 1 and n.view.worklist(owner="bo").snoozed == 0
    for i in (1, 2):
        n.run(i)
        assert all(c != HELLO for c, _ in n.listed()), i
    n.run(3)
    assert [s for c, s in n.listed() if c == HELLO] == [0, 1, 2, 3]
    row = n.row()
    # a due date before the snooze date moved to it; a later one stayed
    assert (row["due_on"], row["snoozed_until"], row["status"]) == (day(3), day(3), "open")
    tasks = n.view.snapshot().tasks.filter(pl.col("cta_id") == HELLO).sort("seq")
    assert tasks["due_on"].to_list() == [day(3), day(5), day(3)]


def test_a_reassigned_cta_keeps_its_owner_across_runs_and_when_it_closes(tmp_path: Path
                                                                         ) -> None:
    n = Nights(tmp_path)
    n.run(0)
    act(n.state, "assign", [HELLO], owner="Zoe")
    for i in (1, 2):
        n.run(i)
    assert n.row()["owner"] == "Zoe"
    tasks = n.view.snapshot().tasks.filter(pl.col("cta_id") == HELLO).sort("seq")
    assert tasks["owner"].to_list() == ["Zoe", "Zoe", "zed"]  # the ae's task stays his
    assert n.view.worklist(owner="zoe").items["seq"].to_list() == [0, 1, 2]
    n.run(3, go=True)
    closed = n.view.history("ctas").filter(pl.col("status") == "closed")
    assert closed.select("cta_id", "owner", "close_reason").rows() == [
        (HELLO, "Zoe", "stage exit: Onboarding → Launched")]


def test_tasks_marked_done_leave_the_worklist(tmp_path: Path) -> None:
    n = Nights(tmp_path)
    n.run(0)
    act(n.state, "done", [HELLO], seqs=[1, 3], by="ana")
    assert [s for c, s in n.listed() if c == HELLO] == [0, 2]
    n.run(1)
    assert [s for c, s in n.listed() if c == HELLO] == [0, 2]
    done = n.view.snapshot().tasks.filter(pl.col("done_on").is_not_null())
    assert done.select("seq", "done_on", "done_by").rows() == [(1, day(0), "ana"),
                                                                (3, day(0), "ana")]
    again = act(n.state, "done", [HELLO], seqs=[1])
    assert again.recorded.height == 0 and "was done on" in again.unchanged[0]


def test_a_rerun_of_the_date_applies_its_hand_actions_again(tmp_path: Path) -> None:
    n = Nights(tmp_path)
    n.run(0)
    n.run(1)
    act(n.state, "close", [HELLO], reason="not needed")
    act(n.state, "assign", [OTHER], owner="Zoe")
    n.run(1)  # the same date again: its run is replaced, the hand actions are kept
    assert n.row()["status"] == "closed" and n.row(OTHER)["owner"] == "Zoe"
    assert n.view.actions().height == 2
    # a re-run where the customer left the stage: the close no longer applies
    result = n.run(1, go=True)
    assert n.row()["close_reason"] == "stage exit: Onboarding → Launched"
    assert any("1 hand action(s) recorded on 2026-11-03 no longer apply" in w
               for w in result.summary["warnings"])
    assert n.row(OTHER)["owner"] == "Zoe"


def test_a_backfill_applies_the_hand_actions_of_the_dates_it_replays(tmp_path: Path) -> None:
    n = Nights(tmp_path)
    export = n.export()
    for i in range(5):
        n.run(i)
        if i == 1:
            act(n.state, "snooze", [HELLO], until=day(3))
            act(n.state, "done", [OTHER], seqs=[2])
        if i == 2:
            act(n.state, "assign", [OTHER], owner="Zoe")
    replayed = tmp_path / "replayed"
    shutil.copytree(n.state, replayed)
    backfill(RULES, None, export, [], day(0), day(4), replayed, keep_export_stages=True)
    a, b = n.view, StateView.open(replayed)
    assert a.actions().equals(b.actions())
    for d in a.days:
        assert a.ctas(d).sort("cta_id").equals(b.ctas(d).sort("cta_id")), d
        assert a.snapshot(d).tasks.sort("cta_id", "seq").equals(
            b.snapshot(d).tasks.sort("cta_id", "seq")), d
    assert a.worklist().items.equals(b.worklist().items)


def test_a_rewind_drops_the_hand_actions_of_the_dates_it_drops(tmp_path: Path) -> None:
    n = Nights(tmp_path)
    n.run(0)
    act(n.state, "assign", [HELLO], owner="Zoe")
    n.run(1)
    act(n.state, "close", [OTHER], reason="merged")
    n.run(1, rewind=True)  # the latest date again: kept
    assert n.view.actions()["action"].to_list() == ["assign", "close"]
    n.run(2)
    n.run(0, rewind=True)  # day 0 again: its action kept, day 1's dropped with day 1
    assert n.view.actions()["action"].to_list() == ["assign"]
    assert n.row()["owner"] == "Zoe" and n.row(OTHER)["status"] == "open"


def test_mistakes_record_nothing(tmp_path: Path) -> None:
    n = Nights(tmp_path)
    n.run(0)
    act(n.state, "close", [OTHER], reason="merged")
    before = snapshot(n.state)
    cases = [
        (["close", "hello:001:Onboarding:2026-11-03", "--reason", "x"], 2,
         f"did you mean '{HELLO}'?"),
        (["snooze", OTHER, "--until", "2026-11-20"], 2, "a closed CTA cannot be snoozed"),
        (["snooze", HELLO, "--until", "2026-11-01"], 2, "is before the state's date"),
        (["done", HELLO, "4"], 2, "its tasks: 1. Send the welcome pack; 2. Hold the kickoff"),
        (["assign", HELLO, "--owner", " "], 2, "--owner is empty"),
        (["close", HELLO, "--reason", ""], 2, "--reason is empty"),
        (["close", "nonsense", "--reason", "x"], 2, "rule:customer:stage:visit-start"),
    ]
    for args, code, message in cases:
        proc = lifecycle("ctas", *args, "--state", n.state)
        assert proc.returncode == code, (args, proc.stderr)
        assert message in proc.stderr, (args, proc.stderr)
        assert "nothing was written" in proc.stderr
    assert {k: v for k, v in snapshot(n.state).items() if k != "lock"} == {
        k: v for k, v in before.items() if k != "lock"}
    empty = tmp_path / "empty"
    empty.mkdir()
    proc = lifecycle("ctas", "close", HELLO, "--reason", "x", "--state", empty)
    assert proc.returncode == 1 and "no lifecycle state here" in proc.stderr


def test_the_commands(tmp_path: Path) -> None:
    n = Nights(tmp_path)
    n.run(0)
    proc = lifecycle("ctas", "close", HELLO, "--reason", "kickoff held", "--state", n.state)
    assert proc.returncode == 0, proc.stderr
    assert f"closed {HELLO}: by hand: kickoff held" in proc.stderr
    assert f"by {getpass.getuser()}" in proc.stderr  # --by defaults to the OS user
    # --state before the subcommand works too; the worklist's options do not go there
    proc = lifecycle("ctas", "--state", n.state, "assign", OTHER, "--owner", "Zoe", "--by", "ops")
    assert proc.returncode == 0 and f"reassigned {OTHER} to Zoe" in proc.stderr
    assert n.row(OTHER)["updated_by"] == "ops"
    proc = lifecycle("ctas", "--state", n.state, "--owner", "x", "done", OTHER, "1")
    assert proc.returncode == 2 and "belongs to the worklist" in proc.stderr
    proc = lifecycle("ctas", "snooze", OTHER, "--until", "2026-11-20")
    assert proc.returncode == 2 and "'--state'" in proc.stderr
    proc = lifecycle("ctas", "--state", n.state, "snooze", OTHER, "--until", "2026-11-20",
                     "--state", tmp_path / "elsewhere")
    assert proc.returncode == 2 and "given twice" in proc.stderr
    proc = lifecycle("ctas", "--state", n.state, "snooze", OTHER, "--until", "2026-11-20")
    assert proc.returncode == 0 and f"snoozed {OTHER} until 2026-11-20" in proc.stderr
    proc = lifecycle("ctas", "--state", n.state)
    assert proc.returncode == 0 and "1 snoozed CTA(s) not shown" in proc.stderr
    assert "Zoe" not in proc.stdout and HELLO.split(":")[1] not in proc.stdout
    source = n.view.actions()["source"].to_list()
    assert source[0].startswith("lifecycle ctas close hello:001")


def test_the_worklist_shows_names_and_each_cta_s_tasks_under_it(tmp_path: Path) -> None:
    n = Nights(tmp_path)
    n.run(0)
    proc = lifecycle("ctas", "--state", n.state)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    ann = lines[lines.index("ann"):]
    assert "Acme" in ann[3] and "Welcome" in ann[3]
    assert ["1. Send the welcome pack" in ann[4], "2. Hold the kickoff" in ann[5]] == [True, True]
    # the ae's task is in his list, under a line naming the CTA it belongs to
    zed = lines[lines.index("zed"):]
    assert "Welcome (CTA of ann)" in zed[3] and "3. Sign the order form" in zed[4]
    csv = lifecycle("ctas", "--state", n.state, "--stdout")
    items = pl.read_csv(csv.stdout.encode(), infer_schema=False)
    assert items.select("owner", "customer_name", "cta_id", "seq").rows()[:3] == [
        ("ann", "Acme", HELLO, "0"), ("ann", "Acme", HELLO, "1"), ("ann", "Acme", HELLO, "2")]


CRM = [
    {"CTA ID": HELLO, "Status": "Completed", "Owner": "ann", "Snoozed Until": "",
     "Reason": "", "Seq": ""},
    {"CTA ID": OTHER, "Status": "In Progress", "Owner": "Zoe", "Snoozed Until": "",
     "Reason": "", "Seq": ""},
    {"CTA ID": OTHER, "Status": "Done", "Owner": "", "Snoozed Until": "", "Reason": "",
     "Seq": "2"},
    {"CTA ID": "hello:999:Onboarding:2026-11-02", "Status": "closed", "Owner": "",
     "Snoozed Until": "", "Reason": "", "Seq": ""},
]


def test_a_crm_s_statuses_become_hand_actions_once(tmp_path: Path) -> None:
    n = Nights(tmp_path)
    n.run(0)
    export = write_csv(tmp_path / "crm.csv", CRM)
    dry = import_statuses(n.state, export, by="crm", dry_run=True)
    assert dry.recorded.height == 3 and n.view.actions().height == 0
    done = import_statuses(n.state, export, by="crm")
    assert done.recorded.select("action", "cta_id", "owner", "seq", "reason", "source").rows() \
        == [("close", HELLO, None, None, "CRM status Completed", "import crm.csv line 2"),
            ("assign", OTHER, "Zoe", None, None, "import crm.csv line 3"),
            ("done", OTHER, None, 2, None, "import crm.csv line 4")]
    assert done.unknown is not None and done.unknown.rows() == [
        ("line 5", "hello:999:Onboarding:2026-11-02", None)]
    assert n.row()["close_reason"] == "by hand: CRM status Completed"
    assert n.row(OTHER)["owner"] == "Zoe"
    # the same export tomorrow changes nothing; one that has a closed CTA open reopens none
    n.run(1)
    reopen = [{**CRM[0], "Status": "open"}, *CRM[1:]]
    again = import_statuses(n.state, write_csv(tmp_path / "crm2.csv", reopen), by="crm")
    assert again.recorded.height == 0
    assert again.not_open is not None and again.not_open["cta_id"].to_list() == [HELLO]


def test_a_snooze_from_the_crm_and_a_column_named_by_hand(tmp_path: Path) -> None:
    n = Nights(tmp_path)
    n.run(0)
    rows = [{"Lifecycle ID": HELLO, "state": "on hold", "snoozed_until": "2026-11-20"}]
    export = write_csv(tmp_path / "crm.csv", rows)
    proc = lifecycle("ctas", "import", export, "--state", n.state)
    assert proc.returncode == 1 and "the file has no column 'cta_id'" in proc.stderr
    assert "--column cta_id=HEADER" in proc.stderr
    proc = lifecycle("ctas", "import", export, "--column", "cta_id=Lifecycle ID", "--column",
                     "status=state", "--state", n.state)
    assert proc.returncode == 0, proc.stderr
    assert f"snoozed {HELLO} until 2026-11-20" in proc.stderr
    assert n.row()["snoozed_until"] == dt.date(2026, 11, 20)


@pytest.mark.parametrize(("rows", "message"), [
    ([{"cta_id": HELLO, "status": "finished"}], "unknown status 'finished' (line 2)"),
    ([{"cta_id": HELLO, "status": "snoozed", "snoozed_until": "20/11/2026"}],
     "snoozed_until is not a date; write YYYY-MM-DD (1 row(s): line 2)"),
    ([{"cta_id": HELLO, "status": "snoozed", "snoozed_until": ""}],
     "status snoozed without a snoozed_until date"),
    ([{"cta_id": HELLO, "status": "closed"}, {"cta_id": HELLO, "status": "open"}],
     "the same CTA (or task) is listed more than once (2 row(s): line 2, line 3)"),
    ([{"cta_id": HELLO, "status": "done", "seq": "first"}], "seq is not a task number"),
    ([{"id": HELLO, "status": "done"}], "the file has no column 'cta_id'"),
])
def test_a_malformed_import_records_nothing(tmp_path: Path, rows: list[dict[str, str]],
                                            message: str) -> None:
    n = Nights(tmp_path)
    n.run(0)
    before = snapshot(n.state)
    proc = lifecycle("ctas", "import", write_csv(tmp_path / "crm.csv", rows), "--state",
                     n.state)
    assert proc.returncode == 1, proc.stderr
    assert message in proc.stderr and "crm.csv" in proc.stderr
    assert "nothing was written" in proc.stderr
    assert {k: v for k, v in snapshot(n.state).items() if k != "lock"} == {
        k: v for k, v in before.items() if k != "lock"}


@settings(max_examples=examples(60), deadline=None)
@given(steps=st.lists(st.tuples(st.sampled_from(["close", "snooze", "assign", "done"]),
                                st.integers(0, 3), st.integers(1, 3), st.integers(0, 6)),
                      max_size=8),
       cut=st.integers(0, 8))
def test_actions_applied_at_once_or_one_by_one_give_the_same_ctas(
        steps: list[tuple[str, int, int, int]], cut: int) -> None:
    """A date's actions applied together (a re-run, a backfill) or as they were recorded (the
    commands, one after another) leave the same CTAs and tasks, row for row."""
    ids = [f"r:{c}:Onboarding:2026-11-01" for c in range(4)]
    ctas = pl.DataFrame({
        "as_of": [D0] * 4, "cta_id": ids, "rule_id": ["r"] * 4,
        "customer_id": [str(c) for c in range(4)], "name": ["Welcome"] * 4,
        "owner": ["ann", "bo", "ann", None], "due_on": [day(2)] * 4, "status": ["open"] * 4,
        "stage": ["Onboarding"] * 4, "stage_entered_at": [D0] * 4})
    tasks = pl.DataFrame({"cta_id": [i for i in ids for _ in (1, 2)], "seq": [1, 2] * 4,
                          "task": ["a", "b"] * 4, "owner": ["ann", "zed"] * 4,
                          "due_on": [day(1), day(5)] * 4})
    rows = [action_rows(D0, dt.datetime(2026, 11, 2, 9, n, tzinfo=dt.UTC), "ana", action,
                        [ids[cta]], seqs=[seq] if action == "done" else None,
                        until=day(until), owner=f"o{until}", reason="r")
            for n, (action, cta, seq, until) in enumerate(steps)]
    actions = pl.concat(rows) if rows else empty_actions()
    start = cta_snapshot.make(ctas, tasks)
    at_once = cta_snapshot.with_actions(start, actions, D0)
    first = cta_snapshot.with_actions(start, actions.head(cut), D0)
    one_by_one = cta_snapshot.with_actions(first, actions.slice(cut), D0)
    assert at_once.ctas.equals(one_by_one.ctas)
    assert at_once.tasks.equals(one_by_one.tasks)
    assert at_once.skipped.height == first.skipped.height + one_by_one.skipped.height
    closed = at_once.ctas.filter(pl.col("status") == "closed")["cta_id"].to_list()
    assert not set(closed) & set(at_once.tasks["cta_id"].to_list())  # no tasks of closed ones


def test_each_ctas_command_is_documented_with_its_options_and_has_an_example() -> None:
    group = commands()["ctas"]
    assert sorted(group.commands) == ["assign", "close", "done", "import", "snooze"]
    docs = (ROOT / "docs" / "ctas.md").read_text()
    for name, command in group.commands.items():
        assert f"lifecycle ctas {name}" in docs, name
        options = [opt for param in command.params for opt in param.opts
                   if opt.startswith("--") and opt != "--help"]
        missing = [o for o in options if not re.search(rf"(?<![\w-]){re.escape(o)}(?![\w-])",
                                                        docs)]
        assert missing == [], (name, missing)
        shown = lifecycle("ctas", name, "--help")
        assert shown.returncode == 0 and "Example" in shown.stdout, name
        assert f"lifecycle ctas {name} " in shown.stdout or "lifecycle ctas --state out/state " \
            f"{name}" in shown.stdout, name
    # the worklist keeps its own options and examples on `lifecycle ctas --help`
    shown = lifecycle("ctas", "--help")
    assert "--owner" in shown.stdout and "lifecycle ctas --state out/state --owner" in shown.stdout


def test_an_action_on_a_state_a_run_holds_exits_1_and_records_nothing(tmp_path: Path) -> None:
    n = Nights(tmp_path)
    n.run(0)
    before = snapshot(n.state)
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys,time\nfrom pathlib import Path\n"
         "from lifecycle_cli.state.lock import lock\n"
         "with lock(Path(sys.argv[1]), 'lifecycle run --nightly'):\n"
         "    print('locked', flush=True); time.sleep(60)", str(n.state)],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        proc = lifecycle("ctas", "close", HELLO, "--reason", "x", "--state", n.state)
        assert proc.returncode == 1 and f"in use by pid {holder.pid}" in proc.stderr
    finally:
        holder.kill()
        holder.wait()
    assert {k: v for k, v in snapshot(n.state).items() if k != "lock"} == {
        k: v for k, v in before.items() if k != "lock"}


def test_check_sees_what_people_did_a_snoozed_or_closed_cta_is_not_past_due(
        tmp_path: Path) -> None:
    from lifecycle_cli.compliance.run import check

    n = Nights(tmp_path)
    n.run(0)
    n.run(4)  # both welcomes were due on day 2
    act(n.state, "snooze", [HELLO], until=day(6))
    found = check(RULES, n.export(), [], day(4), state_dir=n.state).findings
    past_due = found.filter(pl.col("finding") == "cta_past_due")["detail"].to_list()
    assert len(past_due) == 1 and OTHER in past_due[0]
    act(n.state, "close", [OTHER], reason="merged")
    found = check(RULES, n.export(), [], day(4), state_dir=n.state).findings
    assert found.filter(pl.col("finding") == "cta_past_due").height == 0
