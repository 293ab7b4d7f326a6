"""The router factory (Flagger's `pkg/router/factory.go`): which router spec.rollout.traffic names.

The only module that imports the routers; they import the interface (`modelops.traffic.router`),
never this. Called by the rollout state machine (`rollout.machine`) and the controller
(`controller.reconcile`), which therefore never name a router's kind.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from modelops.api.rollout_spec import Traffic
from modelops.traffic.gateway_api import GatewayAPI
from modelops.traffic.replica_ratio import ReplicaRatio
from modelops.traffic.router import Router

# spec.rollout.traffic.router -> the router's constructor; a test checks it covers the API's enum.
ROUTERS: Mapping[str, Callable[[Traffic], Router]] = {
    ReplicaRatio.name: ReplicaRatio.from_traffic,
    GatewayAPI.name: GatewayAPI.from_traffic,
}


def router_for(traffic: Traffic) -> Router:
    """The router named by spec.rollout.traffic."""
    return ROUTERS[traffic.router](traffic)
