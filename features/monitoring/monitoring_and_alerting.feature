@owner:platform-team @severity:high @reviewed:2026-12-02 @operational @monitoring
Feature: Monitoring and alerting would tell us
  Purpose:
    Prove that the monitoring sees the platform and would page someone: Prometheus scrapes the API
    and evaluates its rules, every alert the platform relies on is deployed and quiet, the API is
    within the thresholds those alerts use across the whole fleet, and alerts reach an Alertmanager
    where nothing is muted without a reason.

  When to use:
    Every working day with the operations round (features/operations/daily_operations.feature);
    after any change to the Prometheus or Alertmanager configuration or to infra/prometheus/alerts.yml;
    and early in an incident, when an alert did or did not fire. Environments without a Prometheus
    server or an Alertmanager skip the scenarios that need them (the sandboxes have neither).

  Prerequisites:
    - Network access to the Prometheus and Alertmanager APIs that runbooks.toml declares for the
      environment ([environments.NAME.prometheus] and [environments.NAME.alertmanager]), with a read
      token in the environment of the run if they need one.
    - The rules of infra/prometheus/alerts.yml deployed to that Prometheus.

  Escalation:
    - No Alertmanager receives the alerts, or a scrape target of the API is down: page the platform
      on-call at once; the platform is unmonitored until it is fixed.
    - A rule fails to evaluate or is missing: the platform on-call the same day.
    - An alert fires: follow the runbook its annotations name; severity critical pages the on-call
      and opens an incident (features/incident_response/incident_response.feature).

  Rollback:
    Nothing to roll back: this runbook only reads. A rule file that broke the rules is rolled back
    with the change that brought it (revert it, then reload Prometheus).

  References:
    - infra/prometheus/alerts.yml
    - features/operations/daily_operations.feature
    - features/troubleshooting/api.feature
    - features/incident_response/incident_response.feature
    - docs/steps.md

  Background: the checks run against the intended account
    Given the AWS account is "{account_id}"

  @requires:prometheus
  Scenario: Prometheus scrapes the API, evaluates its rules and sends its alerts
    Then every Prometheus target of job "{prometheus_job}" is up
    And the Prometheus rules are loaded and healthy
    And Prometheus sends its alerts to an Alertmanager

  @requires:prometheus
  Scenario: Every alert the platform relies on is deployed and quiet
    Then the Prometheus alerting rule "HighErrorRate" is loaded and healthy
    And the alert "HighErrorRate" is not firing
    And the Prometheus alerting rule "HighLatency" is loaded and healthy
    And the alert "HighLatency" is not firing
    And the Prometheus alerting rule "DatabaseConnectionFailures" is loaded and healthy
    And the alert "DatabaseConnectionFailures" is not firing
    And the Prometheus alerting rule "DiskSpaceLow" is loaded and healthy
    And the alert "DiskSpaceLow" is not firing
    And the Prometheus alerting rule "MemoryUsageHigh" is loaded and healthy
    And the alert "MemoryUsageHigh" is not firing
    And the Prometheus alerting rule "TargetDown" is loaded and healthy
    And no alert of severity "critical" is firing

  @requires:prometheus
  Scenario: The API is within the thresholds of its alerts across the fleet
    Then the Prometheus query "sum(rate(http_requests_total{job="{prometheus_job}",status="5xx"}[5m])) / sum(rate(http_requests_total{job="{prometheus_job}"}[5m]))" is below 0.05
    And the Prometheus query "histogram_quantile(0.95, sum by (le) (rate(http_request_duration_highr_seconds_bucket{job="{prometheus_job}"}[5m])))" is below 1
    And the Prometheus query "up{job="{prometheus_job}"} == 0" returns no series
    * manual: open the API dashboard and compare the last 24 hours with the week before; a slow drift under the thresholds is a ticket, not an incident

  @requires:alertmanager
  Scenario: Alerts reach Alertmanager and nothing critical is left unhandled
    Then no alert matching "{severity="critical"}" is active in Alertmanager
    * manual: amtool silence query: every active silence names its change ticket in its comment and ends with its maintenance window; expire the others (amtool silence expire ID)
