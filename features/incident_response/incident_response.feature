@owner:platform-team @severity:critical @reviewed:2026-11-21 @operational @incident
Feature: Incident response
  Purpose:
    How the platform team responds to an incident: a first triage that takes two minutes, a severity
    from the table below with the response it demands, the runbook to follow for the cause, and the
    closing review. Most of it is what people do; the triage checks give the facts to decide on.

  When to use:
    An alert pages the on-call, a user or another team reports a problem, or a runbook check fails
    in PROD. Severity levels and expected response:
      critical - platform down or data at risk: page at once, Incident Commander within 5 minutes.
      high     - major function degraded: page at once, response within 15 minutes.
      medium   - minor degradation, no data risk: alert the on-call, response within 15 minutes.
      low      - no user impact yet (capacity warning): ticket, next business day.
      info     - routine event: log only, no alert.

  Prerequisites:
    - The on-call rota and the incident channel template (#inc-YYYYMMDD-short-name).
    - Access to dashboards, logs and read-only AWS (`runbooks iam-policy`).

  Escalation:
    - The on-call pages the Incident Commander for critical and high.
    - No progress in 30 minutes (critical) or 2 hours (high): the Incident Commander pages the
      Infrastructure Lead, then the Engineering Manager.
    - Possible data breach or public exposure: the Security team at once, whatever the severity.

  Rollback:
    The incident's fix decides: a release is rolled back with features/rollback/emergency_rollback.feature,
    data with features/rollback/standard_rollback.feature.

  References:
    - features/troubleshooting/
    - features/rollback/emergency_rollback.feature
    - features/rollback/standard_rollback.feature
    - features/backup_recovery/backup_and_recovery.feature
    - features/operations/daily_operations.feature

  Background: the checks run against the intended account
    Given the AWS account is "{account_id}"

  Scenario: Triage - the facts in the first minutes
    Then the service "api" answers GET "/health/live" with status 200 within 500 ms
    And the service "api" answers GET "/health/ready" with status 200 within 1000 ms
    And the ratio of "http_requests_total{status="5xx"}" to "http_requests_total" on "api" over {metrics_window} s is below 5%
    And the 95th percentile of "http_request_duration_seconds{handler=~"/api/.*"}" of "api" over {metrics_window} s is below 1 s
    And the CloudWatch alarm "{api_errors_alarm}" exists and is not in ALARM state
    And the CloudWatch alarm "{api_latency_alarm}" exists and is not in ALARM state
    And the CloudWatch alarm "{throttle_alarm}" exists and is not in ALARM state
    * manual: ask what changed in the last 24 hours: deployments (#platform-deployments), infrastructure applies, configuration

  @severity:critical
  Scenario: Critical - platform down or data at risk
    Given manual: page the on-call and the Incident Commander at once; the Incident Commander takes charge within 5 minutes
    * manual: open the incident channel and a bridge; post updates every 30 minutes
    * manual: update the status page within 15 minutes
    * manual: if a release caused it, decide on emergency rollback within 15 minutes (features/rollback/emergency_rollback.feature)
    * manual: if data is being damaged, stop the writer first (scale the API to zero or enable maintenance), then recover

  @severity:high
  Scenario: High - a major function is degraded
    Given manual: page the on-call at once; response within 15 minutes; name an Incident Commander
    * manual: post updates in the incident channel every hour; status page if customers notice
    * manual: follow the troubleshooting runbook of the failing component (features/troubleshooting/)

  @severity:medium
  Scenario: Medium - minor degradation, no data at risk
    Given manual: alert the on-call (no page outside working hours); response within 15 minutes in working hours
    * manual: work it in the team channel; raise it to high if it spreads or lasts more than 4 hours

  @severity:low
  Scenario: Low - no user impact yet
    Given manual: open a ticket for the next business day (capacity warnings, a single failed backup job, a stale lock)

  @severity:info
  Scenario: Info - routine event
    Given manual: no alert; the event is logged (deployment done, scheduled run passed) and reviewed in the weekly ops review

  Scenario: Resolve and review
    Given manual: the Incident Commander declares the incident resolved once the triage scenario passes and users confirm
    * manual: write the post-incident review within 5 business days: timeline, root cause, what went well, actions with owners
    * manual: update the runbooks the incident showed to be wrong, and their @reviewed date
