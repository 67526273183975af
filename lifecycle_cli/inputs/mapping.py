"""The rules' ``columns:`` mapping applied to an export's header."""

from __future__ import annotations

from pathlib import Path

from ..columns import ID, OPTIONAL_CUSTOMER_COLUMNS, TIMESTAMP
from ..errors import DataError
from ..rules.model import Rules
from ..suggest import did_you_mean


def rename_map(
    frame_columns: list[str], mapping: dict[str, str], path: Path, rules: Rules, section: str
) -> dict[str, str]:
    """export header -> rules name; error for mapped headers that are missing."""
    problems = []
    rename: dict[str, str] = {}
    for internal, external in mapping.items():
        if internal == external:
            continue
        if external not in frame_columns:
            if internal in OPTIONAL_CUSTOMER_COLUMNS or internal in (ID, TIMESTAMP):
                continue  # absent optional columns are appended; required ones reported later
            problems.append(
                rules.problem(
                    f"column '{external}' (mapped to '{internal}') is not in {path}",
                    "columns",
                    section,
                    internal,
                    hint=did_you_mean(external, frame_columns)
                    or "columns in the file: " + ", ".join(frame_columns[:20]),
                )
            )
        else:
            rename[external] = internal
    if problems:
        raise DataError(problems)
    return rename


