"""Inputs for the report tests: a small state made by the real command, and an export
whose names and owners are markup and formulas."""

from __future__ import annotations

from pathlib import Path

import polars as pl
from cli_util import AS_OF, DATA, lifecycle, run_args

DAYS = (AS_OF, "2026-11-02", "2026-12-15")  # a gap: some are overdue by then

EVIL_NAME = "<script>alert(1)</script>"
EVIL_OWNER = '<img src=x onerror="alert(2)">'
FORMULA = '=HYPERLINK("http://x","click")'

EVIL_RULES = """\
version: 1
name: <b>Markup</b> & co
stages:
  - {name: Onboarding, expected_days: 10}
  - {name: Live, expected_days: 20}
  - {name: Gone, terminal: true}
initial_stage: Onboarding
transitions:
  - {id: live, from: Onboarding, to: Live, when: "ready"}
ctas:
  - {id: late, name: "<i>Late</i>", type: "=1+1", on: overdue, stage: Onboarding, owner: csm}
"""


def build_state(folder: Path) -> Path:
    """Three nightly runs on the fixture; on the second day the CRM moved 0003 to
    Will Churn by hand (an override)."""
    state = folder / "state"
    edited = folder / "edited.csv"
    first = folder / "out-1"
    for i, day in enumerate(DAYS):
        customers = DATA / "customers.csv" if i == 0 else edited
        args = run_args(folder / f"out-{i + 1}", "--state", state, customers=customers)
        args[args.index("--as-of") + 1] = day
        proc = lifecycle(*args)
        assert proc.returncode == 0, proc.stderr
        if i == 0:
            day1 = pl.read_csv(first / "customers.csv", infer_schema=False)
            day1.with_columns(
                pl.when(pl.col("customer_id") == "0003").then(pl.lit("Will Churn"))
                .otherwise(pl.col("stage")).alias("stage")
            ).write_csv(edited)
    return state


def evil_export(folder: Path) -> tuple[Path, Path]:
    """A customers export and rules whose text is markup or a formula; the evil customers
    are overdue, so they are listed in every output."""
    customers = folder / "evil.csv"
    pl.DataFrame({
        "customer_id": ["E1", "E2", "E3", "E4"],
        "name": [EVIL_NAME, FORMULA, "Plain & Simple", "Quote \" 'n' <b>"],
        "csm": [EVIL_OWNER, "Ann", EVIL_OWNER, "Ann"],
        "arr": [100, 200, 300, 400],
        "ready": [False, False, True, False],
        "stage": ["Onboarding", "Onboarding", "Onboarding", "Live"],
        "stage_entered_at": ["2026-09-01", "2026-10-01", "2026-10-20", "2026-10-30"],
    }).write_csv(customers)
    rules = folder / "evil.yaml"
    rules.write_text(EVIL_RULES)
    return customers, rules
