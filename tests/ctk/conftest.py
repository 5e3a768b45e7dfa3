from __future__ import annotations

import sys
from pathlib import Path

# probe functions for `probe` tolerances and python providers live beside the tests
sys.path.insert(0, str(Path(__file__).parent))
