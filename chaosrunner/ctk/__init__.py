"""Chaos Toolkit compatibility: read CTK experiments and run them with chaosrunner's guarantees.

    model.py       the CTK experiment format as typed, frozen models
    tolerance.py   probe tolerances (exact, range, regex, jsonpath, probe), by type
    activities.py  running CTK activities (python, process, http providers), with timeouts
    convert.py     CTK experiment -> native Experiment + SteadyState (docs/chaostoolkit.md)
"""
