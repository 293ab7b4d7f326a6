"""The ModelDeployment API: pydantic models of spec and status, the single source of truth for the CRD."""
