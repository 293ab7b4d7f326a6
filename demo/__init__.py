"""The demo (`make demo`, `python -m demo`) and the scenario helpers it shares with the e2e tests and
the benchmarks: train the iris models, write a ModelDeployment, apply it, wait on its status."""
