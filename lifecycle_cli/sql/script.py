# mypy: disable-error-code="list-item,arg-type,assignment,attr-defined,call-overload,misc"
# (sqlglot's builders are typed loosely: `.as_()` gives an `Expr`, unions no `.subquery`)
"""A day of the rules as SQL: the metrics, then the hops unrolled, per dialect.

Two parts, each a ``SELECT`` built with sqlglot's builders:

- :func:`metrics_query`: one ``GROUP BY`` per usage source (``where`` and
  ``window_days`` as ``CASE`` inside each aggregate, so one pass serves every
  metric of a source), joined to the customers, zeros and defaults filled. Every
  registered aggregation has its SQL form in :data:`AGGREGATION_SQL`.
- :func:`decision_query`: over the customers with their metrics (the columns the
  pipeline's ``Prepared.state`` has), the steps of `lifecycle_cli.engine.decide`
  unrolled up to ``max_hops``: the initial stage (``lc_h0``); per hop the built-ins
  and derived values afresh, the winner by priority then file order, the loop
  refusal with one boolean column per stage (``__v0``, ``__v1``...: the stages each
  customer held in this run). Hop ``k`` evaluates only the movers of hop ``k-1``
  (``lc_a{k-1}``; everyone in hop 1), keeps the customers with a winner
  (``lc_x{k}``), their record (``lc_r{k}``) and the movers in their new stage
  (``lc_a{k}``); one more evaluation finds ``pending``. ``lc_decided`` joins them:
  one row per customer with its final stage and, per hop ``k``, ``__from_k``,
  ``__to_k``, ``__rule_k`` (the rule's place in the file), ``__moved_k``,
  ``__loop_k`` (``__reason_k`` with ``reasons``), and ``__pending``: what
  :func:`transitions_query`, :func:`moves_query`, :func:`loops_query`,
  :func:`pending_query` and :func:`final_query` read. :func:`decision_steps` gives
  the steps to materialise one by one (an engine), :func:`decision_query` all of
  them as one query (a dbt model).

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
    SEGMENT,
    STAGE,
    TIMESTAMP,
)
from ..engine.compile import CompiledRules
from ..expressions import Kind, compile_expression
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
FILTER_DIALECTS = ("duckdb", "postgres", "spark", "databricks")
ROWS = "__rows"
CUSTOMER = "__customer"  # a usage row's customer id (its own column, or the lookup's)
LEFT = "__left_"  # + metric: rows left after `where` and the window (for `default:`)
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
    reaches its customers through (table name, key column), if any, and that table's
    customer id column."""

    table: str
    kinds: Mapping[str, Kind]
    renames: Mapping[str, str] = field(default_factory=dict)
    lookup: tuple[str, str] | None = None
    lookup_id: str = ID  # the lookup table's customer id column

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
        customer = exp.column(exp.to_identifier(source.lookup_id, quoted=True), table="l")
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
        aggregate = form.aggregate(_requalify(value), _requalify(cond), kind)
        if dialect in FILTER_DIALECTS and conds and metric.agg in ("count", "any"):
            # `COUNT(*) FILTER (WHERE cond)`: faster than a CASE in the engines that have it
            counted = exp.Filter(this=exp.Count(this=exp.Star()), expression=exp.Where(
                this=_requalify(cond)))
            aggregate = counted if metric.agg == "count" else exp.GT(this=counted,
                                                                      expression=number(0))
        outer.append(aggregate.as_(name, **AS))
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
                  kinds: Mapping[str, Kind], as_of: dt.date, dialect: str,
                  grouped: Mapping[str, str] | None = None) -> exp.Select:
    """Every metric of ``rules`` for every customer of the table ``customers`` (its ID
    column under the rules' name): ``ID`` and one column per metric in rules order, zeros
    and ``default:`` filled as `metrics.compute.finish` does; a metric whose source is
    not given takes its zero or default. ``kinds``: each metric's kind. ``grouped``: the
    tables an engine made of each source's :func:`source_query` (else they are
    subqueries)."""
    query = exp.select(exp.column(exp.to_identifier(ID, quoted=True), table="c").as_(
        ID, **AS)).from_(_table(customers, "c"))
    picked: dict[str, str] = {}  # metric -> the alias of its source's query
    for j, (name, source) in enumerate(sources.items()):
        one = rules.for_source(name)
        if not one.metrics:
            continue
        alias = f"s{j}"
        table = (_table(grouped[name], alias) if grouped and name in grouped else
                 source_query(one, source, as_of, dialect).subquery(alias))
        query = query.join(table,
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
    rules = compiled.rules
    expected = _expected_days(rules.expected_days_in(None))
    own = [s.name for s in rules.segments if s.expected_days]
    if own:  # the segments' own, then the stages'
        expected = case([(eq(column(SEGMENT), exp.Literal.string(name)),
                          _expected_days(rules.expected_days_in(name))) for name in own],
                        expected)
    chain.extend(f"{prefix}_b", [
        days_between(column(ENTERED), as_of).as_(DAYS_IN_STAGE, **AS),
        expected.as_(EXPECTED_DAYS, **AS)])
    chain.extend(f"{prefix}_o", [as_condition(exp.GT(this=column(DAYS_IN_STAGE),
                                                     expression=column(EXPECTED_DAYS)))
                                 .as_(OVERDUE, **AS)])
    for j, (name, derived) in enumerate(compiled.derived):
        chain.extend(f"{prefix}_d{j}", [compiler.expression(derived).as_(name, **AS)])


def _expected_days(days: dict[str, int | None]) -> exp.Expression:
    """Each stage's expected days, by the ``stage`` column (NULL: none)."""
    expected = case([(eq(_stage_column(), exp.Literal.string(stage)), number(n))
                     for stage, n in days.items() if n is not None])
    return expected if expected.args.get("ifs") else cast(null(), BIGINT)


def _in_segments(segments: tuple[str, ...] | None) -> list[exp.Expression]:
    """The condition that a rule of ``segments`` applies (none: it applies to all)."""
    if segments is None:
        return []
    return [exp.In(this=column(SEGMENT), expressions=[exp.Literal.string(s) for s in segments])]


def _segment(compiled: CompiledRules, compiler: SqlCompiler) -> exp.Expression:
    """`CompiledRules.segment_expr` in SQL: the first segment whose `when` holds."""
    names = compiled.rules.segment_names
    ifs = [(compiler.expression(when, condition=True), exp.Literal.string(name))
           for name, when in compiled.segments if when is not None]
    rest = exp.Literal.string(names[-1])
    return case(ifs, rest) if ifs else rest


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
                   dialect: str, *, reasons: bool = False, choose_segment: bool = False
                   ) -> exp.Select:
    """:func:`decision_steps` as one query (its steps as CTEs): for a dbt model."""
    chain = _decision(compiled, base_columns, customers, dialect, reasons=reasons,
                      choose_segment=choose_segment)
    return chain.query(exp.select(exp.Star()).from_(DECIDED))


