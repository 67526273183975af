# mypy: disable-error-code="list-item,arg-type,assignment,attr-defined,call-overload"
# (sqlglot's builders are typed loosely: `.as_()` gives an `Expr`, unions no `.subquery`)
"""A day of the rules as SQL: the metrics, then the hops unrolled, per dialect.

Two parts, each a ``SELECT`` built with sqlglot's builders:

- :func:`metrics_query`: one ``GROUP BY`` per usage source (``where`` and
  ``window_days`` as ``CASE`` inside each aggregate, so one pass serves every
  metric of a source), joined to the customers, zeros and defaults filled. Every
  registered aggregation has its SQL form in :data:`AGGREGATION_SQL`.
- :func:`decision_query`: over the customers with their metrics (the columns the
  pipeline's ``Prepared.state`` has), the steps of `lifecycle_cli.engine.decide`
  unrolled up to ``max_hops``: the initial stage; per hop the built-ins and derived
  values afresh, the winner by priority then file order, movers only after hop 1,
  the loop refusal with one boolean column per stage (``__v0``, ``__v1``...: the
  stages each customer held in this run); then one more evaluation for ``pending``.
  Its rows are the customers with, per hop ``k``, ``__from_k``, ``__to_k``,
  ``__rule_k`` (the rule's place in the file), ``__moved_k``, ``__loop_k``
  (``__reason_k`` with ``reasons``), and ``__pending``: what
  :func:`transitions_query`, :func:`loops_query`, :func:`pending_query` and
  :func:`customers_query` read.

The meaning of each expression is pinned by `lifecycle_cli.sql.expressions`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from sqlglot import exp

from ..columns import (
    DAYS_IN_STAGE,
    ENTERED,
    EXPECTED_DAYS,
    ID,
    INITIAL_RULE,
    OVERDUE,
    PREVIOUS_STAGE,
    ROW,
    STAGE,
    TIMESTAMP,
)
from ..engine.compile import CompiledRules
from ..expressions import Kind, compile_expression, previous_of
from ..metrics.aggregations import AGGREGATIONS
from ..metrics.compute import default_value
from ..rules.model import Rules
from .expressions import (
    BIGINT,
    DOUBLE,
    SqlCompiler,
    and_,
    as_condition,
    case,
    cast,
    column,
    date_literal,
    days_between,
    eq,
    false,
    not_,
    null,
    number,
    or_,
    timestamp_literal,
    true,
)

AS = {"quoted": True, "copy": False}  # `.as_(name, **AS)`: a quoted alias, the node not copied
ROWS = "__rows"
CUSTOMER = "__customer"  # a usage row's customer id (its own column, or the lookup's)
LEFT = "__left_"  # + metric: rows left after `where` and the window (for `default:`)
ACTIVE = "__active"
INITIAL = "__initial"
WINNER = "__win"
PENDING = "__pending"
DECIDED = "lc_decided"  # the decision's last step: a row per customer, every hop's columns


def visited(i: int) -> str:
    return f"__v{i}"


def hop_column(what: str, hop: int) -> str:
    return f"__{what}_{hop}"


# -- metrics ---------------------------------------------------------------------------------

Value = exp.Expression  # the metric column's value on the rows that count, NULL elsewhere
Cond = exp.Expression  # the rows that count


@dataclass(frozen=True)
class AggregationSql:
    """An aggregation's SQL: ``aggregate(value, cond, column_kind)``, an aggregate over one
    customer's rows (``value``: the column where ``cond`` holds, NULL elsewhere); ``picks``:
    `first` (``"MIN"``) or `last` (``"MAX"``) read the earliest / latest timestamp of the
    rows that count, as a window column the query adds."""

    aggregate: Callable[[Value, Cond, Kind], exp.Expression]
    picks: str | None = None


def _numeric(value: Value, kind: Kind) -> exp.Expression:
    """A numeric column's value: true/false summed as 1/0, as Polars sums them."""
    if kind == Kind.BOOL:
        return case([(value, number(1)), (not_(value.copy()), number(0))])
    return value


