"""CTA triggers (`on:` in the rules file), each registered once with all it takes.

A :class:`Trigger` brings

- its rules model: the keys a CTA rule with this `on:` takes. The keys every
  CTA rule takes are in :class:`CTABase`; the rules model reads each CTA rule
  as the model of its trigger (a pydantic union keyed on `on`), so a key that
  only another trigger takes (`when` on an `on: enter` rule) is refused;
- whether it needs a `stage`, and any check of its own against the stages;
- when it fires: a condition over a run's final customers frame (one row per
  customer with the columns of `lifecycle_cli.columns`, the metrics, the
  derived values and :data:`ENTERED_NOW`), given the rule's compiled `when`;
- the `reason` written on the CTAs it creates.

Everything else follows the registry: the rules model (`rules.model`), its
checks (`rules.checks`), its error messages and "did you mean" (`rules.load`)
and which customers get a CTA (`ctas.decide`). Adding a trigger is one
:func:`register` call here, plus its line in docs/rules.md and its test.

This module must not import `lifecycle_cli.rules` (the rules model imports it).
"""

from __future__ import annotations

import functools
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal, Union

import polars as pl
from pydantic import ConfigDict, Field, TypeAdapter, ValidationError, field_validator
from pydantic_core import ErrorDetails

from ..columns import DAYS_IN_STAGE, ENTERED, EXPECTED_DAYS, OVERDUE, STAGE
from ..expressions import Compiled, Kind, reason_expr
from ..models import RulesModel, condition_text

ENTERED_NOW = "__entered_now"  # in the final frame: the customer entered its stage in this run


class CTABase(RulesModel):
    """The keys of every CTA rule, whatever its trigger; a trigger's model adds its own."""

    id: str = Field(min_length=1)
    name: str
    type: str = "Lifecycle"
    priority: str | int = "Medium"
    on: str  # each trigger's model narrows it to its own name
    stage: str | None = None
    close_when: str | None = None
    due_days: int = Field(default=0, ge=0)
    business_days: bool | None = None  # None: the rules' top-level business_days
    owner: str | None = None
    playbook: str | None = None
    description: str | None = None

    _close_when = field_validator("close_when", mode="before")(condition_text)

    @property
    def when(self) -> str | None:
        """The rule's `when` condition; only `on: when` rules have one."""
        return None


class EnterCTA(CTABase):
    on: Literal["enter"]


class OverdueCTA(CTABase):
    on: Literal["overdue"]


class WhenCTA(CTABase):
    model_config = ConfigDict(serialize_by_alias=True)  # `when`, as in the file

    on: Literal["when"]
    # `when` in the file; named otherwise here, as CTABase.when is a property of every rule
    condition: str | None = Field(default=None, alias="when")

    _condition = field_validator("condition", mode="before")(condition_text)

    @property
    def when(self) -> str | None:
        return self.condition


@dataclass(frozen=True)
class Firing:
    """What a trigger reads to fire for one CTA rule."""

    rule: CTABase
    when: Compiled | None  # the rule's `when`, compiled (None: it has none)
    reason_for: Callable[[Compiled], pl.Expr]  # `name=value; ...` of what a condition reads


# A problem a trigger finds in a rule: the message, and the key it is about (None: the rule).
TriggerProblem = tuple[str, str | None]


def _no_problems(rule: CTABase, expected_days: Mapping[str, int | None]) -> list[TriggerProblem]:
    return []


@dataclass(frozen=True)
class Trigger:
    """One `on:` of the rules file. See the module's docstring, and :func:`register`."""

    on: str
    model: type[CTABase]  # its `on` field is Literal[on]
    needs_stage: bool
    fires: Callable[[Firing], pl.Expr]  # over the final customers frame
    reason: Callable[[Firing], pl.Expr]  # the CTA's `reason`, over the same frame
    # checks of its own, given each stage's expected_days
    check: Callable[[CTABase, Mapping[str, int | None]], list[TriggerProblem]] = field(
        default=_no_problems)


TRIGGERS: dict[str, Trigger] = {}


def register(trigger: Trigger) -> Trigger:
    """Make ``trigger`` an allowed `on:` (a name registered once)."""
    if trigger.on in TRIGGERS:
        raise ValueError(f"trigger {trigger.on!r} is already registered")
    on = trigger.model.model_fields["on"].annotation
    if typing.get_origin(on) is not Literal or typing.get_args(on) != (trigger.on,):
        raise ValueError(f"trigger {trigger.on!r}: its model's `on` must be "
                         f"Literal[{trigger.on!r}]")
    TRIGGERS[trigger.on] = trigger
    return trigger


