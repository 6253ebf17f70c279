"""A line: what creates and receives legs (DESIGN section 3a): a SIP trunk or user, a modem, a port.

The router gives each line one callback for its incoming legs; outbound routes and scripts reach a
line through `originate`. `status()` is what the web panel shows.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from appliance.legs.leg import Leg


@dataclass(frozen=True)
class Originate:
    """What an outgoing leg asks for beyond its destination."""

    caller: str = ""  # the caller ID to present
    display_name: str = ""
    headers: tuple[tuple[str, str], ...] = ()
    auth_user: str = ""
    password: str = ""


class LineIdentity(Protocol):
    """What routing needs to know of a line."""

    @property
    def name(self) -> str: ...

    @property
    def kind(self) -> str: ...  # "sip-user", "sip-trunk", "gsm", "fxs", "fxo"

    @property
    def application_id(self) -> int | None: ...  # its incoming legs go to this application, or None: all rules

    @property
    def rule_id(self) -> int | None: ...  # its incoming legs run this rule whatever they dial, or None


class Line(LineIdentity, Protocol):
    def status(self) -> dict[str, object]: ...

    def originate(self, destination: str, options: Originate) -> Leg: ...