AGGREGATION_SQL: dict[str, AggregationSql] = {
    "count": AggregationSql(lambda v, c, k: exp.Sum(this=case([(c, number(1))], number(0)))),
    "sum": AggregationSql(lambda v, c, k: exp.Sum(this=_numeric(v, k))),
    "mean": AggregationSql(lambda v, c, k: exp.Avg(this=cast(_numeric(v, k), DOUBLE))),
    "min": AggregationSql(lambda v, c, k: exp.Min(this=v)),
    "max": AggregationSql(lambda v, c, k: exp.Max(this=v)),
    "n_unique": AggregationSql(lambda v, c, k: exp.Count(
        this=exp.Distinct(expressions=[v]))),
    "any": AggregationSql(lambda v, c, k: exp.GT(
        this=exp.Sum(this=case([(c, number(1))], number(0))), expression=number(0))),
    # among the rows at the earliest (latest) timestamp, the smallest (largest) value: the
    # tie-breaker every engine can compute (see aggregations._pick)
    "first": AggregationSql(lambda v, c, k: exp.Min(this=v), picks="MIN"),
    "last": AggregationSql(lambda v, c, k: exp.Max(this=v), picks="MAX"),
}


def sql_of(agg: str) -> AggregationSql:
    """The SQL form of a registered aggregation; an aggregation registered without one
    cannot run on an SQL engine (the test suite checks that every one has it)."""
    if agg not in AGGREGATION_SQL:
        raise NotImplementedError(f"the aggregation {agg!r} has no SQL form "
                                  "(lifecycle_cli.sql.script.AGGREGATION_SQL)")
    return AGGREGATION_SQL[agg]


def registered_without_sql() -> list[str]:
    return [name for name in AGGREGATIONS if name not in AGGREGATION_SQL]


@dataclass(frozen=True)
class SourceTable:
    """One usage source as a table: its name, its columns' kinds under the rules' names,
    ``renames`` (rules name -> the table's column, where they differ), and the lookup it
    reaches its customers through (table name, key column), if any."""

    table: str
    kinds: Mapping[str, Kind]
    renames: Mapping[str, str] = field(default_factory=dict)
    lookup: tuple[str, str] | None = None

    def col(self, name: str) -> exp.Expression:
        return exp.column(exp.to_identifier(self.renames.get(name, name), **AS),
                          table="u")


def _table(name: str, alias: str | None = None) -> exp.Expression:
    parts = [exp.to_identifier(p, quoted=True) for p in name.split(".")]
    table = exp.Table(this=parts[-1], db=parts[-2] if len(parts) > 1 else None,
                      catalog=parts[-3] if len(parts) > 2 else None)
    if alias:
        table.set("alias", exp.TableAlias(this=exp.to_identifier(alias)))
    return table


def _end_of(as_of: dt.date) -> exp.Expression:
    return timestamp_literal(dt.datetime.combine(as_of + dt.timedelta(days=1), dt.time()))


