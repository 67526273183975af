"""Loading a rules file: YAML safely, then the models, then the checks; every problem at once.

Loading collects every problem (unknown keys with a suggestion, wrong types,
unknown stages, duplicate ids, bad expressions) and raises them together as
one :class:`~lifecycle_cli.errors.RulesError`, each with file, line, key path
and rule id.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from pydantic_core import ErrorDetails

from ..ctas.triggers import TRIGGERS, common_key_errors, triggers_taking
from ..errors import Problem, RulesError
from ..metrics.aggregations import AGGREGATIONS
from ..suggest import did_you_mean, or_list
from .checks import cross_check, stage_literal_warnings
from .model import Rules, cta_rule_on, field_names, section_model
from .yamlsource import YamlDocument, format_path, load_yaml

# -- loading -----------------------------------------------------------------------------


def load_rules(path: str | Path) -> Rules:
    """Load and check a rules file; raise :class:`RulesError` listing every problem."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise RulesError(Problem("rules file not found", file=str(path))) from None
    except UnicodeDecodeError as err:
        raise RulesError(
            Problem(f"rules file is not UTF-8 text ({err.reason})", file=str(path))
        ) from None
    except OSError as err:
        raise RulesError(
            Problem(f"cannot read rules file: {err.strerror}", file=str(path))
        ) from None
    return parse_rules(text, file=str(path))


def parse_rules(text: str, file: str | None = None) -> Rules:
    """Parse rules from YAML text (see :func:`load_rules`)."""
    doc = load_yaml(text, file)
    data = doc.data
    if not isinstance(data, dict):
        raise RulesError(
            Problem(
                "a rules file is a YAML mapping with `version`, `stages`, `initial_stage`, ...",
                file=file,
                line=1,
            )
        )
    problems: list[Problem] = []
    try:
        rules: Rules | None = Rules.model_validate(data)
    except ValidationError as err:
        problems.extend(_pydantic_problems(err, data, doc))
        rules = _validate_the_rest(data, err)
    if rules is not None:
        rules = rules.model_copy(update={"source": doc})
        problems.extend(cross_check(rules))
    else:
        # Even with schema errors, report stage/id problems we can still see.
        problems.extend(_loose_cross_check(data, doc))
    if problems:
        raise RulesError(_dedupe(problems))
    assert rules is not None
    return rules.model_copy(update={"warnings": stage_literal_warnings(rules)})


_LIST_SECTIONS = ("stages", "transitions", "ctas", "predictions", "segments")
_MAP_SECTIONS = ("metrics", "derived", "playbooks", "sources", "lookups", "attributes")


def _validate_the_rest(data: dict[str, Any], err: ValidationError) -> Rules | None:
    """Set aside what failed validation and validate the rest, so that the cross-checks
    can still report their problems in the same pass."""
    data = copy.deepcopy(data)
    drop_items: dict[str, set[int]] = {}
    for e in err.errors():
        loc = _clean_loc(e["loc"])
        if not loc:
            return None
        head = str(loc[0])
        if e["type"] == "extra_forbidden":
            parent: Any = data
            for part in loc[:-1]:
                try:
                    parent = parent[part]
                except (KeyError, IndexError, TypeError):
                    parent = None
            if isinstance(parent, dict):  # None: an earlier error set its section aside
                parent.pop(loc[-1], None)
        elif head in ("compliance", "customers") and len(loc) >= 2 and isinstance(
                data.get(head), dict):
            data[head].pop(loc[1], None)  # that key takes its default
        elif head in _LIST_SECTIONS and len(loc) >= 2 and isinstance(loc[1], int):
            drop_items.setdefault(head, set()).add(loc[1])
        elif head in _MAP_SECTIONS and len(loc) >= 2:
            data[head].pop(loc[1], None)
        elif head in ("version",):
            data["version"] = 1
        elif head in Rules.model_fields and head not in ("stages", "initial_stage"):
            data.pop(head, None)
        else:
            return None
    index_map: dict[str, list[int]] = {}
    for head, dropped in drop_items.items():
        kept = [i for i in range(len(data[head])) if i not in dropped]
        index_map[head] = kept
        data[head] = [data[head][i] for i in kept]
    try:
        rules = Rules.model_validate(data)
    except ValidationError:
        return None
    return rules.model_copy(update={"index_map": index_map})


