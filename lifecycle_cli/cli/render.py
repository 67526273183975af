"""Terminal renderers: the run summary, explanations and rule diffs, drawn with Rich."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import polars as pl
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from ..compliance.findings import SEVERITIES, severity
from ..compliance.run import CheckResult
from ..ctas.worklist import Worklist
from ..day.explain import Explanation, ScoreExplanation, SegmentChoice
from ..day.pipeline import Day
from ..jobs.backfill import BackfillResult
from ..jobs.cta_actions import ActionResult
from ..jobs.diff import RulesDiff
from ..jobs.nightly import RunResult
from ..render.cells import cell, is_share
from ..render.groups import views as group_views
from ..report.build import NEW, Report
from ..suggest import did_you_mean

__all__ = ["escape"]  # the CLI escapes warnings with it too


def _fmt(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:,.2f}".rstrip("0").rstrip(".")
    if hasattr(value, "isoformat"):
        return value.isoformat(sep=" ") if hasattr(value, "hour") else value.isoformat()
    return str(value)


def run_summary(
    console: Console, done: RunResult, *, dry_run: bool = False, quiet: bool = False
) -> None:
    """Moves by rule, stage counts before and after, usage counts, the state, warnings,
    files. ``quiet``: the warnings only."""
    result = done.day
    warnings = done.warnings
    if done.stale_lock is not None:
        warnings.insert(0, "cleared a stale lock on the state folder, left by "
                        + done.stale_lock.describe())
    if quiet:
        for warning in warnings:
            console.print(f"[yellow]warning:[/] {escape(warning)}")
        return
    rules = result.rules
    m = result.metrics
    title = rules.name or "lifecycle"
    console.print(
        f"[bold]{escape(title)}[/] as of {result.as_of.isoformat()}: "
        f"{result.customers.height:,} customers, "
        f"{result.moved_customers:,} moved"
    )
    if list(m.by_source) not in ([], ["usage"]):  # named sources: a line each
        for name, c in m.by_source.items():
            unmatched = (f"; {c['unmatched_key']:,} whose key the lookup lacks"
                         if c["unmatched_key"] else "")
            console.print(
                f"usage from {escape(name)}: {c['rows']:,} rows up to the as-of date; "
                f"{c['unknown_customer']:,} for customers not in the customers export"
                f"{unmatched}; {c['without_timestamp']:,} without a timestamp (dropped); "
                f"{c['after_as_of']:,} after the as-of date (ignored)"
            )
    elif m.usage_rows or m.unknown_customer_rows or m.null_timestamp_rows or m.after_as_of_rows:
        console.print(
            f"usage: {m.usage_rows:,} rows up to the as-of date; "
            f"{m.unknown_customer_rows:,} for customers not in the customers export; "
            f"{m.null_timestamp_rows:,} without a timestamp (dropped); "
            f"{m.after_as_of_rows:,} after the as-of date (ignored)"
        )

    stages = Table(title="Customers by stage", title_justify="left", show_edge=False)
    for name, justify in (
        ("stage", "left"),
        ("before", "right"),
        ("after", "right"),
        ("change", "right"),
    ):
        stages.add_column(name, justify=justify)  # type: ignore[arg-type]
    before, after = result.stages_before, result.stages_after
    rows = [(s, before.get(s, 0), after.get(s, 0)) for s in rules.stage_names]
    if before.get(None):
        rows.insert(0, ("(no stage)", before[None], 0))
    for stage, b, a in rows:
        change = a - b
        sign = f"[green]+{change:,}[/]" if change > 0 else f"[red]{change:,}[/]" if change else "0"
        stages.add_row(escape(stage), f"{b:,}", f"{a:,}", sign)
    console.print(stages)
    segments = result.segments_after
    if segments:  # the stages after the day, a column per segment
        table = Table(title="Customers by segment", title_justify="left", show_edge=False)
        table.add_column("stage")
        for name in segments:
            table.add_column(escape(name), justify="right")
        for stage in [*rules.stage_names, "total"]:
            counts = [sum(s.values()) if stage == "total" else s.get(stage, 0)
                      for s in segments.values()]
            table.add_row(escape(stage), *[f"{n:,}" for n in counts])
        console.print(table)

    moves = result.moves
    if moves.height:
        table = Table(title="Moves by rule", title_justify="left", show_edge=False)
        table.add_column("rule")
        table.add_column("to")
        table.add_column("customers", justify="right")
        targets: dict[str, list[str]] = {"initial": [rules.initial_stage]}
        for _, t, _ in rules.transition_rules():  # a segment's rule may replace one's target
            to = targets.setdefault(t.id, [])
            if t.to not in to:
                to.append(t.to)
        to_stage = {rule_id: " / ".join(to) for rule_id, to in targets.items()}
        for rule_id, count in moves.iter_rows():
            table.add_row(escape(rule_id), escape(to_stage.get(rule_id, "")), f"{count:,}")
        console.print(table)
    else:
        console.print("No customer moved.")
    _cta_table(console, result)

    if result.overrides.height:
        kept = "the export's" if result.overrides["kept"][0] == "export" else "the state's"
        console.print(
            f"{result.overrides.height:,} customer(s) have a stage in the export that differs "
            "from the state's (or its stage_entered_at) and that the export changed since the "
            f"last run (by hand?); {kept} was kept; recorded as overrides"
        )
    if result.lagging:
        console.print(
            f"{result.lagging:,} customer(s) have the same stage in the export as last time, "
            "older than the state's (the CRM was not updated from the outputs): the state's "
            "stage was kept"
        )
    for warning in warnings:
        console.print(f"[yellow]warning:[/] {escape(warning)}")
    if done.state_path is not None:
        console.print(_state_line(done, dry_run))
    if dry_run:
        console.print("[bold]dry run:[/] nothing was written")
    for path in done.written:
        console.print(f"wrote {escape(str(path))}")


def _cta_table(console: Console, result: Day) -> None:
    counts = result.cta_counts
    if counts.height == 0:
        return
    names = {c.id: c.name for _, c, _ in reversed(result.rules.cta_rules())}  # the base's
    table = Table(title="CTAs", title_justify="left", show_edge=False)
    table.add_column("rule")
    table.add_column("name")
    table.add_column("created", justify="right")
    table.add_column("closed", justify="right")
    for rule_id, created, closed in counts.iter_rows():
        table.add_row(escape(rule_id), escape(names.get(rule_id, "(rule removed)")),
                      f"{created:,}", f"{closed:,}")
    console.print(table)
    tasks = result.ctas.tasks.height
    if tasks:
        console.print(f"{tasks:,} playbook task(s) for the CTAs created")


def _state_line(done: RunResult, dry_run: bool) -> str:
    start = (f"started from its stages of {done.base}" if done.base
             else "started from the export alone (no earlier date in the state)")
    what = "would record" if dry_run else "recorded"
    line = f"state {escape(str(done.state_path))}: {start}; {what} {done.day.as_of}"
    if done.replaced:
        line += " (replacing that date's earlier run)"
    if done.dropped:
        line += (f"; dropped the later dates {done.dropped[0]} to {done.dropped[-1]} "
                 f"({len(done.dropped)})")
    return line


def _verb(n: int, verb: str) -> str:
    """``1 lands``, ``2 land``: the verb agreeing with a count of customers."""
    if n != 1:
        return verb
    return verb + ("es" if verb.endswith(("s", "sh", "ch", "x")) else "s")


def _signed(n: int) -> str:
    return f"[green]+{n:,}[/]" if n > 0 else f"[red]{n:,}[/]" if n else "0"


def diff_summary(
    console: Console,
    d: RulesDiff,
    old_label: str,
    new_label: str,
    written: list[str],
    *,
    top: int = 20,
) -> None:
    """What changed between the files, who lands elsewhere, and moves by rule, old vs new."""
    console.print(
        f"[bold]{escape(d.new.rules.name or 'lifecycle')}[/] as of {d.as_of.isoformat()}: "
        f"{d.compared:,} customers compared; "
        f"{d.landed_elsewhere:,} {_verb(d.landed_elsewhere, 'land')} in another stage, "
        f"{d.moved_differently:,} {_verb(d.moved_differently, 'reach')} the same stage "
        "by other rules"
    )
    console.print(f"old: {escape(old_label)}\nnew: {escape(new_label)}")

    if d.rule_changes:
        changes = Table(title="Rule changes", title_justify="left", show_edge=False)
        for name in ("section", "name", "change", "what"):
            changes.add_column(name)
        for c in d.rule_changes:
            changes.add_row(escape(c.section), escape(c.name), c.change, escape(c.describe()))
        console.print(changes)
    else:
        console.print(
            "The files decide alike: no transition, derived value, metric, stage, segment or "
            "scorecard changed."
        )

    if d.stage_moves.height:
        stages = Table(title="Customers landing elsewhere", title_justify="left", show_edge=False)
        stages.add_column("old stage")
        stages.add_column("new stage")
        stages.add_column("customers", justify="right")
        for old, new, n in d.stage_moves.head(top).iter_rows():
            stages.add_row(escape(old), escape(new), f"{n:,}")
        console.print(stages)
        if d.stage_moves.height > top:
            console.print(f"  ... and {d.stage_moves.height - top:,} more pairs of stages")

    moved = d.rule_moves.filter(pl.col("delta") != 0)
    if moved.height:
        rules = Table(title="Moves by rule, old vs new", title_justify="left", show_edge=False)
        rules.add_column("rule")
        for name in ("old", "new", "change"):
            rules.add_column(name, justify="right")
        for rule_id, old_n, new_n, delta in moved.head(top).iter_rows():
            rules.add_row(escape(rule_id), f"{old_n:,}", f"{new_n:,}", _signed(delta))
        console.print(rules)
        if moved.height > top:
            console.print(f"  ... and {moved.height - top:,} more rules")
    if d.table.height == 0:
        console.print("No customer lands elsewhere or moves by other rules.")
    # warnings about the data come from both runs alike: say them once
    warnings = [(w, "" if w in d.new.warnings else " (old rules)") for w in d.old.warnings]
    warnings += [(w, " (new rules)") for w in d.new.warnings if w not in d.old.warnings]
    for warning, label in warnings:
        console.print(f"[yellow]warning{label}:[/] {escape(warning)}")
    for path in written:
        console.print(f"wrote {escape(path)}")


def frame_table(frame: pl.DataFrame, title: str, *, limit: int | None = None,
                hide_zero: bool = False) -> Table:
    """A report table for the terminal: numbers right-aligned, shares as percentages;
    ``hide_zero`` shows zero counts as a dot (a sparse matrix reads better)."""
    table = Table(title=title, title_justify="left", show_edge=False)
    numeric = {c: t.is_numeric() for c, t in frame.schema.items()}
    for column in frame.columns:
        table.add_column(escape(column), justify="right" if numeric[column] else "left")
    shown = frame if limit is None else frame.head(limit)
    for record in shown.iter_rows(named=True):
        table.add_row(*(
            "[dim]·[/]" if hide_zero and value == 0 and not is_share(column)
            else escape(cell(value, column))
            for column, value in record.items()))
    return table


def _show(console: Console, table: Table) -> None:
    """A table after a blank line; to a pipe or a file at its natural width, not squeezed
    into 80 columns."""
    console.print()
    if console.is_terminal:
        console.print(table)
    else:
        width = console.width
        natural = console.measure(table, options=console.options.update_width(10_000))
        console.width = max(width, natural.maximum)
        try:
            console.print(table)
        finally:
            console.width = width


def _more(console: Console, frame: pl.DataFrame, limit: int, what: str) -> None:
    if frame.height > limit:
        console.print(f"  ... and {frame.height - limit:,} more {what} (--top, --xlsx, --csv)")


def _note(console: Console, text: str) -> None:
    """A note under a table: what it counts or leaves out."""
    console.print(f"[dim]{escape(text)}[/]", soft_wrap=not console.is_terminal)


def report_tables(console: Console, report: Report, *, top: int = 20) -> None:
    """Every table of a report, in reading order (the report is the data: standard output);
    the longer ones (overdue, CTAs) cut at ``top`` rows."""
    period = (f"{report.start} to {report.end}" if report.start != report.end
              else str(report.end))
    notes = report.notes
    console.print(f"[bold]{escape(report.title)}[/]: report for {period}, "
                  f"{escape(report.source)}")
    split = group_views(report)  # --by: the groups side by side
    if split:
        title, view = split["distribution"]
        _show(console, frame_table(view, escape(title)))
        _note(console, notes["by"] + " The files (--csv, --xlsx) hold every table by "
              f"{report.by}, the value, overdue and stuck counts too.")
    else:
        _show(console, frame_table(report.distribution, f"Distribution on {report.end}"))
    _show(console, frame_table(report.flow_matrix.filter(pl.col("total") > 0),
                               f"Moves {period}: from (rows) to (columns), every move counted",
                               hide_zero=True))
    if report.main_path:
        path = " → ".join(report.main_path)
        if split:
            title, view = split["funnel"]
            _show(console, frame_table(view, f"{escape(title)}, along {path}"))
        else:
            _show(console, frame_table(report.funnel,
                                       f"Funnel along the main path {path}: customers"))
        if report.funnel_outflows.height:
            _show(console, frame_table(report.funnel_outflows,
                                       "Outflows from the main path: customers"))
        _note(console, notes["funnel"])
        _note(console, notes["main_path"])
    if split:
        title, view = split["time_in_stage"]
        _show(console, frame_table(view, escape(title)))
    else:
        _show(console, frame_table(
            report.time_in_stage,
            "Time in stage (Kaplan-Meier; customers still in it are censored)"))
    _note(console, notes["passed_through"])
    _note(console, notes["min_exits"])
    late = report.overdue.filter(pl.col("overdue") > 0)
    if late.height:
        owner = report.owner_column or "owner"
        _show(console, frame_table(late, f"Overdue and stuck by stage and {escape(owner)}",
                                   limit=top))
        _more(console, late, top, "rows")
        _show(console, frame_table(report.overdue_customers,
                                   "Overdue customers, stuck first", limit=top))
        _more(console, report.overdue_customers, top, "customers")
    else:
        console.print("\nNobody is overdue.")
    if report.ctas is not None:
        if report.ctas.height:
            _show(console, frame_table(report.ctas, f"CTAs {period} by type and owner",
                                       limit=top))
            _more(console, report.ctas, top, "rows")
        else:
            console.print("\nNo CTAs.")


def report_summary(console: Console, report: Report, written: list[Path]) -> None:
    """One line of totals, then the warnings and the files written (standard error)."""
    moves = report.flows.filter(pl.col("from_stage") != NEW)["moves"].sum()
    dist = report.distribution
    console.print(
        f"{report.customers:,} customers on {report.end}; {moves:,} moves from "
        f"{report.start} ({report.runs:,} run{'s' if report.runs != 1 else ''}); "
        f"{dist['overdue'].sum():,} overdue, {dist['stuck'].sum():,} stuck "
        f"(over {report.stuck_factor:g}x expected days)")
    if report.skipped_visits:
        console.print(f"time in stage: {report.skipped_visits:,} visit(s) left out: their start "
                      "is unknown, or after their end")
    if report.visits is not None:
        console.print(f"visits: {report.visits.height:,} in the period, one row each in the "
                      "visits table (--csv, --xlsx)")
    if report.passed_through:
        console.print(f"time in stage: {report.passed_through:,} visit(s) passed through "
                      "(began and ended on the same day) left out")
    if report.ctas is None:
        console.print("CTAs: the rules have none")
    for warning in report.warnings:
        console.print(f"[yellow]warning:[/] {escape(warning)}")
    for path in written:
        console.print(f"wrote {escape(str(path))}")


def explanation(console: Console, e: Explanation) -> None:
    """One customer's explanation, readable top to bottom."""
    console.rule(f"[bold]{escape(str(e.customer_id))}[/]")
    if e.initial_assignment:
        console.print("had no stage: starts in the initial stage (rule 'initial', hop 0)")
    else:
        entered = _fmt(e.stage_entered_at_start)
        console.print(
            f"stage at start: [bold]{escape(str(e.stage_at_start))}[/] (entered {entered})"
        )
    if e.segment is not None:
        segment_choice(console, e.segment)
    values = Table(show_header=True, show_edge=False, title="Values", title_justify="left")
    values.add_column("name")
    values.add_column("value")
    values.add_column("from")
    for name, value in e.metrics.items():
        values.add_row(escape(name), escape(_fmt(value)), "metric")
    for name, value in e.derived.items():
        values.add_row(escape(name), escape(_fmt(value)), "derived (final)")
    run = f"run of {e.previous_run}" if e.previous_run else "no previous run"
    for name, value in e.previous.items():
        values.add_row(escape(f"previous({name})"), escape(_fmt(value)), escape(run))
    if values.row_count:
        console.print(values)
    if e.scorecard is not None:
        scorecard(console, e.scorecard)
    for hop in e.hops:
        table = Table(
            title=f"Hop {hop.hop}: in {hop.stage}, day {_fmt(hop.days_in_stage)}",
            title_justify="left",
            show_edge=False,
        )
        table.add_column("rule")
        table.add_column("to")
        table.add_column("prio", justify="right")
        table.add_column("verdict", no_wrap=True)
        table.add_column("values")
        others = []
        for v in hop.verdicts:
            if not v.applies:
                others.append(v.rule_id)
                continue
            if v.when is None:
                verdict = "[yellow]null (false)[/]"
            elif v.when:
                verdict = "[green]true[/]" + (" [bold]<- wins[/]" if v.won else "")
            else:
                verdict = "[red]false[/]"
            rule = v.rule_id + (f" ({v.segment})" if v.segment else "")
            table.add_row(
                escape(rule), escape(v.to_stage), str(v.priority), verdict, escape(v.values)
            )
        if table.row_count:
            console.print(table)
        else:
            console.print(f"Hop {hop.hop}: in {escape(hop.stage)}, no rule leaves this stage")
        if others:
            console.print(f"  [dim]not from {escape(hop.stage)}: {escape(', '.join(others))}[/]")
        if hop.refused_as_loop:
            console.print(
                f"  rule '{escape(str(hop.winner))}' would return it to a stage it "
                "already held in this run: it stops here"
            )
        elif hop.moved_to:
            console.print(
                f"  moves to [bold]{escape(hop.moved_to)}[/] by rule '{escape(str(hop.winner))}'"
            )
        else:
            console.print("  no rule applies: it stays")
    if e.pending_rule:
        console.print(
            f"[yellow]max_hops reached:[/] rule '{escape(e.pending_rule)}' would still move it"
        )
    overdue = " [red]overdue[/]" if e.overdue else ""
    expected = f" of {e.expected_days} expected" if e.expected_days is not None else ""
    console.print(
        f"final stage: [bold]{escape(e.stage)}[/], entered "
        f"{_fmt(e.stage_entered_at)}, day {_fmt(e.days_in_stage)}{expected}{overdue}"
    )
    for cta in e.ctas:
        if cta["status"] == "open":
            console.print(
                f"CTA created: [bold]{escape(cta['name'])}[/] (rule '{escape(cta['rule_id'])}'), "
                f"owner {escape(str(cta['owner'] or '(none)'))}, due {_fmt(cta['due_on'])}; "
                f"because {escape(cta['reason'] or cta['stage'])}; id {escape(cta['cta_id'])}"
            )
        else:
            console.print(
                f"CTA closed: {escape(cta['name'])} ({escape(cta['cta_id'])}): "
                f"{escape(cta['close_reason'])}"
            )