def source_query(rules: Rules, source: SourceTable, as_of: dt.date, dialect: str
                 ) -> exp.Select:
    """One source's metrics (those of ``rules``, already narrowed to the source), one row
    per customer id found in its rows up to the as-of day: ``ROWS`` and each metric, and
    ``LEFT + name`` for a metric with a default."""
    end = _end_of(as_of)
    ts = source.col(TIMESTAMP)

    def read(name: str) -> exp.Expression:
        return source.col(name)

    compiler = SqlCompiler(as_of, dialect, name=read)
    if source.lookup is not None:
        customer = exp.column(exp.to_identifier(ID, quoted=True), table="l")
    else:
        customer = source.col(ID)
    inner = exp.select(customer.as_(CUSTOMER, **AS),
                       exp.Column(this=exp.Star(), table=exp.to_identifier("u"))).from_(
        _table(source.table, "u")).where(exp.LT(this=ts.copy(), expression=end))
    if source.lookup is not None:
        table, key = source.lookup
        inner = inner.join(_table(table, "l"), on=eq(
            exp.column(exp.to_identifier(key, quoted=True), table="l"), source.col(key)),
            join_type="LEFT")
    outer: list[exp.Expression] = [column(CUSTOMER).as_(ID, **AS),
                                   exp.Count(this=exp.Star()).as_(ROWS, **AS)]
    windows: list[exp.Expression] = []
    for i, (name, metric) in enumerate(rules.metrics.items()):
        conds: list[exp.Expression] = []
        if metric.where:
            compiled = compile_expression(metric.where, dict(source.kinds), as_of=as_of,
                                          condition=True)
            conds.append(compiler.expression(compiled, condition=True))
        if metric.window_days:
            start = dt.datetime.combine(as_of - dt.timedelta(days=metric.window_days - 1),
                                        dt.time())
            conds.append(exp.GTE(this=ts.copy(), expression=timestamp_literal(start)))
        cond: exp.Expression = and_(*conds) if conds else true()
        form = sql_of(metric.agg)
        kind = source.kinds.get(metric.column or "", Kind.NULL)
        if form.picks is not None:  # the earliest / latest timestamp of the rows that count
            pick = f"__pick{i}"
            stamp = exp.Min if form.picks == "MIN" else exp.Max
            windows.append(exp.Window(
                this=stamp(this=case([(cond.copy(), ts.copy())])),
                partition_by=[customer.copy()]).as_(pick, **AS))
            cond = and_(cond, eq(ts.copy(), exp.column(exp.to_identifier(pick, quoted=True),
                                                       table="u")))
        value = case([(cond.copy(), source.col(metric.column))]) if metric.column else null()
        if not conds and form.picks is None and metric.column:
            value = source.col(metric.column)
        outer.append(form.aggregate(_requalify(value), _requalify(cond), kind)
                     .as_(name, **AS))
        if metric.default is not None:
            outer.append(exp.Sum(this=case([(_requalify(cond), number(1))], number(0)))
                         .as_(LEFT + name, **AS))
    if windows:
        inner = inner.select(*windows)
    rows = inner.subquery("u")
    return exp.select(*outer).from_(rows).group_by(column(CUSTOMER))


def _requalify(node: exp.Expression) -> exp.Expression:
    """Columns of the inner query read from its alias ``u``, the customer id by its name."""
    node = node.copy()
    for col in node.find_all(exp.Column):
        col.set("table", exp.to_identifier("u"))
    return node


def metrics_query(rules: Rules, sources: Mapping[str, SourceTable], customers: str,
                  kinds: Mapping[str, Kind], as_of: dt.date, dialect: str) -> exp.Select:
    """Every metric of ``rules`` for every customer of the table ``customers`` (its ID
    column under the rules' name): ``ID`` and one column per metric in rules order, zeros
    and ``default:`` filled as `metrics.compute.finish` does; a metric whose source is
    not given takes its zero or default. ``kinds``: each metric's kind."""
    query = exp.select(exp.column(exp.to_identifier(ID, quoted=True), table="c").as_(
        ID, **AS)).from_(_table(customers, "c"))
    picked: dict[str, str] = {}  # metric -> the alias of its source's query
    for j, (name, source) in enumerate(sources.items()):
        one = rules.for_source(name)
        if not one.metrics:
            continue
        alias = f"s{j}"
        query = query.join(source_query(one, source, as_of, dialect).subquery(alias),
                           on=eq(exp.column(exp.to_identifier(ID, quoted=True), table="c"),
                                 exp.column(exp.to_identifier(ID, quoted=True), table=alias)),
                           join_type="LEFT")
        picked.update({m: alias for m in one.metrics})
    columns: list[exp.Expression] = [exp.column(exp.to_identifier(ID, quoted=True), table="c")
                                     .as_(ID, **AS)]
    for name, metric in rules.metrics.items():
        agg = AGGREGATIONS[metric.agg]
        kind = kinds.get(name, Kind.NULL)
        alias = picked.get(name)
        value: exp.Expression = (exp.column(exp.to_identifier(name, quoted=True), table=alias)
                                 if alias else null())
        if agg.zero is not None:
            value = exp.Coalesce(this=value, expressions=[_literal(agg.zero)])
        default = default_value(metric, kind)
        if default is not None:
            left = (exp.Coalesce(this=exp.column(exp.to_identifier(LEFT + name, quoted=True),
                                                 table=alias), expressions=[number(0)])
                    if alias else number(0))
            value = case([(eq(left, number(0)), _literal(default))], value)
        columns.append(value.as_(name, **AS))
    query.set("expressions", columns)
    return query


