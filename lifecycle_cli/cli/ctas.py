"""`lifecycle ctas`: the open CTAs and tasks in a state, by owner; and CTAs handled by people.

`ctas` is a command group whose own callback is the worklist
(``invoke_without_command``): ``lifecycle ctas --state DIR [--owner ...]``
lists, as it always did, and ``lifecycle ctas close|snooze|assign|done|import
...`` handle CTAs. ``--state`` may come before the subcommand too
(``lifecycle ctas --state DIR close ID ...``); the worklist's other options
may not.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Annotated, Any

import typer

from ..errors import OptionError, Problem
from ..jobs import cta_actions
from ..render.tables import write_csv, write_tables
from ..report.groups import customer_columns, split_worklist
from ..rules.load import load_rules
from ..state.view import StateView
from . import common, render

WORKLIST_EXAMPLES = common.examples(
    "lifecycle ctas --state out/state",
    "lifecycle ctas --state out/state --owner 'Ivan Novak' --overdue",
    "lifecycle ctas --state out/state --format xlsx --out out/worklist",
    "lifecycle ctas --state out/state --by segment --customers sample_data/customers.csv",
    "lifecycle ctas --state out/state --by priority --stdout",
)

app = typer.Typer(cls=common.Group, rich_markup_mode=None, add_completion=False,
                  pretty_exceptions_enable=False,
                  context_settings={"help_option_names": ["-h", "--help"]})


def register(parent: typer.Typer) -> None:
    parent.add_typer(app, name="ctas", epilog=WORKLIST_EXAMPLES, invoke_without_command=True)


StateOpt = Annotated[
    Path | None,
    typer.Option("--state", help="The state folder that `lifecycle run --state` keeps.",
                 show_default=False),
]
ByOpt = Annotated[
    str | None,
    typer.Option("--by", help="Who did it, recorded with the action. Default: your user name. "
                 "(On the worklist, `lifecycle ctas --by COLUMN` groups the list instead.)",
                 show_default=False, metavar="NAME"),
]
IdsArg = Annotated[
    list[str],
    typer.Argument(help="CTA ids, as `lifecycle ctas` lists them.", metavar="ID",
                   show_default=False),
]


@app.callback()
@common.handle_errors
def ctas(
    ctx: typer.Context,
    state: StateOpt = None,
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
    group_by: Annotated[
        str | None,
        typer.Option("--by", help="Group the worklist by this column, shown first: a CTA's "
                     "type, priority or stage, a value the state kept (a metric, a derived "
                     "value), or a column of --customers (segment, plan). Not the --by NAME "
                     "of close, snooze, assign, done and import (who did it), which comes "
                     "after them.", show_default=False, metavar="COLUMN"),
    ] = None,
    customers: Annotated[
        Path | None,
        typer.Option("--customers", "-c", help="With --by: a customers export whose column "
                     "groups the list (customer_id, or the id column --rules names).",
                     show_default=False, metavar="PATH"),
    ] = None,
    rules: Annotated[
        Path | None,
        typer.Option("--rules", "-r", help="With --customers: the rules whose columns: "
                     "customers: names the export's headers.", show_default=False,
                     metavar="PATH"),
    ] = None,
    encoding: common.EncodingOpt = None,
) -> None:
    """The open CTAs and their playbook tasks, by owner: a CSM's worklist.

    Each CTA comes with its open tasks under it, the most urgent first. In a terminal it
    is a table per owner; --out DIR writes worklist.csv (or .parquet, or a worklist.xlsx
    workbook), --stdout writes CSV for a pipe. Each row is a CTA (seq 0) or one of its
    tasks; days_overdue counts from the as-of date. Snoozed CTAs and tasks marked done
    are left out.

    The commands below record what people did: close, snooze, assign, done, and import
    (statuses exported from a CRM).
    """
    if ctx.invoked_subcommand is not None:
        given = [name for name, value in (("--owner", owner), ("--overdue", overdue),
                                          ("--as-of", as_of), ("--out", out),
                                          ("--stdout", stdout), ("--by", group_by),
                                          ("--customers", customers), ("--rules", rules),
                                          ("--encoding", encoding)) if value]
        if given:
            after = (f"; who did it is `lifecycle ctas {ctx.invoked_subcommand} ... --by NAME`"
                     if group_by else "")
            raise typer.BadParameter(
                f"it belongs to the worklist, not to `lifecycle ctas {ctx.invoked_subcommand}`"
                + after, ctx=ctx, param_hint=", ".join(f"'{g}'" for g in given))
        ctx.obj = {"state": state}
        return
    if state is None:
        raise _missing_state(ctx)
    view = StateView.open(state)
    day = as_of
    if day is not None and day not in view.days:
        known = view.days
        raise OptionError(
            Problem(f"the state has no run for {day}", file=str(state),
                    hint=f"its dates run from {known[0]} to {known[-1]}" if known else None)
        )
    if group_by is None and (customers or rules):
        raise OptionError("--customers and --rules give the column of --by COLUMN: give --by "
                          "too")
    if rules is not None and customers is None:
        raise OptionError("--rules names the columns of --customers: give --customers too")
    result = view.worklist(day, owner=owner, overdue=overdue)
    if group_by is not None:
        export = None
        if customers is not None:
            headers = load_rules(rules).columns.customers if rules is not None else None
            export = customer_columns(customers, headers=headers, encoding=encoding)
        result = split_worklist(result, group_by, view, export)
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


def _state(ctx: typer.Context, state: Path | None) -> Path:
    """--state after the subcommand, or before it (on `lifecycle ctas`)."""
    given: Any = (ctx.parent.obj or {}).get("state") if ctx.parent is not None else None
    if state is not None and given is not None and Path(given) != state:
        raise typer.BadParameter(f"given twice: {given} and {state}", ctx=ctx,
                                 param_hint="'--state'")
    found = state or given
    if found is None:
        raise _missing_state(ctx)
    return Path(found)


def _missing_state(ctx: typer.Context) -> typer.BadParameter:
    return typer.BadParameter("missing: give the state folder that `lifecycle run --state` "
                              "keeps", ctx=ctx, param_hint="'--state'")


@app.command("close", cls=common.Command, epilog=common.examples(
    "lifecycle ctas close welcome:C0000042:Onboarding:2026-11-01 --reason 'kickoff held' "
    "--state out/state",
    "lifecycle ctas --state out/state close ID1 ID2 --reason 'merged into one account' --by ana"))
@common.handle_errors
def ctas_close(
    ctx: typer.Context,
    cta_ids: IdsArg,
    reason: Annotated[
        str, typer.Option("--reason", help="Why it is closed (recorded; shown as its "
                          "close_reason, 'by hand: ...').", show_default=False, metavar="TEXT"),
    ],
    state: StateOpt = None,
    by: ByOpt = None,
) -> None:
    """Close CTAs by hand. Their rule creates nothing more for the same visit."""
    done = cta_actions.act(_state(ctx, state), "close", cta_ids, by=by, reason=reason,
                           command=common.command_line())
    render.actions_summary(common.err, done)


@app.command("snooze", cls=common.Command, epilog=common.examples(
    "lifecycle ctas snooze qbr:C0000007:Adopting:2026-05-01 --until 2026-12-01 --state out/state"))
@common.handle_errors
def ctas_snooze(
    ctx: typer.Context,
    cta_ids: IdsArg,
    until: Annotated[
        dt.date,
        typer.Option("--until", help="The date the CTA comes back to the worklist "
                     "(YYYY-MM-DD). A due date before it moves to it.",
                     parser=common.parse_date, metavar="YYYY-MM-DD", show_default=False),
    ],
    state: StateOpt = None,
    by: ByOpt = None,
) -> None:
    """Snooze CTAs: they and their tasks leave the worklist until a date."""
    done = cta_actions.act(_state(ctx, state), "snooze", cta_ids, by=by, until=until,
                           command=common.command_line())
    render.actions_summary(common.err, done)


@app.command("assign", cls=common.Command, epilog=common.examples(
    "lifecycle ctas assign renewal_prep:C0000002:Renewal:2026-11-01 --owner 'Chen Wei' "
    "--state out/state"))
@common.handle_errors
def ctas_assign(
    ctx: typer.Context,
    cta_ids: IdsArg,
    owner: Annotated[
        str, typer.Option("--owner", help="The new owner (kept by later runs); the CTA's "
                          "tasks that were the old owner's follow.", show_default=False,
                          metavar="NAME"),
    ],
    state: StateOpt = None,
    by: ByOpt = None,
) -> None:
    """Reassign CTAs to another owner."""
    done = cta_actions.act(_state(ctx, state), "assign", cta_ids, by=by, owner=owner,
                           command=common.command_line())
    render.actions_summary(common.err, done)


@app.command("done", cls=common.Command, epilog=common.examples(
    "lifecycle ctas done welcome:C0000042:Onboarding:2026-11-01 1 2 --state out/state"))
@common.handle_errors
def ctas_done(
    ctx: typer.Context,
    cta_id: Annotated[str, typer.Argument(help="The CTA's id.", metavar="ID",
                                          show_default=False)],
    seqs: Annotated[
        list[int],
        typer.Argument(help="The numbers of its tasks (seq: 1, 2, ...).", metavar="SEQ...",
                       show_default=False),
    ],
    state: StateOpt = None,
    by: ByOpt = None,
) -> None:
    """Mark tasks of a CTA done: they leave the worklist (the CTA stays open)."""
    done = cta_actions.act(_state(ctx, state), "done", [cta_id], by=by, seqs=seqs,
                           command=common.command_line())
    render.actions_summary(common.err, done)


@app.command("import", cls=common.Command, epilog=common.examples(
    "lifecycle ctas import crm_ctas.csv --state out/state",
    "lifecycle ctas import export.xlsx --column cta_id='Lifecycle ID' --dry-run --state out/state"))
@common.handle_errors
def ctas_import(
    ctx: typer.Context,
    path: Annotated[Path, typer.Argument(help="The CRM's export of CTA statuses (.csv, .xlsx, "
                                         ".parquet): columns cta_id, status and optionally "
                                         "seq, owner, snoozed_until, close_reason.",
                                         metavar="FILE", show_default=False)],
    state: StateOpt = None,
    by: ByOpt = None,
    columns: Annotated[
        list[str] | None,
        typer.Option("--column", help="NAME=HEADER: the file's header for one of the columns "
                     "above. Repeat for several.", metavar="NAME=HEADER", show_default=False),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Say what the import would change; record "
                           "nothing.")
    ] = False,
    encoding: common.EncodingOpt = None,
) -> None:
    """Import CTA statuses exported from a CRM: closes, snoozes, new owners and tasks done
    become hand actions (only what changed)."""
    mapping: dict[str, str] = {}
    for item in columns or []:
        name, sep, header = item.partition("=")
        if not sep or not name.strip() or not header.strip():
            raise typer.BadParameter(f"'{item}': write NAME=HEADER, e.g. cta_id='CTA ID'",
                                     param_hint="'--column'")
        mapping[name.strip()] = header.strip()
    done = cta_actions.import_statuses(_state(ctx, state), path, by=by, mapping=mapping,
                                       encoding=encoding, dry_run=dry_run,
                                       command=common.command_line())
    render.actions_summary(common.err, done)
