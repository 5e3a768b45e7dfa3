"""`chaosrunner schema` describes the files users write (issue 12.10): every shipped file
and every example in the docs validates against it with the `jsonschema` library."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from chaosrunner.cli.main import main
from chaosrunner.spec.loader import load_document

REPO = Path(__file__).resolve().parents[2]
SHARED_DESIGN = Path("/work/shared/DESIGN.md")
SHIPPED = sorted(p for d in ("experiments", "steady-states", "gamedays")
                 for p in (REPO / d).glob("*.yaml"))
DOCS = sorted([*(REPO / "docs").glob("*.md"), REPO / "README.md",
               *([SHARED_DESIGN] if SHARED_DESIGN.exists() else [])])


@pytest.fixture(scope="module")
def schemas() -> dict[str, Any]:
    capture = _Capture()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("sys.stdout", capture)
        assert main(["schema"]) == 0
    return dict(json.loads(capture.text))


class _Capture:
    def __init__(self) -> None:
        self.text = ""

    def write(self, text: str) -> int:
        self.text += text
        return len(text)

    def flush(self) -> None:
        pass


def _errors(schemas: dict[str, Any], data: Any) -> list[str]:
    validator = jsonschema.Draft202012Validator(schemas[data["kind"]])
    return [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(data)]


def doc_examples() -> list[tuple[str, Any]]:
    found = []
    for doc in DOCS:
        for i, block in enumerate(re.findall(r"```ya?ml\n(.*?)```", doc.read_text(), re.S)):
            data = yaml.safe_load(block)
            if isinstance(data, dict) and data.get("apiVersion") == "chaosrunner/v1":
                found.append((f"{doc.name}#{i}", data))
    return found


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: str(p.relative_to(REPO)))
def test_shipped_file_validates_against_the_schema(path: Path, schemas: dict[str, Any]) -> None:
    assert _errors(schemas, load_document(path).data) == []


@pytest.mark.parametrize(("name", "data"), doc_examples(), ids=lambda x: x if isinstance(x, str)
                         else "")
def test_doc_example_validates_against_the_schema(name: str, data: Any,
                                                  schemas: dict[str, Any]) -> None:
    assert _errors(schemas, data) == []


def test_there_are_examples_to_check() -> None:
    kinds = {data["kind"] for _, data in doc_examples()}
    assert {"SteadyState", "Experiment", "GameDay"} <= kinds
    assert len(SHIPPED) >= 8


@pytest.mark.parametrize(("key", "value"), [
    ("duration", "10"), ("duration", 10), ("duration", "ten seconds"), ("duration", "-5s"),
])
def test_what_validate_refuses_the_schema_refuses_too(key: str, value: Any,
                                                      schemas: dict[str, Any]) -> None:
    data = load_document(REPO / "experiments/network-latency.yaml").data
    assert _errors(schemas, {**data, key: value})


def test_units_are_strings_with_patterns(schemas: dict[str, Any]) -> None:
    steady = schemas["SteadyState"]["$defs"]
    rate = steady["HttpProbe"]["properties"]["rate"]
    assert any(option.get("type") == "string" and "pattern" in option
               for option in rate["anyOf"])
    probe = {"url": "http://127.0.0.1/", "rate": "abc"}
    validator = jsonschema.Draft202012Validator({**steady["HttpProbe"], "$defs": steady})
    assert not validator.is_valid(probe)
    assert validator.is_valid({**probe, "rate": "20/s", "timeout": "1s", "expect": 200})