def _literal(value: object) -> exp.Expression:
    if isinstance(value, bool):
        return exp.Boolean(this=value)
    if isinstance(value, int | float):
        return number(value) if isinstance(value, int) else cast(number(value), DOUBLE)
    if isinstance(value, dt.datetime):
        return timestamp_literal(value)
    if isinstance(value, dt.date):
        return date_literal(value)
    return exp.Literal.string(str(value))


# -- the decision ----------------------------------------------------------------------------

@dataclass
class _Chain:
    """CTEs in order; each ``add`` selects from the previous one."""

    ctes: list[tuple[str, exp.Select]] = field(default_factory=list)
    # the chain cut into steps, each a query over the tables of the steps before it
    steps: list[tuple[str, exp.Select]] = field(default_factory=list)
    open: list[tuple[str, exp.Select]] = field(default_factory=list)  # since the last cut

    @property
    def last(self) -> str:
        return self.ctes[-1][0]

    def add(self, name: str, query: exp.Select) -> None:
        self.ctes.append((name, query))
        self.open.append((name, query))

    def cut(self) -> None:
        """End a step at the last CTE: a table an engine materialises. Without the cuts an
        optimiser that inlines CTEs would copy each hop's stage expression into the next,
        doubling the text at every hop."""
        *before, (name, step) = self.open
        for cte_name, q in before:
            step = step.with_(cte_name, as_=q, copy=False)
        self.steps.append((name, step))
        self.open = []

    def extend(self, name: str, columns: Sequence[exp.Expression]) -> None:
        """A CTE of every column of the previous one plus ``columns``."""
        self.add(name, exp.select(exp.Star(), *columns).from_(self.last, copy=False))

    def query(self, final: exp.Select) -> exp.Select:
        """``final`` with the steps and the CTEs since the last cut as its CTEs."""
        for name, q in [*self.steps, *self.open]:
            final = final.with_(name, as_=q, copy=False)
        return final


def _stage_column() -> exp.Expression:
    return column(STAGE)


def _evaluate(chain: _Chain, prefix: str, compiled: CompiledRules,
              compiler: SqlCompiler) -> None:
    """Add the built-ins (days_in_stage, expected_days, overdue) and the derived values
    of the current stage, each derived value in a CTE of its own (it may read those above)."""
    as_of = date_literal(compiled.as_of)
    expected = case([(eq(_stage_column(), exp.Literal.string(s.name)), number(s.expected_days))
                     for s in compiled.rules.stages if s.expected_days is not None])
    if not expected.args.get("ifs"):
        expected = cast(null(), BIGINT)
    chain.extend(f"{prefix}_b", [
        days_between(column(ENTERED), as_of).as_(DAYS_IN_STAGE, **AS),
        expected.as_(EXPECTED_DAYS, **AS)])
    chain.extend(f"{prefix}_o", [as_condition(exp.GT(this=column(DAYS_IN_STAGE),
                                                     expression=column(EXPECTED_DAYS)))
                                 .as_(OVERDUE, **AS)])
    for j, (name, derived) in enumerate(compiled.derived):
        chain.extend(f"{prefix}_d{j}", [compiler.expression(derived).as_(name, **AS)])


