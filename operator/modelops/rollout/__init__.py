"""The canary state machine: pure functions from observations, spec and time to the next status and actions.

The controller's whole contract with this package: build an `Observed`, call `next_state`, write
`Decision.status` (with the resourceVersion read), then carry out `Decision.actions` in order, and
tick again after `Decision.requeue_after`. Every ensure/delete/route action follows from the new
status and the cluster alone, so actions lost between the write and the acting are issued again by
the next tick; Events are emitted only by the tick that makes the transition (never twice).
"""

from modelops.api.commands import Command
from modelops.api.events import EmitEvent
from modelops.rollout.actions import Decision, DeleteDeployment, EnsureDeployment, SetRouting
from modelops.rollout.analysis_runs import analysis_due, next_analysis_at
from modelops.rollout.commands import parse_commands
from modelops.rollout.machine import next_state
from modelops.rollout.observed import DeploymentObservation, DesiredRevision, Measurement, Observed

__all__ = [
    "Command",
    "Decision",
    "DeleteDeployment",
    "DeploymentObservation",
    "DesiredRevision",
    "EmitEvent",
    "EnsureDeployment",
    "Measurement",
    "Observed",
    "SetRouting",
    "analysis_due",
    "next_analysis_at",
    "next_state",
    "parse_commands",
]
