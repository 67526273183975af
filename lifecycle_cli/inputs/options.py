"""How to read one table: encoding, sheet, header row, and what the messages say to fix."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ReadOptions:
    """How to read one table: the text encoding, the sheet and header row, and the columns
    that tell the header (the id, the key) when a title sits above it.

    ``rules_key`` is where the table's keys go in the rules file, e.g. ``("sources",
    "tickets")``; ``sheet_option``, the command-line option that picks its sheet
    (``--sheet`` for the customers). Both only make the messages say where to fix.
    """

    encoding: str | None = None
    sheet: str | None = None
    header_row: int | None = None  # 1-based: the file's line (CSV) or the sheet's row (Excel)
    required: tuple[str, ...] = ()
    rules_key: tuple[str, ...] = ()
    sheet_option: str | None = None

    def rules_text(self, key: str, value: object) -> str:
        """``sources: {tickets: {header_row: 3}}``: how to write ``key`` for this table."""
        text = f"{key}: {value}"
        for part in reversed(self.rules_key):
            text = f"{part}: {{{text}}}"
        return text

    @property
    def choose_sheet(self) -> str:
        """How to choose this table's sheet, for messages."""
        key = self.rules_text("sheet", "NAME") if self.rules_key else "sheet: NAME in the rules"
        return f"{self.sheet_option} NAME or {key}" if self.sheet_option else key

    @property
    def header_line(self) -> int:
        """The line of a text file's header (1 unless ``header_row`` moves it down)."""
        return self.header_row or 1
