"""chaosrunner: declarative chaos experiments with SLO guards and rollback that always happens."""

__version__ = "0.1.0"
