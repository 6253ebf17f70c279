"""Typed reads of a box's applications, rules and scenarios (Management API Get* methods, paged)."""

from __future__ import annotations

from typing import Any

from tools.voxpush.api import Client, VoxpushError

PAGE = 100


class Box:
    def __init__(self, client: Client) -> None:
        self.client = client

    def _paged(self, cmd: str, **params: Any) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        while True:
            answer = self.client.call(cmd, count=PAGE, offset=len(items), **params)
            page = answer.get("result")
            if not isinstance(page, list):
                raise VoxpushError(f"{cmd}: the box answered no result list")
            items += [p for p in page if isinstance(p, dict)]
            total = answer.get("total_count")
            if not page or len(page) < PAGE or (isinstance(total, int) and len(items) >= total):
                return items

    def account_name(self) -> str:
        result = self.client.call("GetAccountInfo").get("result")
        name = result.get("account_name") if isinstance(result, dict) else None
        if not isinstance(name, str) or not name:
            raise VoxpushError("GetAccountInfo: the box answered no account_name")
        return name

    def applications(self) -> list[dict[str, Any]]:
        return self._paged("GetApplications")

    def application(self, *, name: str | None = None, app_id: int | None = None) -> dict[str, Any] | None:
        found = self._paged("GetApplications", application_name=name, application_id=app_id)
        for app in found:
            if (name is not None and app.get("application_name") == name) or \
                    (app_id is not None and app.get("application_id") == app_id):
                return app
        return None

    def rules(self, app_id: int) -> list[dict[str, Any]]:
        """The application's rules in routing order, each with its scenarios in running order."""
        return self._paged("GetRules", application_id=app_id, with_scenarios=True)

    def scenario(self, name: str) -> dict[str, Any] | None:
        """The scenario named exactly NAME (with its script), or None."""
        found = self._paged("GetScenarios", scenario_name=name, with_script=True)
        return next((s for s in found if s.get("scenario_name") == name), None)

    def scenario_by_id(self, scenario_id: int) -> dict[str, Any] | None:
        found = self._paged("GetScenarios", scenario_id=scenario_id, with_script=True)
        return next((s for s in found if s.get("scenario_id") == scenario_id), None)

    def scenarios(self) -> list[dict[str, Any]]:
        return self._paged("GetScenarios", with_script=True)


def script_of(scenario: dict[str, Any]) -> str:
    script = scenario.get("scenario_script")
    return script if isinstance(script, str) else ""
