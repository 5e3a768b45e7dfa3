"""YAML (or JSON) text -> plain mapping, with the line of every key path.

Only YAML's safe subset is read (`yaml.compose` with the SafeLoader), files are
size-limited and alias expansion is bounded, so a "billion laughs" file is an
error instead of an out-of-memory.
"""

from __future__ import annotations

import math
import os
import re
import stat as stat_module
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from chaosrunner.errors import InvalidInput, SpecError

MAX_FILE_BYTES = 1 << 20
MAX_NODES = 100_000
MAX_DEPTH = 64
# Larger numbers are no duration, count or rate anyone means, and floats of that size
# overflow the clock arithmetic of a run.
MAX_NUMBER = 10**15

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

    def where_items(self, key_path: KeyPath, count: int,
                    within: KeyPath = ()) -> tuple[str, ...]:
        """`where` of each of a list's first `count` items (or of `within` each item)."""
        return tuple(self.where((*key_path, i, *within)) for i in range(count))


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

    Only regular files are read (a device, FIFO or directory is refused before any
    read), and never more than MAX_FILE_BYTES. Parsed files are kept by (path, mtime,
    size): validating several experiments that share a steady state, or a game day and
    its experiments, reads each file once.
    """
    file_path = Path(path)
    try:
        stat = file_path.stat()
        _check_regular(file_path, stat.st_mode)
        cache_key = (str(file_path.resolve()), stat.st_mtime_ns, stat.st_size)
        if cache_key in _documents:
            return _documents[cache_key]
        raw = _read_bounded(file_path)
    except FileNotFoundError:
        raise SpecError([f"{file_path}: no such file; check the path"]) from None
    except PermissionError:
        raise SpecError([f"{file_path}: permission denied; make the file readable"]) from None
    except OSError as exc:
        raise SpecError([f"{file_path}: cannot read: {exc.strerror or exc}"]) from None
    document = _documents[cache_key] = parse_text(_decode(raw, file_path), file_path)
    return document


def _check_regular(path: Path, mode: int) -> None:
    if stat_module.S_ISREG(mode):
        return
    what = ("a directory" if stat_module.S_ISDIR(mode) else
            "a FIFO (named pipe)" if stat_module.S_ISFIFO(mode) else
            "a device" if stat_module.S_ISCHR(mode) or stat_module.S_ISBLK(mode) else
            "a socket" if stat_module.S_ISSOCK(mode) else "not a regular file")
    raise SpecError([f"{path}: is {what}; expected a YAML or JSON file"])


def _read_bounded(path: Path) -> bytes:
    # O_NONBLOCK: a FIFO swapped in after the stat must not hang the open.
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOCTTY", 0))
    with os.fdopen(fd, "rb") as handle:
        _check_regular(path, os.fstat(fd).st_mode)
        raw = handle.read(MAX_FILE_BYTES + 1)
    if len(raw) > MAX_FILE_BYTES:
        raise SpecError([f"{path}: file is larger than {MAX_FILE_BYTES} bytes, the limit"])
    return raw


def _decode(raw: bytes, path: Path) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[:exc.start].count(b"\n") + 1
        raise SpecError([f"{path}:{line}: not UTF-8 text (byte 0x{raw[exc.start]:02x}, "
                         f"{exc.reason}); save the file as UTF-8"]) from None


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
    except yaml.reader.ReaderError as exc:
        line_number = text[:exc.position].count("\n") + 1
        raise SpecError([f"{path}:{line_number}: not valid YAML: character {_char(exc.character)} "
                         "(control characters are not allowed; remove it)"]) from None
    except yaml.YAMLError as exc:
        raise SpecError([f"{path}: not valid YAML: {exc}"]) from None
    except RecursionError:
        raise SpecError([f"{path}: nested too deeply (more than {MAX_DEPTH} levels)"]) from None
    if node is None:
        raise SpecError([f"{path}:1: the file is empty (or only comments); write a chaosrunner "
                         "file with apiVersion and kind"])
    builder = _Builder(path)
    data = builder.build(node, ())
    return Document(path=path, data=data, lines=builder.lines)


class _Builder:
    """Turns a composed node graph into Python values, recording lines, bounding size."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.lines: dict[KeyPath, int] = {}
        self.count = 0
        self.key_line = 1  # the key whose value is being built: where an alias bomb goes off
        self._constructor = yaml.SafeLoader("")

    def build(self, node: yaml.Node, key_path: KeyPath) -> Any:
        self.count += 1
        line = node.start_mark.line + 1
        if self.count > MAX_NODES:
            raise SpecError([f"{self.path}:{self.key_line}: more than {MAX_NODES} values (an alias "
                             "bomb?); write the values out instead of repeating aliases"])
        if len(key_path) > MAX_DEPTH:
            raise SpecError([f"{self.path}:{line}: nested more than {MAX_DEPTH} levels deep"])
        self.lines.setdefault(key_path, line)
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
            self.key_line = self.lines[(*key_path, key)] = key_node.start_mark.line + 1
            result[key] = self.build(value_node, (*key_path, key))
        return result

    def _scalar(self, node: yaml.Node) -> Any:
        if not isinstance(node, yaml.ScalarNode):
            raise SpecError([f"{self.path}:{node.start_mark.line + 1}: keys must be scalars"])
        try:
            value = self._constructor.construct_object(node, deep=True)
        except Exception as exc:  # noqa: BLE001 - PyYAML raises anything on bad scalars
            raise SpecError([f"{self.path}:{node.start_mark.line + 1}: cannot read "
                             f"{_shown(node)} as {_tag_name(node.tag)}{_reason(node, exc)}; "
                             "quote it if you mean text"]) from None
        return self._checked_number(node, value)

    def _checked_number(self, node: yaml.Node, value: Any) -> Any:
        if isinstance(value, bool) or not isinstance(value, int | float):
            return value
        if isinstance(value, float) and not math.isfinite(value):
            raise SpecError([f"{self.path}:{node.start_mark.line + 1}: {node.value!r} is not "
                             "a finite number"])
        if abs(value) > MAX_NUMBER:
            raise SpecError([f"{self.path}:{node.start_mark.line + 1}: number "
                             f"{_shown(node)} is too large (the limit is {MAX_NUMBER:.0e})"])
        return value


