"""Who gets an owner's digest where: the ``--addresses FILE`` table.

CTA owners are names (the customers' ``csm`` column, or ``default_owner``).
The file maps them to addresses: a table (CSV, XLSX, Parquet...) with a row per
owner and the columns

- ``owner`` (required; or ``csm``, ``name``): the owner as the CTAs name it
  (case and surrounding blanks ignored);
- ``email`` (or ``e-mail``, ``email address``): one address, or several
  separated by ``;`` or ``,`` (a team lead in copy);
- ``webhook`` (or ``webhook url``, ``slack webhook``): the owner's own incoming
  webhook, used instead of ``--webhook URL``.

Headers are matched ignoring case, blanks, ``-`` and ``_``. Every problem (an
empty owner, an address that is not one, an owner listed twice with other
addresses) is reported at once, with the file's line, and nothing is sent.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from ..errors import DataError, Problem
from ..inputs.formats import read_table, rows_text
from ..inputs.options import ReadOptions
from ..suggest import did_you_mean

COLUMNS = {  # our name -> the headers that mean it
    "owner": ("owner", "csm", "name", "owner_name"),
    "email": ("email", "e_mail", "email_address", "mail"),
    "webhook": ("webhook", "webhook_url", "slack_webhook", "slack"),
}
ROW = "__row"
# an address as people write them: local@domain, no blanks (a mail server says the rest)
EMAIL = r"^[^@\s<>,;\"]+@[^@\s<>,;\"]+\.[^@\s<>,;\"]+$"
URL = r"^https?://[^\s/]+"


def owner_key(expr: pl.Expr) -> pl.Expr:
    """An owner's name as it is matched: case and surrounding blanks ignored."""
    return expr.cast(pl.String).str.strip_chars().str.to_lowercase()


def valid_email(address: str) -> bool:
    return re.match(EMAIL, address) is not None


def split_emails(text: str) -> list[str]:
    """``a@x.com; b@y.com`` (or with commas) as a list."""
    return [part.strip() for part in re.split(r"[;,]", text) if part.strip()]


@dataclass(frozen=True)
class Addresses:
    """Owners' email addresses and webhooks, by owner (matched with `owner_key`)."""

    emails: dict[str, list[str]] = field(default_factory=dict)
    webhooks: dict[str, str] = field(default_factory=dict)
    path: Path | None = None

    def email(self, owner: str) -> list[str]:
        return self.emails.get(owner.strip().lower(), [])

    def webhook(self, owner: str) -> str | None:
        return self.webhooks.get(owner.strip().lower())


def _key(header: str) -> str:
    return re.sub(r"[\s_\-]+", "_", header.strip().lower()).strip("_")


def read_addresses(path: Path, encoding: str | None = None) -> Addresses:
    """The owners' addresses in ``path``; a DataError with every problem, located."""
    frame = read_table(path, ReadOptions(encoding=encoding))
    found: dict[str, str] = {}
    for header in frame.columns:
        for name, words in COLUMNS.items():
            if _key(header) in words and name not in found:
                found[name] = header
    if "owner" not in found:
        raise DataError(Problem(
            "the file has no column 'owner'", file=str(path),
            hint=(did_you_mean("owner", frame.columns) or "its columns: "
                  + ", ".join(frame.columns)) + "; it needs owner and email (or webhook)"))
    if "email" not in found and "webhook" not in found:
        raise DataError(Problem(
            "the file has neither an 'email' nor a 'webhook' column", file=str(path),
            hint=(did_you_mean("email", frame.columns) or "its columns: "
                  + ", ".join(frame.columns))))

    def text(name: str) -> pl.Expr:
        if name not in found:
            return pl.lit(None, dtype=pl.String).alias(name)
        value = pl.col(found[name]).cast(pl.String).str.strip_chars()
        return pl.when(value == "").then(None).otherwise(value).alias(name)

    rows = frame.with_row_index(ROW).select(ROW, *(text(n) for n in COLUMNS))
    rows = rows.with_columns(owner_key(pl.col("owner")).alias("key"),
                             pl.col("email").str.replace_all(",", ";", literal=True)
                             .str.split(";").list.eval(pl.element().str.strip_chars())
                             .list.eval(pl.element().filter(pl.element() != ""))
                             .alias("emails"))
    problems: list[Problem] = []

    def bad(hits: pl.DataFrame, message: str, column: str, hint: str | None = None) -> None:
        if hits.height:
            lines = rows_text(path, hits[ROW].to_list(), hits.height)
            problems.append(Problem(f"{message} ({hits.height:,} row(s): {lines})",
                                    file=str(path), column=found.get(column, column),
                                    hint=hint))

    bad(rows.filter(pl.col("owner").is_null() & (pl.col("email").is_not_null()
                                                  | pl.col("webhook").is_not_null())),
        "an empty owner", "owner", "write the owner as the CTAs name it (the csm column)")
    wrong = rows.filter(pl.col("emails").list.eval(
        ~pl.element().str.contains(EMAIL)).list.any().fill_null(False))
    for row, value in wrong.select(ROW, "email").head(5).iter_rows():
        bad(pl.DataFrame({ROW: [row]}), f"{value!r} is not an email address", "email",
            "write name@example.com; separate several with ;")
    bad(rows.filter(pl.col("webhook").is_not_null() & ~pl.col("webhook").str.contains(URL)),
        "a webhook that is not an http(s) URL", "webhook",
        "write the incoming webhook's URL, https://...")
    twice = rows.filter(pl.col("key").is_not_null()).filter(
        pl.struct("emails", "webhook").n_unique().over("key") > 1)
    for (_key_value,), group in twice.group_by("key", maintain_order=True):
        bad(group, f"the owner {group['owner'][0]!r} is listed twice with other addresses",
            "owner", "keep one row per owner (several emails go in one cell, separated by ;)")
    if problems:
        raise DataError(problems)
    kept = rows.filter(pl.col("key").is_not_null()).unique("key", keep="first",
                                                            maintain_order=True)
    emails = {k: list(v) for k, v in kept.select("key", "emails").iter_rows() if v}
    webhooks = {k: v for k, v in kept.select("key", "webhook").iter_rows() if v}
    return Addresses(emails, webhooks, path)
