"""A column mapping of the rules (``columns:``, a source's or a table's ``columns``) applied
to an export's header."""

from __future__ import annotations

from collections.abc import Collection
from pathlib import Path

from ..columns import ID, OPTIONAL_CUSTOMER_COLUMNS, TIMESTAMP
from ..errors import DataError
from ..rules.model import Rules
from ..suggest import did_you_mean


def rename_map(
    frame_columns: list[str],
    mapping: dict[str, str],
    path: Path,
    rules: Rules,
    section: str | tuple[str, ...],
    required: Collection[str] = (ID, TIMESTAMP),
) -> dict[str, str]:
    """export header -> rules name; error for mapped headers that are missing.

    ``section``: where the mapping is in the rules, ``"customers"`` or ``"usage"`` (under
    ``columns:``) or a key path such as ``("sources", "tickets", "columns")``. Mapped
    ``required`` columns that are missing get their own message from the caller.
    """
    where = ("columns", section) if isinstance(section, str) else section
    problems = []
    rename: dict[str, str] = {}
    for internal, external in mapping.items():
        if internal == external:
            continue
        if external not in frame_columns:
            if internal in OPTIONAL_CUSTOMER_COLUMNS or internal in required:
                continue  # absent optional columns are appended; required ones reported later
            problems.append(
                rules.problem(
                    f"column '{external}' (mapped to '{internal}') is not in {path}",
                    *where,
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


def shadowed(frame_columns: list[str], mapping: dict[str, str],
             rename: dict[str, str]) -> list[str]:
    """Columns named like a rules name that the mapping gives to another column: hidden."""
    return [c for c in frame_columns if mapping.get(c, c) != c and c not in rename]
