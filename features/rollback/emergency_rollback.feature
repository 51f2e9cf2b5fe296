@owner:platform-team @severity:critical @reviewed:2026-11-21 @operational @rollback
Feature: Emergency rollback (P0 and P1)
  Purpose:
    Put the previous release back within 10 minutes when a deployment breaks PROD (or blocks SIT
    testing): decide, prove that the rollback is possible, redeploy the previous release, and
    validate. Data is restored only if the release damaged it (features/rollback/standard_rollback.feature).

  When to use:
    P0 or P1 after a deployment: the API is down or not ready, the error rate is above 5% or p95 above
    1 s for 5 minutes, data is being written wrongly, or a security exposure came with the release.
    For anything that can wait for approvals, use the standard rollback.

  Prerequisites:
    - The incident is open and an Incident Commander is named (features/incident_response/incident_response.feature).
    - The previous release tag (var previous_release) and the deploy pipeline at hand.
    - DEV: one approval; SIT: the Tech Lead; PROD: the Incident Commander's go is enough (approval is recorded afterwards).

  Escalation:
    - Rollback not started within 10 minutes of the decision: the Incident Commander pages the
      Infrastructure Lead.
    - Rollback fails or does not restore service: page the Engineering Manager; consider failover to
      the DR region.

  Rollback:
    If the previous release is worse, roll forward to the failed release again only with the Incident
    Commander's decision, and fix forward from there.

  References:
    - features/rollback/standard_rollback.feature
    - features/incident_response/incident_response.feature
    - features/deployment/post_deploy_validation.feature
    - features/backup_recovery/backup_and_recovery.feature

  Background: the checks run against the intended account
    Given the AWS account is "{account_id}"

  Scenario: Decide and announce
    Given manual: confirm the trigger with the Incident Commander: the symptom started with the deployment of {current_release}
    * manual: post "rolling back {current_release} to {previous_release}" in the incident channel and #platform-deployments
    * manual: stop every running and queued deployment pipeline for this environment

  Scenario: The rollback is possible
    Then the S3 bucket "{artifacts_bucket}" holds at least 3 objects under "releases/{previous_release}/"
    And the Terraform lock table "{lock_table}" holds no lock older than 30 minutes
    And the S3 bucket "{templates_bucket}" has versioning enabled
    And the S3 bucket "{artifacts_bucket}" has versioning enabled

  @integrity
  Scenario: Data can be restored to before the incident if the release damaged it
    Then the DynamoDB table "{tenants_table}" can be restored to any point in the last 24 hours
    And the DynamoDB table "{audit_table}" can be restored to any point in the last 24 hours
    * manual: write down the time the bad release started writing (deployment log): the restore point, if one is needed

  Scenario: Roll back
    Given manual: run the deploy pipeline for {previous_release} with the emergency flag (skips the canary; blue-green switches at once)
    * manual: if the release changed infrastructure, do not apply the saved releases/{previous_release}/terraform.tfplan: it was planned against an older state and Terraform refuses it as stale
    * manual: check out the previous release's code: git fetch --tags && git checkout {previous_release}; terraform init
    * manual: terraform plan -out=rollback.tfplan; review it with a second engineer (only the changes of {current_release} reversed, no resource destroyed that holds data)
    * manual: terraform apply rollback.tfplan
    * manual: if the release wrote bad data, follow the data restore of features/rollback/standard_rollback.feature

  Scenario: Post-rollback validation
    Then the service "api" answers GET "/health/live" with status 200 within 500 ms
    And the service "api" answers GET "/health/ready" with status 200 within 1000 ms
    And the ratio of "http_requests_total{status="5xx"}" to "http_requests_total" on "api" over {metrics_window} s is below 5%
    And the 95th percentile of "http_request_duration_seconds{handler=~"/api/.*"}" of "api" over {metrics_window} s is below 1 s
    And the CloudWatch alarm "{api_errors_alarm}" exists and is not in ALARM state
    * manual: run features/deployment/post_deploy_validation.feature (and the PROD additions in PROD)
    * manual: tell the incident channel the rollback is complete; the Incident Commander decides when to resolve

  Scenario: After the rollback
    Given manual: record the rollback in the change ticket; get the PROD approvals that were skipped
    * manual: schedule the root-cause analysis within 5 business days; the release is blocked until it is done
