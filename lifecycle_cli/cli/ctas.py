"""`lifecycle ctas`: the open CTAs and tasks in a state, by owner and due date."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Annotated

import typer

from ..errors import OptionError, Problem
from ..render.tables import write_csv, write_tables
from ..state.view import StateView
from . import common, render


def register(app: typer.Typer) -> None:
    app.command(
        "ctas",
        epilog=common.examples(
            "lifecycle ctas --state out/state",
            "lifecycle ctas --state out/state --owner 'Ivan Novak' --overdue",
            "lifecycle ctas --state out/state --format xlsx --out out/worklist",
        ),
    )(ctas)


@common.handle_errors
def ctas(
    state: Annotated[
        Path,
        typer.Option("--state", help="The state folder that `lifecycle run --state` keeps.",
                     show_default=False),
    ],
    owner: Annotated[
        str | None,
        typer.Option("--owner", help="Only this owner's CTAs and tasks (case ignored).",
                     show_default=False),
    ] = None,
    overdue: Annotated[
        bool, typer.Option("--overdue", help="Only what is past its due date.")
    ] = False,
    as_of: Annotated[
        dt.date | None,
        typer.Option("--as-of", help="A date of the state (YYYY-MM-DD). Default: its latest.",
                     parser=common.parse_date, metavar="YYYY-MM-DD", show_default=False),
    ] = None,
    out: Annotated[Path | None, common.out_option("the worklist")] = None,
    fmt: common.FormatOpt = common.TableFormat.csv,
    stdout: Annotated[
        bool, typer.Option("--stdout", help="Write the worklist to standard output as CSV.")
    ] = False,
) -> None:
    """The open CTAs and their playbook tasks, by owner and due date: a CSM's worklist.

    In a terminal it is a table per owner; --out DIR writes worklist.csv (or .parquet,
    or a worklist.xlsx workbook), --stdout writes CSV for a pipe. Each row is a CTA
    (seq 0) or one of its tasks; days_overdue counts from the as-of date.
    """
    view = StateView.open(state)
    day = as_of
    if day is not None and day not in view.days:
        known = view.days
        raise OptionError(
            Problem(f"the state has no run for {day}", file=str(state),
                    hint=f"its dates run from {known[0]} to {known[-1]}" if known else None)
        )
    result = view.worklist(day, owner=owner, overdue=overdue)
    day = result.as_of
    written: list[str] = []
    if out is not None:
        paths = write_tables({"worklist": result.items}, out, fmt.value, created=day,
                             text_columns=["customer_id", "cta_id"],
                             workbook_name="worklist.xlsx")
        written = [str(p) for p in paths]
    if stdout:
        common.write_to_stdout(lambda stream: write_csv(result.items, stream))
    elif out is None:
        render.worklist(common.out, result, owner)
    render.worklist_summary(common.err, result, owner, written)
