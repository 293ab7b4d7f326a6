"""Command-line entry points: `modelops` and `kubectl-modelops`."""
