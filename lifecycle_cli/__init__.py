"""lifecycle: customer lifecycle stages, transitions and calls to action over your exports.

The command line (``lifecycle``) is a thin face on this library::

    from lifecycle_cli import load_rules, run, write_tables

    rules = load_rules("rules/default.yaml")
    result = run(rules, "customers.csv", ["usage.csv"])
    write_tables(result.tables, "out", "csv", inputs=result.input_paths)
"""

from .check.run import check
from .day.explain import explain
from .day.pipeline import RunResult, prepare, run
from .errors import DataError, LifecycleError, OutputError, Problem, RulesError
from .render.tables import write_tables
from .rules.load import load_rules, parse_rules
from .rules.model import Rules
from .version import __version__

__all__ = [
    "DataError",
    "LifecycleError",
    "OutputError",
    "Problem",
    "Rules",
    "RulesError",
    "RunResult",
    "check",
    "explain",
    "load_rules",
    "parse_rules",
    "prepare",
    "run",
    "write_tables",
    "__version__",
]
