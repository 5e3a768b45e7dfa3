"""YAML (or JSON) text -> plain mapping, with the line of every key path.

Only YAML's safe subset is read (`yaml.compose` with the SafeLoader), files are
size-limited and alias expansion is bounded, so a "billion laughs" file is an
error instead of an out-of-memory.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from chaosrunner.errors import SpecError

MAX_FILE_BYTES = 1 << 20
MAX_NODES = 100_000

KeyPath = tuple[str | int, ...]


@dataclass(frozen=True)
class Document:
    """A loaded file: its data, where it came from, and the line of each key path."""

    path: Path
    data: Any
    lines: Mapping[KeyPath, int] = field(default_factory=dict)

    def line_of(self, key_path: KeyPath) -> int | None:
        """Line of the deepest known ancestor of `key_path` (1-based)."""
        probe = tuple(key_path)
        while probe:
            if probe in self.lines:
                return self.lines[probe]
            probe = probe[:-1]
        return self.lines.get((), None)

    def where(self, key_path: KeyPath) -> str:
        """'file.yaml:12: faults[0].with.latency' for messages."""
        line = self.line_of(key_path)
        place = f"{self.path}:{line}" if line else str(self.path)
        return f"{place}: {format_key_path(key_path) or '(top level)'}"


def format_key_path(key_path: KeyPath) -> str:
    text = ""
    for part in key_path:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
    return text


_documents: dict[tuple[str, int, int], Document] = {}


def load_document(path: str | os.PathLike[str]) -> Document:
    """Read and parse one file; every failure is a SpecError naming the file.

    Parsed files are kept by (path, mtime, size): validating several experiments that
    share a steady state, or a game day and its experiments, reads each file once.
    """
    file_path = Path(path)
    try:
        stat = file_path.stat()
        cache_key = (str(file_path.resolve()), stat.st_mtime_ns, stat.st_size)
        if cache_key in _documents:
            return _documents[cache_key]
        size = stat.st_size
        if size > MAX_FILE_BYTES:
            raise SpecError([f"{file_path}: file is {size} bytes; the limit is {MAX_FILE_BYTES}"])
        text = file_path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SpecError([f"{file_path}: no such file; check the path"]) from None
    except IsADirectoryError:
        raise SpecError([f"{file_path}: is a directory, expected a YAML or JSON file"]) from None
    except PermissionError:
        raise SpecError([f"{file_path}: permission denied; make the file readable"]) from None
    except UnicodeDecodeError as exc:
        raise SpecError([f"{file_path}: not UTF-8 text ({exc.reason})"]) from None
    except OSError as exc:
        raise SpecError([f"{file_path}: cannot read: {exc.strerror}"]) from None
    document = _documents[cache_key] = parse_text(text, file_path)
    return document


# libyaml's parser when PyYAML was built with it: the pure-Python scanner was two thirds
# of `chaosrunner validate`'s time. Both give the same nodes and marks.
_COMPOSER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def parse_text(text: str, path: Path) -> Document:
    try:
        node = yaml.compose(text, Loader=_COMPOSER)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        line = f":{mark.line + 1}" if mark is not None else ""
        raise SpecError([f"{path}{line}: not valid YAML: {exc.problem}"]) from None
    except yaml.YAMLError as exc:
        raise SpecError([f"{path}: not valid YAML: {exc}"]) from None
    if node is None:
        raise SpecError([f"{path}: the file is empty"])
    builder = _Builder(path)
    data = builder.build(node, ())
    return Document(path=path, data=data, lines=builder.lines)


class _Builder:
    """Turns a composed node graph into Python values, recording lines, bounding size."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.lines: dict[KeyPath, int] = {}
        self.count = 0
        self._constructor = yaml.SafeLoader("")

    def build(self, node: yaml.Node, key_path: KeyPath) -> Any:
        self.count += 1
        if self.count > MAX_NODES:
            raise SpecError([f"{self.path}: more than {MAX_NODES} values (alias bomb?)"])
        self.lines.setdefault(key_path, node.start_mark.line + 1)
        if isinstance(node, yaml.MappingNode):
            return self._mapping(node, key_path)
        if isinstance(node, yaml.SequenceNode):
            return [self.build(item, (*key_path, i)) for i, item in enumerate(node.value)]
        return self._scalar(node)

    def _mapping(self, node: yaml.MappingNode, key_path: KeyPath) -> dict[str, Any]:
        result: dict[str, Any] = {}
        for key_node, value_node in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                raise SpecError([f"{self.path}:{key_node.start_mark.line + 1}: "
                                 "YAML merge keys (<<) are not supported"])
            key = self._scalar(key_node)
            if not isinstance(key, str | int | float | bool):
                raise SpecError([f"{self.path}:{key_node.start_mark.line + 1}: keys must be "
                                 "plain strings"])
            key = str(key)
            if key in result:
                raise SpecError([f"{self.path}:{key_node.start_mark.line + 1}: "
                                 f"duplicate key {key!r}"])
            self.lines[(*key_path, key)] = key_node.start_mark.line + 1
            result[key] = self.build(value_node, (*key_path, key))
        return result

    def _scalar(self, node: yaml.Node) -> Any:
        if not isinstance(node, yaml.ScalarNode):
            raise SpecError([f"{self.path}:{node.start_mark.line + 1}: keys must be scalars"])
        try:
            return self._constructor.construct_object(node, deep=True)
        except yaml.YAMLError as exc:
            raise SpecError([f"{self.path}:{node.start_mark.line + 1}: {exc}"]) from None


_VAR = re.compile(r"\$\{(?:var:)?([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def substitute_vars(data: Any, variables: Mapping[str, str]) -> Any:
    """Replace `${NAME}` / `${var:NAME}` / `${NAME:-default}` in strings with --var values.

    `${env:NAME}` is left alone: secrets are resolved only where they are used,
    so they never land in a report.

        >>> substitute_vars("${PROM:-http://127.0.0.1:9090}", {})
        'http://127.0.0.1:9090'
    """
    if isinstance(data, str):
        return _VAR.sub(lambda m: variables.get(m.group(1), m.group(2) if m.group(2) is not None
                                                else m.group(0)), data)
    if isinstance(data, list):
        return [substitute_vars(item, variables) for item in data]
    if isinstance(data, dict):
        return {key: substitute_vars(value, variables) for key, value in data.items()}
    return data
