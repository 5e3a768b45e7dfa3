"""`chaosrunner load-worker`: Locust (and gevent's monkey-patching) only in the worker."""

from __future__ import annotations

import subprocess
import sys


def test_a_bad_master_is_refused_without_importing_locust() -> None:
    # Importing Locust monkey-patches the whole process for gevent (chaosrunner.load.child):
    # only a worker that is about to run may do it, not the command module's import.
    script = ("import sys; from chaosrunner.cli.main import main; "
              "code = main(['load-worker', '--master', 'no-port']); "
              "print(code, 'locust' in sys.modules, 'gevent' in sys.modules, file=sys.stderr)")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=120, check=False)
    assert "--master" in done.stderr, done.stderr
    assert done.stderr.strip().splitlines()[-1] == "4 False False", done.stderr
