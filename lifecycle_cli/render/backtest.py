"""A backtest as one self-contained HTML page, and its values as text (the terminal's too).

Built like the report's dashboard (`render.html`): inline styles and SVG, a
Content-Security-Policy that forbids scripts and outside resources, every value
from the data escaped, no clock time (the same backtest gives the same bytes).
"""

from __future__ import annotations

import polars as pl

from ..report.backtest import FALSE_ALARM, HIT, UNRESOLVED, Backtest
from ..version import __version__
from .cells import EMPTY, number, percent
from .html import CSP, STYLE, table
from .svg import PALETTE, Bar, bars, esc

SHOWN_MISSED = 50  # missed outcomes listed per prediction; --csv has them all
VERDICT_COLORS = {HIT: PALETTE[2], FALSE_ALARM: PALETTE[4], UNRESOLVED: "#8C8C8C"}

DEFINITIONS = (
    ("flag", "a customer entering a stage of the prediction on a replayed day (in one of "
     "its stages at the end of the day, in none the day before; on the first day, everyone "
     "already in one)"),
    ("hit", "a flag followed by the outcome within the horizon (the day after the flag up "
     "to horizon days later)"),
    ("false alarm", "a flag with no outcome within the horizon, whose horizon ends on or "
     "before the last day the outcomes file covers"),
    ("unresolved", "a flag whose horizon runs past the outcomes file: not counted as false"),
    ("precision", "hits / (hits + false alarms), per flag"),
    ("outcomes scored", "outcomes dated after the first replayed day up to the last, of "
     "customers in the customers export"),
    ("recall", "outcomes caught (a flag of the customer within the horizon before it) / "
     "outcomes scored"),
    ("lead time", "days from the earliest flag within the horizon to the outcome, per "
     "caught outcome; the median of those"),
)


def value_text(value: object, kind: str) -> str:
    """A summary value as people read it: shares as percentages, days with one decimal."""
    if value is None:
        return EMPTY
    if kind == "share":
        return percent(float(value))  # type: ignore[arg-type]
    if kind in ("count", "days"):
        return number(value)  # type: ignore[arg-type]
    return str(value)


def side_by_side_frame(result: Backtest, prediction: str) -> pl.DataFrame:
    """One prediction's measures (rows) by rules file (columns), as text."""
    rows = result.side_by_side(prediction)
    return pl.DataFrame(
        {"measure": [label for label, _, _ in rows],
         **{name: [value_text(values[i], kind) for _, kind, values in rows]
            for i, name in enumerate(result.rules)}},
        schema={"measure": pl.String, **dict.fromkeys(result.rules, pl.String)})


def render_backtest_html(result: Backtest) -> str:
    """The whole backtest as one HTML document."""
    period = f"{result.start.isoformat()} to {result.end.isoformat()}"
    sections = [_prediction(result, p, i) for i, p in enumerate(result.predictions)]
    if result.warnings or result.notes:
        items = "".join(f"<li>{esc(w)}</li>" for w in result.warnings)
        items += "".join(f'<li class="note">{esc(n)}</li>' for n in result.notes)
        sections.append(f'<section id="notes"><h2>Notes</h2><ul class="warnings">{items}</ul>'
                        "</section>")
    terms = "".join(f"<tr><th>{esc(t)}</th><td>{esc(d)}</td></tr>" for t, d in DEFINITIONS)
    sections.append('<section id="definitions"><h2>How it is scored</h2>'
                    f'<div class="scroll"><table><tbody>{terms}</tbody></table></div>'
                    "</section>")
    nav = "".join(f'<a href="#prediction-{i}">{esc(p)}</a>'
                  for i, p in enumerate(result.predictions))
    nav += '<a href="#definitions">How it is scored</a>'
    rules = " vs ".join(result.rules)
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        f"<title>Backtest {esc(period)}: {esc(rules)}</title>"
        f"<style>{STYLE}</style></head>\n<body>"
        f"<header><h1>Backtest of {esc(rules)}</h1><p>Replayed {esc(period)} "
        f"({result.days:,} days) · {result.customers:,} customers · outcomes from "
        f"{esc(result.outcomes_path.name)}, known up to {result.observed_until.isoformat()}"
        f"</p></header><nav>{nav}</nav><main>\n" + "\n".join(sections) + "\n</main>"
        f"<footer>Made by lifecycle {esc(__version__)}. A flag whose horizon runs past the "
        "outcomes file is unresolved, not false.</footer></body></html>\n"
    )


def _prediction(result: Backtest, prediction: str, index: int) -> str:
    summary = result.summary.filter(pl.col("prediction") == prediction)
    first = summary.row(0, named=True)
    what = (f"{first['stages']} predicts {first['outcome']} within "
            f"{first['horizon_days']} days")
    kpis = []
    for row in summary.iter_rows(named=True):
        label = f" · {row['rules']}" if len(result.rules) > 1 else ""
        kpis += [_kpi(value_text(row["precision"], "share"), f"precision{label}"),
                 _kpi(value_text(row["recall"], "share"), f"recall{label}"),
                 _kpi(value_text(row["median_lead_days"], "days"),
                      f"median lead time, days{label}")]
    charts = []
    for j, row in enumerate(summary.iter_rows(named=True)):
        verdicts = [Bar(verdict.replace("_", " "), int(row[column] or 0), 0,
                        number(row[column]), VERDICT_COLORS[verdict])
                    for verdict, column in ((HIT, "hits"), (FALSE_ALARM, "false_alarms"),
                                            (UNRESOLVED, "unresolved"))]
        title = f"<h3>{esc(row['rules'])}</h3>" if len(result.rules) > 1 else ""
        charts.append(title + bars(verdicts, f"Flags of {prediction} by verdict, "
                                   f"{row['rules']}", uid=f"verdicts-{index}-{j}"))
    chart = "".join(charts)
    missed = result.missed.filter(pl.col("prediction") == prediction).drop("prediction")
    if len(result.rules) == 1:
        missed = missed.drop("rules")
    missed_html = (
        f"<h3>Missed outcomes ({missed.height:,})</h3>"
        + (table(missed.head(SHOWN_MISSED)) if missed.height else
           '<p class="note">None: every scored outcome was flagged within the horizon.</p>')
        + (f'<p class="note">The first {SHOWN_MISSED:,} of {missed.height:,}; --csv DIR '
           "writes them all (missed.csv).</p>" if missed.height > SHOWN_MISSED else ""))
    return (f'<section id="prediction-{index}"><h2>{esc(prediction)}</h2>'
            f'<p class="note">{esc(what)}</p><div class="kpis">{"".join(kpis)}</div>'
            f"{table(side_by_side_frame(result, prediction))}"
            f"<h3>Flags by verdict</h3>{chart}{missed_html}</section>")


def _kpi(value: str, label: str) -> str:
    return f'<div class="kpi"><b>{esc(value)}</b><span>{esc(label)}</span></div>'
