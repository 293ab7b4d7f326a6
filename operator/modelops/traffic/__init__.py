"""Traffic routers: how a canary weight becomes replica counts or HTTPRoute backend weights.

The interface is `router.py`, the factory `factory.py`, one module per router (see `router.py`)."""