def segment_choice(console: Console, choice: SegmentChoice) -> None:
    """Which segment took the customer: each segment's `when` tried, in file order."""
    console.print(f"segment: [bold]{escape(choice.name)}[/]")
    for test in choice.tried:
        if test.when is None:
            console.print(f"  {escape(test.segment)}: no segment above took it")
            continue
        held = ("[green]true[/]" if test.held else "[yellow]null (false)[/]"
                if test.held is None else "[red]false[/]")
        console.print(f"  {escape(test.segment)}: {escape(test.when)} -> {held}"
                      + (f" ({escape(test.values)})" if test.values else ""))
    changes = [f"expected_days {escape(s)} {'none' if d is None else d}"
               for s, d in choice.expected_days.items()]
    if choice.own_rules:
        changes.append("own rules " + escape(", ".join(choice.own_rules)))
    if changes:
        console.print(f"  the segment sets: {'; '.join(changes)}")


def band_limits(low: float | None, below: float | None) -> str:
    """A band's scores in words: ``under 40``, ``40 to under 70``, ``70 and over``."""
    if low is None and below is None:
        return "every score"
    if low is None:
        return f"under {below:g}"
    if below is None:
        return f"{low:g} and over"
    return f"{low:g} to under {below:g}"


def scorecard(console: Console, card: ScoreExplanation) -> None:
    """Each measure's value, points, weight and contribution, then the score and its band
    with the band's limits."""
    table = Table(title=f"Scorecard {card.name} (final)", title_justify="left",
                  show_edge=False)
    for name, justify in (("measure", "left"), ("value", "left"), ("points", "right"),
                          ("weight", "right"), ("contribution", "right"),
                          ("scored by", "left")):
        table.add_column(name, justify=justify)  # type: ignore[arg-type]
    for m in card.measures:
        weight = f"{m.weight:g}" + (f" ({m.share:.0%})" if m.share is not None
                                    else " (0%)")
        table.add_row(escape(m.id), escape(f"{m.value_of}={_fmt(m.value)}"), _fmt(m.points),
                      weight, "—" if m.contribution is None else f"{m.contribution:.2f}",
                      escape(m.scored_by))
    console.print(table)
    parts = [f"{m.contribution:.2f}" for m in card.measures if m.contribution is not None]
    band = (f"[bold]{escape(card.band)}[/] ({band_limits(card.band_from, card.band_below)})"
            if card.band is not None else "no band")
    if card.score is None:
        console.print(f"{escape(card.name)} = null: no measure has a value; {band}")
    else:
        console.print(f"{escape(card.name)} = {' + '.join(parts)} = [bold]{_fmt(card.score)}"
                      f"[/]: {band}")
    left_out = [m.id for m in card.measures if m.points is None]
    if left_out and card.score is not None:
        console.print(f"  {escape(', '.join(left_out))}: no value, left out; the weights of "
                      f"the others ({card.weight_counted:g} of {card.weight_total:g}) make "
                      "the whole")


