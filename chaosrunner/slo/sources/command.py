"""`sli: {command: {run: [...], timeout: 5s}}`: a program prints the SLI (needs --allow-exec).

The last number on the program's stdout is the reading. A program that fails, times out
or prints no number gives "no data" with the reason, never a made-up value.
"""

from __future__ import annotations

import asyncio
import contextlib
import re

from chaosrunner.errors import SourceError
from chaosrunner.slo.sources.base import BaseSource, Reading

NUMBER = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")


class CommandSource(BaseSource):
    async def read(self, interval: float) -> Reading:
        spec = self.slo.sli.command
        assert spec is not None
        if not self.context.allow_exec:
            raise SourceError(f"SLI {self.name!r} runs a program; pass --allow-exec")
        try:
            process = await asyncio.create_subprocess_exec(
                *spec.run, cwd=self.context.base_dir, stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        except OSError as exc:
            return Reading(value=None, note=f"cannot run {spec.run[0]!r}: {exc.strerror}")
        try:
            out, err = await asyncio.wait_for(process.communicate(), spec.timeout)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            await process.wait()
            return Reading(value=None, note=f"{spec.run[0]} timed out after {spec.timeout}s")
        return parse_output(spec.run[0], process.returncode or 0, out.decode(errors="replace"),
                            err.decode(errors="replace"))


def parse_output(program: str, code: int, out: str, err: str) -> Reading:
    """The last number printed, or no data with why."""
    if code != 0:
        tail = (err.strip().splitlines() or ["no stderr"])[-1][:200]
        return Reading(value=None, note=f"{program} exited {code}: {tail}")
    numbers = NUMBER.findall(out)
    if not numbers:
        return Reading(value=None, note=f"{program} printed no number")
    return Reading(value=float(numbers[-1]))
