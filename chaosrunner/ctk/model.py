"""The Chaos Toolkit experiment format (JSON or YAML), as typed frozen models.

Only what chaosrunner runs is modelled; keys the Chaos Toolkit itself ignores or that
chaosrunner does not use (`contributions`, `extensions`, `controls`) are accepted and left
aside, so an existing experiment file loads unchanged.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator


class CtkModel(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore", populate_by_name=True)


class PythonProvider(CtkModel):
    type: Literal["python"]
    module: str = Field(min_length=1)
    func: str = Field(min_length=1)
    arguments: dict[str, Any] = Field(default_factory=dict)
    secrets: tuple[str, ...] = ()

    @field_validator("secrets", mode="before")
    @classmethod
    def _scopes(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value


class ProcessProvider(CtkModel):
    type: Literal["process"]
    path: str = Field(min_length=1)
    arguments: str | tuple[str, ...] = ""
    timeout: float | None = Field(default=None, gt=0)


class HttpProvider(CtkModel):
    type: Literal["http"]
    url: str = Field(min_length=1)
    method: str = "GET"
    headers: dict[str, str] = Field(default_factory=dict)
    arguments: dict[str, Any] | str | None = None
    timeout: float | tuple[float, float] | None = None
    verify_tls: bool = True
    expected_status: int | None = None


Provider = Annotated[PythonProvider | ProcessProvider | HttpProvider,
                     Field(discriminator="type")]


class Pauses(CtkModel):
    before: float = Field(default=0.0, ge=0)
    after: float = Field(default=0.0, ge=0)


class Activity(CtkModel):
    type: Literal["probe", "action"]
    name: str = Field(min_length=1)
    provider: Provider
    tolerance: Any = None
    pauses: Pauses = Field(default_factory=Pauses)
    background: bool = False


class Ref(CtkModel):
    ref: str


class Hypothesis(CtkModel):
    title: str = ""
    probes: tuple[Activity | Ref, ...] = ()


Strategy = Literal["default", "before-method-only", "after-method-only",
                   "during-method-only", "continuously"]


class HypothesisRuntime(CtkModel):
    strategy: Strategy = "default"
    frequency: float = Field(default=1.0, gt=0)
    fail_fast: bool = False


class Runtime(CtkModel):
    hypothesis: HypothesisRuntime = Field(default_factory=HypothesisRuntime)


class CtkExperiment(CtkModel):
    version: str | None = None
    title: str = Field(min_length=1)
    description: str = ""
    tags: tuple[str, ...] = ()
    configuration: dict[str, Any] = Field(default_factory=dict)
    secrets: dict[str, dict[str, Any]] = Field(default_factory=dict)
    steady_state_hypothesis: Hypothesis | None = Field(default=None,
                                                       alias="steady-state-hypothesis")
    method: tuple[Activity | Ref, ...] = Field(min_length=1)
    rollbacks: tuple[Activity | Ref, ...] = ()
    runtime: Runtime = Field(default_factory=Runtime)