def backfill_summary(console: Console, result: BackfillResult, state: Path) -> None:
    """Days replayed, moves per day (the first and last few), stages at the end."""
    days = result.days
    console.print(
        f"[bold]backfill[/] {result.start} to {result.end}: {len(days)} day(s) in "
        f"{result.seconds:.1f} s; {sum(d.moved for d in days):,} moves, "
        f"{sum(d.assigned for d in days):,} first assignments; CTAs: "
        f"{sum(d.ctas_created for d in days):,} created, {sum(d.ctas_closed for d in days):,} "
        "closed"
    )
    table = Table(title="Days", title_justify="left", show_edge=False)
    table.add_column("as of")
    table.add_column("moved", justify="right")
    table.add_column("assigned", justify="right")
    shown = days if len(days) <= 10 else [*days[:5], None, *days[-5:]]
    for day in shown:
        if day is None:
            table.add_row("...", "", "")
        else:
            table.add_row(day.as_of.isoformat(), f"{day.moved:,}", f"{day.assigned:,}")
    console.print(table)
    if days:
        after = ", ".join(f"{escape(s)} {n:,}" for s, n in sorted(days[-1].stages_after.items()))
        console.print(f"stages after {days[-1].as_of}: {after}")
    if result.replaced:
        console.print(f"replaced {len(result.replaced)} date(s) the state already held")
    if result.dropped:
        console.print(f"dropped the later dates {result.dropped[0]} to {result.dropped[-1]}")
    console.print(f"state {escape(str(state))}: recorded {len(days)} day(s)")


