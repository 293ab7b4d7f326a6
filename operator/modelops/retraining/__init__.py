"""The retraining loop's pure core: signals and guardrails in, a decision (Job, Events, status) out.

The controller fills `RetrainObserved` (modelops.retraining.observed), calls
`next_retraining(spec, status, observed, now)` (modelops.retraining.machine) and carries out the
returned actions; `desired_model(spec, status)` tells it which model the pods should run. No I/O.
"""