def decision_steps(compiled: CompiledRules, base_columns: Sequence[str], customers: str,
                   dialect: str, *, reasons: bool = False, choose_segment: bool = False
                   ) -> list[tuple[str, exp.Select]]:
    """The decision as steps to materialise in order (``h0``, ``h1``... ``decided``), each
    a query over the tables of the steps before; see :func:`decision_query`.
    ``choose_segment``: compute each customer's segment (`segments:`) from ``customers``'
    columns (else ``customers`` has the ``segment`` column already)."""
    return _decision(compiled, base_columns, customers, dialect, reasons=reasons,
                     choose_segment=choose_segment).steps


def _decision(compiled: CompiledRules, base_columns: Sequence[str], customers: str,
              dialect: str, *, reasons: bool = False, choose_segment: bool = False) -> _Chain:
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
    # the segment, chosen from the export's columns and the metrics (unless ``customers``
    # has it already: the state of a day in Polars)
    chosen = {SEGMENT: _segment(compiled, compiler)} if choose_segment and compiled.segments \
        else {}
    if chosen and SEGMENT not in base:
        base.append(SEGMENT)
    chain.add("lc_h0", exp.select(
        *[chosen[c].as_(c, **AS) if c in chosen else column(c) for c in base],
        column(STAGE).as_(PREVIOUS_STAGE, **AS),
        start_stage.as_(STAGE, **AS),
        case([(exp.Is(this=column(STAGE), expression=null()), as_of.copy())],
             column(ENTERED)).as_(ENTERED, **AS),
        exp.Is(this=column(STAGE), expression=null()).as_(INITIAL, **AS),
        *[as_condition(eq(start_stage.copy(), exp.Literal.string(s))).as_(visited(i),
                                                                         **AS)
          for i, s in enumerate(stages)],
    ).from_(_table(customers)))
    chain.cut()
    carried = [*base, PREVIOUS_STAGE, INITIAL]
    max_hops = rules.effective_max_hops
    found = not_(exp.Is(this=column(WINNER), expression=null()))
    for hop in range(1, max_hops + 2):
        # only the customers that moved in the hop before (all in hop 1) are evaluated: a
        # customer that did not move cannot move next (nothing it depends on changed)
        _evaluate(chain, f"e{hop}", compiled, compiler)
        winner = case([
            (and_(exp.In(this=_stage_column(), expressions=[exp.Literal.string(s)
                                                            for s in rule.from_stages]),
                  *_in_segments(rule.segments),
                  compiler.expression(rule.condition, condition=True)),
             number(rule.index))
            for rule in compiled.transitions if rule.from_stages])
        if not winner.args.get("ifs"):
            winner = cast(null(), BIGINT)
        chain.extend(f"w{hop}", [winner.as_(WINNER, **AS)])
        target = case([(eq(column(WINNER), number(r.index)), exp.Literal.string(r.rule.to))
                       for r in compiled.transitions])
        if not target.args.get("ifs"):
            target = cast(null(), "VARCHAR")
        # the target held before in this run: the stage's own column, by the target's name
        is_loop = as_condition(case([(eq(column("__target"), exp.Literal.string(s)),
                                      column(visited(i))) for i, s in enumerate(stages)]))
        chain.extend(f"t{hop}", [target.as_("__target", **AS)])
        chain.extend(f"m{hop}", [is_loop.as_("__loop", **AS)])
        go = and_(found.copy(), not_(column("__loop")))
        if hop == max_hops + 1:  # the evaluation after the last hop: who would still move
            chain.add("lc_pending_rows", exp.select(
                column(ROW), column(WINNER).as_(PENDING, **AS)).from_(
                chain.last, copy=False).where(go))
            chain.cut()
            break
        # the customers with a winner: those that move, and those refused as a loop
        chain.add(f"lc_x{hop}", exp.select(exp.Star(), go.as_("__go", **AS)).from_(
            chain.last, copy=False).where(found.copy()))
        chain.cut()
        go = column("__go")
        records = [
            column(ROW),
            column(STAGE).as_("from", **AS),
            column("__target").as_("to", **AS),
            column(WINNER).as_("rule", **AS),
            days_between(column(ENTERED), as_of.copy()).as_("days", **AS),
            go.as_("moved", **AS),
            column("__loop").as_("loop", **AS),
        ]
        if reasons:
            records.append(case([(eq(column(WINNER), number(r.index)),
                                  _reason(compiled, r.index, compiler, dialect))
                                 for r in compiled.transitions]
                                or [(false(), exp.Literal.string(""))]).as_("reason", **AS))
        chain.add(f"lc_r{hop}", exp.select(*records).from_(f"lc_x{hop}", copy=False))
        chain.cut()
        # the movers, in their new stage: the next hop's customers
        chain.add(f"lc_a{hop}", exp.select(
            *[column(c) for c in carried],
            column("__target").as_(STAGE, **AS),
            as_of.copy().as_(ENTERED, **AS),
            *[or_(column(visited(i)), eq(column("__target"), exp.Literal.string(s)))
              .as_(visited(i), **AS) for i, s in enumerate(stages)],
        ).from_(f"lc_x{hop}", copy=False).where(go.copy()))
        chain.cut()
    # one row per customer: its start, each hop's record, the final stage
    h0 = exp.to_identifier("h")

    def of(alias: str, name: str) -> exp.Expression:
        return exp.column(exp.to_identifier(name, quoted=True), table=alias)

    hops = range(1, max_hops + 1)
    moved = {k: as_condition(of(f"r{k}", "moved")) for k in hops}
    final_stage = case([(moved[k].copy(), of(f"r{k}", "to")) for k in reversed(hops)],
                       of("h", STAGE)) if max_hops else of("h", STAGE)
    columns: list[exp.Expression] = [of("h", c).as_(c, **AS) for c in carried]
    columns += [final_stage.as_(STAGE, **AS),
                (case([(moved[1].copy(), as_of.copy())], of("h", ENTERED))
                 if max_hops else of("h", ENTERED)).as_(ENTERED, **AS)]
    for k in hops:
        columns += [of(f"r{k}", "from").as_(hop_column("from", k), **AS),
                    of(f"r{k}", "to").as_(hop_column("to", k), **AS),
                    of(f"r{k}", "rule").as_(hop_column("rule", k), **AS),
                    of(f"r{k}", "days").as_(hop_column("days", k), **AS),
                    moved[k].copy().as_(hop_column("moved", k), **AS),
                    as_condition(of(f"r{k}", "loop")).as_(hop_column("loop", k), **AS)]
        if reasons:
            columns.append(of(f"r{k}", "reason").as_(hop_column("reason", k), **AS))
    columns.append(of("p", PENDING).as_(PENDING, **AS))
    query = exp.select(*columns).from_(
        exp.Table(this=exp.to_identifier("lc_h0"), alias=exp.TableAlias(this=h0)))
    for name, alias in [*[(f"lc_r{k}", f"r{k}") for k in hops], ("lc_pending_rows", "p")]:
        query = query.join(exp.Table(this=exp.to_identifier(name),
                                     alias=exp.TableAlias(this=exp.to_identifier(alias))),
                           on=eq(of("h", ROW), of(alias, ROW)), join_type="LEFT", copy=False)
    chain.add(DECIDED, query)
    chain.cut()
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
                *([SEGMENT] if compiled.segments else []), *compiled.value_names,
                *compiled.rules.metrics]
    own = [c for c in columns if c not in computed]
    out = [column(c).as_(renames.get(c, c), **AS) for c in [*own, *computed]]
    return chain.query(exp.select(*out).from_(chain.last).order_by(column(ROW)))