def worklist(console: Console, wl: Worklist, owner: str | None) -> None:
    """A table per owner: each open CTA with its tasks under it, the overdue rows in red.
    A task whose CTA is someone else's comes under a dim line naming that CTA.

    The lines are made with Polars string expressions and printed as plain text (no
    markup): a CSM's list can hold thousands of rows, which Rich's Table takes seconds
    to lay out."""
    lines = _worklist_lines(wl, console.width)
    if lines is None:
        return
    out = Text()
    for who, header, rule, rows in lines:
        out.append(f"{who}\n", style="bold")
        out.append(f"{header}\n", style="bold")
        out.append(f"{rule}\n", style="dim")
        for text, style in rows.iter_rows():
            out.append(f"{text}\n", style=style or "")
    out.rstrip()
    console.print(out, soft_wrap=True, highlight=False)


def _worklist_lines(wl: Worklist, width: int
                    ) -> list[tuple[str, str, str, pl.DataFrame]] | None:
    """Per owner: its title, the header, the rule under it, and its lines (text, style).
    Each column is as wide as its longest value (capped; longer ones end in "…"), except
    the last, what to do, which is never cut."""
    items = wl.items
    if items.height == 0:
        return None
    named = items["customer_name"].drop_nulls().len() > 0
    items = items.with_row_index("__i").with_columns((pl.col("__i") * 2 + 1).alias("__order"))
    # a task whose CTA is not in this owner's list: a dim line naming the CTA first
    first = pl.col("__i") == pl.col("__i").min().over("owner", "cta_id")
    strays = items.filter(first & (pl.col("item") == "task"))
    ctas = (wl.ctas.select("cta_id", pl.col("name").alias("__cta_name"),
                           pl.col("owner").alias("__cta_owner"))
            if wl.ctas.width else pl.DataFrame(schema={"cta_id": pl.String,
                                                       "__cta_name": pl.String,
                                                       "__cta_owner": pl.String}))
    by = [wl.by] if wl.by is not None else []  # --by: a list per group and owner
    headers = strays.join(ctas, on="cta_id", how="left", maintain_order="left").select(
        *by, "owner", "customer_id", "customer_name", pl.lit("header").alias("item"),
        pl.concat_str([pl.coalesce("__cta_name", "cta_id"), pl.lit(" (CTA of "),
                       pl.col("__cta_owner").fill_null("nobody"), pl.lit(")")]).alias("what"),
        (pl.col("__order") - 1).alias("__order"))
    is_cta, is_task = pl.col("item") == "cta", pl.col("item") == "task"
    shown = pl.concat([
        items.select(
            "owner", "customer_id", "customer_name", "item",
            pl.when(is_task).then(pl.format("  {}. {}", "seq", "what")).otherwise("what")
            .alias("what"),
            "__order", "due_on", "days_overdue", "priority", "stage",
            *(c for c in by if c not in ("priority", "stage"))),
        headers,
    ], how="diagonal_relaxed").sort("__order")
    blank = pl.lit("")
    cells = {
        **{c: pl.when(is_cta).then(pl.col(c)).otherwise(blank).fill_null("")
           for c in by if c not in ("priority", "stage")},
        "due": pl.col("due_on").dt.to_string("%Y-%m-%d").fill_null(""),
        "late": pl.when(pl.col("days_overdue") > 0)
        .then(pl.col("days_overdue").cast(pl.String) + "d").otherwise(blank),
        "customer": pl.when(is_task).then(blank).otherwise(pl.col("customer_id")).fill_null(""),
        "name": pl.when(is_task).then(blank).otherwise(pl.col("customer_name")).fill_null(""),
        "priority": pl.when(is_cta).then(pl.col("priority")).otherwise(blank).fill_null(""),
        "stage": pl.when(is_cta).then(pl.col("stage")).otherwise(blank).fill_null(""),
        "what": pl.col("what").fill_null(""),  # last and whole: a task's text is the point
    }
    if not named:
        del cells["name"]
    text = shown.select(*(pl.col(c).alias(f"__by_{c}") for c in by), pl.col("owner"),
                        pl.col("item"), pl.col("days_overdue"),
                        *(expr.alias(name) for name, expr in cells.items()))
    caps = {**dict.fromkeys(by, 20), "due": 10, "late": 6, "customer": 20, "name": 30,
            "priority": 10, "stage": 16}
    longest = text.select(pl.col(n).str.len_chars().max().fill_null(0) for n in cells).row(0)
    widths = {name: min(max(len(name), int(n)), caps.get(name, 1000))
              for name, n in zip(cells, longest, strict=True)}

    def cell(name: str) -> pl.Expr:
        value, w = pl.col(name), widths[name]
        if name == "what":
            return value
        fitted = pl.when(value.str.len_chars() > w).then(
            value.str.slice(0, w - 1) + "…").otherwise(value)
        return fitted.str.pad_start(w) if name == "late" else fitted.str.pad_end(w)

    line = pl.lit(" ") + pl.concat_str([cell(n) for n in cells], separator="  ")
    styled = text.select(
        *(f"__by_{c}" for c in by), "owner", line.str.strip_chars_end().alias("text"),
        pl.when(pl.col("item") == "header").then(pl.lit("dim"))
        .when(pl.col("days_overdue") > 0).then(pl.lit("red")).otherwise(None).alias("style"))
    header = " " + "  ".join(n.rjust(w) if n == "late" else n.ljust(w)
                             for n, w in widths.items())
    widths["what"] = min(widths["what"], max(4, width - len(header) + widths["what"] - 1))
    rule = " " + "  ".join("─" * w for w in widths.values())
    def title(key: tuple[Any, ...]) -> str:
        who = str(key[-1]) if key[-1] is not None else "(no owner)"
        return f"{wl.by} {key[0]}: {who}" if by else who

    return [(title(key), header.rstrip(), rule, rows.select("text", "style"))
            for key, rows in styled.group_by(*(f"__by_{c}" for c in by), "owner",
                                             maintain_order=True)]


