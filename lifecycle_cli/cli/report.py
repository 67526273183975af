"""`lifecycle report`: where customers stand and how they moved, as terminal tables, an
HTML dashboard, an XLSX workbook or CSV files."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer

from ..errors import OptionError
from ..files import write_text_atomic
from ..render.cells import share_columns
from ..render.html import render_html
from ..render.tables import XLSX_MAX_ROWS, check_folder, check_not_inputs, write_tables
from ..render.xlsx import Kind
from ..report.build import Report, build_report, history_from_exports, history_from_state
from ..rules.load import load_rules
from ..state.store import INDEX
from . import common, render

TEXT_COLUMNS = ["customer_id", "name", "owner", "stage", "from_stage", "to_stage", "next_stage",
                "type", "item", "value", "rule_in", "rule_out", "note"]


def register(app: typer.Typer) -> None:
    app.command(
        "report",
        epilog=common.examples(
            "lifecycle report --state out/state --rules rules/default.yaml --customers "
            "sample_data/customers.csv --from 2026-10-01 --html out/report.html",
            "lifecycle report --customers sample_data/customers.csv --usage "
            "sample_data/usage.csv --rules rules/default.yaml --as-of 2026-11-01 --xlsx "
            "out/report.xlsx",
            "lifecycle report --state out/state --rules rules/default.yaml --value "
            "minutes_30d --csv out/report",
            "lifecycle report --customers sample_data/customers.csv --rules "
            "rules/default.yaml --as-of 2026-11-01 --by segment",
        ),
    )(report)


def _option(flag: str, text: str, metavar: str, *short: str, **extra: Any) -> Any:
    return typer.Option(flag, *short, help=text, metavar=metavar, show_default=False, **extra)


DAY = "YYYY-MM-DD"


@common.handle_errors
def report(
    rules: common.RulesOpt,
    state: Annotated[Path | None, _option(
        "--state", "A state folder (written by run --state or backfill): report on its "
        "history.", "DIR")] = None,
    customers: Annotated[Path | None, _option(
        "--customers", "The customers export. Without --state: run the rules on it in memory "
        "and report on that run. With --state: the owner, value and name of each customer.",
        "PATH", "-c")] = None,
    usage: common.UsageOpt = None,
    lookup: common.LookupOpt = None,
    attributes: common.AttributesOpt = None,
    sheet: common.SheetOpt = None,
    as_of: common.AsOfOpt = None,
    start: Annotated[dt.date | None, _option(
        "--from", "With --state: the first day of the period. Default: the state's first.",
        DAY, parser=common.parse_date)] = None,
    end: Annotated[dt.date | None, _option(
        "--to", "With --state: the last day of the period (the state's last run on or before "
        "it). Default: the state's latest.", DAY, parser=common.parse_date)] = None,
    value: Annotated[str | None, _option(
        "--value", "Numeric customer column or metric to sum per stage (with --state, the "
        "metrics the state kept for the last day). Default: arr, if the export has it.",
        "COLUMN")] = None,
    owner: Annotated[str | None, _option(
        "--owner-column", "Customer column naming the owner. Default: the rules' "
        "compliance.owner_column, else the first CTA's owner, else csm, if the export has "
        "it.", "COLUMN")] = None,
    name: Annotated[str | None, _option(
        "--name-column", "Customer column with a readable name for the lists. Default: name, "
        "if the export has it.", "COLUMN")] = None,
    by: Annotated[str | None, _option(
        "--by", "Split every table by this customer column (segment, plan, ...; a metric or "
        "derived value too): the groups side by side, the column first in the files. A "
        "customer's group is its value on the last day; (none) when empty.",
        "COLUMN")] = None,
    stuck_factor: Annotated[float | None, _option(
        "--stuck-factor", "Stuck: more than K times the stage's expected days in it. Default: "
        "the rules' compliance.stuck_factor, else 2.", "K")] = None,
    html: Annotated[Path | None, _option(
        "--html", "Write the dashboard: one self-contained HTML file.", "FILE")] = None,
    xlsx: Annotated[Path | None, _option(
        "--xlsx", "Write the tables to an XLSX workbook, a sheet each.", "FILE")] = None,
    csv: Annotated[Path | None, _option(
        "--csv", "Write the tables as CSV files into this folder.", "DIR")] = None,
    top: Annotated[
        int,
        typer.Option("--top", help="Rows of the longer terminal tables (overdue by owner, "
                     "overdue customers, CTAs by type and owner).", min=1),
    ] = 20,
    encoding: common.EncodingOpt = None,
    quiet: common.TablesQuietOpt = False,
) -> None:
    """Report where customers stand and how they moved: customers and value per stage,
    moves from stage to stage, funnel conversion, time in stage (Kaplan-Meier median and
    p90 against expected days), overdue and stuck customers by owner, CTAs, and every
    visit (--csv, --xlsx: the visits table).

    With --state, over the state's history (--from/--to); without, over one run of the
    rules on --customers/--usage, in memory. The tables go to standard output; the
    summary and warnings to standard error; --html, --xlsx and --csv write files.
    """
    if state is None:
        if customers is None:
            raise OptionError("give --state DIR to report on a state's history, or "
                              "--customers (and --usage) to report on one run")
        if start is not None or end is not None:
            raise OptionError("--from and --to choose days of a state's history: give "
                              "--state DIR, or use --as-of for one run")
    else:
        for given, option in ((usage, "--usage"), (lookup, "--lookup")):
            if given:
                raise OptionError(f"{option} goes with a run in memory; with --state the "
                                  "history is the state's (--customers and --attributes give "
                                  "owners and values)")
        if as_of is not None:
            raise OptionError("--as-of is for a run in memory; with --state use --to")
    if customers is None and (attributes or sheet):
        raise OptionError("--attributes and --sheet go with --customers")
    targets = [p for p in (html, xlsx) if p is not None]
    inputs = [p for p in (customers, rules) if p is not None]
    inputs += [Path(p) for p in common.tables(lookup, attributes, sheet).paths]
    if state is not None:
        inputs.append(state / INDEX)
    rule_set = load_rules(rules)
    with common.progress(not quiet) as step:
        if state is not None:
            history = history_from_state(state, rule_set, start, end, customers=customers,
                                         encoding=encoding, progress=step,
                                         tables=common.tables(lookup, attributes, sheet))
        else:
            assert customers is not None
            history = history_from_exports(rule_set, customers, usage or [], as_of,
                                           encoding=encoding, progress=step,
                                           tables=common.tables(lookup, attributes, sheet))
            inputs += history.inputs
        step("building the report")
        result = build_report(history, value=value, owner=owner, name=name,
                              stuck_factor=stuck_factor, by=by)
        check_not_inputs(targets, inputs)
        written = _write(result, html, xlsx, csv, inputs, step)
    if not quiet:
        render.report_tables(common.out, result, top=top)
        render.report_summary(common.err, result, written)
    else:
        for warning in result.warnings:
            common.err.print(f"[yellow]warning:[/] {render.escape(warning)}")


def _write(result: Report, html: Path | None, xlsx: Path | None, csv: Path | None,
           inputs: list[Path], step: Callable[[str], None]) -> list[Path]:
    """The files asked for; each whole or not at all (a temporary file, then a rename)."""
    written = []
    # before any file: nothing is written when a folder is wrong
    if csv is not None:
        check_folder(csv, result.tables, inputs=inputs)
    if xlsx is not None:
        check_folder(xlsx.parent, result.tables, "xlsx", inputs=inputs, workbook_name=xlsx.name)
    if html is not None:
        step("writing the HTML")
        written.append(write_text_atomic(html, render_html(result)))
    if xlsx is not None:
        step("writing the workbook")
        sheets = result.tables
        if "visits" in sheets and sheets["visits"].height > XLSX_MAX_ROWS:
            # one visit a row: a big history outgrows a sheet; the other sheets still fit
            del sheets["visits"]
            result.warnings.append(
                f"the visits table has {result.tables['visits'].height:,} rows, more than a "
                "sheet holds: it is not in the workbook (write it with --csv)")
        written += write_tables(sheets, xlsx.parent, "xlsx", inputs=inputs,
                                created=result.end,
                                text_columns=[*TEXT_COLUMNS, *([result.by] if result.by else [])],
                                workbook_name=xlsx.name,
                                kinds=dict.fromkeys(share_columns(result.tables), Kind.SHARE))
    if csv is not None:
        step("writing CSV files")
        written += write_tables(result.tables, csv, "csv", inputs=inputs)
    return written
