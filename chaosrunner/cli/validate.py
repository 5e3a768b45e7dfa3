"""`chaosrunner validate FILE...` and `chaosrunner schema [KIND]`."""

from __future__ import annotations

import argparse
import json
import sys

from chaosrunner.app.load import check_notify, load_kind
from chaosrunner.errors import InvalidInput, SpecError, Verdict
from chaosrunner.spec.loader import load_document, parse_vars
from chaosrunner.spec.models import SteadyState
from chaosrunner.spec.validate import KINDS


def command_validate(args: argparse.Namespace) -> int:
    """Validate every file; report all problems, exit 4 if any file is bad."""
    variables = parse_vars(getattr(args, "var", None) or [])
    problems: list[str] = []
    results = []
    for path in args.files:
        try:
            kind, model = load_kind(path, variables)
        except SpecError as exc:
            problems.extend(exc.problems)
            results.append({"file": path, "valid": False, "problems": exc.problems})
            continue
        results.append({"file": path, "valid": True, "kind": kind, "notes": _notes(model)})
    if getattr(args, "config", None):  # what `run` would refuse, `validate` refuses
        config_problems = _config_problems(args.config)
        problems.extend(config_problems)
        results.append({"file": args.config, "valid": not config_problems, "kind": "Config",
                        "notes": [], **({"problems": config_problems} if config_problems else {})})
    if args.output == "json":
        print(json.dumps({"valid": not problems, "files": results}, indent=2))
    else:
        for result in results:
            if result["valid"]:
                print(f"ok       {result['file']} ({result['kind']})")
                for note in result["notes"]:
                    print(f"note     {result['file']}: {note}")
        for problem in problems:
            print(f"invalid  {problem}", file=sys.stderr)
    return Verdict.INVALID.exit_code if problems else 0


def _config_problems(path: str) -> list[str]:
    """The --config file as `run` reads it (its kind: Config is optional)."""
    # Imported here: the observe settings load only when a config file is given.
    from chaosrunner.observe.settings import load_config

    try:
        config, _ = load_config(path)
    except SpecError as exc:
        return list(exc.problems)
    except InvalidInput as exc:
        return [str(exc)]
    return check_notify(load_document(path), config.notify)


def _notes(model: object) -> list[str]:
    """What a valid file should know: SLI strings whose budget figures are approximations."""
    if not isinstance(model, SteadyState):
        return []
    # Imported here: promql-parser is needed for steady-state files only.
    from chaosrunner.slo.promql import budget_method

    notes = []
    for name, slo in model.service_level_objectives.items():
        method = budget_method(slo)
        if method is not None:
            notes.append(f"SLO {name}: {method}")
    return notes


def command_schema(args: argparse.Namespace) -> int:
    """Print the JSON Schema of each file kind (for editors' YAML completion)."""
    kinds = [args.kind] if args.kind else list(KINDS)
    schemas = {kind: KINDS[kind].model_json_schema(by_alias=True) for kind in kinds}
    print(json.dumps(schemas[kinds[0]] if args.kind else schemas, indent=2))
    return 0