def worklist_summary(console: Console, wl: Worklist, owner: str | None,
                     written: list[str]) -> None:
    if wl.as_of is None:
        console.print("the state holds no runs yet")
        return
    ctas = wl.items.filter(pl.col("item") == "cta").height
    tasks = wl.items.height - ctas
    late = wl.items.filter(pl.col("days_overdue") > 0).height
    who = f" for {escape(owner)}" if owner else ""
    snoozed = f"; {wl.snoozed:,} snoozed CTA(s) not shown" if wl.snoozed else ""
    grouped = (f"; by {escape(wl.by)}: {len(wl.groups):,} group(s)" if wl.by is not None
               else "")
    console.print(f"open as of {wl.as_of}{who}: {ctas:,} CTA(s), {tasks:,} task(s); "
                  f"{late:,} past due{snoozed}{grouped}")
    if owner and owner.strip().lower() not in {o.strip().lower() for o in wl.owners}:
        hint = did_you_mean(owner, wl.owners)
        console.print(f"[yellow]nobody called {escape(owner)!r} owns an open CTA[/]"
                      + (f"; {escape(hint)}" if hint else ""))
    for path in written:
        console.print(f"wrote {escape(path)}")


def actions_summary(console: Console, done: ActionResult) -> None:
    """What a hand action or an import recorded (or, with --dry-run, would record)."""
    verbs = {"close": "closed", "snooze": "snoozed", "assign": "reassigned",
             "done": "marked done"}
    recorded = done.recorded
    would = "would record" if done.dry_run else "recorded"
    for row in recorded.head(20).iter_rows(named=True):
        what = {"close": f": by hand: {row['reason']}",
                "snooze": f" until {row['until']}",
                "assign": f" to {row['owner']}",
                "done": f": task {row['seq']}"}[row["action"]]
        console.print(f"{verbs[row['action']]} {escape(row['cta_id'])}{escape(what)}")
    if recorded.height > 20:
        console.print(f"... and {recorded.height - 20:,} more")
    if done.rows:
        console.print(f"{done.rows:,} row(s) read")
    for note in done.unchanged:
        console.print(f"[dim]{escape(note)}[/]")
    for label, frame in (("name CTAs (or tasks) the state does not hold", done.unknown),
                         ("have open a CTA the state closed (lifecycle does not reopen CTAs)",
                          done.not_open)):
        if frame is not None and frame.height:
            shown = ", ".join(f"{line} ({cta})" for line, cta in
                              frame.select("line", "cta_id").head(5).iter_rows())
            console.print(f"[yellow]warning:[/] {frame.height:,} row(s) {label}, left out: "
                          f"{escape(shown)}" + (" ..." if frame.height > 5 else ""))
    by = recorded["by"][0] if recorded.height else None
    console.print(f"{would} {recorded.height:,} action(s) on the CTAs of {done.as_of}"
                  + (f", by {escape(by)}" if by else ""))