def _clean_loc(loc: tuple[Any, ...]) -> tuple[Any, ...]:
    # pydantic adds union member names to loc (e.g. 'str', 'list[str]'): drop those
    loc = tuple(
        p
        for p in loc
        if p not in ("str", "int", "bool", "float", "list[str]")
        and not (isinstance(p, str) and p.startswith(("function-", "literal[", "dict[")))
    )
    # and the trigger that a CTA rule's `on` picked (the union's tag): ctas[0].enter.due_days
    if len(loc) >= 3 and loc[0] == "ctas" and isinstance(loc[1], int) and loc[2] in TRIGGERS:
        loc = loc[:2] + loc[3:]
    # (a segment's: segments[0].ctas[1].enter.due_days)
    if len(loc) >= 5 and loc[0] == "segments" and loc[2] == "ctas" and isinstance(
            loc[3], int) and loc[4] in TRIGGERS:
        loc = loc[:4] + loc[5:]
    return loc


def _cta_at(loc: tuple[Any, ...]) -> tuple[tuple[Any, ...], int] | None:
    """Where the CTA rule a key path ``loc`` points into is: (the path of its list, its
    index), for ``ctas[i]...`` and ``segments[k].ctas[i]...``."""
    if len(loc) >= 2 and loc[0] == "ctas" and isinstance(loc[1], int):
        return ("ctas",), loc[1]
    if len(loc) >= 4 and loc[0] == "segments" and loc[2] == "ctas" and isinstance(loc[3], int):
        return loc[:3], loc[3]
    return None


def _dedupe(problems: list[Problem]) -> list[Problem]:
    seen: set[str] = set()
    out = []
    for p in problems:
        key = p.render()
        if key not in seen:
            seen.add(key)
            out.append(p)
    return sorted(out, key=lambda p: p.line or 0)


def _rule_id_at(data: dict[str, Any], loc: tuple[Any, ...]) -> str | None:
    if len(loc) >= 2 and loc[0] == "segments" and isinstance(loc[1], int):
        segments = data.get("segments")
        segment = (segments[loc[1]] if isinstance(segments, list) and loc[1] < len(segments)
                   else None)
        if not isinstance(segment, dict):
            return None
        if len(loc) >= 4 and loc[2] in ("transitions", "ctas") and isinstance(loc[3], int):
            found = _rule_id_at(segment, loc[2:])
            if found is not None:
                return found
        name = segment.get("name")
        return str(name) if name is not None else None
    if len(loc) >= 2 and loc[0] in ("transitions", "ctas", "predictions") and isinstance(
            loc[1], int):
        items = data.get(loc[0])
        if isinstance(items, list) and loc[1] < len(items) and isinstance(items[loc[1]], dict):
            rid = items[loc[1]].get("id")
            return str(rid) if rid is not None else None
    if len(loc) >= 2 and loc[0] in _MAP_SECTIONS:
        return str(loc[1])
    if len(loc) >= 3 and loc[:2] == ("scorecard", "measures") and isinstance(loc[2], int):
        card = data.get("scorecard")
        items = card.get("measures") if isinstance(card, dict) else None
        if isinstance(items, list) and loc[2] < len(items) and isinstance(items[loc[2]], dict):
            rid = items[loc[2]].get("id")
            return str(rid) if rid is not None else None
    return None


def _errors(err: ValidationError) -> list[ErrorDetails]:
    """pydantic's errors; for a CTA rule whose `on` names no trigger (pydantic then reports
    only that), also those in the keys every CTA rule takes, so they show in the same pass."""
    out = []
    for e in err.errors():
        out.append(e)
        if e["type"] in _UNION_TAG_ERRORS and isinstance(e["input"], dict):
            out += [{**inner, "loc": (*e["loc"], *inner["loc"])}
                    for inner in common_key_errors(e["input"])]
    return out


