"""Load the configured flows and check them against the configuration."""

from __future__ import annotations

from ivr.config import Settings
from ivr.flow import Flow, FlowError, load_flow


def load_flows(settings: Settings) -> dict[str, Flow]:
    base = settings.flows_path
    flows = {
        "inbound": load_flow(base / settings.flows.inbound),
        "survey": load_flow(base / settings.flows.survey),
    }
    known = {c.name for c in settings.categories}
    for node, value in flows["inbound"].route_values("category"):
        if value not in known:
            raise FlowError(
                f"{flows['inbound'].source}: node {node!r}: category {value!r} is not configured "
                f"in config.yaml categories {sorted(known)}"
            )
    return flows
