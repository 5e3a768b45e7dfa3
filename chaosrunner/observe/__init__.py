"""Runs people can see: notifications (apprise), Grafana annotations, OpenTelemetry traces,
the runner's own Prometheus metrics, and firing alerts as stop conditions.

One module per integration, each an observer of the run's events (`base.Observer`) built
for a run by `settings.build`; the alert stop condition is a `StopCondition` the engine
polls. docs/observability.md is the user's guide.
"""
