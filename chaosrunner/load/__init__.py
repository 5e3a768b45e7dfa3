"""Load: the `load.http` fault's settings and Locust child process, the breaking-point
search, and the capacity planner.

Locust (and its gevent) is imported only in `chaosrunner.load.child`, which runs in a
child process: it never meets the runner's asyncio, and the CLI's cold start never pays
for it.
"""
