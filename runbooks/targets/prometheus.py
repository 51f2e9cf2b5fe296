"""The Prometheus target: one server's HTTP API (``[environments.NAME.prometheus]``), read with GET only.

Reads, not judgements: an instant PromQL query, the alerts and alerting/recording rules, the scrape
targets and pools, the metric names, the Alertmanagers it sends to. Each returns the ``data`` of the API's
``{"status": "success", "data": ...}`` envelope; anything else is an :class:`ApiUnavailable`.
"""

from __future__ import annotations

from typing import Any

from ..faults import Fault, FaultKind
from . import register
from .jsonapi import ApiUnavailable, JsonApiTarget


@register
class PrometheusTarget(JsonApiTarget):
    name = "prometheus"
    section = "prometheus"
    product = "Prometheus"
    capabilities = {
        "prometheus": "environment {env} declares no Prometheus server ([environments.{env}.prometheus] url)"}

    def api(self, path: str, params: dict[str, str] | None = None) -> Any:
        body = self.get_json(path, params)
        if not isinstance(body, dict) or body.get("status") != "success" or "data" not in body:
            raise ApiUnavailable(Fault.of(
                FaultKind.SERVICE_ERROR, f"Prometheus at {self.settings.url} answered {path} without a "
                "success envelope", f"check that url of [environments.{self.env.name}.prometheus] is Prometheus "
                "itself (its /api/v1 answers {\"status\": \"success\", \"data\": ...})"))
        return body["data"]

    def query(self, expr: str) -> tuple[str, Any]:
        """An instant query at the server's now: (resultType, result)."""
        data = self.api("/api/v1/query", {"query": expr})
        return str(data.get("resultType", "")), data.get("result")

    def alerts(self) -> list[dict[str, Any]]:
        """Pending and firing alerts (``labels``, ``state``, ``activeAt``, ``value``, ``annotations``)."""
        return list(self.api("/api/v1/alerts").get("alerts") or [])

    def rule_groups(self, kind: str | None = None) -> list[dict[str, Any]]:
        """Rule groups with their rules (``kind``: "alert" or "record" to read one kind only)."""
        return list(self.api("/api/v1/rules", {"type": kind} if kind else None).get("groups") or [])

    def active_targets(self) -> list[dict[str, Any]]:
        return list(self.api("/api/v1/targets", {"state": "active"}).get("activeTargets") or [])

    def scrape_pools(self) -> list[str] | None:
        """The configured scrape jobs (None on a server older than 2.42, which has no such endpoint)."""
        try:
            return [str(p) for p in self.api("/api/v1/scrape_pools").get("scrapePools") or []]
        except ApiUnavailable as exc:
            if exc.status == 404:
                return None
            raise

    def metric_names(self) -> list[str]:
        return [str(n) for n in self.api("/api/v1/label/__name__/values") or []]

    def alertmanagers(self) -> tuple[list[str], list[str]]:
        """The Alertmanager URLs it sends alerts to, and those it discovered but dropped."""
        data = self.api("/api/v1/alertmanagers")
        return ([str(a.get("url")) for a in data.get("activeAlertmanagers") or []],
                [str(a.get("url")) for a in data.get("droppedAlertmanagers") or []])