def check_summary(console: Console, result: CheckResult, fail_on: Sequence[str],
                  written: Sequence[Path], *, quiet: bool = False, top: int = 10) -> None:
    """Findings by kind and by owner, what was not checked, and whether the check fails.
    ``quiet``: only warnings and, when it fails, the failing kinds."""
    counts = result.counts()
    failed = result.failed(fail_on)
    if quiet:
        for warning in result.warnings:
            console.print(f"[yellow]warning:[/] {escape(warning)}")
        if failed:
            console.print(_failed_line(failed, counts))
        return
    rules = result.rules
    total = result.findings.height
    console.print(
        f"[bold]{escape(rules.name or 'lifecycle')}[/] check as of {result.as_of.isoformat()}: "
        f"{result.customers:,} customers, {total:,} finding{'s' if total != 1 else ''}"
    )
    kinds = Table(title="Findings", title_justify="left", show_edge=False)
    for name, justify in (("finding", "left"), ("severity", "left"), ("found", "right"),
                          ("fails", "left")):
        kinds.add_column(name, justify=justify)  # type: ignore[arg-type]
    for kind, n in counts.items():
        if kind in result.not_checked and not n:
            continue
        fails = ("[bold red]yes[/]" if n else "yes") if kind in fail_on else ""
        shown = f"[bold]{n:,}[/]" if n else "0"
        kinds.add_row(kind, severity(kind), shown, fails)
    console.print(kinds)
    if result.by is not None:
        _check_groups(console, result, counts)
    owners = result.by_owner()
    if owners.height and result.settings.owner_column:
        table = Table(title=f"By owner ({escape(result.settings.owner_column)})",
                      title_justify="left", show_edge=False)
        table.add_column("owner")
        for name in ("findings", *SEVERITIES):
            table.add_column(name, justify="right")
        for owner, *numbers in owners.head(top).iter_rows():
            table.add_row(escape(owner or "(none)"), *(f"{n:,}" for n in numbers))
        console.print(table)
        if owners.height > top:
            console.print(f"  ... and {owners.height - top:,} more owners")
    for kind, why in result.not_checked.items():
        console.print(f"[dim]not checked: {kind}: {escape(why)}[/]")
    for warning in result.warnings:
        console.print(f"[yellow]warning:[/] {escape(warning)}")
    for path in written:
        console.print(f"wrote {escape(str(path))}")
    if failed:
        console.print(_failed_line(failed, counts))
    elif fail_on:
        console.print(f"[green]ok:[/] none of {', '.join(fail_on)} found")


def _check_groups(console: Console, result: CheckResult, counts: dict[str, int]) -> None:
    """Findings × groups: a row per kind found (or checked), a column per group."""
    table = Table(title=f"Findings by {escape(result.by or '')}", title_justify="left",
                  show_edge=False)
    table.add_column("finding")
    grouped = result.by_group()
    for name in grouped.columns[1:]:
        table.add_column(escape(name), justify="right")
    for kind, *numbers in grouped.iter_rows():
        if kind in result.not_checked and not counts[kind]:
            continue
        table.add_row(kind, *(f"{n:,}" if n else "[dim]·[/]" for n in numbers))
    console.print(table)


def _failed_line(failed: Sequence[str], counts: dict[str, int]) -> str:
    found = ", ".join(f"{k} ({counts[k]:,})" for k in failed)
    return f"[bold red]check failed:[/] {found}"
