"""The --config file (kind: Config) is a file users write: `validate` checks it like the
others, and `schema` describes it."""

from __future__ import annotations

from pathlib import Path

import pytest

from chaosrunner.cli.main import main

CONFIG = """\
apiVersion: chaosrunner/v1
kind: Config
notify:
  - url: "json://127.0.0.1:9/hook"
pushgateway: http://127.0.0.1:9091
"""


def test_validate_accepts_a_config_file(tmp_path: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(CONFIG)
    assert main(["validate", str(path)]) == 0
    assert "(Config)" in capsys.readouterr().out


def test_a_typo_in_a_config_file_is_exit_4_at_its_line(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(CONFIG.replace("pushgateway:", "pushgatway:"))
    assert main(["validate", str(path)]) == 4
    out = capsys.readouterr()
    assert f"{path}:5: pushgatway" in out.out + out.err


def test_a_config_file_is_not_runnable(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(CONFIG)
    assert main(["run", str(path)]) == 4


def test_validate_knows_a_config_file_without_kind_as_run_reads_it(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "config.yaml"
    path.write_text("notify:\n  - url: \"json://127.0.0.1:9/hook\"\npushgateway: http://x:9\n")
    assert main(["validate", str(path)]) == 0
    assert "(Config)" in capsys.readouterr().out
    path.write_text("notify: 5\n")
    assert main(["validate", str(path)]) == 4
    assert f"{path}:1: notify: expected a list" in capsys.readouterr().err
    path.write_text("name: x\nnotify: []\n")  # not only Config keys: the kind is missing
    assert main(["validate", str(path)]) == 4
    assert "unknown kind None" in capsys.readouterr().err
