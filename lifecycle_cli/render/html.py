"""The HTML dashboard of a report: one self-contained file, readable offline.

No script, no font, no stylesheet or image from elsewhere: the charts are inline
SVG (`lifecycle_cli.svg`) and the styles are inline. A Content-Security-Policy
forbids scripts and every outside resource, so even a value that slipped past
escaping could not run or call home; every value from the data is escaped
anyway. The page holds no clock time: the same report gives the same bytes.
"""

from __future__ import annotations

from collections.abc import Iterable

import polars as pl

from ..report.build import NEW, Report
from ..version import __version__
from .cells import cell, number, percent
from .groups import views as group_views
from .svg import Bar, Curve, Flow, Step, bars, esc, funnel, sankey, stage_colors, survival_grid

SHOWN_CUSTOMERS = 50  # overdue customers listed on the page; the XLSX has them all
SHOWN_OWNERS = 15

CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; " \
      "form-action 'none'"

STYLE = """
:root{color-scheme:light}
body{margin:0;background:#f4f5f7;color:#222;
 font:14px/1.45 system-ui,-apple-system,'Segoe UI',Roboto,'DejaVu Sans',sans-serif}
header{background:#1f2a37;color:#fff;padding:18px 28px}
header h1{margin:0 0 4px;font-size:22px}
header p{margin:0;color:#cfd6df}
nav{padding:8px 28px;background:#fff;border-bottom:1px solid #e2e5e9}
nav a{margin-right:16px;color:#0b5ea8;text-decoration:none}
main{padding:8px 28px 28px;max-width:1180px}
section{background:#fff;border:1px solid #e2e5e9;border-radius:6px;margin:18px 0;
 padding:14px 20px}
h2{font-size:18px;margin:4px 0 10px}
h3{font-size:15px;margin:18px 0 6px}
p.note{color:#555;margin:6px 0}
.kpis{display:flex;gap:14px;flex-wrap:wrap;margin:8px 0 4px}
.kpi{border:1px solid #e2e5e9;border-radius:6px;padding:8px 14px;min-width:120px}
.kpi b{display:block;font-size:20px}
.kpi span{color:#555;font-size:12px}
svg.chart{width:100%;height:auto;display:block;margin:6px 0 10px}
table{border-collapse:collapse;margin:6px 0 4px;font-size:13px}
th,td{padding:4px 10px;border-bottom:1px solid #eceef1;text-align:left;white-space:nowrap}
th{background:#f7f8fa;font-weight:600}
td.n,th.n{text-align:right;font-variant-numeric:tabular-nums}
.scroll{overflow-x:auto}
.swatch{display:inline-block;width:10px;height:10px;border-radius:2px;margin-right:6px}
ul.warnings li{color:#8a4b00}
footer{color:#777;font-size:12px;padding:0 28px 24px}
"""

def table(frame: pl.DataFrame, *, limit: int | None = None, heat: Iterable[str] = (),
          colors: dict[str, str] | None = None) -> str:
    """A DataFrame as an HTML table; ``heat`` columns shaded by their value; a ``stage``
    (or ``from_stage``) cell gets its stage's colour swatch."""
    heat = [c for c in heat if c in frame.columns]
    top = (frame.select(pl.max_horizontal(pl.col(heat).max())).item() if heat else 0) or 1
    head = "".join(
        f'<th class="{"n" if frame.schema[c].is_numeric() else ""}">{esc(c)}</th>'
        for c in frame.columns)
    rows = []
    shown = frame if limit is None else frame.head(limit)
    numeric = {c: t.is_numeric() for c, t in frame.schema.items()}
    for record in shown.iter_rows(named=True):
        cells = []
        for column, value in record.items():
            text = esc(cell(value, column))
            style = ""
            if column in heat and isinstance(value, int | float) and value:
                style = f' style="background:rgba(0,114,178,{0.08 + 0.5 * value / top:.3f})"'
            if colors and column in ("stage", "from_stage") and value in colors:
                text = f'<span class="swatch" style="background:{colors[value]}"></span>{text}'
            cells.append(f'<td class="{"n" if numeric[column] else ""}"{style}>{text}</td>')
        rows.append("<tr>" + "".join(cells) + "</tr>")
    more = ""
    if limit is not None and frame.height > limit:
        more = (f'<p class="note">The first {limit:,} of {frame.height:,} rows; the XLSX '
                "workbook (--xlsx) and the CSV files (--csv) have them all.</p>")
    return (f'<div class="scroll"><table><thead><tr>{head}</tr></thead><tbody>'
            f'{"".join(rows)}</tbody></table></div>{more}')


