"""The morning digest: an owner's past-due, due-today and new CTAs, each with its open tasks.

Built from the worklist of a state's date (`lifecycle_cli.ctas.worklist`): every
row of it is a CTA (seq 0) or one of its open tasks. A CTA is in its owner's
digest when

- it, or one of its open tasks, is **past due** (due before the as-of date);
- else when it, or one of its tasks, is **due today** (on the as-of date);
- else when it is **new**: created after the owner's last digest (``since``;
  for a first digest, after the state's date before the as-of date, so the
  CTAs that date's run created).

Each CTA is in one section, the most urgent that holds. The grouping and
counting are Polars over the whole worklist; what is written for each owner
(plain text, HTML, a Slack-compatible text, the structured JSON) is rendered
from the digest's rows.
"""

from __future__ import annotations

import datetime as dt
import html
from dataclasses import dataclass, field
from typing import Any

import polars as pl

PAST_DUE, DUE_TODAY, NEW = "past_due", "due_today", "new"
SECTIONS = {PAST_DUE: "Past due", DUE_TODAY: "Due today", NEW: "New"}  # in the digest's order
_ORDER = {name: i for i, name in enumerate(SECTIONS)}


@dataclass(frozen=True)
class Digest:
    """One owner's digest for one as-of date."""

    owner: str
    as_of: dt.date
    ctas: list[dict[str, Any]]  # in the digest's order; each with its "tasks"
    counts: dict[str, int] = field(default_factory=dict)  # past_due, due_today, new, ctas, tasks

    @property
    def subject(self) -> str:
        c = self.counts
        return (f"Your CTAs for {self.as_of}: {c[PAST_DUE]} past due, {c[DUE_TODAY]} due "
                f"today, {c[NEW]} new")

    def sections(self) -> list[tuple[str, list[dict[str, Any]]]]:
        """The sections that have CTAs, in order: (title, their CTAs)."""
        out = [(title, [c for c in self.ctas if c["section"] == section])
               for section, title in SECTIONS.items()]
        return [(title, entries) for title, entries in out if entries]

    def text(self, footer: str | None = None) -> str:
        """The plain-text body."""
        lines = [f"{self.owner}, your lifecycle CTAs for {self.as_of}: {self._count_text()}."]
        for title, entries in self.sections():
            lines += ["", f"{title.upper()} ({len(entries)})"]
            for cta in entries:
                lines += ["", f"* {cta['name']}: {_customer(cta)}",
                          f"  {_facts(cta, self.as_of)}"]
                lines += [f"  {t['seq']}. {t['task']} (due {_due(t['due_on'], self.as_of)})"
                          for t in cta["tasks"]]
                lines.append(f"  id: {cta['cta_id']}")
        if footer:
            lines += ["", "-- ", footer]
        return "\n".join(lines) + "\n"

    def html(self, footer: str | None = None) -> str:
        """A simple HTML alternative of the text (every value escaped)."""
        e = html.escape
        parts = [f"<p>{e(self.owner)}, your lifecycle CTAs for {self.as_of}: "
                 f"<b>{e(self._count_text())}</b>.</p>"]
        for title, entries in self.sections():
            parts.append(f"<h3>{e(title)} ({len(entries)})</h3>\n<ul>")
            for cta in entries:
                tasks = "".join(f"<li>{e(t['task'])} <small>(due "
                                f"{e(_due(t['due_on'], self.as_of))})</small></li>"
                                for t in cta["tasks"])
                parts.append(
                    f"<li><b>{e(cta['name'])}</b>: {e(_customer(cta))}<br>"
                    f"<small>{e(_facts(cta, self.as_of))}</small>"
                    + (f"<ol>{tasks}</ol>" if tasks else "")
                    + f"<small style=\"color:#777\">id: {e(cta['cta_id'])}</small></li>")
            parts.append("</ul>")
        if footer:
            parts.append(f"<p style=\"color:#777\"><small>{e(footer)}</small></p>")
        return ("<!DOCTYPE html>\n<html><body style=\"font-family:sans-serif\">\n"
                + "\n".join(parts) + "\n</body></html>\n")

    def slack(self) -> dict[str, Any]:
        """A Slack-compatible webhook body: ``text`` (Slack's markup, escaped as Slack asks),
        then the same digest as fields for other tools."""
        e = _slack_escape
        lines = [f"*{e(self.owner)}*: lifecycle CTAs for {self.as_of}: {self._count_text()}"]
        for title, entries in self.sections():
            lines += ["", f"*{title} ({len(entries)})*"]
            for cta in entries:
                lines.append(f"• *{e(cta['name'])}*: {e(_customer(cta))}: "
                             f"{e(_facts(cta, self.as_of))}")
                lines += [f"    {t['seq']}. {e(t['task'])} (due "
                          f"{_due(t['due_on'], self.as_of)})" for t in cta["tasks"]]
        return {
            "text": "\n".join(lines),
            "owner": self.owner,
            "as_of": self.as_of.isoformat(),
            "counts": dict(self.counts),
            "ctas": [_jsonable(c) for c in self.ctas],
        }

    def _count_text(self) -> str:
        c = self.counts
        return f"{c[PAST_DUE]} past due, {c[DUE_TODAY]} due today, {c[NEW]} new"


