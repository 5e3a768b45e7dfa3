"""`chaosrunner convert FILE [-o OUT]`: a Chaos Toolkit experiment as native files.

With `-o exp.yaml` the experiment goes to `exp.yaml` and its steady state beside it, to
`exp.steady-state.yaml`; without, both go to stdout as two YAML documents (save the
second under the name the first refers to).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import yaml

from chaosrunner.ctk.convert import convert_document
from chaosrunner.errors import InvalidInput
from chaosrunner.spec.loader import load_document
from chaosrunner.spec.validate import is_chaostoolkit


def command(args: argparse.Namespace) -> int:
    """Convert one Chaos Toolkit experiment file; returns 0, or raises InvalidInput."""
    source = Path(args.file)
    document = load_document(source)
    if not is_chaostoolkit(document.data):
        raise InvalidInput(f"{source}: not a Chaos Toolkit experiment (no `method`, or it has "
                           "a chaosrunner apiVersion); nothing to convert")
    out = Path(args.out) if args.out else None
    steady_name = (f"{out.stem}.steady-state.yaml" if out is not None
                   else f"{source.stem}.steady-state.yaml")
    experiment, steady_state = convert_document(source, document, {}, steady_name)
    header = f"# converted from the Chaos Toolkit experiment {source.name} by chaosrunner\n"
    if out is None:
        sys.stdout.write(header + dump(experiment) + f"---\n# save as {steady_name}\n"
                         + dump(steady_state))
        return 0
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(header + dump(experiment), encoding="utf-8")
    (out.parent / steady_name).write_text(header + dump(steady_state), encoding="utf-8")
    print(f"wrote {out} and {out.parent / steady_name}", file=sys.stderr)
    return 0


class _Dumper(yaml.SafeDumper):
    def ignore_aliases(self, data: object) -> bool:
        return True  # repeated configuration is written out in full, no &anchors


def dump(data: object) -> str:
    return yaml.dump(data, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=100)
