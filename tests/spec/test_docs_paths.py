"""Issue 12.15: docs/*.md and README.md cite no file that is not in the repository.

Every Markdown link target and every backticked path (`dir/file.ext`, `dir/`) must exist,
relative to the document, to the repository root, or to the package (`report/severity.py`
is chaosrunner/report/severity.py). Paths that runs and users create are listed below.
"""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DOCS = [*sorted((REPO / "docs").glob("*.md")), REPO / "README.md"]
PATHLIKE = re.compile(r"^\.?[\w-]+(?:/[\w.-]+)*(?:/|\.(?:py|ya?ml|md|json|toml|txt|cfg|sh|"
                      r"ini|html|jsonl|xml|sql|csv))$")
# Made at run time or by the user, never shipped: the state directory and its parts, a
# game day's report directory, the CI workflow a user writes from docs/ci.md.
CREATED = {".chaosrunner/", "active/", "02-instance-failure/",
           ".github/workflows/chaos-staging.yml"}


def cited(text: str) -> set[str]:
    links = {target.split("#")[0] for target in re.findall(r"\]\(([^)\s]+)\)", text)}
    links = {t for t in links if t and not re.match(r"^[a-z][a-z0-9+.-]*:", t)}
    code = {t for t in re.findall(r"`([^`\s]+)`", text) if "/" in t and PATHLIKE.match(t)}
    return links | code


def missing(doc: Path) -> list[str]:
    return sorted(path for path in cited(doc.read_text()) - CREATED
                  if not any(base.joinpath(path).exists()
                             for base in (doc.parent, REPO, REPO / "chaosrunner")))


def test_every_cited_path_exists() -> None:
    assert DOCS
    problems = {doc.relative_to(REPO).as_posix(): missing(doc) for doc in DOCS}
    assert {doc: paths for doc, paths in problems.items() if paths} == {}


def test_the_check_finds_a_missing_file(tmp_path: Path) -> None:
    doc = tmp_path / "x.md"
    doc.write_text("See [the seed](seed/nope.txt) and `chaosrunner/report/nope.py`, "
                   "not `https://example.com/a.yaml` or `p99 < 2s`.\n")
    assert missing(doc) == ["chaosrunner/report/nope.py", "seed/nope.txt"]
