"""Safe YAML loading that remembers where every key and item came from.

The rules file is data written by people: when something in it is wrong we
want to point at the line. PyYAML's safe loader gives us nodes with marks; we
build plain Python values from them and keep a map from key path to line.
Tags that would build Python objects (``!!python/object`` and friends) are
refused by the safe constructor and reported with their line.
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


def load_yaml(text: str, file: str | None = None) -> YamlDocument:
    """Parse ``text`` safely; raise :class:`RulesError` with the line on any YAML problem."""
    loader = _Loader(text)
    doc = YamlDocument(data=None, file=file)
    problems: list[Problem] = []
    try:
        node = loader.get_single_node()
        if node is not None:
            doc.data = _build(loader, node, (), doc, problems)
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        line = mark.line + 1 if mark else None
        message = (err.problem or str(err)).strip()
        if err.context:
            message = f"{err.context} {message}"
        raise RulesError(Problem(f"YAML syntax error: {message}", file=file, line=line)) from None
    except yaml.YAMLError as err:
        raise RulesError(Problem(f"YAML error: {err}", file=file)) from None
    finally:
        loader.dispose()
    if problems:
        raise RulesError(problems)
    return doc


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
