@owner:platform-team @severity:high @reviewed:2026-11-21 @operational @promotion
Feature: Promote a release from DEV to SIT
  Purpose:
    Move a release that passed DEV into SIT with evidence: the go/no-go criteria are checked against
    DEV before the promotion, the smoke tests against SIT after it, and the approvals are recorded.
    A release is promoted only when every go criterion holds.

  When to use:
    When a release has run in DEV for at least one working day and the team wants it in SIT for
    integration testing. Each scenario is tagged with the stage it belongs to and the environment it
    runs against (the names are those of runbooks.toml):
      1. runbooks verify --env dev --tags '@go-no-go' features/promotion/dev_to_sit.feature
      2. runbooks verify --env sit --tags '@approval' features/promotion/dev_to_sit.feature (prints and records the manual steps)
      3. runbooks verify --env sit --tags '@smoke' features/promotion/dev_to_sit.feature
    Each run's exit code decides: 0 go on, anything else stop (see Escalation).

  Prerequisites:
    - The release passed features/deployment/post_deploy_validation.feature in DEV.
    - A change ticket for SIT with the release notes and the test plan.
    - The pre-deployment checklist passes against SIT (features/deployment/pre_deployment_checklist.feature).

  Escalation:
    - A go criterion fails: the release stays in DEV; the release owner fixes forward and restarts.
    - Smoke tests fail in SIT: tell the Tech Lead within 30 minutes; roll SIT back if not fixed in 2 hours.
    - Approval not given within one working day: the Tech Lead escalates to the Engineering Manager.

  Rollback:
    Redeploy the previous release to SIT with the standard rollback (features/rollback/standard_rollback.feature).

  References:
    - features/promotion/sit_to_prod.feature
    - features/deployment/
    - features/rollback/standard_rollback.feature

  Background: the checks run against the intended account
    Given the AWS account is "{account_id}"

  @go-no-go
  Scenario: Go/no-go - the release is healthy in the source environment
    Then the service "api" answers GET "/health/ready" with status 200 within 1000 ms
    And the ratio of "http_requests_total{status="5xx"}" to "http_requests_total" on "api" over {metrics_window} s is below 5%
    And the 95th percentile of "http_request_duration_seconds{handler=~"/api/.*"}" of "api" over {metrics_window} s is below 1 s
    And the CloudWatch alarm "{api_errors_alarm}" exists and is not in ALARM state
    And the S3 bucket "{artifacts_bucket}" holds at least 3 objects under "releases/{current_release}/"
    * manual: no open bug of severity high or critical is tagged for {current_release}

  @approval
  Scenario: Approval to promote
    Given manual: the Tech Lead approves the SIT change ticket (one approval; record the go/no-go run's results.json)
    * manual: post in #platform-deployments that {current_release} goes to SIT, with the ticket link
    * manual: start the pipeline's promote job for {current_release} to SIT and wait for it to finish

  @smoke
  Scenario: Smoke tests - the release answers in the target environment
    When I GET "/health/ready" from "api"
    Then the response status is 200
    And the response arrives within 1000 ms
    And the response JSON at "/status" is "ready"
    And the response JSON at "/checks/dynamodb" is "ok"
    And the response JSON at "/checks/s3" is "ok"

  @smoke
  Scenario: Smoke tests - the API exposes its metrics
    When I GET "/metrics" from "api"
    Then the response status is 200
    And the response body contains "http_requests_total"
    And the response body contains "http_request_duration_seconds_bucket"

  @smoke
  Scenario: Smoke tests - the storage layer of the target is in place
    Then the S3 bucket "{templates_bucket}" holds at least 3 objects under "templates/"
    And the DynamoDB table "{tenants_table}" is active
    And the DynamoDB table "{tenants_table}" has an active global secondary index "email-index"
    * manual: the QA lead starts the SIT regression suite and records its result in the ticket
