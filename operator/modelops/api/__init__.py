"""The ModelDeployment API: pydantic models of spec and status, the single source of truth for the CRD,
and the words every room shares.

Models: `spec` (the model, serving, monitoring; the root `ModelDeploymentSpec`), `rollout_spec`,
`retraining_spec`, `compute` (pod resources), `status`, `kind` (group, version, names, the object);
their bases in `base`, patterns and cross-field rules (CEL and pydantic from one declaration) in
`validation`. Shared words: `durations`, `timefmt`, `conditions`, `commands`, `events`. This package
imports no other room of modelops (.importlinter).
"""
