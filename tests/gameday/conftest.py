"""Fixtures for these tests live in gameday_support.py, importable by the test modules
(a module named `conftest` is ambiguous when several test folders have one)."""

from gameday_support import *  # noqa: F403