def _kpi(value: str, label: str) -> str:
    return f'<div class="kpi"><b>{value}</b><span>{esc(label)}</span></div>'


def render_html(report: Report) -> str:
    """The whole dashboard as one HTML document."""
    colors = stage_colors(report.stages)
    period = (f"{report.start.isoformat()} to {report.end.isoformat()}"
              if report.start != report.end else report.end.isoformat())
    sections = [
        _distribution(report, colors),
        _flows(report, colors, period),
        _time_in_stage(report, colors),
        _overdue(report, colors),
        _ctas(report, period),
    ]
    if report.warnings:
        items = "".join(f"<li>{esc(w)}</li>" for w in report.warnings)
        sections.append(f'<section id="notes"><h2>Notes</h2><ul class="warnings">{items}</ul>'
                        "</section>")
    runs = f"{report.runs:,} run{'s' if report.runs != 1 else ''}"
    nav = "".join(f'<a href="#{key}">{name}</a>' for key, name in (
        ("distribution", "Distribution"), ("flows", "Flows"), ("time", "Time in stage"),
        ("overdue", "Overdue and stuck"), ("ctas", "CTAs")))
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        f"<title>{esc(report.title)}: lifecycle report {esc(period)}</title>"
        f"<style>{STYLE}</style></head>\n<body>"
        f"<header><h1>{esc(report.title)}</h1><p>Lifecycle report for {esc(period)} · "
        f"{esc(report.source)} · {runs} · {report.customers:,} customers</p></header>"
        f"<nav>{nav}</nav><main>\n" + "\n".join(sections) + "\n</main>"
        f"<footer>Made by lifecycle {esc(__version__)}. Time in stage is a Kaplan–Meier "
        "estimate: customers still in a stage count as censored, and visits that began "
        "before the period count from its start.</footer></body></html>\n"
    )


def _distribution(report: Report, colors: dict[str, str]) -> str:
    dist = report.distribution
    value = report.value_column
    total = int(dist["customers"].sum())
    overdue, stuck = int(dist["overdue"].sum()), int(dist["stuck"].sum())
    kpis = [_kpi(number(total), "customers"), _kpi(number(overdue), "overdue"),
            _kpi(number(stuck), f"stuck (over {report.stuck_factor:g}× expected days)")]
    if value is not None:
        kpis.insert(1, _kpi(number(float(dist[value].sum())), value))
    split = group_views(report)
    if split:  # --by: the groups side by side, then the whole table
        title, view = split["distribution"]
        return (f'<section id="distribution"><h2>Distribution on {report.end} by '
                f'{esc(report.by)}</h2><div class="kpis">{"".join(kpis)}</div>'
                f'<p class="note">{esc(report.notes["by"])}</p>'
                f"<h3>{esc(title)}</h3>{table(view, colors=colors)}"
                f"<h3>Every stage and {esc(report.by)}</h3>{table(dist, colors=colors)}"
                "</section>")
    rows = [
        Bar(r["stage"], r["customers"], r["overdue"],
            f"{number(r['customers'])} · {percent(r['share'])} · {number(r['overdue'])} overdue",
            colors[r["stage"]],
            f"{r['stage']}: {number(r['customers'])} customers, {number(r['overdue'])} overdue,"
            f" {number(r['stuck'])} stuck")
        for r in dist.iter_rows(named=True)
    ]
    charts = bars(rows, f"Customers by stage on {report.end}", part_name="overdue",
                  uid="dist")
    if value is not None:
        value_rows = [Bar(r["stage"], r[value], 0,
                          f"{number(r[value])} · {percent(r[f'{value}_share'])}",
                          colors[r["stage"]]) for r in dist.iter_rows(named=True)]
        charts += f"<h3>{esc(value)} by stage</h3>" + bars(
            value_rows, f"{value} by stage on {report.end}", uid="value")
    return (f'<section id="distribution"><h2>Distribution on {report.end}</h2>'
            f'<div class="kpis">{"".join(kpis)}</div>{charts}'
            f"{table(dist, colors=colors)}</section>")


