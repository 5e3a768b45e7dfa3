"""The application layer under the CLI: loading any file (`load`) and running one
(`run`); the CLI, the demo and game days use it."""
