"""The engine's `Dialer` on a box: where scripts' outgoing calls go.

`callPSTN` numbers go through the outbound routes to the line each route names (SIP trunks today;
GSM and analog lines join `lines()` when they exist), under the routes' toll-fraud guards (opening
hours, calls per hour, call length, international calls); `callSIP` and `callUser` go to the SIP lines.
"""

from __future__ import annotations

from appliance.legs.leg import Leg
from appliance.lines.line import Line, Originate
from appliance.lines.outbound import OutboundRoutes
from appliance.sip.lines import SipLines


class LineDialer:
    def __init__(self, sip: SipLines, routes: OutboundRoutes) -> None:
        self._sip = sip
        self.routes = routes

    def lines(self) -> dict[str, Line]:
        """The lines outbound routes can name, by name."""
        return dict(self._sip.trunks)

    def dial(self, kind: str, to: str, options: Originate, out_proxy: str) -> Leg:
        if kind == "pstn":
            return self.routes.dial(to, options, self.lines())
        return self._sip.dial(kind, to, options, out_proxy)

    def close(self) -> None:
        """Stop the routes' timers (max_duration); safe twice."""
        self.routes.close()
