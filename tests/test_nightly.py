"""Nightly operation through the real command: --state, guards, crash safety, backfill."""

from __future__ import annotations

import errno
import json
import os
import resource
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

import polars as pl
import pytest
from cli_util import AS_OF, DATA, ROOT, RULES, Result, lifecycle, run_args, snapshot

from lifecycle_cli.errors import OutputError
from lifecycle_cli.render import tables as outputs
from lifecycle_cli.state import store as state_store
from lifecycle_cli.state.view import StateView


def run_on(state: Path, out: Path, as_of: str = AS_OF, *extra: str | Path,
           customers: Path = DATA / "customers.csv") -> Result:
    args = run_args(out, "--state", state, *extra, customers=customers)
    args[args.index("--as-of") + 1] = as_of
    return lifecycle(*args)


def ok(proc: Result) -> Result:
    assert proc.returncode == 0, proc.stderr
    return proc


def failed(proc: Result, code: int = 1) -> str:
    assert proc.returncode == code, proc.stderr
    assert "Traceback" not in proc.stderr
    return proc.stderr


def without_stages(tmp_path: Path) -> Path:
    """The fixture export as a CRM that carries no stages."""
    path = tmp_path / "no_stages.csv"
    pl.read_csv(DATA / "customers.csv", infer_schema=False).drop(
        "stage", "stage_entered_at").write_csv(path)
    return path


def test_a_repeated_date_replaces_its_records(tmp_path: Path) -> None:
    state = tmp_path / "state"
    ok(run_on(state, tmp_path / "a"))
    first = snapshot(state)
    ok(run_on(state, tmp_path / "b"))
    assert snapshot(tmp_path / "a") == snapshot(tmp_path / "b")
    # the same data files; only the manifest (it holds the run's duration) is new
    def data(files: dict[str, bytes]) -> dict[str, bytes]:
        return {k: v for k, v in files.items() if "runs/" not in k and k != "state.json"}

    assert data(snapshot(state)) == data(first)
    assert len(list((state / "runs").rglob("*.json"))) == 1
    days = StateView.open(state)
    assert [str(d) for d in days.days] == [AS_OF]
    transitions = pl.read_csv(tmp_path / "a" / "transitions.csv")
    assert days.history("transitions").height == transitions.height


def test_the_state_carries_stages_when_the_export_has_none(tmp_path: Path) -> None:
    state, bare = tmp_path / "state", without_stages(tmp_path)
    ok(run_on(state, tmp_path / "d1"))
    ok(run_on(state, tmp_path / "d2", "2026-11-02", customers=bare))
    day1 = pl.read_csv(tmp_path / "d1" / "customers.csv", infer_schema=False)
    day2 = pl.read_csv(tmp_path / "d2" / "customers.csv", infer_schema=False)
    # nobody restarts in the initial stage: each starts where the state left it
    assert day2["previous_stage"].to_list() == day1["stage"].to_list()
    transitions = pl.read_csv(tmp_path / "d2" / "transitions.csv")
    assert "initial" not in transitions["rule_id"].to_list()


def test_a_stage_changed_by_hand_is_recorded(tmp_path: Path) -> None:
    state = tmp_path / "state"
    ok(run_on(state, tmp_path / "d1"))
    edited = tmp_path / "edited.csv"
    day1 = pl.read_csv(tmp_path / "d1" / "customers.csv", infer_schema=False)
    day1.with_columns(
        pl.when(pl.col("customer_id") == "0003").then(pl.lit("Will Churn"))
        .otherwise(pl.col("stage")).alias("stage")
    ).write_csv(edited)
    proc = ok(run_on(state, tmp_path / "d2", "2026-11-02", customers=edited))
    assert "1 customer(s) have a stage in the export that differs" in proc.stderr
    overrides = StateView.open(state).history("overrides")
    assert overrides.select("customer_id", "export_stage", "kept").rows() == [
        ("0003", "Will Churn", "export")]
    day2 = pl.read_csv(tmp_path / "d2" / "customers.csv", infer_schema=False)
    assert day2.filter(pl.col("customer_id") == "0003")["previous_stage"][0] == "Will Churn"


