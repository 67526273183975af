"""The compliance findings of `lifecycle check`, one module each, registered here.

Each module holds one :class:`~.base.Finding`: its name, its severity, its
docstring (when a customer has it, what it looks at, the settings it reads),
the rows it finds in a :class:`~.context.Context`, and why it cannot be looked
for when it cannot. Everything else follows this registry: the kinds and their
order (the findings table, the summary, `--summary-json`), the severity of
each, `--fail-on` and its help, `compliance: fail_on` in the rules file
(`rules.checks`), the "not checked" list, and the findings table of
docs/check.md (tests/test_findings.py keeps it up to date).

Adding a finding is a module here and its line in :data:`BUILT_IN`, its row in
docs/check.md (``UPDATE_GOLDEN=1 pytest tests/test_findings.py`` writes it),
and its test.

The rules import this registry: nothing in this package imports
`lifecycle_cli.rules`, nor `day`, `jobs`, `state`, `report`, `render` or
`check.run` (except for type hints).
"""

from __future__ import annotations

from collections.abc import Sequence

import polars as pl

from .base import ERROR, FINDING_SCHEMA, INFO, RESERVED, SEVERITIES, WARNING, Finding
from .context import Context, customer_frame
from .cta_past_due import CtaPastDue
from .entered_in_future import EnteredInFuture
from .no_owner import NoOwner
from .no_renewal_date import NoRenewalDate
from .no_usage import NoUsage
from .overdue import Overdue
from .override import Override
from .skipped_stage import SkippedStage
from .stuck import Stuck
from .unknown_stage import UnknownStage

# The built-in findings, most severe first; within a severity, in the order the findings
# table and the summary list them.
BUILT_IN: tuple[Finding, ...] = (
    UnknownStage(),
    EnteredInFuture(),
    Stuck(),
    Overdue(),
    CtaPastDue(),
    SkippedStage(),
    NoOwner(),
    NoRenewalDate(),
    NoUsage(),
    Override(),
)

# name -> finding, most severe first, then in the order of registration
FINDINGS: dict[str, Finding] = {}


def register(finding: Finding) -> Finding:
    """Make ``finding`` one that `check` looks for (a name registered once)."""
    problems = finding.problems()
    if not problems and finding.name in FINDINGS:
        problems.append(f"finding {finding.name!r} is already registered")
    if problems:
        raise ValueError("; ".join(problems))
    FINDINGS[finding.name] = finding
    ordered = sorted(FINDINGS.values(), key=lambda f: SEVERITIES.index(f.severity))
    FINDINGS.clear()
    FINDINGS.update((f.name, f) for f in ordered)
    return finding


def unregister(name: str) -> None:
    """Remove a registered finding (for tests that register their own)."""
    del FINDINGS[name]


def finding(name: str) -> Finding:
    return FINDINGS[name]


def names() -> tuple[str, ...]:
    """The kinds, most severe first: the order of the findings table."""
    return tuple(FINDINGS)


def severity(name: str) -> str:
    return FINDINGS[name].severity


def expand(kinds: Sequence[str]) -> tuple[str, ...]:
    """Kinds in the registry's order; ``any`` is every kind (``none``, and no kind, none)."""
    if "any" in kinds:
        return names()
    return tuple(k for k in FINDINGS if k in kinds)


def look(context: Context) -> tuple[list[pl.LazyFrame], dict[str, str]]:
    """The rows of every finding that can be looked for in ``context``, and for each of the
    others, why not."""
    parts: list[pl.LazyFrame] = []
    not_checked: dict[str, str] = {}
    for each in FINDINGS.values():
        why = each.not_checked(context)
        if why is None:
            parts.append(each.find(context))
        else:
            not_checked[each.name] = why
    return parts, not_checked


for _built_in in BUILT_IN:
    register(_built_in)
del _built_in

__all__ = [
    "BUILT_IN",
    "ERROR",
    "FINDINGS",
    "FINDING_SCHEMA",
    "INFO",
    "RESERVED",
    "SEVERITIES",
    "WARNING",
    "Context",
    "Finding",
    "customer_frame",
    "expand",
    "finding",
    "look",
    "names",
    "register",
    "severity",
    "unregister",
]
