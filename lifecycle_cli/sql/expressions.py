"""Rules expressions compiled to SQL, per dialect, with the meaning pinned.

The input is the tree that `lifecycle_cli.expressions.compile_expression` typed
(each node's :class:`~lifecycle_cli.expressions.Kind` in ``node.meta["kind"]``):
the SQL compiler runs only after the Polars compile succeeded, so every type
error has been reported and nothing is checked twice. The output is a sqlglot
expression built node by node with sqlglot's builders; ``.sql(dialect=...)``
renders it. We never hand text to a transpiler: where engines differ, the node
we build says what we mean, in a form every dialect renders the same way.

The meaning, as the Polars engine has it:

- a condition that is NULL is false (``COALESCE(cond, FALSE)``);
- division and ``%`` by zero give NULL (``CASE WHEN b <> 0 ...``), ``%`` is floored;
- ``round`` halves to even (DuckDB ``ROUND_EVEN``, Spark ``BROUND``, elsewhere a
  portable ``FLOOR`` expression);
- day differences are calendar days: both sides are dates before ``DATEDIFF``;
- a failed cast is NULL (a pattern test, then ``TRY_CAST``; BigQuery ``SAFE_CAST``);
- ``LEAST``/``GREATEST`` ignore NULLs (each argument coalesced with the others);
- month arithmetic clamps to the month's last day (Jan 31 + 1 month is Feb 28).

A date difference (``d - as_of``) is a number of days here (a double, fractional for
datetimes), and a month interval a whole number of months: both only ever meet their
own kind or a date, so no engine's interval type is needed.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from typing import Any

from sqlglot import exp

from ..expressions import (
    KIND,
    MAX_MONTHS,
    PREVIOUS,
    Compiled,
    Kind,
    parse_iso_date,
    previous_column,
)

DIALECTS = ("duckdb", "spark", "databricks", "snowflake", "bigquery", "postgres")
SPARK_LIKE = ("spark", "databricks")

DOUBLE = "DOUBLE"
BIGINT = "BIGINT"
TEXT = "VARCHAR"


def column(name: str) -> exp.Column:
    """A quoted column name (names may hold spaces, brackets, upper case)."""
    return exp.column(exp.to_identifier(name, quoted=True))


def date_literal(value: dt.date) -> exp.Expression:
    return exp.cast(exp.Literal.string(value.isoformat()), exp.DataType.build("DATE"))


def timestamp_literal(value: dt.datetime) -> exp.Expression:
    return exp.cast(exp.Literal.string(value.isoformat(sep=" ")),
                    exp.DataType.build("TIMESTAMP"))


def number(value: int | float) -> exp.Expression:
    literal = exp.Literal.number(abs(value))
    return exp.Neg(this=literal) if value < 0 else literal


def null() -> exp.Expression:
    return exp.Null()


def true() -> exp.Expression:
    return exp.Boolean(this=True)


def false() -> exp.Expression:
    return exp.Boolean(this=False)


def cast(value: exp.Expression, to: str) -> exp.Expression:
    return exp.Cast(this=value, to=exp.DataType.build(to))


def case(branches: list[tuple[exp.Expression, exp.Expression]],
         default: exp.Expression | None = None) -> exp.Expression:
    """``CASE WHEN c1 THEN v1 ... ELSE default END``."""
    node = exp.Case(ifs=[exp.If(this=c, true=v) for c, v in branches])
    if default is not None:
        node.set("default", default)
    return node


def paren(value: exp.Expression) -> exp.Expression:
    """``value`` in brackets where an operator around it could bind differently."""
    if isinstance(value, exp.Binary | exp.Not | exp.Neg | exp.Between | exp.Escape):
        return exp.Paren(this=value)
    return value


def binary(kind: type[exp.Binary], a: exp.Expression, b: exp.Expression) -> exp.Expression:
    """``a OP b``, each operand in brackets where needed (sqlglot's builders add none)."""
    return kind(this=paren(a), expression=paren(b))  # type: ignore[return-value]


def and_(*parts: exp.Expression) -> exp.Expression:
    return exp.and_(*[paren(p) for p in parts], copy=False)  # type: ignore[return-value]


def or_(*parts: exp.Expression) -> exp.Expression:
    return exp.or_(*[paren(p) for p in parts], copy=False)  # type: ignore[return-value]


def not_(value: exp.Expression) -> exp.Expression:
    return exp.Not(this=paren(value))


def as_condition(value: exp.Expression) -> exp.Expression:
    """A condition in which NULL counts as false."""
    return exp.Coalesce(this=value, expressions=[false()])


def eq(a: exp.Expression, b: exp.Expression) -> exp.Expression:
    return exp.EQ(this=paren(a), expression=paren(b))


def days_between(start: exp.Expression, end: exp.Expression) -> exp.Expression:
    """Whole calendar days from ``start`` to ``end`` (dates)."""
    return exp.DateDiff(this=end, expression=start, unit=exp.var("DAY"))


def add_days(date: exp.Expression, days: exp.Expression) -> exp.Expression:
    """A date plus whole days, a date (DuckDB's ``date + INTERVAL`` is a timestamp)."""
    return cast(exp.DateAdd(this=date, expression=days, unit=exp.var("DAY")), "DATE")


def add_months_sql(date: exp.Expression, months: exp.Expression, kind: Kind = Kind.DATE
                   ) -> exp.Expression:
    """``date`` plus whole calendar months, clamped to the month's last day (every dialect's
    month addition clamps); NULL beyond ``MAX_MONTHS``, as the Polars engine has it."""
    added = cast(exp.DateAdd(this=date, expression=months, unit=exp.var("MONTH")),
                 "DATE" if kind == Kind.DATE else "TIMESTAMP")
    return case([(exp.LTE(this=exp.Abs(this=months.copy()), expression=number(MAX_MONTHS)),
                  added)])


def round_half_even(value: exp.Expression, digits: int, dialect: str) -> exp.Expression:
    """``value`` rounded to ``digits`` decimals, halves to even: ``round(2.5)`` is 2."""
    value = cast(value, DOUBLE)
    if dialect == "duckdb":
        return exp.Anonymous(this="ROUND_EVEN", expressions=[value, number(digits)])
    if dialect in SPARK_LIKE:
        return exp.Anonymous(this="BROUND", expressions=[value, number(digits)])
    # portable: y = x * 10^n; its floor f; a half goes to the even of f and f + 1
    scale = number(10.0 ** digits) if digits >= 0 else number(10.0 ** digits)
    scaled = exp.Mul(this=paren(value), expression=scale)
    floor = exp.Floor(this=scaled)
    rest = exp.Sub(this=scaled.copy(), expression=floor.copy())
    even = eq(exp.Sub(this=floor.copy(), expression=exp.Mul(
        this=number(2), expression=exp.Floor(this=exp.Div(this=floor.copy(),
                                                          expression=number(2))))), number(0))
    rounded = case([
        (exp.GT(this=rest, expression=number(0.5)), exp.Add(this=floor.copy(),
                                                            expression=number(1))),
        (exp.LT(this=rest.copy(), expression=number(0.5)), floor.copy()),
        (even, floor.copy()),
    ], exp.Add(this=floor.copy(), expression=number(1)))
    return exp.Div(this=paren(rounded), expression=scale.copy())


def try_cast_text(value: exp.Expression, to: str, dialect: str) -> exp.Expression:
    """Text cast to a number, NULL where it is not one. The text must be the number and
    nothing else, as Polars reads it (engines differ on blanks around it): a pattern test
    first, then ``TRY_CAST`` (BigQuery ``SAFE_CAST``) for what still fails (overflow)."""
    pattern = r"^[+-]?[0-9]+$" if to == BIGINT else \
        r"^[+-]?([0-9]+[.]?[0-9]*|[.][0-9]+)([eE][+-]?[0-9]+)?$"
    test = exp.RegexpLike(this=value, expression=exp.Literal.string(pattern))
    if dialect == "postgres":  # no TRY_CAST
        converted: exp.Expression = cast(value.copy(), to)
    else:
        converted = exp.TryCast(this=value.copy(), to=exp.DataType.build(to), safe=True,
                                requires_string=True)
    return case([(test, converted)])


class SqlCompiler:
    """Builds the SQL of typed expression trees for one dialect and as-of date.

    ``name(column)`` gives the SQL of a name the expressions read (default: the quoted
    column of that name); the script passes its own to read hop columns.
    """

    def __init__(self, as_of: dt.date, dialect: str,
                 name: Callable[[str], exp.Expression] | None = None):
        if dialect not in DIALECTS:
            raise ValueError(f"unknown dialect {dialect!r}: one of {', '.join(DIALECTS)}")
        self.as_of = as_of
        self.dialect = dialect
        self.name = name or column

    def expression(self, compiled: Compiled, *, condition: bool = False) -> exp.Expression:
        """The SQL of a compiled expression; with ``condition``, NULL counts as false."""
        assert compiled.tree is not None, "compile_expression keeps the tree"
        node = self.compile(compiled.tree)
        if condition:
            if compiled.kind == Kind.NULL:
                node = cast(node, "BOOLEAN")
            return as_condition(node)
        return node

    # -- the walk --------------------------------------------------------------------------
    def compile(self, node: exp.Expression) -> exp.Expression:
        method = getattr(self, "_" + type(node).__name__.lower(), None)
        if method is None:
            if isinstance(node, exp.EQ | exp.NEQ | exp.GT | exp.GTE | exp.LT | exp.LTE):
                return self._comparison(node)
            raise NotImplementedError(f"no SQL for {type(node).__name__}: {node.sql()}")
        result: exp.Expression = method(node)
        return result

    @staticmethod
    def kind(node: exp.Expression) -> Kind:
        kind = node.meta.get(KIND)
        assert kind is not None, f"untyped node {node.sql()}: compile it with Polars first"
        return Kind(kind)

    def as_of_sql(self) -> exp.Expression:
        return date_literal(self.as_of)

    # leaves
    def _column(self, node: exp.Column) -> exp.Expression:
        if node.name == "as_of":
            return self.as_of_sql()
        return self.name(node.name)

    def _literal(self, node: exp.Literal) -> exp.Expression:
        if node.is_string:
            return exp.Literal.string(node.this)
        text = str(node.this)
        if re.fullmatch(r"[+-]?\d+", text):
            return number(int(text))
        return cast(exp.Literal.number(text), DOUBLE)

    def _boolean(self, node: exp.Boolean) -> exp.Expression:
        return exp.Boolean(this=bool(node.this))

    def _null(self, node: exp.Null) -> exp.Expression:
        return null()

    def _paren(self, node: exp.Paren) -> exp.Expression:
        return exp.Paren(this=self.compile(node.this))

    def _interval(self, node: exp.Interval) -> exp.Expression:
        amount = node.this
        unit = (node.unit.name if node.unit is not None else "").lower()
        text = amount.name if isinstance(amount, exp.Literal) else ""
        if not unit and " " in text:
            text, unit = text.split(None, 1)
        count = int(text.strip())
        unit = unit.strip()
        if self.kind(node) == Kind.MONTHS:
            return number(count * (12 if unit.startswith("year") else 1))
        return number(count * (7 if unit.startswith("week") else 1))  # days

    def _cast(self, node: exp.Cast) -> exp.Expression:
        target = node.to.this
        inner = node.this
        kind = self.kind(node)
        if target in (exp.DataType.Type.DATE, exp.DataType.Type.TIMESTAMP,
                      exp.DataType.Type.DATETIME):
            if isinstance(inner, exp.Literal) and inner.is_string:
                return self._date_value_literal(inner.this, kind)
            value = self.compile(inner)
            if kind == Kind.DATE and self.kind(inner) == Kind.DATETIME:
                return cast(value, "DATE")
            return value
        value = self.compile(inner)
        source = self.kind(inner)
        if node.to.is_type(*exp.DataType.INTEGER_TYPES):
            if source == Kind.STRING:
                return try_cast_text(value, BIGINT, self.dialect)
            if source == Kind.BOOL:
                return case([(value, number(1)), (not_(value.copy()), number(0))])
            # toward zero, as Polars casts a float (SQL engines round)
            whole = case([(exp.LT(this=value, expression=number(0)),
                           exp.Ceil(this=value.copy()))], exp.Floor(this=value.copy()))
            return cast(whole, BIGINT)
        if node.to.is_type(*exp.DataType.REAL_TYPES):
            if source == Kind.STRING:
                return try_cast_text(value, DOUBLE, self.dialect)
            return cast(value, DOUBLE)
        return cast(value, TEXT)

    def _date_value_literal(self, text: str, kind: Kind) -> exp.Expression:
        value = parse_iso_date(text)
        assert value is not None
        if kind == Kind.DATE:
            return date_literal(value.date() if isinstance(value, dt.datetime) else value)
        if not isinstance(value, dt.datetime):
            value = dt.datetime.combine(value, dt.time())
        return timestamp_literal(value)

    # logic
    def _condition(self, node: exp.Expression) -> exp.Expression:
        value = self.compile(node)
        return cast(value, "BOOLEAN") if self.kind(node) == Kind.NULL else value

    def _and(self, node: exp.And) -> exp.Expression:
        return and_(self._condition(node.this), self._condition(node.expression))

    def _or(self, node: exp.Or) -> exp.Expression:
        return or_(self._condition(node.this), self._condition(node.expression))

    def _not(self, node: exp.Not) -> exp.Expression:
        return not_(self._condition(node.this))

    def _is(self, node: exp.Is) -> exp.Expression:
        value = self.compile(node.this)
        other = node.expression
        if isinstance(other, exp.Null):
            return exp.Is(this=paren(value), expression=null())
        return as_condition(eq(value, exp.Boolean(this=bool(other.this))))

    # comparisons
    def _unify(self, left: exp.Expression, right: exp.Expression
               ) -> tuple[exp.Expression, exp.Expression]:
        """Two comparable operands: a text literal beside a date is a date; a date beside
        a datetime is a datetime (as the Polars compiler has them)."""
        ka, kb = self.kind(left), self.kind(right)
        a, b = None, None
        if ka in (Kind.DATE, Kind.DATETIME) and kb == Kind.STRING and isinstance(
                right, exp.Literal):
            b, kb = self._literal_date(right)
        elif kb in (Kind.DATE, Kind.DATETIME) and ka == Kind.STRING and isinstance(
                left, exp.Literal):
            a, ka = self._literal_date(left)
        a = self.compile(left) if a is None else a
        b = self.compile(right) if b is None else b
        if {ka, kb} == {Kind.DATE, Kind.DATETIME}:
            if ka == Kind.DATE:
                a = cast(a, "TIMESTAMP")
            else:
                b = cast(b, "TIMESTAMP")
        return a, b

    def _literal_date(self, lit: exp.Literal) -> tuple[exp.Expression, Kind]:
        value = parse_iso_date(lit.this)
        assert value is not None
        if isinstance(value, dt.datetime):
            return timestamp_literal(value), Kind.DATETIME
        return date_literal(value), Kind.DATE

    def _comparison(self, node: exp.Expression) -> exp.Expression:
        a, b = self._unify(node.this, node.expression)
        return type(node)(this=paren(a), expression=paren(b))

    def _between(self, node: exp.Between) -> exp.Expression:
        x, lo = self._unify(node.this, node.args["low"])
        x2, hi = self._unify(node.this, node.args["high"])
        result = and_(exp.GTE(this=paren(x), expression=paren(lo)),
                      exp.LTE(this=paren(x2), expression=paren(hi)))
        return not_(result) if node.args.get("negate") else result

    def _in(self, node: exp.In) -> exp.Expression:
        parts = []
        for item in node.expressions:
            a, b = self._unify(node.this, item)
            parts.append(eq(a, b))
        return or_(*parts) if len(parts) > 1 else parts[0]

    def _like(self, node: exp.Expression, *, insensitive: bool = False) -> exp.Expression:
        value = self.compile(node.this)
        pattern: Any = exp.Literal.string(node.expression.this)
        if insensitive:  # LOWER on both sides: BigQuery has no ILIKE
            value, pattern = exp.Lower(this=value), exp.Lower(this=pattern)
        if "\\" in node.expression.this:  # a backslash is itself, not an escape
            result: exp.Expression = exp.Escape(
                this=exp.Like(this=paren(value), expression=pattern),
                expression=exp.Literal.string("!" if "!" not in node.expression.this
                                              else "#"))
        else:
            result = exp.Like(this=paren(value), expression=pattern)
        return not_(result) if node.args.get("negate") else result

    def _ilike(self, node: exp.ILike) -> exp.Expression:
        return self._like(node, insensitive=True)

    # arithmetic
    def _arith(self, node: exp.Expression) -> exp.Expression:
        ka, kb = self.kind(node.this), self.kind(node.expression)
        a, b = self.compile(node.this), self.compile(node.expression)
        kind = self.kind(node)
        numeric = {ka, kb} <= {Kind.NUMBER, Kind.NULL, Kind.DURATION, Kind.MONTHS}
        if isinstance(node, exp.Sub) and ka in (Kind.DATE, Kind.DATETIME) and kb in (
                Kind.DATE, Kind.DATETIME):
            return self._date_difference(a, ka, b, kb)
        if isinstance(node, exp.Add | exp.Sub) and (
                ka in (Kind.DATE, Kind.DATETIME) or kb in (Kind.DATE, Kind.DATETIME)):
            if kind == Kind.NULL:
                return null()
            date, other, kother = (a, b, kb) if ka in (Kind.DATE, Kind.DATETIME) else (b, a, ka)
            if isinstance(node, exp.Sub):
                other = exp.Neg(this=paren(other))
            if kother == Kind.MONTHS:
                return add_months_sql(date, other, kind)
            return self._add_days(date, kind, other)
        if kind == Kind.NULL and not numeric:
            return null()
        if isinstance(node, exp.Div):
            return case([(exp.NEQ(this=paren(b), expression=number(0)),
                          exp.Div(this=cast(a, DOUBLE), expression=paren(b.copy())))])
        if isinstance(node, exp.Mod):  # floored, as Polars' (and Python's) %
            quotient = exp.Floor(this=exp.Div(this=cast(a.copy(), DOUBLE),
                                              expression=paren(b.copy())))
            return case([(exp.NEQ(this=paren(b), expression=number(0)),
                          exp.Sub(this=paren(a), expression=exp.Mul(this=paren(b.copy()),
                                                                    expression=quotient)))])
        return type(node)(this=paren(a), expression=paren(b))

    _add = _sub = _mul = _div = _mod = _arith

    def _date_difference(self, a: exp.Expression, ka: Kind, b: exp.Expression,
                         kb: Kind) -> exp.Expression:
        """``a - b`` of two dates or datetimes, in days (fractional for datetimes)."""
        if ka == kb == Kind.DATE:
            return cast(days_between(b, a), DOUBLE)
        seconds = exp.DateDiff(this=cast(a, "TIMESTAMP"), expression=cast(b, "TIMESTAMP"),
                               unit=exp.var("SECOND"))
        return exp.Div(this=cast(seconds, DOUBLE), expression=number(86400))

    def _add_days(self, date: exp.Expression, kind: Kind, days: exp.Expression
                  ) -> exp.Expression:
        if kind == Kind.DATE:  # Spark's DATE_ADD takes an INT, not a BIGINT
            return add_days(date, cast(days, "INT" if self.dialect in SPARK_LIKE else BIGINT))
        seconds = cast(exp.Round(this=exp.Mul(this=paren(days), expression=number(86400))),
                       BIGINT)
        return exp.DateAdd(this=cast(date, "TIMESTAMP"), expression=seconds,
                           unit=exp.var("SECOND"))

    def _neg(self, node: exp.Neg) -> exp.Expression:
        return exp.Neg(this=paren(self.compile(node.this)))

    def _dpipe(self, node: exp.DPipe) -> exp.Expression:
        return exp.DPipe(this=self.compile(node.this), expression=self.compile(node.expression),
                         safe=False)

    # conditional
    def _case(self, node: exp.Case) -> exp.Expression:
        subject = node.this
        branches = []
        for branch in node.args.get("ifs") or []:
            if subject is not None:
                a, b = self._unify(subject, branch.this)
                cond = eq(a, b)
            else:
                cond = self._condition(branch.this)
            branches.append((cond, self.compile(branch.args["true"])))
        default = node.args.get("default")
        return case(branches, self.compile(default) if default is not None else None)

    def _if(self, node: exp.If) -> exp.Expression:
        other = node.args.get("false")
        return case([(self._condition(node.this), self.compile(node.args["true"]))],
                    self.compile(other) if other is not None else None)

    def _coalesce(self, node: exp.Coalesce) -> exp.Expression:
        items = [self.compile(i) for i in [node.this, *node.expressions]]
        return exp.Coalesce(this=items[0], expressions=items[1:])

    def _extremum(self, node: exp.Expression, kind: type[exp.Expression]) -> exp.Expression:
        """LEAST/GREATEST that ignore NULLs, as Polars' min/max_horizontal: each argument
        coalesced with the others, so NULL only when all are (BigQuery's and Snowflake's
        LEAST are NULL when any argument is)."""
        items = [self.compile(i) for i in [node.this, *node.expressions]]
        if len(items) == 1:
            return items[0]
        filled = [exp.Coalesce(this=item.copy(), expressions=[
            other.copy() for j, other in enumerate(items) if j != i]) for i, item in
            enumerate(items)]
        return kind(this=filled[0], expressions=filled[1:])

    def _greatest(self, node: exp.Greatest) -> exp.Expression:
        return self._extremum(node, exp.Greatest)

    def _least(self, node: exp.Least) -> exp.Expression:
        return self._extremum(node, exp.Least)

    # functions
    def _date_arg(self, arg: exp.Expression) -> exp.Expression:
        value = self.compile(arg)
        return cast(value, "DATE") if self.kind(arg) in (Kind.DATETIME, Kind.NULL) else value

    def _anonymous(self, node: exp.Anonymous) -> exp.Expression:
        name = str(node.this).lower()
        if name == PREVIOUS:
            return self.name(previous_column(node.expressions[0].name))
        as_of = self.as_of_sql()
        if name == "days_since":
            return days_between(self._date_arg(node.expressions[0]), as_of)
        if name == "days_until":
            return days_between(as_of, self._date_arg(node.expressions[0]))
        if name == "months_since":
            return self._whole_months(self._date_arg(node.expressions[0]), as_of)
        if name == "months_until":
            return self._whole_months(as_of, self._date_arg(node.expressions[0]))
        raise NotImplementedError(name)

    def _whole_months(self, start: exp.Expression, end: exp.Expression) -> exp.Expression:
        """As `lifecycle_cli.expressions.whole_months`: the largest n with
        add_months(start, n) <= end (end before start: minus the months back)."""
        def month_number(d: exp.Expression) -> exp.Expression:
            return binary(exp.Add, binary(exp.Mul, cast(exp.Year(this=d.copy()), BIGINT),
                                          number(12)),
                          cast(exp.Month(this=d.copy()), BIGINT))

        def short(a: exp.Expression, b: exp.Expression) -> exp.Expression:
            # a's day after b's, and b not its month's last day (the next day is the 1st)
            last_day = eq(exp.Day(this=add_days(b.copy(), number(1))), number(1))
            return case([(and_(exp.GT(this=exp.Day(this=a.copy()),
                                      expression=exp.Day(this=b.copy())),
                               not_(last_day)), number(1))], number(0))

        months = binary(exp.Sub, month_number(end), month_number(start))
        forward = binary(exp.Sub, months, short(start, end))
        backward = binary(exp.Add, months.copy(), short(end, start))
        return case([(exp.GTE(this=end.copy(), expression=start.copy()), forward)], backward)

    def _addmonths(self, node: exp.AddMonths) -> exp.Expression:
        date = self.compile(node.this)
        if self.kind(node.this) == Kind.NULL:
            date = cast(date, "DATE")
        count = cast(self.compile(node.expression), DOUBLE)
        whole = case([(eq(count, exp.Floor(this=count.copy())), cast(count.copy(), BIGINT))])
        return add_months_sql(date, whole, self.kind(node))

    def _abs(self, node: exp.Abs) -> exp.Expression:
        return exp.Abs(this=self.compile(node.this))

    def _round(self, node: exp.Round) -> exp.Expression:
        digits = node.args.get("decimals")
        n = int(digits.name) if digits is not None else 0
        return round_half_even(self.compile(node.this), n, self.dialect)

    def _lower(self, node: exp.Lower) -> exp.Expression:
        return exp.Lower(this=self.compile(node.this))

    def _upper(self, node: exp.Upper) -> exp.Expression:
        return exp.Upper(this=self.compile(node.this))

    def _trim(self, node: exp.Trim) -> exp.Expression:
        return exp.Trim(this=self.compile(node.this))

    def _length(self, node: exp.Length) -> exp.Expression:
        return cast(exp.Length(this=self.compile(node.this)), BIGINT)


def to_sql(compiled: Compiled, as_of: dt.date, dialect: str, *,
           condition: bool = False) -> str:
    """One compiled expression as SQL text for ``dialect`` (columns by their own names)."""
    return SqlCompiler(as_of, dialect).expression(compiled, condition=condition).sql(
        dialect=dialect)
