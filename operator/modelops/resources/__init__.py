"""Pure, deterministic builders of the child objects a ModelDeployment owns."""
