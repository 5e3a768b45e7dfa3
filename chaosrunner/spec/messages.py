"""pydantic's validation errors -> the user's words: what is wrong, where, what to do.

pydantic's own wording ("Input should be a valid tuple", "Input tag 'proces' found using
'type' ...") and its names of union members never reach the user. Where a value may take
several shapes (a union), the errors of the shape the user evidently meant are told, or
one line listing the shapes when none fits. Unknown keys get "did you mean ...?".
"""

from __future__ import annotations

import functools
import re
import types
import typing
from collections.abc import Callable, Sequence
from typing import Any, Union

from pydantic import BaseModel

Error = dict[str, Any]

# Errors that say "the value has the wrong shape altogether" rather than "a part is wrong".
_SHAPE_ERRORS = frozenset({
    "literal_error", "model_type", "model_attributes_type", "dict_type", "tuple_type",
    "list_type", "string_type", "int_type", "int_parsing", "float_type", "float_parsing",
    "bool_type", "bool_parsing", "none_required", "is_instance_of", "value_error",
    "union_tag_invalid", "union_tag_not_found", "int_from_float",
})
_PRIMITIVE_TAGS = {"str": "text", "int": "a whole number", "float": "a number",
                   "bool": "true or false", "none": "", "list": "a list", "dict": "a mapping"}
_TYPE_MESSAGES: dict[str, Callable[[dict[str, Any]], str]] = {
    "missing": lambda c: "required key is missing",
    "model_type": lambda c: "expected a mapping (key: value)",
    "model_attributes_type": lambda c: "expected a mapping (key: value)",
    "dict_type": lambda c: "expected a mapping (key: value)",
    "tuple_type": lambda c: "expected a list ([a, b] or one '- item' per line)",
    "list_type": lambda c: "expected a list ([a, b] or one '- item' per line)",
    "string_type": lambda c: "expected text",
    "int_type": lambda c: "expected a whole number",
    "int_parsing": lambda c: "expected a whole number",
    "int_from_float": lambda c: "expected a whole number",
    "float_type": lambda c: "expected a number",
    "float_parsing": lambda c: "expected a number",
    "finite_number": lambda c: "expected a finite number",
    "bool_type": lambda c: "expected true or false",
    "bool_parsing": lambda c: "expected true or false",
    "greater_than_equal": lambda c: f"must be at least {c.get('ge')}",
    "greater_than": lambda c: f"must be more than {c.get('gt')}",
    "less_than_equal": lambda c: f"must be at most {c.get('le')}",
    "less_than": lambda c: f"must be less than {c.get('lt')}",
    "too_short": lambda c: f"needs at least {c.get('min_length')} item(s)",
    "too_long": lambda c: f"takes at most {c.get('max_length')} item(s)",
    "string_too_short": lambda c: "must not be empty",
    "string_too_long": lambda c: f"must be at most {c.get('max_length')} characters",
    "literal_error": lambda c: f"must be {c.get('expected')}",
    "union_tag_not_found": lambda c: f"needs a {c.get('discriminator')!s} key",
}
_PATTERNS = {
    r"^[A-Za-z0-9_.-]+$": "may contain only letters, digits, '.', '_' and '-'",
    r"^https?://": "must be an http:// or https:// URL",
}


def describe(errors: Sequence[Any], model: type[BaseModel],
             where: Callable[[tuple[str | int, ...]], str]) -> list[str]:
    """One message per problem, `where(key_path)` giving 'file:line: key.path'."""
    tags = union_tags(model)
    chosen = _prune_unions(_without_echoes([dict(e) for e in errors]), tags)
    return [f"{where(_place(e))}: {_message(e, model)}"
            for e in _without_misspelt_missing(chosen, model)]


def _place(error: Error) -> tuple[str | int, ...]:
    # A model validator's PlacedError names the key it is about, below the model's loc.
    cause = (error.get("ctx") or {}).get("error")
    return (*error["loc"], *getattr(cause, "key_path", ()))


def _without_misspelt_missing(errors: list[Error], model: type[BaseModel]) -> list[Error]:
    """`hypotesis:` is one problem, not also "hypothesis is missing"."""
    meant: set[tuple[Any, ...]] = set()
    for error in errors:
        loc = tuple(error["loc"])
        if error["type"] == "extra_forbidden" and loc:
            key = closest(str(loc[-1]), allowed_keys(model, loc[:-1]))
            if key is not None:
                meant.add((*loc[:-1], key))
    return [e for e in errors if not (e["type"] == "missing" and tuple(e["loc"]) in meant)]


