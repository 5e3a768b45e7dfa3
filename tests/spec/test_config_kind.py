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
