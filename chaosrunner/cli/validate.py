"""`chaosrunner validate FILE...` and `chaosrunner schema [KIND]`."""

from __future__ import annotations

import argparse
import json
import sys

from chaosrunner.errors import SpecError, Verdict


def command_validate(args: argparse.Namespace) -> int:
    """Validate every file; report all problems, exit 4 if any file is bad."""
    from chaosrunner.spec.loader import parse_vars
    from chaosrunner.spec.validate import load_kind

    variables = parse_vars(getattr(args, "var", None) or [])
    problems: list[str] = []
    results = []
    for path in args.files:
        try:
            kind, _ = load_kind(path, variables)
        except SpecError as exc:
            problems.extend(exc.problems)
            results.append({"file": path, "valid": False, "problems": exc.problems})
            continue
        results.append({"file": path, "valid": True, "kind": kind})
    if args.output == "json":
        print(json.dumps({"valid": not problems, "files": results}, indent=2))
    else:
        for result in results:
            if result["valid"]:
                print(f"ok       {result['file']} ({result['kind']})")
        for problem in problems:
            print(f"invalid  {problem}", file=sys.stderr)
    return Verdict.INVALID.exit_code if problems else 0


def command_schema(args: argparse.Namespace) -> int:
    """Print the JSON Schema of each file kind (for editors' YAML completion)."""
    from chaosrunner.spec.validate import KINDS

    kinds = [args.kind] if args.kind else list(KINDS)
    schemas = {kind: KINDS[kind].model_json_schema(by_alias=True) for kind in kinds}
    print(json.dumps(schemas[kinds[0]] if args.kind else schemas, indent=2))
    return 0