def _reason(compiled: CompiledRules, rule_index: int, compiler: SqlCompiler,
            dialect: str) -> exp.Expression:
    """The ``reason`` of a rule: ``name=value; ...`` as the Polars engine formats it
    (numbers as the engine writes them: a float's text may differ from Polars')."""
    rule = next(r for r in compiled.transitions if r.index == rule_index)
    parts: list[exp.Expression] = []
    for i, name in enumerate(rule.condition.names):
        kind = compiled.kind(name)
        value = compiler.as_of_sql() if name == "as_of" else column(name)
        if kind == Kind.BOOL:
            text = case([(value, exp.Literal.string("true")),
                         (not_(value.copy()), exp.Literal.string("false"))])
        elif kind == Kind.DATETIME:
            text = exp.TimeToStr(this=value, format=exp.Literal.string("%Y-%m-%dT%H:%M:%S"))
        elif kind == Kind.NULL:
            text = cast(null(), "VARCHAR")
        else:
            text = cast(value, "VARCHAR")
        parts.append(exp.Literal.string(("; " if i else "") + f"{name}="))
        parts.append(exp.Coalesce(this=text, expressions=[exp.Literal.string("null")]))
    if not parts:
        return exp.Literal.string("")
    return exp.Concat(expressions=parts, safe=True, coalesce=False)


def decision_query(compiled: CompiledRules, base_columns: Sequence[str], customers: str,
                   dialect: str, *, reasons: bool = False) -> exp.Select:
    """:func:`decision_steps` as one query (its steps as CTEs): for a dbt model."""
    chain = _decision(compiled, base_columns, customers, dialect, reasons=reasons)
    return chain.query(exp.select(exp.Star()).from_(DECIDED))


def decision_steps(compiled: CompiledRules, base_columns: Sequence[str], customers: str,
                   dialect: str, *, reasons: bool = False) -> list[tuple[str, exp.Select]]:
    """The decision as steps to materialise in order (``h0``, ``h1``... ``decided``), each
    a query over the tables of the steps before; see :func:`decision_query`."""
    return _decision(compiled, base_columns, customers, dialect, reasons=reasons).steps


