"""The python driver runs the shared driver contract: a call sets a flag file, its revert
clears it."""

from __future__ import annotations

from pathlib import Path

import pytest

from chaosrunner.drivers.base import DriverContext
from chaosrunner.drivers.python import PythonDriver
from chaosrunner.testing.contract import ContractCase, DriverContract

MODULE = '''
from pathlib import Path


def down(flag):
    Path(flag).write_text("down")


def up(flag):
    Path(flag).unlink(missing_ok=True)
'''


class TestPythonDriverContract(DriverContract):
    @pytest.fixture
    def case(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> ContractCase:
        (tmp_path / "contract_flag.py").write_text(MODULE)
        monkeypatch.syspath_prepend(str(tmp_path))
        flag = tmp_path / "flag"
        params = {"call": "contract_flag.down", "args": {"flag": str(flag)},
                  "revert": {"call": "contract_flag.up", "args": {"flag": str(flag)}}}
        return ContractCase(driver=PythonDriver(DriverContext(allow_exec=True)),
                            action="python", target={}, params=params,
                            faulted=lambda instance: flag.exists())
