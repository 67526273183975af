"""What a compliance finding is: a name, a severity, a docstring, and the rows it finds.

A finding is a subclass of :class:`Finding` in a module of its own, named for
it. Its class docstring is its documentation: a first paragraph, a
``Looks at:`` and a ``Reads:`` line (all three required), then anything else
for the reader of the code::

    class Stuck(Finding):
        \"""`days_in_stage > stuck_factor × expected_days` (rounded down).

        Looks at: the stages after the day's moves
        Reads: `stuck_factor`; the stages' `expected_days`

        A stage without `expected_days` has no stuck customers.
        \"""

The first paragraph says when a customer has the finding; ``Looks at:`` what
it looks at (the stages the day starts from, the stages after the day's
moves, the day's moves, the state's records); ``Reads:`` the settings it reads
(``—`` for none). The table of findings in docs/check.md is made of these
parts, one line each (tests/test_findings.py keeps it up to date).

:meth:`Finding.find` returns the finding's rows as a LazyFrame in the columns
of :data:`FINDING_SCHEMA`, built with :meth:`Finding.rows` from one of the
context's customer frames; :meth:`Finding.not_checked` says why the finding
cannot be looked for in a context (None: it can).

This package must not import `lifecycle_cli.rules` (the rules import the
registry), nor `day`, `jobs`, `state`, `report`, `render` or `check.run`, but
for type hints.
"""

from __future__ import annotations

import inspect
import re
from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, ClassVar

import polars as pl

from ...columns import DAYS_IN_STAGE, EXPECTED_DAYS, FINDING_SCHEMA, STAGE
from ...expressions import Kind, reason_expr
from .context import OWNER

if TYPE_CHECKING:
    from .context import Context

ERROR = "error"
WARNING = "warning"
INFO = "info"
SEVERITIES = (ERROR, WARNING, INFO)  # most severe first: the order of the findings table


# words that `--fail-on` and `compliance: fail_on` take besides the findings' names
RESERVED = ("any", "none")
_FIELDS = ("Looks at", "Reads")


class Finding(ABC):
    """One kind of compliance finding. See the module's docstring."""

    name: ClassVar[str]  # the kind: the `finding` column, `--fail-on`, `compliance: fail_on`
    severity: ClassVar[str]  # one of SEVERITIES

    @abstractmethod
    def find(self, context: Context) -> pl.LazyFrame:
        """The finding's rows (FINDING_SCHEMA) in ``context``, where it can be checked."""

    def not_checked(self, context: Context) -> str | None:
        """Why the finding cannot be looked for in ``context``; None when it can."""
        return None

    def rows(self, frame: pl.LazyFrame, context: Context, detail: pl.Expr) -> pl.LazyFrame:
        """Rows of the findings table, one per row of ``frame``: a customer frame (see
        `context.customer_frame`), or events joined to one (see :func:`with_customer`)."""
        return frame.select(
            pl.lit(context.as_of, dtype=pl.Date).alias("as_of"),
            pl.lit(self.name, dtype=pl.String).alias("finding"),
            pl.lit(self.severity, dtype=pl.String).alias("severity"),
            pl.col("customer_id").cast(pl.String),
            pl.col(STAGE).cast(pl.String),
            pl.col(OWNER).cast(pl.String),
            pl.col(DAYS_IN_STAGE).cast(pl.Int64),
            pl.col(EXPECTED_DAYS).cast(pl.Int64),
            detail.alias("detail"),
        )

    # -- its documentation, from the class docstring ----------------------------------------

    @property
    def doc(self) -> str:
        return inspect.cleandoc(type(self).__doc__ or "")

    @property
    def summary(self) -> str:
        """When a customer has the finding: the docstring's first paragraph, on one line."""
        return " ".join(self.doc.split("\n\n", 1)[0].split())

    @property
    def looks_at(self) -> str:
        """Which customers or records it looks at: the docstring's ``Looks at:``."""
        return _doc_fields(self.doc).get("Looks at", "")

    @property
    def reads(self) -> str:
        """The settings it reads: the docstring's ``Reads:``."""
        return _doc_fields(self.doc).get("Reads", "")

    def problems(self) -> list[str]:
        """What keeps this finding from being registered (see the module's docstring)."""
        label = type(self).__name__
        name = getattr(self, "name", None)
        out = []
        if not isinstance(name, str) or not re.fullmatch(r"[a-z][a-z0-9_]*", name):
            out.append(f"{label}: its name must be a word in lower case, e.g. no_owner")
        elif name in RESERVED:
            out.append(f"{label}: '{name}' is a word of --fail-on, not a finding")
        if getattr(self, "severity", None) not in SEVERITIES:
            out.append(f"{label}: its severity must be one of {', '.join(SEVERITIES)}")
        if not self.summary:
            out.append(f"{label}: no docstring (when a customer has the finding)")
        for key in _FIELDS:
            if key not in _doc_fields(self.doc):
                out.append(f"{label}: its docstring has no '{key}:' line")
        return out


def _doc_fields(doc: str) -> dict[str, str]:
    """``Looks at: ...`` and ``Reads: ...`` of a docstring; a field runs on over the
    following lines up to the next field or blank line."""
    fields: dict[str, str] = {}
    key = None
    for line in doc.splitlines():
        head, _, rest = line.partition(":")
        if head in _FIELDS and rest.startswith(" "):
            key = head
            fields[key] = rest.strip()
        elif key is not None and line.strip():
            fields[key] += " " + line.strip()
        else:
            key = None
    return fields


def no_rows() -> pl.LazyFrame:
    """No findings: an empty frame in the columns of the findings table."""
    return pl.LazyFrame(schema=FINDING_SCHEMA)


def detail(*items: tuple[str, pl.Expr, Kind]) -> pl.Expr:
    """The ``detail`` column: ``name=value; ...``, like the transitions' ``reason``."""
    return reason_expr(list(items))


def with_customer(events: pl.LazyFrame, customers: pl.LazyFrame) -> pl.LazyFrame:
    """``events`` (with ``customer_id`` as text) joined to the customers' current values;
    customers that the export no longer lists get NULLs."""
    # the events' customers first: a semi join probes the 1M customers with the events' few
    # ids, where the left join would build its table of all of them (0.07-0.1 s a finding)
    theirs = customers.join(events.select("customer_id").unique(), on="customer_id",
                            how="semi")
    return events.join(theirs, on="customer_id", how="left", maintain_order="left")


def not_exempt(context: Context) -> pl.Expr:
    """The customer's stage is not one of the settings' ``exempt_stages``."""
    return ~pl.col(STAGE).is_in(list(context.settings.exempt_stages))