def _without_echoes(errors: list[Error]) -> list[Error]:
    # A list whose only item failed is also "too short" for pydantic; say it once.
    def echo(error: Error) -> bool:
        loc = tuple(error["loc"])
        return error["type"] == "too_short" and any(
            len(other["loc"]) > len(loc) and tuple(other["loc"][:len(loc)]) == loc
            for other in errors)
    return [error for error in errors if not echo(error)]


# --- unions --------------------------------------------------------------------------------


_GENERIC_TAG = re.compile(r"^(literal|function-\w+|tuple|list|dict|set|frozenset|nullable|"
                          r"union|tagged-union|json-or-python|lax-or-strict|chain|default|"
                          r"constrained-\w+|definition-ref|is-instance)\[.*\]$", re.S)


def _is_tag(part: Any, tags: frozenset[str]) -> bool:
    return isinstance(part, str) and (part in tags or part in _PRIMITIVE_TAGS
                                      or _GENERIC_TAG.match(part) is not None)


def _prune_unions(errors: list[Error], tags: frozenset[str]) -> list[Error]:
    """Resolve every union in the error locations, outermost first, into the errors of one
    member (the shape the user meant) or one "expected one of" error."""
    while True:
        first = next((e for e in errors if any(_is_tag(p, tags) for p in e["loc"])), None)
        if first is None:
            return errors
        index = next(i for i, p in enumerate(first["loc"]) if _is_tag(p, tags))
        prefix = tuple(first["loc"][:index])

        def in_group(error: Error, prefix: tuple[Any, ...] = prefix, index: int = index) -> bool:
            loc = tuple(error["loc"])
            return loc[:index] == prefix and len(loc) > index and _is_tag(loc[index], tags)

        group = [e for e in errors if in_group(e)]
        rest = [e for e in errors if not in_group(e)]
        errors = rest + _resolve_union(group, index, prefix)


def _resolve_union(group: list[Error], index: int, prefix: tuple[Any, ...]) -> list[Error]:
    members: dict[str, list[Error]] = {}
    for error in group:
        members.setdefault(error["loc"][index], []).append(error)

    def shape_failed(errors: list[Error]) -> bool:
        return all(len(e["loc"]) == index + 1 and e["type"] in _SHAPE_ERRORS
                   and e["type"] not in ("value_error", "union_tag_invalid") for e in errors)

    candidates = [m for m in members if not shape_failed(members[m])]
    if not candidates:
        shapes = [s for s in (_shape_name(m) for m in members) if s]
        return [{"type": "union_shapes", "loc": prefix, "msg": "",
                 "ctx": {"shapes": list(dict.fromkeys(shapes))}}]

    def score(member: str) -> tuple[int, int]:
        errors = members[member]
        vague = sum(e["type"] in ("missing", "extra_forbidden") for e in errors)
        return len(errors), vague

    best = min(candidates, key=score)
    return [{**e, "loc": (*e["loc"][:index], *e["loc"][index + 1:])} for e in members[best]]


def _shape_name(tag: str) -> str:
    literal = re.fullmatch(r"literal\[(.*)\]", tag)
    if literal:
        return " or ".join(part.strip() for part in literal.group(1).split(","))
    model = _MODELS.get(re.sub(r"^function-\w+\[.*?,\s*(\w+)\]$", r"\1", tag))
    if model is not None:
        required = [f.alias or name for name, f in model.model_fields.items() if f.is_required()]
        return "{" + ", ".join(f"{key}: ..." for key in required) + "}" if required \
            else "a mapping"
    if tag.startswith(("tuple[", "list[")):
        return "a list"
    return _PRIMITIVE_TAGS.get(tag, tag)


_MODELS: dict[str, type[BaseModel]] = {}


@functools.cache
def union_tags(model: type[BaseModel]) -> frozenset[str]:
    """Names of the models reachable from `model`: how pydantic names union members."""
    seen: dict[str, type[BaseModel]] = {}
    _collect(model, seen)
    _MODELS.update(seen)
    return frozenset(seen)


