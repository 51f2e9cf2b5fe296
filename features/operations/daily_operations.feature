@owner:platform-team @severity:medium @reviewed:2026-11-21 @operational @monitoring
Feature: Daily operations and monitoring checks
  Purpose:
    The daily health round of the platform: the API answers its health endpoints, its error rate and
    latency are within budget, no alarm fires, the API hosts have disk and memory to spare, the
    containers are healthy, and storage still meets its baseline.

  When to use:
    Every working day at the start of the on-call shift (scheduled run), and whenever you need a
    quick picture of the platform's health before deeper troubleshooting.

  Prerequisites:
    - Network access to the API and its /metrics page; SSH (or local) access to the API hosts.
    - Read-only AWS access (`runbooks iam-policy`); the Docker engine of the API hosts where containers run.

  Escalation:
    - A failure that affects users (errors, latency, readiness): open an incident
      (features/incident_response/incident_response.feature).
    - Disk or memory findings: the platform on-call the same day; capacity planning if it recurs.
    - Storage baseline findings: the platform team's backlog, the Security team for public access.

  Rollback:
    Nothing to roll back: this runbook only reads.

  References:
    - features/troubleshooting/api.feature
    - features/troubleshooting/s3.feature
    - features/troubleshooting/dynamodb.feature
    - features/backup_recovery/backup_and_recovery.feature
    - features/incident_response/incident_response.feature

  Background: the checks run against the intended account
    Given the AWS account is "{account_id}"

  Scenario: Health endpoints answer
    Then the service "api" answers GET "/health/live" with status 200 within 500 ms
    And the service "api" answers GET "/health/ready" with status 200 within 1000 ms

  Scenario: Error rate and latency are within budget
    Then the ratio of "http_requests_total{status="5xx"}" to "http_requests_total" on "api" over {metrics_window} s is below 5%
    And the 95th percentile of "http_request_duration_seconds{handler=~"/api/.*"}" of "api" over {metrics_window} s is below 1 s
    And the 99th percentile of "http_request_duration_highr_seconds" of "api" over {metrics_window} s is below 2 s

  Scenario: No alarm fires
    Then the CloudWatch alarm "{api_errors_alarm}" exists and is not in ALARM state
    And the CloudWatch alarm "{api_latency_alarm}" exists and is not in ALARM state
    And the CloudWatch alarm "{throttle_alarm}" exists and is not in ALARM state

  @requires:hosts
  Scenario: API hosts have disk and memory to spare
    Then on host "api", the filesystem "/" has at least 5% free space
    And on host "api", memory usage is below 95%
    * manual: the checks look at one API host (declared as api in runbooks.toml); on every other API host: df -P / and free -m by hand
    * manual: look at the 7-day trend on the hosts dashboard; plan capacity when free disk falls under 20% or memory use stays over 80%

  @requires:docker
  Scenario: Containers are running and healthy
    Then the container "cache" is running
    And the container "cache" is healthy
    And the container "api" is running
    And the container "api" is healthy
    And the container "api" has restarted at most 3 times
    * manual: the checks read one Docker engine (the api host's); on every other API host: docker compose ps shows cache and api running (healthy)

  @integrity
  Scenario: Storage still meets its baseline
    Then every S3 bucket matching "{bucket_pattern}" blocks all public access
    And every S3 bucket matching "{bucket_pattern}" has versioning enabled
    And every DynamoDB table matching "{table_pattern}" has point-in-time recovery enabled
    And the backup plan "{backup_plan}" exists

  @requires:aws-backup @integrity
  Scenario: Last night's backups completed
    Then the backup vault "{backup_vault}" holds a recovery point of "{tenants_table}" newer than 26 hours
    And the backup vault "{backup_vault}" holds a recovery point of "{audit_table}" newer than 26 hours

  Scenario: Hand over
    Given manual: post the run's summary line in #platform-ops; open a ticket for every failure that is not an incident
