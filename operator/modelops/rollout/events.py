"""The rollout's Event reasons (CamelCase, stable: alerts and tools match on them; docs/events.md
lists them with the modules that post them). The Event itself is `modelops.api.events.EmitEvent`."""

from __future__ import annotations

EVENT_DEPLOYING = "Deploying"
EVENT_DEPLOYED = "Deployed"
EVENT_REPLACED = "ReplacedUnready"
EVENT_CANARY_STARTED = "CanaryStarted"
EVENT_CANARY_SUPERSEDED = "CanarySuperseded"
EVENT_STEP_COMPLETED = "StepCompleted"
EVENT_PROMOTING = "Promoting"
EVENT_PROMOTED = "Promoted"
EVENT_ROLLBACK_STARTED = "RollbackStarted"
EVENT_ROLLED_BACK = "RolledBack"
EVENT_ABORTED = "RolloutAborted"
EVENT_ANALYSIS_SUCCESSFUL = "AnalysisSuccessful"
EVENT_ANALYSIS_FAILED = "AnalysisFailed"
EVENT_ANALYSIS_INCONCLUSIVE = "AnalysisInconclusive"
EVENT_PREVIOUS_RELEASED = "PreviousReleased"
EVENT_PIN_RELEASED = "UndoPinReleased"
EVENT_COMMAND = "CommandHandled"
EVENT_COMMAND_IGNORED = "CommandIgnored"