def _decision(compiled: CompiledRules, base_columns: Sequence[str], customers: str,
              dialect: str, *, reasons: bool = False) -> _Chain:
    """The decided day over the table ``customers`` (ROW, ID, STAGE, ENTERED and every
    column the expressions read: ``base_columns``, ROW and ID among them): one row per
    customer with its final ``stage``/``stage_entered_at``, ``previous_stage``, and the
    per-hop columns the module's docstring lists."""
    rules = compiled.rules
    as_of = date_literal(compiled.as_of)
    stages = rules.stage_names
    base = [c for c in base_columns if c not in (STAGE, ENTERED)]
    compiler = SqlCompiler(compiled.as_of, dialect)
    chain = _Chain()
    # step 1: the initial stage
    initial = exp.Literal.string(rules.initial_stage)
    start_stage = exp.Coalesce(this=column(STAGE), expressions=[initial])
    chain.add("lc_h0", exp.select(
        *[column(c) for c in base],
        column(STAGE).as_(PREVIOUS_STAGE, **AS),
        start_stage.as_(STAGE, **AS),
        case([(exp.Is(this=column(STAGE), expression=null()), as_of.copy())],
             column(ENTERED)).as_(ENTERED, **AS),
        exp.Is(this=column(STAGE), expression=null()).as_(INITIAL, **AS),
        true().as_(ACTIVE, **AS),
        *[as_condition(eq(start_stage.copy(), exp.Literal.string(s))).as_(visited(i),
                                                                         **AS)
          for i, s in enumerate(stages)],
    ).from_(_table(customers)))
    chain.cut()
    carried = [*base, PREVIOUS_STAGE, INITIAL]
    records: list[str] = []
    max_hops = rules.effective_max_hops
    for hop in range(1, max_hops + 2):
        _evaluate(chain, f"e{hop}", compiled, compiler)
        winner = case([
            (and_(exp.In(this=_stage_column(), expressions=[exp.Literal.string(s)
                                                            for s in rule.from_stages]),
                  compiler.expression(rule.condition, condition=True)),
             number(rule.index))
            for rule in compiled.transitions if rule.from_stages])
        if not winner.args.get("ifs"):
            winner = cast(null(), BIGINT)
        chain.extend(f"w{hop}", [case([(column(ACTIVE), winner)]).as_(WINNER, **AS)])
        target = case([(eq(column(WINNER), number(r.index)), exp.Literal.string(r.rule.to))
                       for r in compiled.transitions])
        if not target.args.get("ifs"):
            target = cast(null(), "VARCHAR")
        # the target held before in this run: the stage's own column, by the target's name
        is_loop = as_condition(case([(eq(column("__target"), exp.Literal.string(s)),
                                      column(visited(i))) for i, s in enumerate(stages)]))
        found = not_(exp.Is(this=column(WINNER), expression=null()))
        chain.extend(f"t{hop}", [target.as_("__target", **AS)])
        chain.extend(f"m{hop}", [is_loop.as_("__loop", **AS)])
        state = [STAGE, ENTERED, *[visited(i) for i in range(len(stages))]]
        if hop == max_hops + 1:  # the evaluation after the last hop: who would still move
            moves = and_(found, not_(column("__loop")))
            chain.add(DECIDED, exp.select(
                *[column(c) for c in [*carried, *state, *records]],
                case([(moves, column(WINNER))]).as_(PENDING, **AS),
            ).from_(chain.last, copy=False))
            chain.cut()
            break
        moved = hop_column("moved", hop)
        go = and_(found.copy(), not_(column("__loop")))
        hop_records = [
            column(STAGE).as_(hop_column("from", hop), **AS),
            column("__target").as_(hop_column("to", hop), **AS),
            column(WINNER).as_(hop_column("rule", hop), **AS),
            days_between(column(ENTERED), as_of.copy()).as_(hop_column("days", hop),
                                                            **AS),
            go.as_(moved, **AS),
            as_condition(and_(found.copy(), column("__loop"))).as_(hop_column("loop", hop),
                                                                   **AS),
        ]
        if reasons:
            hop_records.append(case([(eq(column(WINNER), number(r.index)),
                                      _reason(compiled, r.index, compiler, dialect))
                                     for r in compiled.transitions]
                                    or [(false(), exp.Literal.string(""))])
                               .as_(hop_column("reason", hop), **AS))
        chain.add(f"lc_h{hop}", exp.select(
            *[column(c) for c in [*carried, *records]], *hop_records,
            case([(go.copy(), column("__target"))], column(STAGE)).as_(STAGE, **AS),
            case([(go.copy(), as_of.copy())], column(ENTERED)).as_(ENTERED, **AS),
            *[or_(column(visited(i)), as_condition(and_(go.copy(), eq(
                column("__target"), exp.Literal.string(s))))).as_(visited(i), **AS)
              for i, s in enumerate(stages)],
            go.copy().as_(ACTIVE, **AS),
        ).from_(chain.last, copy=False))
        chain.cut()
        records += [hop_column(w, hop) for w in ("from", "to", "rule", "days", "moved",
                                                 "loop", *(["reason"] if reasons else []))]
    return chain


def _rule_id(compiled: CompiledRules, value: exp.Expression) -> exp.Expression:
    ids = case([(eq(value, number(r.index)), exp.Literal.string(r.rule.id))
                for r in compiled.transitions])
    return ids if ids.args.get("ifs") else cast(null(), "VARCHAR")


def moves_query(compiled: CompiledRules, decided: str) -> exp.Expression:
    """The moves of the hops (hop >= 1) from the table ``decided``: ROW, ID, hop,
    from_stage, to_stage, the rule's index (``rule``), in hop then input order."""
    parts: list[exp.Select] = []
    for hop in range(1, compiled.rules.effective_max_hops + 1):
        parts.append(exp.select(
            column(ROW), column(ID), number(hop).as_("hop", **AS),
            column(hop_column("from", hop)).as_("from_stage", **AS),
            column(hop_column("to", hop)).as_("to_stage", **AS),
            column(hop_column("rule", hop)).as_("rule", **AS),
        ).from_(_table(decided)).where(column(hop_column("moved", hop))))
    return _union_ordered(parts, [column("hop"), column(ROW)], [
        ROW, ID, "hop", "from_stage", "to_stage", "rule"], decided)


