"""The canary state machine: pure functions from observations, spec and time to the next status and actions."""
