"""SQL expressions (`when`, `derived`, `where`) compiled to Polars expressions.

Text is parsed with sqlglot into a syntax tree, never evaluated as code. We
then walk the tree ourselves, with a small type system, instead of handing
the text to ``pl.sql_expr``: that lets us refuse what would be silently
wrong (``renewal_date - as_of <= 90`` compares microseconds in Polars), give
the whole-day functions ``days_since``/``days_until`` and the calendar-month
ones (``months_since``, ``months_until``, ``add_months``, ``INTERVAL '3 months'``),
make NULL conditions false, and know which columns each expression reads (for
``reason`` and ``explain``).

``previous(name)`` reads a customer's value of ``name`` at the state's previous
run: it compiles to the column ``previous(name)``, which the day adds to the
customers it decides on (`lifecycle_cli.day.pipeline`).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

import polars as pl
import sqlglot
from sqlglot import exp
from sqlglot.errors import ParseError, TokenError
from sqlglot.tokens import Tokenizer, TokenType

from .suggest import did_you_mean


class Kind(str, Enum):
    """The types an expression can have, as users think of them."""

    NUMBER = "number"
    STRING = "text"
    BOOL = "true/false"
    DATE = "date"
    DATETIME = "datetime"
    DURATION = "date difference"
    MONTHS = "month interval"  # INTERVAL '3 months': no fixed length, only added to dates
    NULL = "null"
    OTHER = "other"


def kind_of(dtype: pl.DataType) -> Kind:
    """The :class:`Kind` of a Polars dtype."""
    if dtype == pl.Null:
        return Kind.NULL
    if dtype == pl.Boolean:
        return Kind.BOOL
    if dtype.is_numeric():
        return Kind.NUMBER
    if dtype in (pl.String, pl.Categorical) or isinstance(dtype, pl.Enum | pl.Categorical):
        return Kind.STRING
    if dtype == pl.Date:
        return Kind.DATE
    if isinstance(dtype, pl.Datetime):
        return Kind.DATETIME
    if isinstance(dtype, pl.Duration):
        return Kind.DURATION
    return Kind.OTHER


class ExpressionError(Exception):
    """An expression that cannot be compiled; the caller adds file, line and rule id."""

    def __init__(self, message: str, hint: str | None = None, column: str | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.column = column


BARE_NUMBER_HINT = "write days_since(d) > 30, days_until(d) <= 90 or d > DATE '2026-01-01'"
MONTHS_HINT = ("compare dates (as_of >= renewal_date - INTERVAL '3 months') or count months "
               "(months_until(renewal_date) <= 3)")
DATE_FUNCTIONS = ("days_since", "days_until", "months_since", "months_until", "add_months")
PREVIOUS = "previous"
FUNCTIONS = (
    *DATE_FUNCTIONS,
    PREVIOUS,
    "abs",
    "round",
    "lower",
    "upper",
    "length",
    "coalesce",
    "least",
    "greatest",
    "trim",
)


KIND = "kind"  # the key of a node's Kind in a compiled tree's ``node.meta``

MAX_NESTING = 20  # brackets, CASEs, function calls and NOTs inside each other
MAX_DEPTH = 200  # the parsed tree, e.g. the terms of one long chain of ANDs
_NESTING_HINT = "split it: a derived value can hold a part, and rules can use its name"


def parse(text: str) -> exp.Expression:
    """Parse one SQL expression; raise :class:`ExpressionError` with the position on failure.

    Nesting is bounded (``MAX_NESTING``, ``MAX_DEPTH``): the parser and our compiler recurse,
    and an expression of 10,000 brackets must be refused, not crash them.
    """
    if not isinstance(text, str) or not text.strip():
        raise ExpressionError("the expression is empty")
    _check_nesting(text)
    try:
        tree: Any = sqlglot.parse_one(text)
    except RecursionError:  # deeper than the call stack allows, below MAX_NESTING
        raise ExpressionError("the expression is nested too deeply to read",
                              hint=_NESTING_HINT) from None
    except ParseError as err:
        info = err.errors[0] if err.errors else {}
        desc = info.get("description") or str(err).splitlines()[0]
        if desc.startswith("Required keyword") or desc.startswith("Expected"):
            desc = "the expression is incomplete (a value or operand is missing)"
        col = info.get("col")
        where = f" near column {col}" if col else ""
        raise ExpressionError(
            f"cannot parse {_shown(text)}{where}: {desc[:200]}", hint=_syntax_hint(text)
        ) from None
    except TokenError as err:
        raise ExpressionError(f"cannot parse {_shown(text)}: {err}",
                              hint=_syntax_hint(text)) from None
    if tree is None or isinstance(tree, exp.Query | exp.Command | exp.DDL | exp.DML):
        raise ExpressionError(
            f'{text!r} is not an expression (write only the condition, e.g. "logins_30d >= 20")'
        )
    depth, stack = 0, [(tree, 1)]
    while stack:  # without recursion: the tree may be deep
        node, level = stack.pop()
        depth = max(depth, level)
        if depth > MAX_DEPTH:
            raise ExpressionError(
                f"the expression is too long: its parts nest more than {MAX_DEPTH} deep",
                hint="compare with a list, x IN ('a', 'b', ...), or " + _NESTING_HINT)
        stack.extend((child, level + 1) for child in node.iter_expressions())
    return tree


_VALUE_ENDS = {TokenType.VAR, TokenType.NUMBER, TokenType.STRING, TokenType.NATIONAL_STRING,
               TokenType.IDENTIFIER, TokenType.R_PAREN, TokenType.R_BRACKET, TokenType.END,
               TokenType.NULL, TokenType.TRUE, TokenType.FALSE}


def _check_nesting(text: str) -> None:
    """Refuse more than ``MAX_NESTING`` brackets, CASEs and unary operators (NOT, -)
    inside each other, from the tokens alone (they are read without recursion)."""
    try:
        tokens = Tokenizer().tokenize(text)
    except TokenError:
        return  # the parser reports it
    depth = run = deepest = 0
    previous = None
    for token in tokens:
        kind = token.token_type
        unary = kind == TokenType.NOT or (
            kind in (TokenType.DASH, TokenType.PLUS) and previous not in _VALUE_ENDS)
        run = run + 1 if unary else 0
        if kind in (TokenType.L_PAREN, TokenType.CASE):
            depth += 1
        elif kind in (TokenType.R_PAREN, TokenType.END):
            depth -= 1
        deepest = max(deepest, depth + run)
        if deepest > MAX_NESTING:
            raise ExpressionError(
                f"the expression nests more than {MAX_NESTING} levels deep (brackets, CASE, "
                f"NOT or - inside each other), at column {token.col}",
                hint=_NESTING_HINT)
        previous = kind


def _shown(text: str, limit: int = 120) -> str:
    """``text`` quoted for a message, its middle left out when it is long."""
    if len(text) <= limit:
        return repr(text)
    return repr(text[: limit // 2] + " ... " + text[-limit // 4:])


def _syntax_hint(text: str) -> str | None:
    if "==" in text:
        return "SQL compares with a single '='"
    if "&&" in text or "||" in text.replace("' || '", ""):
        return "use AND / OR"
    if '"' in text:
        return "strings take single quotes: status = 'churned'"
    return None


def referenced_names(tree: exp.Expression) -> list[str]:
    """The column names an expression reads, in order of appearance, each once."""
    out: list[str] = []
    for col in tree.find_all(exp.Column, bfs=False):
        if col.name not in out:
            out.append(col.name)
    return out


def previous_column(name: str) -> str:
    """The column that holds ``name``'s value at the state's previous run: ``previous(name)``."""
    return f"{PREVIOUS}({name})"


def previous_of(column: str) -> str | None:
    """``name`` for the column ``previous(name)``; None for any other column."""
    match = re.fullmatch(rf"{PREVIOUS}\((.+)\)", column)
    return match.group(1) if match else None


def _is_previous(node: Any) -> bool:
    return isinstance(node, exp.Anonymous) and str(node.this).lower() == PREVIOUS


def previous_names(tree: exp.Expression) -> list[str]:
    """The names that ``previous()`` reads in an expression, in order, each once.

    Raises :class:`ExpressionError` for a ``previous()`` that does not take one plain name.
    """
    out: list[str] = []
    for node in tree.find_all(exp.Anonymous, bfs=False):
        if _is_previous(node):
            name = _previous_argument(node)
            if name not in out:
                out.append(name)
    return out


def _previous_argument(node: exp.Anonymous) -> str:
    args = list(node.expressions)
    if len(args) != 1 or not isinstance(args[0], exp.Column) or args[0].table:
        shown = ", ".join(a.sql() for a in args)
        raise ExpressionError(
            f"previous({shown}): previous() takes one name",
            hint="e.g. previous(health_score) - health_score >= 20",
        )
    return str(args[0].name)


def reason_names(tree: exp.Expression) -> list[str]:
    """The columns an expression reads, for ``reason``: a name read by ``previous()`` is the
    column ``previous(name)``."""
    out: list[str] = []
    for col in tree.find_all(exp.Column, bfs=False):
        name = previous_column(col.name) if _is_previous(col.parent) else col.name
        if name not in out:
            out.append(name)
    return out


@dataclass(frozen=True)
class Compiled:
    """A compiled expression: the Polars expression, its kind and the names it reads."""

    text: str
    expr: pl.Expr
    kind: Kind
    names: tuple[str, ...]
    # the parsed tree, each node's Kind in ``node.meta["kind"]``: what the SQL compiler
    # (`lifecycle_cli.sql.expressions`) builds from, without a second type checker
    tree: exp.Expression | None = field(default=None, compare=False, repr=False)

    def as_condition(self) -> pl.Expr:
        """The expression as a filter: NULL counts as false."""
        return self.expr.fill_null(False)


def compile_expression(
    text: str,
    scope: Mapping[str, Kind],
    *,
    as_of: dt.date,
    condition: bool = False,
    previous: Collection[str] | None = None,
) -> Compiled:
    """Compile ``text`` against the names in ``scope``.

    Names become ``pl.col(name)``, except ``as_of``, the as-of date. With
    ``condition=True`` the result must be true/false. ``previous``: the names that
    ``previous(name)`` may read (None: ``previous()`` is not allowed here); it becomes
    ``pl.col("previous(name)")``, of the kind of ``name``.
    """
    tree = parse(text)
    compiler = _Compiler(scope, as_of, previous, text)
    try:
        expr, kind = compiler.compile(tree)
    except RecursionError:  # MAX_DEPTH keeps this away; a deep call stack could still hit it
        raise ExpressionError("the expression is nested too deeply to compile",
                              hint=_NESTING_HINT) from None
    if kind == Kind.MONTHS:
        raise ExpressionError(
            f"{text!r} is a month interval, not a value",
            hint="add it to a date (start_date + INTERVAL '12 months'), or use "
            "add_months(start_date, 12)",
        )
    if condition and kind not in (Kind.BOOL, Kind.NULL):
        raise ExpressionError(
            f"a condition must be true or false, but {text!r} is a {kind.value}",
            hint='compare it, e.g. "x > 0" or "x IS NOT NULL"',
            column=tree.name if isinstance(tree, exp.Column) else None,
        )
    if condition and kind == Kind.NULL:
        expr = expr.cast(pl.Boolean)
    return Compiled(text, expr, kind, tuple(reason_names(tree)), tree)


def format_value(expr: pl.Expr, kind: Kind) -> pl.Expr:
    """Render a value for ``reason``: null, true/false, ISO dates, numbers as written."""
    if kind == Kind.BOOL:
        text: pl.Expr = pl.when(expr).then(pl.lit("true")).when(~expr).then(pl.lit("false"))
    elif kind == Kind.DATETIME:
        text = expr.dt.to_string("%Y-%m-%dT%H:%M:%S")
    elif kind == Kind.NULL:
        text = pl.lit(None, dtype=pl.String)
    else:
        text = expr.cast(pl.String)
    return text.fill_null(pl.lit("null"))


def reason_expr(names: list[tuple[str, pl.Expr, Kind]]) -> pl.Expr:
    """``name=value; name=value`` for the given (name, expression, kind) triples."""
    if not names:
        return pl.lit("", dtype=pl.String)
    parts: list[pl.Expr] = []
    for i, (name, expr, kind) in enumerate(names):
        parts.append(pl.lit(("; " if i else "") + f"{name}="))
        parts.append(format_value(expr, kind))
    return pl.concat_str(parts)


# -- the compiler ---------------------------------------------------------------------------

_COMPARISONS: dict[type, Callable[[pl.Expr, pl.Expr], pl.Expr]] = {
    exp.EQ: lambda a, b: a == b,
    exp.NEQ: lambda a, b: a != b,
    exp.GT: lambda a, b: a > b,
    exp.GTE: lambda a, b: a >= b,
    exp.LT: lambda a, b: a < b,
    exp.LTE: lambda a, b: a <= b,
}
_SYMBOLS: dict[type, str] = {
    exp.EQ: "=",
    exp.NEQ: "<>",
    exp.GT: ">",
    exp.GTE: ">=",
    exp.LT: "<",
    exp.LTE: "<=",
    exp.Add: "+",
    exp.Sub: "-",
    exp.Mul: "*",
    exp.Div: "/",
    exp.Mod: "%",
}
_TEMPORAL = (Kind.DATE, Kind.DATETIME, Kind.DURATION, Kind.MONTHS)
_DATES = (Kind.DATE, Kind.DATETIME)
MAX_MONTHS = 12 * 5000  # add_months beyond this gives NULL: no calendar date is that far


def add_months(date: pl.Expr, months: pl.Expr) -> pl.Expr:
    """``date`` (a date or datetime) plus a whole number of calendar months (an Int64
    expression). A day that the target month lacks becomes its last day: Jan 31 + 1 month
    is Feb 28 (Feb 29 in a leap year), Feb 29 + 12 months is Feb 28."""
    ok = months.abs() <= MAX_MONTHS
    return pl.when(ok).then(date.dt.offset_by(pl.format("{}mo", months)))


def whole_months(start: pl.Expr, end: pl.Expr) -> pl.Expr:
    """Whole calendar months from ``start`` to ``end`` (dates): the largest ``n`` with
    ``add_months(start, n) <= end``, so Jan 31 to Feb 28 is one month (Jan 31 + 1 month is
    Feb 28) and Jan 15 to Feb 14 is none; when ``end`` is before ``start``, minus the whole
    months from ``end`` to ``start``."""

    def month_number(d: pl.Expr) -> pl.Expr:
        return d.dt.year().cast(pl.Int64) * 12 + d.dt.month().cast(pl.Int64)

    def short(a: pl.Expr, b: pl.Expr) -> pl.Expr:
        # 1 when the last month from a to b is not whole: b's day comes before a's, and b is
        # not the last day of its month (a month that lacks a's day ends on its last day)
        return ((a.dt.day() > b.dt.day()) & (b.dt.day() < b.dt.month_end().dt.day())).cast(
            pl.Int64)

    forward = month_number(end) - month_number(start) - short(start, end)
    backward = month_number(end) - month_number(start) + short(end, start)
    return pl.when(end >= start).then(forward).otherwise(backward)


def _phrase(kind: Kind) -> str:
    return kind.value if kind in (Kind.STRING, Kind.NULL) else f"a {kind.value}"


def parse_iso_date(text: str) -> dt.date | dt.datetime | None:
    """An ISO date or datetime, or None."""
    for parse_fn in (dt.date.fromisoformat, dt.datetime.fromisoformat):
        try:
            return parse_fn(text.strip())
        except ValueError:
            continue
    return None


_DATE_ARITHMETIC = (exp.DateDiff, exp.DateAdd, exp.DateSub, exp.DatetimeDiff, exp.TimestampDiff,
                    exp.TsOrDsAdd, exp.TsOrDsDiff)


def source_text(node: exp.Expression, text: str) -> str:
    """The part of ``text`` that ``node`` was read from, as the user wrote it (sqlglot's
    own rendering rewrites it: ``IF(...)`` as ``CASE WHEN ...``); that rendering when the
    part cannot be found."""
    spans = [(n.meta["start"], n.meta["end"]) for n in node.walk()
             if n.meta.get("start") is not None]
    if any(n.meta.get("start") is None for n in node.walk() if isinstance(n, exp.Literal)):
        return node.sql()  # a value the parser made up (INTERVAL '1 month' is '1' MONTH)
    named = node.meta.get("start") is not None  # a function call starts with its own name
    call = isinstance(node, exp.Func) and not isinstance(node, exp.Case)
    if not text or not spans or not (named or call or isinstance(node, exp.Binary | exp.Column)):
        return node.sql()
    lo, hi = min(a for a, _ in spans), max(b for _, b in spans) + 1
    if call and not named:  # a name the parser took as a keyword, such as IF
        name = re.search(r"([A-Za-z_]\w*)\s*\(\s*$", text[:lo])
        if name is None:
            return node.sql()
        lo = name.start(1)
    opening = re.match(r"\s*\(", text[hi:]) if call and "(" not in text[lo:hi] else None
    if opening:  # a call without arguments: now()
        hi += opening.end()
    while True:  # take in the brackets the span opens or closes
        depth, low = 0, 0
        for ch in text[lo:hi]:
            depth += {"(": 1, ")": -1}.get(ch, 0)
            low = min(low, depth)
        if low < 0 and "(" in text[:lo]:
            lo = text.rindex("(", 0, lo)
        elif depth > low and ")" in text[hi:]:
            hi = text.index(")", hi) + 1
        else:
            return text[lo:hi].strip()


class _Compiler:
    def __init__(self, scope: Mapping[str, Kind], as_of: dt.date,
                 previous: Collection[str] | None = None, text: str = ""):
        self.scope = scope
        self.as_of = as_of
        self.previous = previous
        self.text = text

    def _text(self, node: exp.Expression) -> str:
        return source_text(node, self.text)

    def compile(self, node: exp.Expression) -> tuple[pl.Expr, Kind]:
        expr, kind = self._compile(node)
        node.meta[KIND] = kind  # for the SQL compiler: every node's kind, as typed here
        return expr, kind

    def _compile(self, node: exp.Expression) -> tuple[pl.Expr, Kind]:
        method = getattr(self, "_" + type(node).__name__.lower(), None)
        if method is not None:
            return method(node)
        if isinstance(node, tuple(_COMPARISONS)):
            return self._comparison(node)
        if isinstance(node, exp.AggFunc) and not isinstance(node, exp.Coalesce):
            raise ExpressionError(
                f"aggregate {self._text(node)!r} is not allowed in a per-customer expression",
                hint="define a metric (metrics:) and use its name",
            )
        if isinstance(node, exp.Func):  # a function sqlglot knows and we do not
            start, end = node.meta.get("start"), node.meta.get("end")
            name = self.text[start:end + 1] if start is not None and end is not None \
                else node.sql_name().lower()
            hint = did_you_mean(name.lower(), list(FUNCTIONS)) or \
                "functions: " + ", ".join(f"{f}()" for f in FUNCTIONS)
            if isinstance(node, _DATE_ARITHMETIC):
                hint = "count days with days_since(d) or days_until(d); move a date with " \
                       "d + INTERVAL '30 days'"
            raise ExpressionError(f"unknown function {name}()", hint=hint)
        raise ExpressionError(
            f"{self._text(node)!r} is not supported here",
            hint="supported: AND OR NOT, comparisons, + - * /, IN, BETWEEN, "
            "LIKE, ILIKE, IS NULL, COALESCE, CASE, IF, days_since(), days_until(), "
            "months_since(), months_until(), add_months(), previous()",
        )

    # leaves
    def _column(self, node: exp.Column) -> tuple[pl.Expr, Kind]:
        if node.table:
            raise ExpressionError(
                f"qualified name {node.sql()!r} is not supported", hint=f"write just {node.name!r}"
            )
        name = node.name
        if name == "as_of":
            return pl.lit(self.as_of, dtype=pl.Date), Kind.DATE
        if name not in self.scope:
            quoted = (
                node.this.args.get("quoted") if isinstance(node.this, exp.Identifier) else False
            )
            hint: str | None
            if quoted:
                hint = f"double quotes name a column; for the text write '{name}'"
            else:
                hint = did_you_mean(name, list(self.scope))
            raise ExpressionError(
                f"unknown name '{name}'",
                hint=hint or "known names: " + ", ".join(sorted(self.scope)),
                column=name,
            )
        kind = self.scope[name]
        return pl.col(name), kind

    def _literal(self, node: exp.Literal) -> tuple[pl.Expr, Kind]:
        if node.is_string:
            return pl.lit(node.this, dtype=pl.String), Kind.STRING
        text = str(node.this)
        if re.fullmatch(r"[+-]?\d+", text):
            return pl.lit(int(text), dtype=pl.Int64), Kind.NUMBER
        return pl.lit(float(text), dtype=pl.Float64), Kind.NUMBER

    def _boolean(self, node: exp.Boolean) -> tuple[pl.Expr, Kind]:
        return pl.lit(bool(node.this), dtype=pl.Boolean), Kind.BOOL

    def _null(self, node: exp.Null) -> tuple[pl.Expr, Kind]:
        return pl.lit(None), Kind.NULL

    def _paren(self, node: exp.Paren) -> tuple[pl.Expr, Kind]:
        return self.compile(node.this)

    def _interval(self, node: exp.Interval) -> tuple[pl.Expr, Kind]:
        amount = node.this
        unit = (node.unit.name if node.unit is not None else "").lower()
        text = amount.name if isinstance(amount, exp.Literal) else ""
        if not unit and " " in text:
            text, unit = text.split(None, 1)
        unit = unit.lower().strip()
        whole = re.fullmatch(r"[+-]?\d+", text.strip())
        days = {"day": 1, "days": 1, "week": 7, "weeks": 7}.get(unit)
        months = {"month": 1, "months": 1, "year": 12, "years": 12}.get(unit)
        if whole and days is not None:
            return pl.lit(dt.timedelta(days=int(text) * days)), Kind.DURATION
        if whole and months is not None:
            return pl.lit(int(text) * months, dtype=pl.Int64), Kind.MONTHS
        raise ExpressionError(
            f"{node.sql()!r}: intervals are whole days, weeks, months or years",
            hint="write INTERVAL '90 days' or INTERVAL '3 months'",
        )

    def _cast(self, node: exp.Cast) -> tuple[pl.Expr, Kind]:
        target = node.to.this
        inner = node.this
        if target in (
            exp.DataType.Type.DATE,
            exp.DataType.Type.TIMESTAMP,
            exp.DataType.Type.DATETIME,
        ):
            if isinstance(inner, exp.Literal) and inner.is_string:
                value = parse_iso_date(inner.this)
                if value is None:
                    raise ExpressionError(f"{inner.this!r} is not an ISO date (YYYY-MM-DD)")
                if target == exp.DataType.Type.DATE:
                    day = value.date() if isinstance(value, dt.datetime) else value
                    return pl.lit(day, dtype=pl.Date), Kind.DATE
                if not isinstance(value, dt.datetime):
                    value = dt.datetime.combine(value, dt.time())
                return pl.lit(value, dtype=pl.Datetime("us")), Kind.DATETIME
            expr, kind = self.compile(inner)
            if kind == Kind.DATETIME and target == exp.DataType.Type.DATE:
                return expr.dt.date(), Kind.DATE
            if kind in (Kind.DATE, Kind.DATETIME, Kind.NULL):
                return expr, kind
            raise ExpressionError(
                f"{node.sql()!r}: only text literals and datetimes convert to dates"
            )
        expr, kind = self.compile(inner)
        if node.to.is_type(*exp.DataType.INTEGER_TYPES):
            return expr.cast(pl.Int64, strict=False), Kind.NUMBER
        if node.to.is_type(*exp.DataType.REAL_TYPES):
            return expr.cast(pl.Float64, strict=False), Kind.NUMBER
        if node.to.is_type(*exp.DataType.TEXT_TYPES):
            return expr.cast(pl.String), Kind.STRING
        raise ExpressionError(f"{node.sql()!r}: unsupported CAST target")

    # logic
    def _condition_operand(self, node: exp.Expression, op: str) -> pl.Expr:
        expr, kind = self.compile(node)
        if kind == Kind.NULL:  # e.g. a column that is blank for every customer
            return expr.cast(pl.Boolean)
        if kind not in (Kind.BOOL, Kind.NULL):
            raise ExpressionError(
                f"{op} needs true/false operands, but {self._text(node)!r} is a {kind.value}",
                hint='compare it, e.g. "x > 0"',
                column=node.name if isinstance(node, exp.Column) else None,
            )
        return expr

    def _and(self, node: exp.And) -> tuple[pl.Expr, Kind]:
        # Polars' & and | follow SQL's three-valued logic (NULL AND FALSE is FALSE).
        return (
            self._condition_operand(node.this, "AND")
            & self._condition_operand(node.expression, "AND")
        ), Kind.BOOL

    def _or(self, node: exp.Or) -> tuple[pl.Expr, Kind]:
        return (
            self._condition_operand(node.this, "OR")
            | self._condition_operand(node.expression, "OR")
        ), Kind.BOOL

    def _not(self, node: exp.Not) -> tuple[pl.Expr, Kind]:
        return ~self._condition_operand(node.this, "NOT"), Kind.BOOL

    def _is(self, node: exp.Is) -> tuple[pl.Expr, Kind]:
        expr, _ = self.compile(node.this)
        other = node.expression
        if isinstance(other, exp.Null):
            return expr.is_null(), Kind.BOOL
        if isinstance(other, exp.Boolean):
            return (expr == bool(other.this)).fill_null(False), Kind.BOOL
        raise ExpressionError(f"{node.sql()!r}: IS takes NULL, TRUE or FALSE")

    # comparisons
    def _unify(
        self,
        node: exp.Expression,
        left: exp.Expression,
        right: exp.Expression,
    ) -> tuple[pl.Expr, pl.Expr, Kind]:
        """Compile two operands that must be comparable; literals adapt to dates."""
        a, ka = self.compile(left)
        b, kb = self.compile(right)
        # a text literal next to a date is read as a date
        if (
            ka in (Kind.DATE, Kind.DATETIME)
            and kb == Kind.STRING
            and isinstance(right, exp.Literal)
        ):
            b, kb = self._date_from_literal(right, ka)
        elif (
            kb in (Kind.DATE, Kind.DATETIME) and ka == Kind.STRING and isinstance(left, exp.Literal)
        ):
            a, ka = self._date_from_literal(left, kb)
        if Kind.MONTHS in (ka, kb):
            raise ExpressionError(
                f"{node.sql()!r} compares a month interval: a month has no fixed number of days",
                hint=MONTHS_HINT,
            )
        if Kind.NULL in (ka, kb) or ka == kb:
            return a, b, kb if ka == Kind.NULL else ka
        if {ka, kb} == {Kind.DATE, Kind.DATETIME}:
            if ka == Kind.DATE:
                a = a.cast(pl.Datetime("us"))
            else:
                b = b.cast(pl.Datetime("us"))
            return a, b, Kind.DATETIME
        self._mismatch(node, left, ka, right, kb)
        raise AssertionError("unreachable")

    def _date_from_literal(self, lit: exp.Literal, kind: Kind) -> tuple[pl.Expr, Kind]:
        value = parse_iso_date(lit.this)
        if value is None:
            raise ExpressionError(
                f"{lit.this!r} is compared with a date but is not an ISO date",
                hint="write DATE 'YYYY-MM-DD'",
            )
        if isinstance(value, dt.datetime):
            return pl.lit(value, dtype=pl.Datetime("us")), Kind.DATETIME
        return pl.lit(value, dtype=pl.Date), Kind.DATE

    def _mismatch(
        self, node: exp.Expression, left: exp.Expression, ka: Kind, right: exp.Expression, kb: Kind
    ) -> None:
        text = self._text(node)
        if Kind.NUMBER in (ka, kb) and (ka in _TEMPORAL or kb in _TEMPORAL):
            temporal = left if ka in _TEMPORAL else right
            kind = ka if ka in _TEMPORAL else kb
            raise ExpressionError(
                f"{text!r} compares a {kind.value} ({self._text(temporal)}) with a bare number",
                hint=BARE_NUMBER_HINT,
                column=temporal.name if isinstance(temporal, exp.Column) else None,
            )
        column = None
        for side, kind in ((left, ka), (right, kb)):
            if isinstance(side, exp.Column) and kind == Kind.STRING:
                column = side.name
        hint = None
        if column and Kind.NUMBER in (ka, kb):
            hint = f"'{column}' holds text in the data; check the export for non-numeric values"
        elif column and (Kind.DATE in (ka, kb) or Kind.DATETIME in (ka, kb)):
            hint = f"'{column}' holds text in the data, not dates"
        raise ExpressionError(
            f"{text!r} compares {_phrase(ka)} with {_phrase(kb)}", hint=hint, column=column
        )

    def _comparison(self, node: exp.Expression) -> tuple[pl.Expr, Kind]:
        a, b, _ = self._unify(node, node.this, node.expression)
        return _COMPARISONS[type(node)](a, b), Kind.BOOL

    def _between(self, node: exp.Between) -> tuple[pl.Expr, Kind]:
        x, lo, _ = self._unify(node, node.this, node.args["low"])
        x2, hi, _ = self._unify(node, node.this, node.args["high"])
        result = (x >= lo) & (x2 <= hi)
        return (~result if node.args.get("negate") else result), Kind.BOOL

    def _in(self, node: exp.In) -> tuple[pl.Expr, Kind]:
        if node.args.get("query") is not None or not node.expressions:
            raise ExpressionError(f"{node.sql()!r}: IN takes a list of values, e.g. IN ('a', 'b')")
        result: pl.Expr | None = None
        for item in node.expressions:
            a, b, _ = self._unify(node, node.this, item)
            eq = a == b
            result = eq if result is None else (result | eq)
        assert result is not None
        return result, Kind.BOOL

    def _like(self, node: exp.Expression, *, insensitive: bool = False) -> tuple[pl.Expr, Kind]:
        value, kind = self.compile(node.this)
        pattern = node.expression
        if not (isinstance(pattern, exp.Literal) and pattern.is_string):
            raise ExpressionError(f"{node.sql()!r}: the LIKE pattern must be a text literal")
        if kind not in (Kind.STRING, Kind.NULL):
            raise ExpressionError(f"{node.sql()!r}: LIKE needs text, but it is a {kind.value}")
        regex = "".join(
            ".*" if ch == "%" else "." if ch == "_" else re.escape(ch) for ch in pattern.this
        )
        flags = "(?is)" if insensitive else "(?s)"
        result = value.str.contains(f"{flags}^{regex}$")
        return (~result if node.args.get("negate") else result), Kind.BOOL

    def _ilike(self, node: exp.ILike) -> tuple[pl.Expr, Kind]:
        return self._like(node, insensitive=True)

    # arithmetic
    def _arith(self, node: exp.Expression) -> tuple[pl.Expr, Kind]:
        a, ka = self.compile(node.this)
        b, kb = self.compile(node.expression)
        op = _SYMBOLS[type(node)]
        if Kind.MONTHS in (ka, kb):
            return self._month_arith(node, op, a, ka, b, kb)
        if (
            ka == Kind.NUMBER
            and kb == Kind.NUMBER
            or Kind.NULL in (ka, kb)
            and ({ka, kb} <= {Kind.NUMBER, Kind.NULL})
        ):
            if op == "+":
                return a + b, Kind.NUMBER
            if op == "-":
                return a - b, Kind.NUMBER
            if op == "*":
                return a * b, Kind.NUMBER
            # SQL has no infinities: dividing by zero gives NULL
            if op == "/":
                return pl.when(b != 0).then(a.cast(pl.Float64) / b), Kind.NUMBER
            return pl.when(b != 0).then(a % b), Kind.NUMBER
        if op == "-" and ka in (Kind.DATE, Kind.DATETIME) and kb in (Kind.DATE, Kind.DATETIME):
            if ka != kb:
                a, b = a.cast(pl.Datetime("us")), b.cast(pl.Datetime("us"))
            return a - b, Kind.DURATION
        if op in "+-" and ka in (Kind.DATE, Kind.DATETIME) and kb == Kind.DURATION:
            return (a + b if op == "+" else a - b), ka
        if op == "+" and kb in (Kind.DATE, Kind.DATETIME) and ka == Kind.DURATION:
            return a + b, kb
        if op in "+-" and ka == Kind.DURATION and kb == Kind.DURATION:
            return (a + b if op == "+" else a - b), Kind.DURATION
        if Kind.NUMBER in (ka, kb) and (ka in _TEMPORAL or kb in _TEMPORAL):
            raise ExpressionError(
                f"{node.sql()!r} mixes a date with a bare number",
                hint="add days with INTERVAL '30 days', or use days_since()",
            )
        raise ExpressionError(f"{node.sql()!r}: cannot apply {op} to a {ka.value} and a {kb.value}")

    _add = _sub = _mul = _div = _mod = _arith

    def _month_arith(self, node: exp.Expression, op: str, a: pl.Expr, ka: Kind, b: pl.Expr,
                     kb: Kind) -> tuple[pl.Expr, Kind]:
        """Arithmetic with a month interval: added to or taken from a date, or to another."""
        if op in "+-" and ka in _DATES and kb == Kind.MONTHS:
            return add_months(a, b if op == "+" else -b), ka
        if op == "+" and ka == Kind.MONTHS and kb in _DATES:
            return add_months(b, a), kb
        if op in "+-" and ka == kb == Kind.MONTHS:
            return (a + b if op == "+" else a - b), Kind.MONTHS
        if op in "+-" and Kind.NULL in (ka, kb):
            return pl.lit(None), Kind.NULL
        if Kind.DURATION in (ka, kb):
            raise ExpressionError(
                f"{node.sql()!r} combines months with days: a month has no fixed number of days",
                hint="add them to the date one after the other: "
                "d + INTERVAL '1 month' + INTERVAL '3 days'",
            )
        if Kind.NUMBER in (ka, kb):
            raise ExpressionError(
                f"{node.sql()!r} mixes a month interval with a bare number",
                hint="add a number of months with add_months(d, n)",
            )
        raise ExpressionError(
            f"{node.sql()!r}: cannot apply {op} to a {ka.value} and a {kb.value}",
            hint="a month interval is added to or taken from a date: d + INTERVAL '3 months'",
        )

    def _neg(self, node: exp.Neg) -> tuple[pl.Expr, Kind]:
        expr, kind = self.compile(node.this)
        if kind not in (Kind.NUMBER, Kind.DURATION, Kind.MONTHS, Kind.NULL):
            raise ExpressionError(f"{node.sql()!r}: cannot negate a {kind.value}")
        return -expr, kind

    def _dpipe(self, node: exp.DPipe) -> tuple[pl.Expr, Kind]:
        a, ka = self.compile(node.this)
        b, kb = self.compile(node.expression)
        if not {ka, kb} <= {Kind.STRING, Kind.NULL}:
            raise ExpressionError(
                f"{node.sql()!r}: || joins text", hint="to combine conditions write OR (and AND)"
            )
        return pl.concat_str([a.cast(pl.String), b.cast(pl.String)]), Kind.STRING

    # conditional
    def _case(self, node: exp.Case) -> tuple[pl.Expr, Kind]:
        subject = node.this
        chain: Any = None
        kinds: list[Kind] = []
        values: list[tuple[pl.Expr, pl.Expr]] = []
        for branch in node.args.get("ifs") or []:
            if subject is not None:
                left, right, _ = self._unify(branch, subject, branch.this)
                cond = left == right
            else:
                cond = self._condition_operand(branch.this, "CASE WHEN")
            value, kind = self.compile(branch.args["true"])
            kinds.append(kind)
            values.append((cond, value))
        default = node.args.get("default")
        default_expr, default_kind = (
            self.compile(default) if default is not None else (pl.lit(None), Kind.NULL)
        )
        kinds.append(default_kind)
        kind = self._common_kind(node, kinds)
        for cond, value in values:
            chain = pl.when(cond).then(value) if chain is None else chain.when(cond).then(value)
        assert chain is not None
        return chain.otherwise(default_expr), kind

    def _if(self, node: exp.If) -> tuple[pl.Expr, Kind]:
        """``IF(c, a, b)`` (as in a spreadsheet): ``CASE WHEN c THEN a ELSE b END``."""
        cond = self._condition_operand(node.this, "IF")
        then, then_kind = self.compile(node.args["true"])
        other = node.args.get("false")
        default, default_kind = self.compile(other) if other is not None else (
            pl.lit(None), Kind.NULL)
        kind = self._common_kind(node, [then_kind, default_kind])
        return pl.when(cond).then(then).otherwise(default), kind

    def _common_kind(self, node: exp.Expression, kinds: list[Kind]) -> Kind:
        real = {k for k in kinds if k != Kind.NULL}
        if len(real) > 1:
            raise ExpressionError(
                f"{self._text(node)!r} mixes values of different types: "
                + ", ".join(sorted(k.value for k in real))
            )
        return real.pop() if real else Kind.NULL

    def _coalesce(self, node: exp.Coalesce) -> tuple[pl.Expr, Kind]:
        items = [node.this, *node.expressions]
        compiled = [self.compile(i) for i in items]
        kind = self._common_kind(node, [k for _, k in compiled])
        return pl.coalesce([e for e, _ in compiled]), kind

    # functions
    def _date_arg(self, node: exp.Expression, name: str) -> pl.Expr:
        args = list(node.expressions) if isinstance(node, exp.Anonymous) else [node.this]
        if len(args) != 1:
            raise ExpressionError(f"{name}() takes one date, e.g. {name}(renewal_date)")
        expr, kind = self._date_value(args[0], f"{name}({args[0].sql()})")
        return expr.dt.date() if kind == Kind.DATETIME else expr

    def _date_value(self, arg: exp.Expression, call: str) -> tuple[pl.Expr, Kind]:
        """A function's date argument: a date, a datetime, or NULL (read as a date).
        ``call``: the function call, as the error shows it."""
        expr, kind = self.compile(arg)
        if kind in (Kind.DATE, Kind.DATETIME):
            return expr, kind
        if kind == Kind.NULL:
            return expr.cast(pl.Date), Kind.DATE
        column = arg.name if isinstance(arg, exp.Column) else None
        hint = None
        if column:
            hint = "its values are not all dates (YYYY-MM-DD) in the export"
        elif isinstance(arg, exp.Literal) and arg.is_string:
            hint = f"write a date literal: DATE '{arg.this}'"
        raise ExpressionError(
            f"{call} needs a date, but {arg.sql()} is {_phrase(kind)}",
            hint=hint,
            column=column,
        )

    def _currentdate(self, node: exp.Expression) -> tuple[pl.Expr, Kind]:
        raise ExpressionError(
            f"{self._text(node)} would read the machine's clock",
            hint="write as_of: the day the run speaks for (--as-of)",
        )

    _currenttimestamp = _currentdate

    def _anonymous(self, node: exp.Anonymous) -> tuple[pl.Expr, Kind]:
        name = str(node.this).lower()
        if name in ("now", "today", "getdate", "sysdate"):
            return self._currentdate(node)
        if name == "days_since":
            return (
                pl.lit(self.as_of, dtype=pl.Date) - self._date_arg(node, name)
            ).dt.total_days(), Kind.NUMBER
        if name == "days_until":
            return (
                self._date_arg(node, name) - pl.lit(self.as_of, dtype=pl.Date)
            ).dt.total_days(), Kind.NUMBER
        as_of = pl.lit(self.as_of, dtype=pl.Date)
        if name == "months_since":
            return whole_months(self._date_arg(node, name), as_of), Kind.NUMBER
        if name == "months_until":
            return whole_months(as_of, self._date_arg(node, name)), Kind.NUMBER
        if name == PREVIOUS:
            return self._previous(node)
        raise ExpressionError(
            f"unknown function {node.this}()",
            hint=did_you_mean(name, list(FUNCTIONS))
            or "functions: " + ", ".join(f"{f}()" for f in FUNCTIONS),
        )

    def _addmonths(self, node: exp.AddMonths) -> tuple[pl.Expr, Kind]:
        months = node.expression
        if node.this is None or months is None:
            raise ExpressionError("add_months() takes a date and a number of months, "
                                  "e.g. add_months(contract_start, 12)")
        call = f"add_months({node.this.sql()}, {months.sql()})"
        date, kind = self._date_value(node.this, call)
        literal = months.this if isinstance(months, exp.Neg) else months
        if isinstance(literal, exp.Literal) and not (
                not literal.is_string and float(literal.this).is_integer()):
            raise ExpressionError(f"{call}: add_months() adds a whole number of months",
                                  hint="e.g. add_months(contract_start, 12)")
        count = self._number_arg(months, "add_months").cast(pl.Float64)
        # a number of months that is not whole gives NULL, as a failed cast does
        whole = pl.when(count == count.floor()).then(count.cast(pl.Int64, strict=False))
        return add_months(date, whole), kind

    def _previous(self, node: exp.Anonymous) -> tuple[pl.Expr, Kind]:
        name = _previous_argument(node)
        call = previous_column(name)
        if self.previous is None:
            raise ExpressionError(
                f"{call}: previous() is not allowed here",
                hint="previous() reads a customer's value at the state's previous run; a "
                "metric's `where` reads usage rows",
            )
        if name not in self.previous:
            if name == "as_of" or name in self.scope:
                raise ExpressionError(
                    f"{call}: '{name}' is a built-in value; previous() reads a "
                    "customer column, a derived value or a metric",
                    hint="define a derived value that holds it (days: \"days_in_stage\") and "
                    "read previous(days)",
                )
            raise ExpressionError(
                f"unknown name '{name}' in {call}",
                hint=did_you_mean(name, list(self.previous))
                or "previous() reads customer columns, derived values and metrics",
                column=name,
            )
        return pl.col(previous_column(name)), self.scope[name]

    def _number_arg(self, node: exp.Expression, name: str) -> pl.Expr:
        expr, kind = self.compile(node)
        if kind not in (Kind.NUMBER, Kind.NULL):
            raise ExpressionError(f"{name}() needs a number, but {node.sql()!r} is {kind.value}")
        return expr

    def _text_arg(self, node: exp.Expression, name: str) -> pl.Expr:
        expr, kind = self.compile(node)
        if kind not in (Kind.STRING, Kind.NULL):
            raise ExpressionError(f"{name}() needs text, but {node.sql()!r} is {kind.value}")
        return expr

    def _abs(self, node: exp.Abs) -> tuple[pl.Expr, Kind]:
        return self._number_arg(node.this, "abs").abs(), Kind.NUMBER

    def _round(self, node: exp.Round) -> tuple[pl.Expr, Kind]:
        digits = node.args.get("decimals")
        if digits is not None and not (isinstance(digits, exp.Literal)
                                       and re.fullmatch(r"[+-]?\d+", digits.name)):
            raise ExpressionError(f"{self._text(node)!r}: round() takes a whole number of "
                                  "decimals, e.g. round(x, 2)")
        n = int(digits.name) if digits is not None else 0
        return self._number_arg(node.this, "round").cast(pl.Float64).round(n), Kind.NUMBER

    def _lower(self, node: exp.Lower) -> tuple[pl.Expr, Kind]:
        return self._text_arg(node.this, "lower").str.to_lowercase(), Kind.STRING

    def _upper(self, node: exp.Upper) -> tuple[pl.Expr, Kind]:
        return self._text_arg(node.this, "upper").str.to_uppercase(), Kind.STRING

    def _trim(self, node: exp.Trim) -> tuple[pl.Expr, Kind]:
        return self._text_arg(node.this, "trim").str.strip_chars(), Kind.STRING

    def _length(self, node: exp.Length) -> tuple[pl.Expr, Kind]:
        return self._text_arg(node.this, "length").str.len_chars().cast(pl.Int64), Kind.NUMBER

    def _extremum(self, node: exp.Expression, fn: Callable[..., pl.Expr]) -> tuple[pl.Expr, Kind]:
        items = [node.this, *node.expressions]
        compiled = [self.compile(i) for i in items]
        kind = self._common_kind(node, [k for _, k in compiled])
        return fn([e for e, _ in compiled]), kind

    def _greatest(self, node: exp.Greatest) -> tuple[pl.Expr, Kind]:
        return self._extremum(node, pl.max_horizontal)

    def _least(self, node: exp.Least) -> tuple[pl.Expr, Kind]:
        return self._extremum(node, pl.min_horizontal)