def test_an_earlier_date_needs_rewind(tmp_path: Path) -> None:
    state = tmp_path / "state"
    ok(run_on(state, tmp_path / "d1"))
    ok(run_on(state, tmp_path / "d3", "2026-11-03"))
    before = snapshot(state)
    message = failed(run_on(state, tmp_path / "x", "2026-11-02"))
    assert "holds runs up to 2026-11-03" in message and "--rewind" in message
    assert snapshot(state) == before and not (tmp_path / "x").exists()
    ok(run_on(state, tmp_path / "x", "2026-11-02", "--dry-run"))
    assert snapshot(state) == before
    proc = ok(run_on(state, tmp_path / "d2", "2026-11-02", "--rewind"))
    assert "dropped the later dates 2026-11-03" in proc.stderr
    assert [str(d) for d in StateView.open(state).days] == ["2026-11-01", "2026-11-02"]


def test_a_second_run_on_a_locked_state_exits_1(tmp_path: Path) -> None:
    state = tmp_path / "state"
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys,time\nfrom pathlib import Path\n"
         "from lifecycle_cli.state.lock import lock\n"
         "with lock(Path(sys.argv[1]), 'lifecycle run --nightly'):\n"
         "    print('locked', flush=True); time.sleep(60)", str(state)],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        message = failed(run_on(state, tmp_path / "out"))
        assert f"in use by pid {holder.pid}" in message and "since" in message
        assert not (tmp_path / "out").exists()
    finally:
        holder.kill()
        holder.wait()
    proc = ok(run_on(state, tmp_path / "out"))
    assert f"cleared a stale lock on the state folder, left by pid {holder.pid}" in proc.stderr


def big_export(tmp_path: Path, customers: int = 300_000) -> tuple[Path, Path]:
    data = tmp_path / "big"
    ok(lifecycle("sample", "--customers", customers, "--usage-rows", 200_000, "--as-of", AS_OF,
                 "--out", data))
    return data / "customers.csv", data / "usage.csv"


def test_kill_9_while_writing_leaves_outputs_and_state_as_they_were(tmp_path: Path) -> None:
    customers, usage = big_export(tmp_path)
    state, out = tmp_path / "state", tmp_path / "out"
    args = ["run", "--customers", customers, "--usage", usage, "--rules", RULES, "--out", out,
            "--state", state]
    ok(lifecycle(*args, "--as-of", "2026-10-31"))
    before_out, before_state = snapshot(out), snapshot(state)
    proc = subprocess.Popen([sys.executable, "-m", "lifecycle_cli", *map(str, args),
                             "--as-of", AS_OF], stderr=subprocess.DEVNULL)
    temp = out / f".customers.csv.tmp-{proc.pid}"
    deadline = time.monotonic() + 120
    while not temp.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)
    assert temp.exists(), "the run ended before it wrote its outputs"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    def settled(files: dict[str, bytes]) -> dict[str, bytes]:
        """Without temporary files, the lock's note of who held it and the killed
        transaction's marker (which tells the next run to look for debris)."""
        return {k: v for k, v in files.items()
                if ".tmp-" not in k and k not in ("lock", ".writing")}

    assert settled(snapshot(out)) == settled(before_out)
    assert settled(snapshot(state)) == settled(before_state)
    assert [str(d) for d in StateView.open(state).days] == ["2026-10-31"]
    # the next run finishes the job and clears what the killed one left
    ok(lifecycle(*args, "--as-of", AS_OF))
    assert not [p for p in out.iterdir() if ".tmp-" in p.name]
    assert not [p for p in state.rglob("*") if ".tmp-" in p.name]
    assert not (state / ".writing").exists()