def _union_ordered(parts: list[exp.Select], order: list[exp.Expression],
                   columns: list[str], decided: str) -> exp.Expression:
    if not parts:  # max_hops: 0: no rows, the columns typed
        types = {"hop": BIGINT, "rule": BIGINT}
        return exp.select(*[column(c) if c in (ROW, ID) else cast(null(), types.get(
            c, "VARCHAR")).as_(c, **AS) for c in columns]).from_(
            _table(decided)).where(false())
    union: exp.Expression = parts[0]
    for part in parts[1:]:
        union = exp.union(union, part, distinct=False)
    return exp.select(exp.Star()).from_(union.subquery("moves")).order_by(*order)


def transitions_query(compiled: CompiledRules, decided: str, id_column: str = ID
                      ) -> exp.Expression:
    """The transitions table (SPEC: as_of, customer_id, from_stage, to_stage, rule_id, hop,
    days_in_from_stage, reason) from ``decided`` (made ``reasons=True``), in hop then input
    order."""
    as_of = date_literal(compiled.as_of)
    parts = [exp.select(
        as_of.as_("as_of", **AS), column(ID).as_("customer_id", **AS),
        cast(null(), "VARCHAR").as_("from_stage", **AS),
        exp.Literal.string(compiled.rules.initial_stage).as_("to_stage", **AS),
        exp.Literal.string(INITIAL_RULE).as_("rule_id", **AS),
        number(0).as_("hop", **AS),
        cast(null(), BIGINT).as_("days_in_from_stage", **AS),
        exp.Literal.string("").as_("reason", **AS),
        column(ROW).as_("__order", **AS),
    ).from_(_table(decided)).where(column(INITIAL))]
    for hop in range(1, compiled.rules.effective_max_hops + 1):
        parts.append(exp.select(
            as_of.copy().as_("as_of", **AS), column(ID).as_("customer_id", **AS),
            column(hop_column("from", hop)).as_("from_stage", **AS),
            column(hop_column("to", hop)).as_("to_stage", **AS),
            _rule_id(compiled, column(hop_column("rule", hop))).as_("rule_id", **AS),
            number(hop).as_("hop", **AS),
            cast(column(hop_column("days", hop)) if hop == 1 else number(0), BIGINT).as_(
                "days_in_from_stage", **AS),
            column(hop_column("reason", hop)).as_("reason", **AS),
            column(ROW).as_("__order", **AS),
        ).from_(_table(decided)).where(column(hop_column("moved", hop))))
    union: exp.Expression = parts[0]
    for part in parts[1:]:
        union = exp.union(union, part, distinct=False)
    names = ["as_of", "customer_id", "from_stage", "to_stage", "rule_id", "hop",
             "days_in_from_stage", "reason"]
    out = [column(n) for n in names]
    if id_column != ID:
        out[1] = column("customer_id").as_(id_column, **AS)
    return exp.select(*out).from_(union.subquery("t")).order_by(column("hop"),
                                                               column("__order"))


def loops_query(compiled: CompiledRules, decided: str) -> exp.Expression:
    """Moves refused as loops: ROW, ID, stage, rule (index), to_stage, in hop then input
    order."""
    parts = [exp.select(
        column(ROW), column(ID), number(hop).as_("hop", **AS),
        column(hop_column("from", hop)).as_(STAGE, **AS),
        column(hop_column("rule", hop)).as_("rule", **AS),
        column(hop_column("to", hop)).as_("to_stage", **AS),
    ).from_(_table(decided)).where(column(hop_column("loop", hop)))
        for hop in range(1, compiled.rules.effective_max_hops + 1)]
    return _union_ordered(parts, [column("hop"), column(ROW)],
                          [ROW, ID, "hop", STAGE, "rule", "to_stage"], decided)


