"""Destination patterns: the regexes of routing rules and outbound routes, compiled the one way.

Its own module, free of imports, so the store can validate patterns without importing the router
(which imports the store).
"""

from __future__ import annotations

import re


def compile_pattern(pattern: str, what: str = "rule") -> re.Pattern[str]:
    """A rule pattern as a regex; ValueError if it is not one.

    Voximplant's own docs write the E.164 pattern as '+?[1-9]\\d{1,14}', a leading '+' that no regex
    engine accepts: such a leading '+' is read as a literal plus. `what` names the pattern's owner in
    the error ("rule", "route").
    """
    try:
        return re.compile(pattern)
    except re.error as exc:
        if pattern.startswith("+"):
            try:
                return re.compile("\\" + pattern)
            except re.error:
                pass
        raise ValueError(f"invalid {what} pattern {pattern!r}: {exc}") from None
