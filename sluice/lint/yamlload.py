"""A YAML reader that refuses duplicate keys and remembers where every value came from.

PyYAML's `safe_load` keeps the last of two equal keys without a word, which hides exactly the
kind of mistake a reviewer misses (two `image:` lines, the second winning). Kubernetes' own
decoder rejects them, so we do too. Line numbers are kept beside the data (not inside it) so
schema errors can point at the offending line while validators see plain dicts and lists.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from yaml.nodes import MappingNode, ScalarNode

from sluice.lint.problems import Problem

_BaseLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@dataclass
class Document:
    """One YAML document of a file: the data, its start line and a side table of child lines."""

    path: str  # repo-relative (or as given) path, used in problem output
    index: int  # 0-based position in the stream
    line: int  # 1-based line where the document's content starts
    data: Any
    lines: dict[int, dict[Any, int]] = field(repr=False, default_factory=dict)

    def line_of(self, keys: Iterable[Any]) -> int:
        """The line of the deepest value along `keys` that we know a line for."""
        node, line = self.data, self.line
        for key in keys:
            table = self.lines.get(id(node))
            if table is None:
                break
            found = table.get(key)
            if found is None:
                break
            line = found
            try:
                node = node[key]
            except (KeyError, IndexError, TypeError):
                break
        return line


class _LineLoader(_BaseLoader):  # type: ignore[misc, valid-type]
    """Builds plain containers, records child lines per container and collects duplicate keys."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self.child_lines: dict[int, dict[Any, int]] = {}
        self.duplicates: list[tuple[int, str, int]] = []  # (line, key, first line)
        self.doc_line = 1

    def construct_document(self, node):  # type: ignore[no-untyped-def]
        self.doc_line = node.start_mark.line + 1
        return super().construct_document(node)

    def _check_duplicates(self, node: MappingNode) -> None:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            # Keys merged in with `<<:` may legitimately be overridden; only explicit keys count.
            if key_node.tag == "tag:yaml.org,2002:merge" or not isinstance(key_node, ScalarNode):
                continue
            key = self.construct_object(key_node)
            line = key_node.start_mark.line + 1
            if key in seen:
                self.duplicates.append((line, str(key), seen[key]))
            else:
                seen[key] = line

    def construct_lined_map(self, node: MappingNode):  # type: ignore[no-untyped-def]
        data: dict[Any, Any] = {}
        yield data
        self._check_duplicates(node)
        self.flatten_mapping(node)
        table: dict[Any, int] = {}
        for key_node, value_node in node.value:
            key = self.construct_object(key_node, deep=True)
            try:
                hash(key)
            except TypeError as exc:
                raise yaml.constructor.ConstructorError(
                    "while constructing a mapping",
                    node.start_mark,
                    "found unhashable key",
                    key_node.start_mark,
                ) from exc
            data[key] = self.construct_object(value_node)
            table[key] = key_node.start_mark.line + 1
        self.child_lines[id(data)] = table

    def construct_lined_seq(self, node):  # type: ignore[no-untyped-def]
        data: list[Any] = []
        yield data
        data.extend(self.construct_object(child) for child in node.value)
        self.child_lines[id(data)] = {i: child.start_mark.line + 1 for i, child in enumerate(node.value)}


_LineLoader.add_constructor("tag:yaml.org,2002:map", _LineLoader.construct_lined_map)
_LineLoader.add_constructor("tag:yaml.org,2002:seq", _LineLoader.construct_lined_seq)


def parse_yaml(text: str, path: str) -> tuple[list[Document], list[Problem]]:
    """All documents of a YAML stream, plus syntax and duplicate-key problems.

    Documents before a syntax error are still returned so that one broken document does not
    hide problems in the ones before it.
    """
    loader = _LineLoader(text)
    docs: list[Document] = []
    problems: list[Problem] = []
    try:
        while loader.check_data():
            data = loader.get_data()
            docs.append(Document(path, len(docs), loader.doc_line, data, loader.child_lines))
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else 1
        what = " ".join(part for part in (exc.context, exc.problem) if part)
        problems.append(Problem(path, line, "yaml-syntax", what or "cannot parse YAML"))
    except yaml.YAMLError as exc:
        problems.append(Problem(path, 1, "yaml-syntax", str(exc).splitlines()[0]))
    finally:
        loader.dispose()
    for line, key, first in loader.duplicates:
        problems.append(
            Problem(
                path, line, "yaml-duplicate-key", f"duplicate key '{key}' (first defined on line {first})"
            )
        )
    return docs, problems


def read_yaml_file(file: Path, shown_as: str) -> tuple[list[Document], list[Problem]]:
    try:
        text = file.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        return [], [Problem(shown_as, 1, "yaml-syntax", "file is not valid UTF-8")]
    return parse_yaml(text, shown_as)
