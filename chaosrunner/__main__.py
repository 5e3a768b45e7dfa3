from chaosrunner.cli.main import entrypoint

entrypoint()