def unregister(on: str) -> None:
    """Remove a registered trigger (for tests that register their own)."""
    del TRIGGERS[on]


def trigger(on: str) -> Trigger:
    """The registered trigger ``on`` (the rules model allows no other)."""
    return TRIGGERS[on]


def names() -> list[str]:
    """The registered triggers' names, in registration order."""
    return list(TRIGGERS)


# -- the rules model's side -------------------------------------------------------------------

def validate_cta_rules(items: list[Any]) -> list[CTABase]:
    """Each CTA rule as the model of its trigger: a union of the registered models keyed
    on `on`. Errors inside a rule carry the trigger in their location (``ctas[0].enter.x``)."""
    return _adapter(tuple(t.model for t in TRIGGERS.values())).validate_python(items)


@functools.cache
def _adapter(models: tuple[type[CTABase], ...]) -> TypeAdapter[list[CTABase]]:
    member: Any = Union.__getitem__(models) if len(models) > 1 else models[0]
    return TypeAdapter(list[Annotated[member, Field(discriminator="on")]])


def model_for(on: Any) -> type[CTABase]:
    """The model of the trigger ``on``; the common keys' if there is none such."""
    found = TRIGGERS.get(on) if isinstance(on, str) else None
    return found.model if found else CTABase


def triggers_taking(key: str) -> list[str]:
    """The triggers whose rules take ``key`` (besides the keys every rule takes)."""
    return [t.on for t in TRIGGERS.values()
            if any((f.alias or name) == key for name, f in t.model.model_fields.items())
            and key not in CTABase.model_fields]


def common_key_errors(item: dict[str, Any]) -> list[ErrorDetails]:
    """The errors in the keys every CTA rule takes, for a rule whose `on` names no trigger
    (pydantic then reports only that): the keys some trigger takes are left out."""
    common = {k: v for k, v in item.items() if k != "on" and not triggers_taking(str(k))}
    try:
        CTABase.model_validate({**common, "on": ""})
    except ValidationError as err:
        return err.errors()
    return []


# -- the built-in triggers ----------------------------------------------------------------------

def in_stage(rule: CTABase) -> pl.Expr:
    """The customer is in the rule's `stage`, when the rule names one."""
    return pl.col(STAGE) == rule.stage if rule.stage is not None else pl.lit(True)


def _visit_reason(firing: Firing) -> pl.Expr:
    return reason_expr([(STAGE, pl.col(STAGE), Kind.STRING),
                        (ENTERED, pl.col(ENTERED), Kind.DATE)])


def _overdue_reason(firing: Firing) -> pl.Expr:
    return reason_expr([(DAYS_IN_STAGE, pl.col(DAYS_IN_STAGE), Kind.NUMBER),
                        (EXPECTED_DAYS, pl.col(EXPECTED_DAYS), Kind.NUMBER)])


def _overdue_check(rule: CTABase, expected_days: Mapping[str, int | None]
                   ) -> list[TriggerProblem]:
    if rule.stage is not None and rule.stage in expected_days and (
            expected_days[rule.stage] is None):
        return [(f"stage '{rule.stage}' has no expected_days, so nobody is ever overdue in it",
                 "stage")]
    return []


def _when_fires(firing: Firing) -> pl.Expr:
    assert firing.when is not None  # validated: `on: when` has a condition
    return in_stage(firing.rule) & firing.when.as_condition()


def _when_reason(firing: Firing) -> pl.Expr:
    assert firing.when is not None
    return firing.reason_for(firing.when)


def _when_check(rule: CTABase, expected_days: Mapping[str, int | None]
                ) -> list[TriggerProblem]:
    return [] if rule.when else [("a CTA with `on: when` needs a `when` condition", None)]


# in the order docs/rules.md lists them
register(Trigger(
    "enter", EnterCTA, needs_stage=True,
    fires=lambda f: in_stage(f.rule) & pl.col(ENTERED_NOW), reason=_visit_reason,
))
register(Trigger(
    "overdue", OverdueCTA, needs_stage=True,
    fires=lambda f: in_stage(f.rule) & pl.col(OVERDUE), reason=_overdue_reason,
    check=_overdue_check,
))
register(Trigger(
    "when", WhenCTA, needs_stage=False,
    fires=_when_fires, reason=_when_reason, check=_when_check,
))
