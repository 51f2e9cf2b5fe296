"""The Alertmanager target: one Alertmanager's v2 API (``[environments.NAME.alertmanager]``), GET only.

Reads the alerts it holds (with whether each is silenced or inhibited) and its silences; it never
creates or expires a silence: a runbook checks that the people did.
"""

from __future__ import annotations

from typing import Any

from . import register
from .jsonapi import JsonApiTarget


@register
class AlertmanagerTarget(JsonApiTarget):
    name = "alertmanager"
    section = "alertmanager"
    product = "Alertmanager"
    capabilities = {
        "alertmanager": "environment {env} declares no Alertmanager ([environments.{env}.alertmanager] url)"}

    def alerts(self) -> list[dict[str, Any]]:
        """Every alert it holds that has not resolved: ``labels``, ``startsAt``, ``status`` (``state``
        active/suppressed/unprocessed, ``silencedBy``, ``inhibitedBy``), ``receivers``."""
        body = self.get_json("/api/v2/alerts", {"active": "true", "silenced": "true", "inhibited": "true",
                                                "unprocessed": "true"})
        return [a for a in body if isinstance(a, dict)] if isinstance(body, list) else []

    def silences(self) -> list[dict[str, Any]]:
        """Every silence (active, pending and expired): ``id``, ``matchers``, ``startsAt``, ``endsAt``,
        ``createdBy``, ``comment``, ``status.state``."""
        body = self.get_json("/api/v2/silences")
        return [s for s in body if isinstance(s, dict)] if isinstance(body, list) else []