_UNION_TAG_ERRORS = ("union_tag_invalid", "union_tag_not_found")


def _pydantic_problems(
    err: ValidationError, data: dict[str, Any], doc: YamlDocument
) -> list[Problem]:
    problems = []
    for e in _errors(err):
        loc = _clean_loc(e["loc"])
        kind = e["type"]
        found = e.get("input")
        ctx = e.get("ctx", {})
        expected = ctx.get("expected", "")
        if kind in _UNION_TAG_ERRORS:
            # the key that picks the model of a union's member (a CTA rule's `on`) is
            # missing or names none: word it as a missing key or a Literal's error
            tag = str(ctx.get("discriminator", "")).strip("'")
            loc = (*loc, tag)
            kind = "missing" if kind == "union_tag_not_found" else "literal_error"
            found = found.get(tag) if isinstance(found, dict) else found
            expected = or_list([t.strip(" '") for t in str(ctx.get("expected_tags")).split(",")])
        hint = None
        if kind == "extra_forbidden":
            key = str(loc[-1])
            model = section_model(loc, data)
            allowed = field_names(model) if model else []
            at = _cta_at(loc)
            others = triggers_taking(key) if at and len(loc) == len(at[0]) + 2 else []
            hint = did_you_mean(key, allowed)
            if not hint and allowed:
                hint = "allowed keys: " + ", ".join(allowed)
            message = f"unknown key '{key}'"
            if others:  # a key of another trigger's CTA rules
                assert at is not None
                on = cta_rule_on(data, at[1], at=at[0])
                message = (f"`{key}` only applies to "
                           + " or ".join(f"`on: {o}`" for o in others)
                           + f" CTAs (this one is `on: {on}`)")
                hint = None
        elif kind == "missing":
            message = f"required key '{loc[-1]}' is missing"
        elif kind == "literal_error":
            message = f"'{found}' is not allowed here; expected {expected}"
            if isinstance(found, str) and loc and loc[-1] == "agg":
                hint = did_you_mean(found, list(AGGREGATIONS))
            elif isinstance(found, str) and loc and loc[-1] == "on":
                hint = did_you_mean(found, list(TRIGGERS))
        elif kind == "value_error":  # our own validators say what they expect
            message = str(ctx.get("error", e["msg"]))
        elif kind == "model_attributes_type" and _cta_at(loc) is not None:
            # the words pydantic used for one CTA model, before a model per trigger
            message = f"input should be a valid dictionary or instance of cta (found {found!r})"
        else:
            message = f"{e['msg'].lower()} (found {found!r})"
        problems.append(
            Problem(
                message,
                file=doc.file,
                line=doc.line_of(loc),
                path=format_path(loc) or None,
                rule_id=_rule_id_at(data, loc),
                hint=hint,
            )
        )
    return problems


def _loose_cross_check(data: dict[str, Any], doc: YamlDocument) -> list[Problem]:
    """Duplicate ids and unknown stages, from raw data, when the schema check failed."""
    problems: list[Problem] = []
    stages = data.get("stages")
    items = stages if isinstance(stages, list) else []
    names: list[str] = [s["name"] for s in items if isinstance(s, dict)
                        and isinstance(s.get("name"), str)]
    transitions = data.get("transitions")
    if not isinstance(transitions, list) or not names:
        return problems
    for i, t in enumerate(transitions):
        if not isinstance(t, dict):
            continue
        for key in ("from", "to"):
            value = t.get(key)
            values = value if isinstance(value, list) else [value]
            for v in values:
                if isinstance(v, str) and v != "*" and v not in names:
                    problems.append(
                        Problem(
                            f"unknown stage '{v}'",
                            file=doc.file,
                            line=doc.line_of(("transitions", i, key)),
                            path=format_path(("transitions", i, key)),
                            rule_id=str(t.get("id")),
                            hint=did_you_mean(v, names),
                        )
                    )
    return problems