def digests(items: pl.DataFrame, as_of: dt.date, since: pl.DataFrame | None = None,
            default_since: dt.date | None = None) -> list[Digest]:
    """Each owner's digest from the worklist ``items`` (WORKLIST_SCHEMA) of ``as_of``, by
    owner name; owners with nothing past due, due today or new get none. ``since`` (owner,
    since): for each owner, the date after which a CTA created is new; an owner it lacks
    gets ``default_since`` (None: every CTA is new)."""
    day = pl.lit(as_of, dtype=pl.Date)
    rows = items.lazy().filter(pl.col("owner").is_not_null())
    if since is None:
        since = pl.DataFrame(schema={"owner": pl.String, "since": pl.Date})
    rows = rows.join(since.lazy().select("owner", pl.col("since").cast(pl.Date)),
                     on="owner", how="left").with_columns(
        pl.col("since").fill_null(pl.lit(default_since, dtype=pl.Date)))
    is_cta = pl.col("seq") == 0
    per_cta = rows.group_by("owner", "cta_id").agg(
        pl.col("due_on").min().alias("first_due"),
        pl.col("what").filter(is_cta).first().alias("name"),
        pl.col("due_on").filter(is_cta).first().alias("due_on"),
        *(pl.col(c).first() for c in ("customer_id", "customer_name", "type", "priority",
                                      "stage", "created_on", "since")),
        pl.struct(pl.col("seq"), pl.col("what").alias("task"), pl.col("due_on"))
        .filter(~is_cta).sort_by(pl.col("seq").filter(~is_cta)).alias("tasks"),
    )
    section = (pl.when(pl.col("first_due") < day).then(pl.lit(PAST_DUE))
               .when(pl.col("first_due") == day).then(pl.lit(DUE_TODAY))
               .when(pl.col("since").is_null() | (pl.col("created_on") > pl.col("since")))
               .then(pl.lit(NEW)))
    found = (
        per_cta.with_columns(section.alias("section"))
        .filter(pl.col("section").is_not_null())
        .with_columns(pl.col("section").replace_strict(_ORDER, return_dtype=pl.Int64)
                      .alias("__order"),
                      pl.coalesce(pl.col("name"), pl.col("cta_id")).alias("name"))
        .sort(["owner", "__order", "first_due", "customer_id", "cta_id"], nulls_last=True)
        .drop("__order", "since")
        .collect()
    )
    out = []
    for (owner,), frame in found.group_by("owner", maintain_order=True):
        ctas = frame.drop("owner").to_dicts()
        counts = {s: sum(1 for c in ctas if c["section"] == s) for s in SECTIONS}
        counts |= {"ctas": len(ctas), "tasks": sum(len(c["tasks"]) for c in ctas)}
        out.append(Digest(str(owner), as_of, ctas, counts))
    return out


def _customer(cta: dict[str, Any]) -> str:
    name = cta.get("customer_name")
    return f"{name} ({cta['customer_id']})" if name else str(cta["customer_id"])


def _facts(cta: dict[str, Any], as_of: dt.date) -> str:
    parts = [f"{cta['priority']} priority" if cta.get("priority") else None, cta.get("stage"),
             f"due {_due(cta['due_on'], as_of)}" if cta.get("due_on") else None]
    return ", ".join(p for p in parts if p)


def _due(due: dt.date | None, as_of: dt.date) -> str:
    if due is None:
        return "no date"
    if due < as_of:
        late = (as_of - due).days
        return f"{due}, {late} day{'s' if late != 1 else ''} late"
    return f"{due}, today" if due == as_of else str(due)


def _slack_escape(text: str) -> str:
    """Slack reads ``&``, ``<`` and ``>`` as markup: a customer named ``<!channel>`` must not
    notify a channel."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    if isinstance(value, dt.date):
        return value.isoformat()
    return value
