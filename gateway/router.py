"""Which route serves an OrganId (floor 4).

A hosted agency is always served by the local route, whatever a broader pattern elsewhere in the
file says: a document for an agency on this node must never leave it. Otherwise the most specific
pattern wins (an exact code, then more literal segments; file order on ties), as
`Config.routes_for` orders them. No route at all is `UnknownRecipient`, naming the OrganId.
"""

from __future__ import annotations

from gateway.config import Config, RouteConfig, Transport
from gateway.soap import FaultCode, GatewayFault

__all__ = ["Router", "unknown_recipient"]


def unknown_recipient(organ_id: str) -> GatewayFault:
    return GatewayFault(
        FaultCode.UNKNOWN_RECIPIENT,
        f"No route to recipient {organ_id}",
        f"Không có tuyến chuyển tới cơ quan nhận {organ_id}",
    )


class Router:
    def __init__(self, config: Config) -> None:
        self._config = config
        self._local = tuple(r for r in config.routes if r.transport is Transport.LOCAL)

    def is_local(self, organ_id: str) -> bool:
        return self._config.hosts(organ_id)

    def route_for(self, organ_id: str) -> RouteConfig:
        """The route to `organ_id`; raises GatewayFault(UnknownRecipient) when none serves it."""
        if self._config.hosts(organ_id):
            for route in self._local:
                if route.match(organ_id):
                    return route
            # Config validation demands a local route for each hosted agency; this is a
            # hand-built Config that skipped it.
            raise unknown_recipient(organ_id)
        for route in self._config.routes_for(organ_id):
            if route.transport is not Transport.LOCAL:
                return route
        raise unknown_recipient(organ_id)
