"""What a run did, as plain JSON-able data: the ``--summary-json`` document, which is also
each run's manifest in the state."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..day.pipeline import Day
from ..errors import LifecycleError
from ..files import file_facts
from ..version import __version__


def build_summary(
    result: Day,
    rules_path: Path | None,
    started_at: dt.datetime,
    seconds: float,
    *,
    written: Sequence[Path] = (),
    dry_run: bool = False,
    state: Path | None = None,
    base: dt.date | None = None,
    replaced: bool = False,
    dropped: Sequence[dt.date] = (),
    warnings: Sequence[str] = (),
    hash_inputs: bool = True,
) -> dict[str, Any]:
    """What a run did, as plain JSON-able data: the `--summary-json` file and the manifest."""
    m = result.metrics
    moves = {rule: n for rule, n in result.moves.iter_rows()}
    inputs = [file_facts(p) if hash_inputs else {"path": str(p)} for p in result.input_paths]
    return {
        "status": "ok",
        "exit_code": 0,
        "tool": f"lifecycle {__version__}",
        "as_of": result.as_of.isoformat(),
        "started_at": started_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "duration_seconds": round(seconds, 3),
        "dry_run": dry_run,
        "rules": _rules_facts(rules_path),
        "inputs": inputs,
        "rows": {
            "customers": result.customers.height,
            "usage": m.usage_rows,
            "usage_unknown_customer": m.unknown_customer_rows,
            "usage_without_timestamp": m.null_timestamp_rows,
            "usage_after_as_of": m.after_as_of_rows,
            "usage_unmatched_key": m.unmatched_key_rows,
            "sources": m.by_source,
        },
        "customers_moved": result.moved_customers,
        "moves_by_rule": moves,
        "stages_before": {("" if k is None else k): v
                          for k, v in sorted(result.stages_before.items(), key=_none_first)},
        "stages_after": dict(sorted(result.stages_after.items())),
        **({"segments": {name: dict(sorted(stages.items()))
                         for name, stages in result.segments_after.items()}}
           if result.rules.segments else {}),
        "overrides": result.overrides.height,
        "export_lagging": result.lagging,
        "ctas": _cta_facts(result),
        "schema": result.schema,
        "warnings": [*result.warnings, *warnings],
        "outputs": [str(p) for p in written],
        "state": None if state is None else {
            "path": str(state),
            "started_from": None if base is None else base.isoformat(),
            "replaced_as_of": replaced,
            "dropped_as_of": [d.isoformat() for d in dropped],
        },
    }


def _cta_facts(result: Day) -> dict[str, Any]:
    counts = result.cta_counts
    return {
        "created": int(counts["created"].sum()),
        "closed": int(counts["closed"].sum()),
        "tasks": result.ctas.tasks.height,
        "by_rule": {rule: {"created": c, "closed": d} for rule, c, d in counts.iter_rows()},
    }


def _none_first(item: tuple[str | None, int]) -> tuple[bool, str]:
    return (item[0] is not None, item[0] or "")


def _rules_facts(path: Path | None) -> dict[str, Any] | None:
    if path is None:
        return None
    return file_facts(Path(path))


def error_summary(error: LifecycleError, started_at: dt.datetime, seconds: float,
                  as_of: dt.date | None) -> dict[str, Any]:
    """The JSON summary of a run that failed: the exit code and every problem."""
    return {
        "status": "error",
        "exit_code": error.exit_code,
        "tool": f"lifecycle {__version__}",
        "as_of": None if as_of is None else as_of.isoformat(),
        "started_at": started_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "duration_seconds": round(seconds, 3),
        "problems": [
            {k: v for k, v in p.__dict__.items() if v is not None} for p in error.problems
        ],
    }