def _flows(report: Report, colors: dict[str, str], period: str) -> str:
    flows = report.flows
    moved = int(flows.filter(pl.col("from_stage") != NEW)["moves"].sum())
    new = int(flows.filter(pl.col("from_stage") == NEW)["moves"].sum())
    by_hand = int(flows["by_hand"].sum())
    colors = {NEW: "#8C8C8C", **colors}
    every = flows.select("from_stage", "to_stage", "moves")
    if report.by is not None:  # the diagram shows the moves of every group together
        every = every.group_by("from_stage", "to_stage", maintain_order=True).agg(
            pl.col("moves").sum())
    diagram = sankey(
        [Flow(a, b, n) for a, b, n in every.rows()],
        [NEW, *report.stages], report.stages, colors, f"Moves from stage to stage, {period}")
    matrix = report.flow_matrix
    if report.by is not None:  # a group's stages nobody left are left out
        matrix = matrix.filter(pl.col("total") > 0)
    hand = f", {by_hand:,} of them stages changed by hand in the export" if by_hand else ""
    return (
        f'<section id="flows"><h2>Flows, {esc(period)}</h2>'
        f'<p class="note">{moved:,} moves between stages{hand}; {new:,} customers got their '
        "first stage. These count moves: a customer who moved twice counts twice.</p>"
        f"{diagram}<h3>From (rows) → to (columns), every move counted</h3>"
        f"{table(matrix, heat=report.stages, colors=colors)}"
        f"{_funnel(report, colors, period)}</section>"
    )


def _funnel(report: Report, colors: dict[str, str], period: str) -> str:
    if not report.main_path:
        return ('<h3>Funnel</h3><p class="note">No main path of two stages or more: set '
                "<code>report: {main_path: [...]}</code> in the rules.</p>")
    outflows: dict[str, list[tuple[str, int]]] = {}
    for a, b, n in report.funnel_outflows.select("from_stage", "to_stage", "customers").rows():
        outflows.setdefault(a, []).append((b, n))
    steps = [Step(r["stage"], r["customers"], r["next_stage"], r["to_next"], r["conversion"],
                  outflows.get(r["stage"], []))
             for r in report.funnel.iter_rows(named=True)]
    path = " → ".join(report.main_path)
    split = group_views(report)
    if split:  # --by: the groups side by side instead of one funnel chart
        title, view = split["funnel"]
        chart = f"<h3>{esc(title)}</h3>{table(view, colors=colors)}<h3>Every stage</h3>"
    else:
        chart = funnel(steps, colors, f"Conversion along the main path, {period}")
    outflow_table = (f"<h3>Outflows from the main path, customers</h3>"
                     f"{table(report.funnel_outflows, colors=colors)}"
                     if report.funnel_outflows.height else "")
    return (
        f"<h3>Funnel along the main path: {esc(path)}</h3>"
        '<p class="note">Of the customers in a stage of the main path at any time in the '
        "period, the share that moved straight on to its next stage. The funnel counts "
        "customers, each once per stage and column; the flows above count moves (a customer "
        "who moved twice counts twice). Moves from the path to other stages are outflows, "
        "not conversion. The rules' <code>report: main_path</code> names the path.</p>"
        f"{chart}{table(report.funnel, colors=colors)}{outflow_table}"
    )


def _time_in_stage(report: Report, colors: dict[str, str]) -> str:
    curve = report.survival
    curves = []
    split = group_views(report)
    for r in report.time_in_stage.iter_rows(named=True) if not split else ():
        if not r["visits"]:
            continue
        points = curve.filter(pl.col("stage") == r["stage"]).select("days", "survival").rows()
        thin = r["note"] if r["left"] < report.min_exits else ""
        curves.append(Curve(r["stage"], points, r["expected_days"], r["median_days"],
                            r["p90_days"], r["visits"], r["left"], thin))
    skipped = (f" {report.skipped_visits:,} visit(s) whose start is unknown, or after their "
               "end, were left out."
               if report.skipped_visits else "")
    notes = report.notes
    return (
        '<section id="time"><h2>Time in stage</h2>'
        '<p class="note">The share of visits still in the stage after each day (Kaplan–Meier:'
        " customers still in a stage count as censored, not as finished). Median and p90 are "
        "the days by which half and 90% of visits have left, not reached when too few have "
        f"left yet (—). The dashed line is the stage's expected days.{skipped}</p>"
        f'<p class="note">{esc(notes["passed_through"])} {esc(notes["min_exits"])} A curve '
        "drawn light rests on too few exits.</p>"
        + (f"<h3>{esc(split['time_in_stage'][0])}</h3>"
           f"{table(split['time_in_stage'][1], colors=colors)}<h3>Every stage</h3>"
           if split else
           survival_grid(curves, colors, 'Time in stage: survival curves per stage'))
        + f"{table(report.time_in_stage, colors=colors)}</section>"
    )


