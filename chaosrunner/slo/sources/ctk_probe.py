"""A Chaos Toolkit probe as an SLI: run every interval, 1.0 when its tolerance holds, else 0.

This is how a Chaos Toolkit steady-state hypothesis is checked by chaosrunner: each probe
becomes a threshold SLO `>= 1` over this source (see docs/chaostoolkit.md). A probe that
cannot run at all (its function raises, its program cannot start, the HTTP request fails)
reads 0 with the reason as the note, as the Chaos Toolkit counts it as not met.
"""

from __future__ import annotations

import asyncio

from chaosrunner.errors import ChaosRunnerError, ExecNotAllowed
from chaosrunner.slo.sources.base import BaseSource, Reading


class CtkProbeSource(BaseSource):
    async def start(self) -> None:
        # Imported here: the Chaos Toolkit layer loads only for ctk_probe SLIs.
        from chaosrunner.ctk.activities import parse_activity

        spec = self.slo.sli.ctk_probe
        assert spec is not None
        self.activity = parse_activity(spec.probe)
        if self.activity.provider.type in ("python", "process") and not self.context.allow_exec:
            raise ExecNotAllowed(f"SLO {self.name!r} runs a Chaos Toolkit "
                                 f"{self.activity.provider.type} probe; pass --allow-exec")

    async def read(self, interval: float) -> Reading:
        return await asyncio.to_thread(self.check)

    def check(self) -> Reading:
        """Run the probe once and judge its value by its tolerance."""
        # Imported here: the Chaos Toolkit layer loads only for ctk_probe SLIs.
        from chaosrunner.ctk.activities import run_activity
        from chaosrunner.ctk.tolerance import ToleranceContext, within_tolerance
        from chaosrunner.drivers.python import resolve_values

        spec = self.slo.sli.ctk_probe
        assert spec is not None
        try:
            value = run_activity(spec.probe, spec.configuration, spec.secrets, spec.timeout)
            context = ToleranceContext(resolve_values(spec.configuration),
                                       resolve_values(spec.secrets), spec.timeout)
            held = within_tolerance(spec.probe.get("tolerance"), value, context)
        except ChaosRunnerError as exc:
            return Reading(value=0.0, note=f"probe failed: {exc}")
        return Reading(value=1.0 if held else 0.0,
                       note=None if held else f"tolerance not met by {_short(value)}")


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 120 else text[:117] + "..."