def counts_query(source: SourceTable, grouped: str, customers: str, as_of: dt.date
                 ) -> exp.Select:
    """A source's row counts, as `metrics.compute.MetricsResult` has them, from the source
    (one scan of its timestamp) and ``grouped``, the table of its :func:`source_query`:
    ``rows`` (up to the as-of day), ``without_timestamp``, ``after_as_of``,
    ``unknown_customer`` (rows up to the as-of day whose customer is not in ``customers``,
    the lookup's misses apart) and ``unmatched_key`` (rows whose key the lookup lacks)."""
    end = _end_of(as_of)
    ts = source.col(TIMESTAMP)

    def count(cond: exp.Expression, value: exp.Expression | None = None) -> exp.Expression:
        return cast(exp.Coalesce(this=exp.Sum(this=case([(cond, value or number(1))],
                                                         number(0))),
                                 expressions=[number(0)]), BIGINT)

    scan = exp.select(
        count(exp.LT(this=ts.copy(), expression=end)).as_("rows", **AS),
        count(exp.Is(this=ts.copy(), expression=null())).as_("without_timestamp", **AS),
        count(exp.GTE(this=ts.copy(), expression=end.copy())).as_("after_as_of", **AS),
    ).from_(_table(source.table, "u"))
    g = exp.column(exp.to_identifier(ID, quoted=True), table="g")
    k = exp.column(exp.to_identifier(ID, quoted=True), table="k")
    n = exp.column(exp.to_identifier(ROWS, quoted=True), table="g")
    missed = exp.Is(this=g.copy(), expression=null()) if source.lookup is not None else false()
    groups = exp.select(
        count(and_(exp.Is(this=k, expression=null()), not_(missed)), n).as_(
            "unknown_customer", **AS),
        count(missed.copy(), n.copy()).as_("unmatched_key", **AS),
    ).from_(_table(grouped, "g")).join(
        exp.select(column(ID)).from_(_table(customers)).distinct().subquery("k"),
        on=eq(k.copy(), g.copy()), join_type="LEFT")
    return exp.select(
        *[exp.column(exp.to_identifier(c, quoted=True), table="a")
          for c in ("rows", "without_timestamp", "after_as_of")],
        *[exp.column(exp.to_identifier(c, quoted=True), table="b")
          for c in ("unknown_customer", "unmatched_key")],
    ).from_(scan.subquery("a")).join(groups.subquery("b"), join_type="CROSS")


def final_stages_query(decided: str) -> exp.Select:
    """ROW, STAGE, ENTERED after the day, in input order."""
    return exp.select(column(ROW), column(STAGE), column(ENTERED)).from_(
        _table(decided)).order_by(column(ROW))


def temporary_table(name: str, query: exp.Expression, dialect: str, *,
                    replace: bool = False) -> exp.Expression:
    """A step's table for the rest of the session: ``CREATE TEMPORARY TABLE name AS query``;
    on Spark and Databricks (no temporary tables; a temporary view would be computed again
    by each step that reads it) ``CACHE TABLE name AS query``."""
    if dialect in ("spark", "databricks"):
        return exp.Cache(this=exp.to_table(name), expression=query, lazy=False)
    return exp.Create(this=exp.to_table(name), kind="TABLE", replace=replace, expression=query,
                      properties=exp.Properties(expressions=[exp.TemporaryProperty()]))
