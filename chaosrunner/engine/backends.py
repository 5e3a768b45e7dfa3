"""What a run reaches the outside world through: its fault drivers and its SLI sources.

`Backends()` is production. Tests build one over their fakes
(`chaosrunner.testing.fakes.fake_backends(world)`) and hand it to `Run`, `run_file` or
`load_runnable`, as they hand a clock: nothing is routed through a module global.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from chaosrunner.drivers.base import DriverRegistry
from chaosrunner.slo.sources.base import SourceRegistry


@dataclass(frozen=True)
class Backends:
    drivers: DriverRegistry = field(default_factory=DriverRegistry)
    sources: SourceRegistry = field(default_factory=SourceRegistry)
