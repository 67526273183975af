"""What every model of the rules file shares: the pydantic base and how a condition is read.

A leaf module (it imports pydantic only), so that the rules model
(`lifecycle_cli.rules.model`) and the registries it takes its allowed values
from (`lifecycle_cli.metrics.aggregations`, `lifecycle_cli.ctas.triggers`)
can all build on it without an import cycle.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict


class RulesModel(BaseModel):
    """A section or item of the rules file: unknown keys refused, read-only once loaded."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True)


def condition_text(value: Any) -> Any:
    """A condition as SQL text: `when: true` in YAML is a boolean, not a string; read it as
    the SQL literal (for a ``field_validator(..., mode="before")``)."""
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    return value
