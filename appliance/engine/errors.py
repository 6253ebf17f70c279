"""Exceptions of the session engine."""

from __future__ import annotations

from appliance.errors import ApplianceError


class EngineError(ApplianceError):
    """The engine refused a request (unknown rule, engine stopped...)."""


class ScriptSyntaxError(EngineError, ValueError):
    """A scenario does not compile; names the file and line, as users must see it."""

    def __init__(self, filename: str, line: int, column: int, message: str) -> None:
        self.filename = filename
        self.line = line
        self.column = column
        self.message = message
        where = f"{filename}:{line}:{column}" if column else f"{filename}:{line}" if line else filename
        super().__init__(f"{where}: {message}")
