""""Did you mean ...?": the closest of the names a user could have meant."""

from __future__ import annotations

import difflib


def suggest(
    word: str, candidates: list[str] | tuple[str, ...], *, cutoff: float = 0.6
) -> str | None:
    """The closest candidate to ``word``, or None."""
    lowered = {c.lower(): c for c in candidates}
    if word.lower() in lowered and lowered[word.lower()] != word:
        return lowered[word.lower()]
    found = difflib.get_close_matches(word, list(candidates), n=1, cutoff=cutoff)
    if not found:
        found = difflib.get_close_matches(word.lower(), list(lowered), n=1, cutoff=cutoff)
        found = [lowered[f] for f in found]
    return found[0] if found else None


def did_you_mean(word: str, candidates: list[str] | tuple[str, ...]) -> str | None:
    best = suggest(word, candidates)
    return f"did you mean '{best}'?" if best else None


def or_list(names: list[str] | tuple[str, ...]) -> str:
    """``'a', 'b' or 'c'``: the allowed values, as pydantic words a Literal's."""
    quoted = [repr(n) for n in names]
    return quoted[0] if len(quoted) == 1 else ", ".join(quoted[:-1]) + " or " + quoted[-1]
