"""Safe YAML loading that remembers where every key and item came from.

The rules file is data written by people: when something in it is wrong we
want to point at the line. PyYAML's safe loader gives us nodes with marks; we
build plain Python values from them and keep a map from key path to line.
Tags that would build Python objects (``!!python/object`` and friends) are
refused by the safe constructor and reported with their line.

Before anything is built, one pass over the parser's events bounds what a
document may cost: aliases may stand for at most ``ALIAS_BUDGET`` values (a
"billion laughs" document of 9 levels of 9 aliases stands for 387 million),
an alias may not name the node it is inside, and nesting is at most
``MAX_DEPTH`` levels. PyYAML's syntax errors are told in our words, with a hint.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import yaml

from ..errors import Problem, RulesError

Path = tuple[str | int, ...]

_STANDARD_TAGS = {
    "tag:yaml.org,2002:map",
    "tag:yaml.org,2002:seq",
    "tag:yaml.org,2002:str",
    "tag:yaml.org,2002:int",
    "tag:yaml.org,2002:float",
    "tag:yaml.org,2002:bool",
    "tag:yaml.org,2002:null",
    "tag:yaml.org,2002:timestamp",
}


class _Loader(yaml.SafeLoader):
    """SafeLoader with YAML 1.2 booleans: only true/false are booleans.

    YAML 1.1 also reads yes/no/on/off as booleans, which turns the key `on:`
    of a CTA into True and a stage named No into False.
    """


_BOOL_TAG = "tag:yaml.org,2002:bool"
_Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != _BOOL_TAG]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver(
    _BOOL_TAG, re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)


@dataclass
class YamlDocument:
    """A loaded YAML document: its value and the line of every key path."""

    data: Any
    lines: dict[Path, int] = field(default_factory=dict)
    file: str | None = None

    def line_of(self, path: Path) -> int | None:
        """The line of ``path``, or of its nearest ancestor that has one."""
        path = tuple(path)
        while path:
            if path in self.lines:
                return self.lines[path]
            path = path[:-1]
        return self.lines.get(())


def format_path(path: Path) -> str:
    """``("transitions", 2, "when")`` -> ``transitions[2].when``."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out


ALIAS_BUDGET = 10_000  # values that the aliases of one document may stand for, in all
MAX_DEPTH = 64  # mappings and lists inside each other; a rules file needs about 5


def load_yaml(text: str, file: str | None = None) -> YamlDocument:
    """Parse ``text`` safely; raise :class:`RulesError` with the line on any YAML problem."""
    doc = YamlDocument(data=None, file=file)
    problems: list[Problem] = []
    loader = _Loader(text)
    try:
        _check_cost(text, file)
        node = loader.get_single_node()
        if node is not None:
            doc.data = _build(loader, node, (), doc, problems)
    except yaml.MarkedYAMLError as err:
        raise RulesError(syntax_problem(err, text, file)) from None
    except yaml.YAMLError as err:
        raise RulesError(Problem(f"YAML error: {err}", file=file)) from None
    finally:
        loader.dispose()
    if problems:
        raise RulesError(problems)
    return doc


def _check_cost(text: str, file: str | None) -> None:
    """Refuse, from the parser's events alone, a document whose aliases stand for more
    than ``ALIAS_BUDGET`` values, an alias inside the node it names, and nesting deeper
    than ``MAX_DEPTH``. Linear in the text: nothing is expanded."""
    sizes: dict[str, int] = {}  # anchor -> values it stands for, once its node is complete
    open_nodes: list[tuple[int, str | None]] = []  # [values so far, anchor] per open node
    counts = [0]  # the values of the document, aliases expanded
    expanded = 0

    def add(n: int) -> None:
        if open_nodes:
            size, anchor = open_nodes[-1]
            open_nodes[-1] = (size + n, anchor)
        else:
            counts[0] += n

    def refuse(message: str, mark: yaml.Mark, hint: str) -> RulesError:
        return RulesError(Problem(message, file=file, line=mark.line + 1, hint=hint))

    for event in yaml.parse(text, Loader=_Loader):
        if isinstance(event, yaml.ScalarEvent):
            if event.anchor:
                sizes[event.anchor] = 1
            add(1)
        elif isinstance(event, yaml.AliasEvent):
            if any(anchor == event.anchor for _, anchor in open_nodes):
                raise refuse(f"the alias *{event.anchor} is inside the value &{event.anchor} "
                             "names: that value would contain itself", event.start_mark,
                             "an alias can name only a value that is complete before it")
            n = sizes.get(event.anchor, 1)  # an unknown anchor: the composer says so
            expanded += n
            if expanded > ALIAS_BUDGET:
                raise refuse(
                    f"the aliases in this file stand for more than {ALIAS_BUDGET:,} values "
                    f"(*{event.anchor} alone for {n:,}): a rules file never needs that many, "
                    "and building them would take long and much memory", event.start_mark,
                    "write the values out, or use fewer aliases of aliases")
            add(n)
        elif isinstance(event, yaml.CollectionStartEvent):
            if len(open_nodes) >= MAX_DEPTH:
                raise refuse(f"the lists and mappings nest more than {MAX_DEPTH} levels deep",
                             event.start_mark,
                             "a rules file nests a few levels: check the brackets and indents")
            open_nodes.append((1, event.anchor))
        elif isinstance(event, yaml.CollectionEndEvent):
            size, anchor = open_nodes.pop()
            if anchor:
                sizes[anchor] = size
            add(size)