def pending_query(decided: str) -> exp.Expression:
    """Customers that would still move after max_hops: ROW, ID, stage, rule (index)."""
    return exp.select(column(ROW), column(ID), column(STAGE),
                      column(PENDING).as_("rule", **AS)).from_(_table(decided)).where(
        not_(exp.Is(this=column(PENDING), expression=null()))).order_by(column(ROW))


def final_query(compiled: CompiledRules, decided: str, columns: Sequence[str],
                dialect: str, renames: Mapping[str, str] | None = None) -> exp.Select:
    """The customers after the day: ``columns`` (the customers' own, stage and
    stage_entered_at updated), then previous_stage, days_in_stage, expected_days, overdue,
    the derived values and the metrics, in input order; ``renames``: rules name -> the
    output's column name (the export's own names)."""
    renames = dict(renames or {})
    chain = _Chain()
    chain.add("final", exp.select(exp.Star()).from_(_table(decided)))
    _evaluate(chain, "f", compiled, SqlCompiler(compiled.as_of, dialect))
    computed = [PREVIOUS_STAGE, DAYS_IN_STAGE, EXPECTED_DAYS, OVERDUE,
                *[n for n, _ in compiled.derived], *compiled.rules.metrics]
    own = [c for c in columns if c not in computed]
    out = [column(c).as_(renames.get(c, c), **AS) for c in [*own, *computed]]
    return chain.query(exp.select(*out).from_(chain.last).order_by(column(ROW)))


def reads_previous(compiled: CompiledRules) -> list[str]:
    """The ``previous(x)`` columns the expressions read."""
    names: list[str] = []
    for kind_name in compiled.scope:
        if previous_of(kind_name):
            names.append(kind_name)
    return names


def counts_query(source: SourceTable, customers: str, as_of: dt.date) -> exp.Select:
    """A source's row counts, as `metrics.compute.MetricsResult` has them: ``rows`` (up to
    the as-of day), ``without_timestamp``, ``after_as_of``, ``unknown_customer`` (rows up to
    the as-of day whose customer is not in ``customers``, the lookup's misses apart) and
    ``unmatched_key`` (rows whose key the lookup lacks)."""
    end = _end_of(as_of)
    ts = source.col(TIMESTAMP)
    in_range = exp.LT(this=ts.copy(), expression=end)
    joined = exp.select().from_(_table(source.table, "u"))
    if source.lookup is not None:
        table, key = source.lookup
        customer: exp.Expression = exp.column(exp.to_identifier(ID, quoted=True), table="l")
        joined = joined.join(_table(table, "l"), on=eq(
            exp.column(exp.to_identifier(key, quoted=True), table="l"), source.col(key)),
            join_type="LEFT")
        missed: exp.Expression = exp.Is(this=customer.copy(), expression=null())
    else:
        customer = source.col(ID)
        missed = false()
    known = exp.column(exp.to_identifier(ID, quoted=True), table="k")
    joined = joined.join(
        exp.select(column(ID)).from_(_table(customers)).distinct().subquery("k"),
        on=eq(known.copy(), customer), join_type="LEFT")

    def count(cond: exp.Expression) -> exp.Expression:
        return cast(exp.Coalesce(this=exp.Sum(this=case([(cond, number(1))], number(0))),
                                 expressions=[number(0)]), BIGINT)

    unknown = and_(in_range.copy(), exp.Is(this=known, expression=null()), not_(missed))
    return joined.select(
        count(in_range).as_("rows", **AS),
        count(exp.Is(this=ts.copy(), expression=null())).as_("without_timestamp", **AS),
        count(exp.GTE(this=ts.copy(), expression=end.copy())).as_("after_as_of", **AS),
        count(unknown).as_("unknown_customer", **AS),
        count(and_(in_range.copy(), missed.copy())).as_("unmatched_key", **AS),
    )


def final_stages_query(decided: str) -> exp.Select:
    """ROW, STAGE, ENTERED after the day, in input order."""
    return exp.select(column(ROW), column(STAGE), column(ENTERED)).from_(
        _table(decided)).order_by(column(ROW))