def test_a_full_disk_while_writing_outputs_keeps_the_old_ones(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "out"
    old = {"customers": pl.DataFrame({"a": [1]}), "transitions": pl.DataFrame({"b": [2]})}
    outputs.write_tables(old, out)
    before = snapshot(out)
    real = outputs.write_csv

    def full_disk(frame: pl.DataFrame, target: object) -> None:
        if isinstance(target, Path) and "transitions" in target.name:
            target.write_text("partial")
            raise OSError(28, "No space left on device")
        real(frame, target)  # type: ignore[arg-type]

    monkeypatch.setattr(outputs, "write_csv", full_disk)
    new = {"customers": pl.DataFrame({"a": [9]}), "transitions": pl.DataFrame({"b": [9]})}
    with pytest.raises(OutputError, match="No space left on device"):
        outputs.write_tables(new, out)
    assert snapshot(out) == before  # not even customers.csv, whose new copy was complete


def test_max_moves_refuses_and_names_the_rules(tmp_path: Path) -> None:
    message = failed(lifecycle(*run_args(tmp_path / "out", "--max-moves", "1")))
    assert "more than --max-moves 1 allows" in message and "most moves come from:" in message
    assert not (tmp_path / "out").exists()
    failed(lifecycle(*run_args(tmp_path / "out", "--max-moves", "0%")))
    ok(lifecycle(*run_args(tmp_path / "out", "--max-moves", "100%")))
    assert "--max-moves takes" in failed(
        lifecycle(*run_args(tmp_path / "o2", "--max-moves", "lots")), code=2)


def test_a_shrunken_export_is_refused_unless_allowed(tmp_path: Path) -> None:
    state = tmp_path / "state"
    ok(run_on(state, tmp_path / "d1"))
    half = tmp_path / "half.csv"
    rows = (DATA / "customers.csv").read_text().splitlines()
    half.write_text("\n".join(rows[:6]) + "\n")  # 5 of 12 customers
    before = snapshot(state)
    message = failed(run_on(state, tmp_path / "d2", "2026-11-02", customers=half))
    assert "58.3% fewer than the 12 of the run for 2026-11-01" in message
    assert "--allow-shrink" in message and snapshot(state) == before
    ok(run_on(state, tmp_path / "d2", "2026-11-02", "--allow-shrink", customers=half))
    ok(run_on(state, tmp_path / "d3", "2026-11-03", "--max-shrink", "60%", customers=half))


def test_schema_drift_in_a_column_the_rules_read(tmp_path: Path) -> None:
    state = tmp_path / "state"
    ok(run_on(state, tmp_path / "d1"))
    drifted = tmp_path / "drifted.csv"
    frame = pl.read_csv(DATA / "customers.csv", infer_schema=False)
    frame.with_columns(pl.lit("soon").alias("renewal_date"), pl.lit("x").alias("name")).drop(
        "csm").write_csv(drifted)
    message = failed(run_on(state, tmp_path / "d2", "2026-11-02", customers=drifted))
    assert "'renewal_date' of the customers export held date in the run for 2026-11-01" \
        in message and "holds text now" in message
    # a column the rules don't read may change: a warning only
    quiet = tmp_path / "quiet.csv"
    frame.drop("name").write_csv(quiet)
    proc = ok(run_on(state, tmp_path / "d2", "2026-11-02", customers=quiet))
    assert "no longer has the column 'name'" in proc.stderr


def test_quiet_and_the_json_summary(tmp_path: Path) -> None:
    summary = tmp_path / "summary.json"
    proc = ok(lifecycle(*run_args(tmp_path / "out", "--quiet", "--summary-json", summary)))
    assert "Moves by rule" not in proc.stderr and proc.stdout == ""
    data = json.loads(summary.read_text())
    assert data["status"] == "ok" and data["exit_code"] == 0 and data["as_of"] == AS_OF
    assert data["rows"]["customers"] == 12
    assert sum(data["moves_by_rule"].values()) == pl.read_csv(
        tmp_path / "out" / "transitions.csv").height
    assert all(len(f["sha256"]) == 64 for f in data["inputs"])
    # to standard output, and on failure too
    proc = lifecycle(*run_args(tmp_path / "o2", "--max-moves", "0", "--summary-json", "-"))
    data = json.loads(proc.stdout)
    assert proc.returncode == 1 and data["status"] == "error" and data["exit_code"] == 1
    assert "--max-moves" in data["problems"][0]["message"]


def test_backfill_equals_running_each_day(tmp_path: Path) -> None:
    """A backfill is the nightly runs it replaces: the same stages and transitions daily."""
    bare = without_stages(tmp_path)
    nightly, replayed = tmp_path / "nightly", tmp_path / "replayed"
    days = ["2026-10-28", "2026-10-29", "2026-10-30", "2026-10-31", "2026-11-01"]
    for day in days:
        ok(run_on(nightly, tmp_path / day, day, customers=bare))
    proc = ok(lifecycle("backfill", "--customers", bare, "--usage", DATA / "usage.csv",
                        "--rules", RULES, "--from", days[0], "--to", days[-1],
                        "--state", replayed))
    assert "5 day(s)" in proc.stderr
    created = StateView.open(replayed).history("ctas").height
    assert f"CTAs: {created:,} created, 0 closed" in proc.stderr
    a, b = StateView.open(nightly), StateView.open(replayed)
    assert list(a.days) == list(b.days)
    for day in a.days:
        assert a.stages(day).equals(b.stages(day)), day
    assert a.history("transitions").equals(b.history("transitions"))
    assert a.history("ctas").height and a.history("ctas").equals(b.history("ctas"))
    assert a.history("tasks").equals(b.history("tasks"))
    # again: nothing doubles, the data files are the same
    def data(files: dict[str, bytes]) -> dict[str, bytes]:
        return {k: v for k, v in files.items() if "runs/" not in k and k != "state.json"}

    first = data(snapshot(replayed))
    ok(lifecycle("backfill", "--customers", bare, "--usage", DATA / "usage.csv",
                 "--rules", RULES, "--from", days[0], "--to", days[-1], "--state", replayed))
    assert data(snapshot(replayed)) == first


def test_backfill_refuses_to_rewrite_under_later_dates(tmp_path: Path) -> None:
    state = tmp_path / "state"
    ok(run_on(state, tmp_path / "d", "2026-11-05"))
    args = ["backfill", "--customers", DATA / "customers.csv", "--usage", DATA / "usage.csv",
            "--rules", RULES, "--from", "2026-10-30", "--to", "2026-11-01", "--state", state]
    assert "--rewind" in failed(lifecycle(*args))
    ok(lifecycle(*args, "--rewind"))
    assert [str(d) for d in StateView.open(state).days] == ["2026-10-30", "2026-10-31",
                                                        "2026-11-01"]
    assert "--to 2026-10-01 is before --from" in failed(
        lifecycle(*args[:-2], "--to", "2026-10-01", "--state", state), code=2)


def test_a_state_path_that_is_a_file_is_a_clear_error(tmp_path: Path) -> None:
    not_a_folder = tmp_path / "state"
    not_a_folder.write_text("x")
    message = failed(run_on(not_a_folder, tmp_path / "out"))
    assert "the state path exists and is not a folder" in message
    assert not (tmp_path / "out").exists() and not_a_folder.read_text() == "x"


def test_explain_starts_from_the_state(tmp_path: Path) -> None:
    state, bare = tmp_path / "state", without_stages(tmp_path)
    ok(run_on(state, tmp_path / "d1"))
    stage = pl.read_csv(tmp_path / "d1" / "customers.csv", infer_schema=False).filter(
        pl.col("customer_id") == "0003")["stage"][0]
    args = ["explain", "0003", "--customers", bare, "--usage", DATA / "usage.csv", "--rules",
            RULES, "--as-of", "2026-11-02", "--format", "json"]
    alone = json.loads(ok(lifecycle(*args)).stdout)[0]
    assert alone["initial_assignment"] is True
    remembered = json.loads(ok(lifecycle(*args, "--state", state)).stdout)[0]
    assert remembered["initial_assignment"] is False
    assert remembered["stage_at_start"] == stage


def test_a_crm_not_updated_from_the_outputs_does_not_undo_the_moves(tmp_path: Path) -> None:
    """The same export two nights running: its stages lag the state's; nothing moves back."""
    state = tmp_path / "state"
    ok(run_on(state, tmp_path / "d1"))
    moved = pl.read_csv(tmp_path / "d1" / "transitions.csv").filter(pl.col("hop") > 0)
    assert moved.height > 0
    proc = ok(run_on(state, tmp_path / "d2", "2026-11-02"))
    export = pl.read_csv(DATA / "customers.csv", infer_schema=False)
    staged = set(export.filter(pl.col("stage").is_not_null())["customer_id"])
    lagging = set(moved["customer_id"].cast(pl.String).str.zfill(4)) & staged
    assert f"{len(lagging)} customer(s) have the same stage in the export as last time" \
        in proc.stderr
    assert StateView.open(state).history("overrides").height == 0
    day1 = pl.read_csv(tmp_path / "d1" / "customers.csv", infer_schema=False)
    day2 = pl.read_csv(tmp_path / "d2" / "customers.csv", infer_schema=False)
    assert day2["previous_stage"].to_list() == day1["stage"].to_list()
    again = pl.read_csv(tmp_path / "d2" / "transitions.csv")
    assert not set(again["customer_id"].cast(pl.String)) & set(moved["customer_id"].cast(pl.String))


def test_kill_9_during_a_backfill_leaves_the_state_as_it_was(tmp_path: Path) -> None:
    customers, usage = big_export(tmp_path, customers=20_000)
    state = tmp_path / "state"
    args = ["backfill", "--customers", customers, "--usage", usage, "--rules", RULES,
            "--state", state]
    ok(lifecycle(*args, "--from", "2026-10-01", "--to", "2026-10-02"))
    before = snapshot(state)
    proc = subprocess.Popen([sys.executable, "-m", "lifecycle_cli", *map(str, args),
                             "--from", "2026-10-01", "--to", "2026-11-01"],
                            stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    staged: list[Path] = []
    while len(staged) < 8 and proc.poll() is None and time.monotonic() < deadline:
        staged = [p for p in state.rglob("*.tmp-*")]  # a few days are done, not committed
        time.sleep(0.01)
    assert proc.poll() is None, "the backfill ended before it could be killed"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    after = {k: v for k, v in snapshot(state).items()
             if ".tmp-" not in k and k not in ("lock", ".writing")}
    assert after == {k: v for k, v in before.items() if k != "lock"}
    assert (state / ".writing").exists()  # the next run will look for the debris
    assert [str(d) for d in StateView.open(state).days] == ["2026-10-01", "2026-10-02"]


# -- a failed run leaves the state folder as it found it: no temporary files either ---------

def unchanged_but_the_lock(before: dict[str, bytes], state: Path) -> None:
    """The state folder holds what it held, byte for byte (the lock file's note of who
    held it aside), and no temporary file."""
    after = snapshot(state)
    assert not [k for k in after if ".tmp-" in k], sorted(after)
    assert {k: v for k, v in after.items() if k != "lock"} == \
        {k: v for k, v in before.items() if k != "lock"}


def test_out_pointing_at_a_file_leaves_no_staged_files_in_the_state(tmp_path: Path) -> None:
    state, a_file = tmp_path / "state", tmp_path / "report.txt"
    a_file.write_text("mine")
    ok(run_on(state, tmp_path / "out", "2026-10-31"))
    before = snapshot(state)
    message = failed(run_on(state, a_file))
    assert "the output path exists and is not a folder" in message
    unchanged_but_the_lock(before, state)
    assert a_file.read_text() == "mine"
    # a first run into a new state folder leaves no folder at all
    assert "not a folder" in failed(run_on(tmp_path / "new_state", a_file))
    assert not (tmp_path / "new_state").exists()


def limit_file_size(limit: int) -> Callable[[], None]:
    """For a child process: every file it writes stops at ``limit`` bytes, as under
    `ulimit -f`; Python ignores SIGXFSZ, so a write past it fails with EFBIG."""
    def apply() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    return apply


@pytest.mark.parametrize(("customers", "limit", "message"), [
    (DATA / "customers.csv", 2_000, "cannot write the state: File too large"),
    (ROOT / "sample_data" / "customers.csv", 20_000, "cannot write the outputs: File too large"),
], ids=["in-the-state", "in-the-outputs"])
def test_a_file_size_limit_leaves_state_and_outputs_as_they_were(
        tmp_path: Path, customers: Path, limit: int, message: str) -> None:
    state, out = tmp_path / "state", tmp_path / "out"
    args = ["run", "--customers", customers, "--rules", RULES, "--state", state, "--out", out]
    ok(lifecycle(*args, "--as-of", "2026-10-31"))
    before_state, before_out = snapshot(state), snapshot(out)
    proc = subprocess.run([sys.executable, "-m", "lifecycle_cli", *map(str, args),
                           "--as-of", AS_OF], capture_output=True, text=True, timeout=120,
                          preexec_fn=limit_file_size(limit))
    assert proc.returncode == 1, proc.stderr
    assert message in proc.stderr and "Traceback" not in proc.stderr
    unchanged_but_the_lock(before_state, state)
    assert snapshot(out) == before_out


def fill_the_disk_after(monkeypatch: pytest.MonkeyPatch, files: int) -> None:
    """The state's files after the first ``files`` find the disk full: half of the file is
    written, then ENOSPC, as a real full disk does."""
    real_open = open
    opened: list[str] = []

    class HalfWriter:
        def __init__(self, fh: IO[bytes]) -> None:
            self.fh = fh

        def __enter__(self) -> HalfWriter:
            return self

        def __exit__(self, *exc: object) -> None:
            self.fh.close()

        def write(self, data: bytes) -> int:
            self.fh.write(data[: len(data) // 2])
            self.fh.flush()
            raise OSError(errno.ENOSPC, "No space left on device")

    def full_disk_open(path: Any, mode: str = "r", *args: Any, **kwargs: Any) -> Any:
        fh = real_open(path, mode, *args, **kwargs)
        if "w" in mode:
            opened.append(str(path))
            if len(opened) > files:
                return HalfWriter(fh)
        return fh

    monkeypatch.setattr(state_store, "open", full_disk_open, raising=False)


def test_a_backfill_on_a_full_disk_leaves_the_state_as_it_was(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    state = tmp_path / "state"
    args = ["backfill", "--customers", DATA / "customers.csv", "--usage", DATA / "usage.csv",
            "--rules", RULES, "--state", state]
    ok(lifecycle(*args, "--from", "2026-10-25", "--to", "2026-10-26"))
    before = snapshot(state)
    fill_the_disk_after(monkeypatch, files=20)  # two days and a half are staged
    message = failed(lifecycle(*args, "--from", "2026-10-27", "--to", AS_OF))
    assert "cannot write the state: No space left on device; the state is unchanged" in message
    unchanged_but_the_lock(before, state)
    assert [str(d) for d in StateView.open(state).days] == ["2026-10-25", "2026-10-26"]


def test_a_stale_index_temporary_file_is_cleaned(tmp_path: Path) -> None:
    state = tmp_path / "state"
    ok(run_on(state, tmp_path / "out", "2026-10-31"))
    # what a run killed while writing the index leaves: its pid may be anyone's by now
    for pid in (999_999, os.getpid()):
        (state / f".state.json.tmp-{pid}").write_text('{"format": 1, "da')
    ok(run_on(state, tmp_path / "out"))
    assert not list(state.glob(".state.json.tmp-*"))
    assert [str(d) for d in StateView.open(state).days] == ["2026-10-31", AS_OF]