def _collect(annotation: Any, seen: dict[str, type[BaseModel]]) -> None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        if annotation.__name__ in seen:
            return
        seen[annotation.__name__] = annotation
        for field in annotation.model_fields.values():
            _collect(field.annotation, seen)
        return
    for argument in typing.get_args(annotation):
        _collect(argument, seen)


# --- one error -----------------------------------------------------------------------------


def _message(error: Error, model: type[BaseModel]) -> str:
    kind, ctx = error["type"], error.get("ctx") or {}
    loc = tuple(error["loc"])
    if kind == "union_shapes":
        return f"expected {', '.join(ctx['shapes'][:-1])} or {ctx['shapes'][-1]}" \
            if len(ctx["shapes"]) > 1 else f"expected {ctx['shapes'][0]}"
    if kind == "extra_forbidden" and loc:
        return "unknown key" + did_you_mean(str(loc[-1]), allowed_keys(model, loc[:-1])) + \
            "; remove it or check the spelling against `chaosrunner schema`"
    if kind == "union_tag_invalid":
        expected = re.findall(r"'([^']*)'", str(ctx.get("expected_tags", "")))
        tag = str(ctx.get("tag"))
        key = str(ctx.get("discriminator", "type")).strip("'")
        return (f"unknown {key} {tag!r}; expected one of "
                f"{', '.join(expected)}" + did_you_mean(tag, expected))
    if kind == "literal_error" and loc and loc[-1] == "apiVersion":
        return "must be chaosrunner/v1"
    if kind == "literal_error" and isinstance(error.get("input"), str):
        choices = re.findall(r"'([^']*)'", str(ctx.get("expected", "")))
        return f"must be {ctx.get('expected')}" + did_you_mean(error["input"], choices)
    if kind == "string_pattern_mismatch":
        pattern = str(ctx.get("pattern"))
        return _PATTERNS.get(pattern, f"does not have the expected form ({pattern})")
    if kind in _TYPE_MESSAGES:
        return _TYPE_MESSAGES[kind](ctx)
    message = str(error["msg"])
    for prefix in ("Value error, ", "Assertion failed, "):
        message = message.removeprefix(prefix)
    return message.replace("Input should be", "expected")


def closest(word: str, choices: typing.Iterable[str]) -> str | None:
    """The choice `word` is probably a misspelling of, or None."""
    import difflib  # only a problem needs it: kept off the cold start of a valid `validate`

    close = difflib.get_close_matches(word, sorted(set(choices)), n=1, cutoff=0.6)
    return close[0] if close else None


def did_you_mean(word: str, choices: typing.Iterable[str]) -> str:
    """' (did you mean 'x'?)' for the closest choice, or ''."""
    meant = closest(word, choices)
    return f" (did you mean {meant!r}?)" if meant is not None else ""


def allowed_keys(model: type[BaseModel], key_path: tuple[Any, ...]) -> set[str]:
    """The keys a mapping at `key_path` may have (all shapes of a union together)."""
    current: list[Any] = [model]
    for part in key_path:
        current = [t for a in current for t in _step(a, part)]
    return {f.alias or name for m in (x for a in current for x in _flatten(a))
            if isinstance(m, type) and issubclass(m, BaseModel)
            for name, f in m.model_fields.items()}


def _step(annotation: Any, part: Any) -> list[Any]:
    options = _flatten(annotation)
    found: list[Any] = []
    for option in options:
        origin = typing.get_origin(option)
        if isinstance(option, type) and issubclass(option, BaseModel) and isinstance(part, str):
            field = next((f for n, f in option.model_fields.items()
                          if part in (n, f.alias)), None)
            if field is not None:
                found.append(field.annotation)
        elif origin in (tuple, list) and isinstance(part, int):
            found.extend(a for a in typing.get_args(option) if a is not Ellipsis)
        elif origin is dict:
            found.append(typing.get_args(option)[-1])
    return found


def _flatten(annotation: Any) -> list[Any]:
    origin = typing.get_origin(annotation)
    if origin in (Union, types.UnionType):
        return [x for arg in typing.get_args(annotation) for x in _flatten(arg)]
    if origin is typing.Annotated:
        return _flatten(typing.get_args(annotation)[0])
    return [annotation]
