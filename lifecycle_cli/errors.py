"""Typed errors and findings.

Errors are values until the CLI edge: the library raises these, the CLI
renders them once and maps them to the exit codes of the spec.
"""

from __future__ import annotations

from dataclasses import dataclass

EXIT_OK = 0
EXIT_BAD_INPUT = 1  # bad data or rules: a clear message, nothing written
EXIT_USAGE = 2  # bad command line
EXIT_CHECK_FAILED = 3  # `check` found what it was told to fail on


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a rules file or a data file, located as precisely as we can."""

    message: str
    file: str | None = None
    line: int | None = None  # 1-based line in the file (YAML line, or CSV data row + header)
    column: str | None = None  # a data column, for data problems
    path: str | None = None  # key path inside the rules file, e.g. "transitions[2].when"
    rule_id: str | None = None
    hint: str | None = None  # a likely fix, e.g. "did you mean `expected_days`?"

    def location(self) -> str:
        parts = []
        if self.file:
            parts.append(self.file + (f":{self.line}" if self.line else ""))
        elif self.line:
            parts.append(f"line {self.line}")
        if self.path:
            parts.append(self.path)
        if self.rule_id:
            parts.append(f"rule '{self.rule_id}'")
        if self.column:
            parts.append(f"column '{self.column}'")
        return ", ".join(parts)

    def render(self) -> str:
        where = self.location()
        text = f"{where}: {self.message}" if where else self.message
        if self.hint:
            text += f" ({self.hint})"
        return text


class LifecycleError(Exception):
    """Base for every error caused by the user's data, rules or options (exit 1)."""

    exit_code = EXIT_BAD_INPUT

    def __init__(self, problems: list[Problem] | Problem | str):
        if isinstance(problems, str):
            problems = [Problem(problems)]
        elif isinstance(problems, Problem):
            problems = [problems]
        self.problems: list[Problem] = list(problems)
        super().__init__("\n".join(p.render() for p in self.problems))


class RulesError(LifecycleError):
    """The rules file is malformed or inconsistent; carries every problem found."""


class DataError(LifecycleError):
    """An input export cannot be used as it is."""


class OutputError(LifecycleError):
    """Outputs cannot be written where asked (e.g. they would replace an input)."""


class OptionError(LifecycleError):
    """A command-line option has a bad value (exit 2)."""

    exit_code = EXIT_USAGE
