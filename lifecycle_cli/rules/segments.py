"""Segments (``segments:``): the checks of the section that need no data.

A customer's segment is the first segment whose `when` holds, in file order;
a segment without `when` takes every customer left (else they are in the
segment ``default``). The segment is chosen from the customers export and the
metrics before the stages are decided, and is the ``segment`` column of the
customers output. A segment may change stages' ``expected_days`` and add or
replace transition and CTA rules (`Rules.transition_rules`, `Rules.cta_rules`).
"""

from __future__ import annotations

from ..errors import Problem
from ..suggest import did_you_mean
from .model import DEFAULT_SEGMENT, Rules


def check_segments(rules: Rules) -> list[Problem]:
    """The catch-all last, `default` not taken, known stages (names and ids once each, and
    no derived value or metric called ``segment``: `checks.cross_check`)."""
    if not rules.segments:
        return []
    p = rules.problem
    problems: list[Problem] = []
    catch_all = [k for k, s in enumerate(rules.segments) if s.when is None]
    stages = rules.stage_names
    for k, seg in enumerate(rules.segments):
        if seg.name == DEFAULT_SEGMENT and seg.when is not None and not catch_all:
            problems.append(p(
                f"'{DEFAULT_SEGMENT}' names the customers no segment takes", "segments", k,
                "name", rule_id=seg.name,
                hint=f"choose another name, or remove its `when` to make '{DEFAULT_SEGMENT}' "
                     "the segment of every customer left"))
        if seg.when is None and k < len(rules.segments) - 1:
            later = ", ".join(s.name for s in rules.segments[k + 1:])
            problems.append(p(
                f"the segment '{seg.name}' has no `when`, so it takes every customer left: "
                f"the segments after it ({later}) would never be chosen", "segments", k,
                rule_id=seg.name, hint="move it to the end of `segments`, or give it a `when`"))
        for stage in seg.expected_days:
            if stage not in stages:
                problems.append(p(
                    f"unknown stage '{stage}'", "segments", k, "expected_days", stage,
                    rule_id=seg.name,
                    hint=did_you_mean(stage, stages) or "stages: " + ", ".join(stages)))
    return problems
