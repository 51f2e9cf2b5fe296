@owner:platform-team @severity:high @reviewed:2026-11-21 @operational @troubleshooting
Feature: Troubleshooting the API
  Purpose:
    One scenario per known API issue: readiness failing, a high error rate, slow responses. Each
    checks that the symptom is absent; when it is present, the scenario fails and the console prints
    its Resolution paragraph.

  When to use:
    An alert fires on API errors or latency, the load balancer marks targets unhealthy, or users
    report errors or slowness.

  Prerequisites:
    - Network access to the API of the environment and its /metrics page.
    - Access to the API logs and dashboards; read-only AWS access for the storage checks.

  Escalation:
    - Error rate above 5% or p95 above 1 s for 10 minutes in PROD: open an incident and page the
      on-call (features/incident_response/incident_response.feature).
    - It started with a deployment: the Incident Commander decides on rollback within 15 minutes.

  Rollback:
    If the symptom started with a release, roll it back (features/rollback/emergency_rollback.feature).

  References:
    - features/troubleshooting/dynamodb.feature
    - features/troubleshooting/s3.feature
    - features/operations/daily_operations.feature
    - features/rollback/emergency_rollback.feature

  Background: the checks run against the intended account
    Given the AWS account is "{account_id}"

  Scenario: Readiness check failing
    Symptom:
      /health/ready answers 503; the load balancer takes targets out of service; /health/live still answers 200.
    Root cause:
      A dependency the API needs is unreachable: DynamoDB, S3 or the cache (network, credentials,
      throttling, a missing table or bucket). The body of /health/ready names the failing check.
    Resolution:
      1. curl -s API/health/ready and read which check is not "ok".
      2. dynamodb or s3: run features/troubleshooting/dynamodb.feature or features/troubleshooting/s3.feature.
      3. cache: check the cache container and its port (features/operations/startup.feature).
      4. If it started with a deployment and is not fixed in 15 minutes, roll back.

    When I GET "/health/ready" from "api"
    Then the response status is 200
    And the response JSON at "/checks/dynamodb" is "ok"
    And the response JSON at "/checks/s3" is "ok"
    And the response JSON at "/checks/cache" is "ok"

  Scenario: High error rate (more than 5% of requests fail)
    Symptom:
      The 5xx alarm fires; more than 5% of responses are HTTP 5xx; users see error pages.
    Root cause:
      A defect in a new release, a failing dependency (DynamoDB throttling, S3 errors), or a
      configuration change. Compare the start of the errors with the deployment log.
    Resolution:
      1. Look at the API logs for the most frequent error and its first occurrence.
      2. If it started with a release: roll back (features/rollback/emergency_rollback.feature).
      3. If DynamoDB throttles: check the throttle alarm and the table's capacity; otherwise follow the dependency's runbook.

    Then the ratio of "http_requests_total{status="5xx"}" to "http_requests_total" on "api" over {metrics_window} s is below 5%
    And the CloudWatch alarm "{api_errors_alarm}" exists and is not in ALARM state

  Scenario: Slow responses (p95 latency above 1 s)
    Symptom:
      The latency alarm fires; the 95th percentile of request latency is above 1 second.
    Root cause:
      Slow DynamoDB calls (throttling, a scan instead of a query on a missing index), too few API
      instances for the load, or memory pressure on the hosts.
    Resolution:
      1. Check DynamoDB throttling and that the GSIs are ACTIVE (features/troubleshooting/dynamodb.feature).
      2. Check CPU and memory of the API hosts (features/operations/daily_operations.feature); scale out if saturated.
      3. If it started with a release, roll back.

    Then the 95th percentile of "http_request_duration_seconds{handler=~"/api/.*"}" of "api" over {metrics_window} s is below 1 s
    And the CloudWatch alarm "{api_latency_alarm}" exists and is not in ALARM state
    And the CloudWatch alarm "{throttle_alarm}" exists and is not in ALARM state
