"""lifecycle: customer lifecycle stages, transitions and calls to action over your exports.

The command line (``lifecycle``) is a thin face on this library. ``run`` is what
``lifecycle run`` does::

    from lifecycle_cli import load_rules, run

    rules = load_rules("rules/default.yaml")
    result = run(rules, "customers.csv", ["usage.csv"], out="out", state="state")
    result.customers, result.transitions  # Polars DataFrames

One day at a time, in memory, for many days from one read of the exports::

    from lifecycle_cli import load, run_day

    loaded = load(rules, "customers.csv", ["usage.csv"])
    day = run_day(rules, loaded, datetime.date(2026, 11, 1))

A state folder is read through ``StateView`` (the worklist, the CTAs, the history).
"""

from .compliance.run import check
from .day.explain import explain
from .day.load import Tables, load
from .day.pipeline import Day, run_day
from .day.start import Start
from .errors import DataError, LifecycleError, OutputError, Problem, RulesError
from .jobs.backfill import backfill
from .jobs.nightly import RunResult, run
from .render.tables import write_tables
from .rules.load import load_rules, parse_rules
from .rules.model import Rules
from .state.view import StateView
from .version import __version__

__all__ = [
    "DataError",
    "Day",
    "LifecycleError",
    "OutputError",
    "Problem",
    "Rules",
    "RulesError",
    "RunResult",
    "Start",
    "StateView",
    "Tables",
    "backfill",
    "check",
    "explain",
    "load",
    "load_rules",
    "parse_rules",
    "run",
    "run_day",
    "write_tables",
    "__version__",
]
