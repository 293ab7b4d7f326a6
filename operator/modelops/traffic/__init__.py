"""Traffic routers: how a canary weight becomes replica counts or HTTPRoute backend weights."""
