"""`lifecycle backfill`: replay a range of as-of dates into a state folder."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Annotated

import typer

from ..jobs.backfill import backfill as replay
from ..jobs.backfill import summary_of
from ..rules.load import load_rules
from . import common, render


def register(app: typer.Typer) -> None:
    app.command(
        "backfill",
        epilog=common.examples(
            "lifecycle backfill --customers sample_data/customers.csv --usage "
            "sample_data/usage.csv --rules rules/default.yaml --from 2026-10-01 --to "
            "2026-11-01 --state out/state",
        ),
    )(backfill)


@common.handle_errors
def backfill(
    customers: common.CustomersOpt,
    rules: common.RulesOpt,
    start: Annotated[
        dt.date,
        typer.Option("--from", help="The first as-of date to replay.", parser=common.parse_date,
                     metavar="YYYY-MM-DD", show_default=False),
    ],
    end: Annotated[
        dt.date,
        typer.Option("--to", help="The last as-of date to replay (included).",
                     parser=common.parse_date, metavar="YYYY-MM-DD", show_default=False),
    ],
    state: Annotated[
        Path,
        typer.Option("--state", help="The state folder to fill (created if needed).",
                     show_default=False),
    ],
    usage: common.UsageOpt = None,
    lookup: common.LookupOpt = None,
    attributes: common.AttributesOpt = None,
    sheet: common.SheetOpt = None,
    rewind: Annotated[
        bool,
        typer.Option("--rewind", help="Drop the state's dates after --to (they rest on the "
                     "history being replaced)."),
    ] = False,
    keep_export_stages: Annotated[
        bool,
        typer.Option("--keep-export-stages", help="Start the first day from the export's "
                     "stages (by default they are ignored: they are today's)."),
    ] = False,
    encoding: common.EncodingOpt = None,
    quiet: common.QuietOpt = False,
    summary_json: common.SummaryJsonOpt = None,
    engine: common.EngineOpt = "polars",
    spark_master: common.SparkMasterOpt = None,
    spark_conf: common.SparkConfOpt = None,
) -> None:
    """Replay every as-of date from --from to --to, in order, into --state.

    Each day starts from the stages the day before left and sees the usage up to that
    day. The state records every day's transitions, stage table and manifest; it is
    changed only when the whole range has run.
    """
    with common.summary_on_error(summary_json, end):
        choice = common.engine_choice(engine, spark_master, spark_conf)
        rule_set = load_rules(rules)
        with common.progress(not quiet) as step:
            result = replay(
                rule_set, rules, customers, usage or [], start, end, state,
                rewind=rewind, keep_export_stages=keep_export_stages, encoding=encoding,
                progress=step,
                command=common.command_line(), tables=common.tables(lookup, attributes, sheet),
                engine=choice,
            )
    if summary_json is not None:
        common.write_json(summary_json, {"status": "ok", "exit_code": 0, **summary_of(result)})
    if not quiet:
        render.backfill_summary(common.err, result, state)