def syntax_problem(err: yaml.MarkedYAMLError, text: str, file: str | None) -> Problem:
    """PyYAML's syntax error in our words, on the line to look at, with a hint."""
    problem, context = (err.problem or "").strip(), (err.context or "").strip()
    at, opened = err.problem_mark or err.context_mark, err.context_mark
    line = at.line + 1 if at else None
    message, hint = f"{context} {problem}".strip(), None
    if context in ("while scanning an alias", "while scanning an anchor"):
        sign, word = ("*", "an alias") if "alias" in context else ("&", "an anchor")
        message = f"a value that starts with {sign} must be in quotes (YAML reads {sign} as " \
                  f"the start of {word})"
        hint = 'write from: "*" with the quotes' if sign == "*" else f'write "{sign}..."'
        line = opened.line + 1 if opened else line
    elif "found character '\\t'" in problem:
        message = "a tab character: YAML indents with spaces only"
        hint = "replace the tab with spaces"
    elif "that cannot start any token" in problem:
        found = re.search(r"found character '(.*?)'", problem)
        char = found.group(1) if found else "this character"
        message = f"a value that starts with {char} must be in quotes"
        hint = f'write "{char}..." with the double quotes'
    elif context == "while scanning a quoted scalar" and opened:
        message = f"the quote opened on line {opened.line + 1} is not closed"
        hint = "close it; inside \"...\" write \\\" for a double quote, inside '...' write ''"
        line = opened.line + 1
    elif context.startswith("while parsing a flow") and opened:
        bracket, close = ("[", "]") if "sequence" in context else ("{", "}")
        message = f"the {bracket} opened on line {opened.line + 1} is not closed where expected"
        hint = f"close it with {close}, and separate its items with commas: " + (
            "[Launched, Adopting]" if bracket == "[" else "{id: risk, to: Churned}")
    elif "expected <block end>, but found '<scalar>'" in problem:
        message = "text follows a quoted value on the same line"
        hint = "quote the whole value: when: \"plan = 'Pro' AND trained\""
    elif ("expected <block end>" in problem or "did not find expected" in problem) and at:
        kind = "list" if "collection" in context else "mapping"
        if opened and kind == "list" and at.column == opened.column:
            message = f"a key where the list of line {opened.line + 1} expects its next - item"
            hint = "start a new item with - , or indent the key under the item it belongs to"
        else:
            where = f" (line {opened.line + 1}, indented {_spaces(opened.column)})" \
                if opened else ""
            message = f"this line is indented {_spaces(at.column)}: it is out of line with the " \
                      f"{kind} it belongs to{where}"
            hint = "the keys of a mapping, and the - items of a list, start in the same " \
                   "column; indent with spaces"
    elif problem == "mapping values are not allowed here" and at:
        source = text.splitlines()[at.line] if at.line < len(text.splitlines()) else ""
        if ": " in source[: at.column].lstrip(" -"):
            message = "a value that contains ': ' must be in quotes"
            hint = "put the whole value in double quotes: name: \"Renewal: Q3\""
        else:
            message = "this key is indented under a value: it belongs to no mapping"
            hint = "line it up with the keys above it"
    elif problem.startswith("found undefined alias"):
        name = problem.rsplit(" ", 1)[-1].strip("'")
        message = f"*{name} names no anchor &{name} (YAML reads a value that starts with * " \
                  "as an alias)"
        hint = f'to write text that starts with *, put it in quotes: "*{name}"'
    elif context.startswith("found duplicate anchor"):
        name = context.split("'")[1] if "'" in context else ""
        message = f"the anchor &{name} is defined twice"
        hint = "give each anchor its own name"
    elif "expected a single document" in context:
        message = "the file holds more than one YAML document (a line --- starts another)"
        hint = "a rules file is one document: remove the second ---"
    return Problem(f"YAML syntax error: {message}", file=file, line=line, hint=hint)


def _spaces(n: int) -> str:
    return f"{n} space{'s' if n != 1 else ''}"


def _build(
    loader: _Loader, node: yaml.Node, path: Path, doc: YamlDocument, problems: list[Problem]
) -> Any:
    doc.lines.setdefault(path, node.start_mark.line + 1)
    if node.tag not in _STANDARD_TAGS:
        problems.append(
            Problem(
                f"the YAML tag {node.tag.replace('tag:yaml.org,2002:', '!!')} is not allowed: "
                "rules are data, and tags that build objects are refused",
                file=doc.file,
                line=node.start_mark.line + 1,
                path=format_path(path) or None,
            )
        )
        return None
    if isinstance(node, yaml.MappingNode):
        explicit = sum(1 for key, _ in node.value if key.tag != "tag:yaml.org,2002:merge")
        loader.flatten_mapping(node)  # resolve `<<: *anchor` merges; they come first
        merged = len(node.value) - explicit
        out: dict[Any, Any] = {}
        written: set[str] = set()  # keys written in this mapping, not merged into it
        for index, (key_node, value_node) in enumerate(node.value):
            key = _build(loader, key_node, path, doc, problems)
            if not isinstance(key, str | int | float | bool) and key is not None:
                problems.append(
                    Problem(
                        "a key must be plain text", file=doc.file, line=key_node.start_mark.line + 1
                    )
                )
                continue
            key = str(key) if not isinstance(key, str) else key
            child = (*path, key)
            if index >= merged and key in written:  # written keys may override merged ones
                problems.append(
                    Problem(
                        f"duplicate key '{key}' (the later one would silently win)",
                        file=doc.file,
                        line=key_node.start_mark.line + 1,
                        path=format_path(child),
                    )
                )
            if index >= merged:
                written.add(key)
            doc.lines[child] = key_node.start_mark.line + 1
            out[key] = _build(loader, value_node, child, doc, problems)
        return out
    if isinstance(node, yaml.SequenceNode):
        return [
            _build(loader, item, (*path, i), doc, problems) for i, item in enumerate(node.value)
        ]
    return loader.construct_object(node, deep=True)