def _char(character: Any) -> str:
    code = character if isinstance(character, int) else ord(str(character)[:1] or "?")
    return f"U+{code:04X}"


def _shown(node: yaml.Node) -> str:
    text = str(node.value)
    return repr(text if len(text) <= 40 else text[:37] + "...")


def _tag_name(tag: str) -> str:
    return {"int": "an integer", "float": "a number", "bool": "true/false",
            "timestamp": "a date", "null": "null", "binary": "base64 data",
            }.get(tag.rsplit(":", 1)[-1], f"a {tag}")


def _reason(node: yaml.Node, exc: Exception) -> str:
    # datetime's own words ("month must be in 1..12") help; int()'s and float()'s do not.
    if node.tag.endswith(":timestamp") and type(exc) is ValueError:
        return f" ({exc})"
    return ""


_VAR = re.compile(r"\$\{(?:var:)?([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def substitute_vars(data: Any, variables: Mapping[str, str]) -> Any:
    """Replace `${NAME}` / `${var:NAME}` / `${NAME:-default}` in strings with --var values.

    `${env:NAME}` is left alone: secrets are resolved only where they are used,
    so they never land in a report. A name with neither a value nor a default is left
    as written (`resolve_vars` refuses it).

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


def resolve_vars(document: Document, variables: Mapping[str, str]) -> Any:
    """`document.data` with every `${NAME}` substituted; an unset name without a default
    is an invalid file (a URL with a literal `${PORT}` in it only fails minutes later)."""
    problems = [f"{document.where(key_path)}: variable ${{{name}}} has no value; pass "
                f"--var {name}=VALUE or write ${{{name}:-DEFAULT}}"
                for key_path, name in unset_vars(document.data, variables)]
    if problems:
        raise SpecError(problems)
    return substitute_vars(document.data, variables)


def unset_vars(data: Any, variables: Mapping[str, str],
               key_path: KeyPath = ()) -> list[tuple[KeyPath, str]]:
    """(key path, name) of every `${NAME}` that has neither a --var value nor a default.

    Chaos Toolkit activities (python actions, ctk_probe SLIs) carry their own
    `configuration`; the names it defines are resolved by Chaos Toolkit in that subtree.
    """
    if isinstance(data, str):
        return [(key_path, m.group(1)) for m in _VAR.finditer(data)
                if m.group(1) not in variables and m.group(2) is None]
    if isinstance(data, dict) and isinstance(data.get("configuration"), dict):
        variables = {**dict.fromkeys(map(str, data["configuration"]), ""), **variables}
    items: Any = (enumerate(data) if isinstance(data, list) else
                  data.items() if isinstance(data, dict) else ())
    return [found for key, value in items
            for found in unset_vars(value, variables, (*key_path, key))]


def parse_vars(pairs: list[str]) -> dict[str, str]:
    """`--var K=V` options -> {K: V}."""
    variables: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise InvalidInput(f"--var {pair!r}: expected K=V")
        variables[key] = value
    return variables