def _overdue(report: Report, colors: dict[str, str]) -> str:
    by_owner = (
        report.overdue.group_by("owner")
        .agg(pl.col("overdue").sum(), pl.col("stuck").sum())
        .filter(pl.col("overdue") > 0)
        .sort(["overdue", "owner"], descending=[True, False])
    )
    owner_label = report.owner_column or "owner"
    chart = ""
    if by_owner.height:
        rows = [Bar(o, n, s, f"{number(n)} overdue · {number(s)} stuck", "#E69F00")
                for o, n, s in by_owner.head(SHOWN_OWNERS).rows()]
        chart = (f"<h3>Overdue customers by {esc(owner_label)}</h3>"
                 + bars(rows, f"Overdue customers by {owner_label}", part_name="stuck",
                        uid="owner"))
        if by_owner.height > SHOWN_OWNERS:
            chart += f'<p class="note">The {SHOWN_OWNERS} owners with the most overdue.</p>'
    late = report.overdue.filter(pl.col("overdue") > 0)
    return (
        '<section id="overdue"><h2>Overdue and stuck</h2>'
        f'<p class="note">Overdue: longer in the stage than its expected days. Stuck: longer '
        f"than {report.stuck_factor:g} times them. Owners from the column "
        f"{esc(owner_label)}.</p>{chart}"
        "<h3>By stage and owner</h3>"
        + (table(late, colors=colors) if late.height else '<p class="note">Nobody is '
           "overdue.</p>")
        + "<h3>Overdue customers, stuck first</h3>"
        + (table(report.overdue_customers, limit=SHOWN_CUSTOMERS, colors=colors)
           if report.overdue_customers.height else '<p class="note">None.</p>')
        + "</section>"
    )


def _cta_charts(ctas: pl.DataFrame, owner_column: str | None) -> str:
    """Open CTAs by type and by owner, the past-due part hatched."""
    out = ""
    for key, title in (("type", "Open CTAs by type"),
                       ("owner", f"Open CTAs by {owner_column or 'owner'}")):
        counts = (ctas.group_by(key).agg(pl.col("open").sum(), pl.col("past_due").sum(),
                                         pl.col("created").sum(), pl.col("closed").sum())
                  .filter(pl.col("open") > 0)
                  .sort(["open", key], descending=[True, False]))
        if counts.height == 0:
            continue
        rows = [Bar(str(k or "(none)"), n, late, f"{number(n)} open · {number(late)} past due",
                    "#0072B2", tip=f"{k}: {number(n)} open, {number(late)} past due; in the "
                    f"period {number(c)} created, {number(d)} closed")
                for k, n, late, c, d in counts.head(SHOWN_OWNERS).rows()]
        out += f"<h3>{esc(title)}</h3>" + bars(rows, title, part_name="past due",
                                                uid=f"cta-{key}")
        if counts.height > SHOWN_OWNERS:
            out += f'<p class="note">The {SHOWN_OWNERS} with the most open CTAs.</p>'
    return out


def _ctas(report: Report, period: str) -> str:
    if report.ctas is None:
        body = '<p class="note">The rules have no CTAs.</p>'
    elif report.ctas.height == 0:
        body = '<p class="note">No CTAs.</p>'
    else:
        body = ('<p class="note">Created and closed in the period; open and past due at its '
                f"end.</p>{_cta_charts(report.ctas, report.owner_column)}"
                f"<h3>By type and owner</h3>{table(report.ctas)}")
    return f'<section id="ctas"><h2>CTAs, {esc(period)}</h2>{body}</section>'
