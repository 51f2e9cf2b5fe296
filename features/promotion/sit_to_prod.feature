@owner:platform-team @severity:critical @reviewed:2026-11-21 @operational @promotion
Feature: Promote a release from SIT to PROD
  Purpose:
    Take a release that passed SIT into PROD without downtime: objective go/no-go criteria on SIT,
    two approvals, a blue-green switch with a canary (10%, 25%, 50%, 100%) and the checks that
    decide at each stage whether to continue or abort.

  When to use:
    In an agreed PROD change window, for a release that passed SIT regression. Not for hotfixes
    during an incident: follow features/incident_response/incident_response.feature. Each scenario
    is tagged with its stage; run them in order (environment names as in runbooks.toml):
      1. runbooks verify --env sit --tags '@go-no-go' features/promotion/sit_to_prod.feature
      2. runbooks verify --env prod --tags '@approval or @before-switch' features/promotion/sit_to_prod.feature
      3. runbooks verify --env prod --tags '@canary' features/promotion/sit_to_prod.feature (the canary
         procedure: prints and records its manual steps), then at each canary step (10%, 25%, 50%, 100%),
         after the wait:
         runbooks verify --env prod --tags '@abort-criteria' features/promotion/sit_to_prod.feature
         any exit code but 0 means abort
      4. runbooks verify --env prod --tags '@close' features/promotion/sit_to_prod.feature
    The /metrics checks (tag @smoke-signal) are not an abort criterion: through the load balancer each
    read of the page comes from one random instance, blue or green, and the two reads of a window may
    come from two different ones. Run them for a coarse picture only:
      runbooks verify --env prod --tags '@smoke-signal' features/promotion/sit_to_prod.feature
    The alarms judge the whole fleet over their evaluation period: at 10% a broken green can stay
    under their thresholds, so the abort criteria also compare green with blue on the dashboard.

  Prerequisites:
    - SIT regression passed and is recorded in the change ticket; the CAB approved the change.
    - The PROD pre-deployment checklist passed (features/deployment/pre_deployment_checklist.feature).
    - The deployer is signed in to PROD with MFA; the PROD dashboards are open.

  Escalation:
    - Any abort criterion during the canary (the @abort-criteria run fails, or green is worse than blue on the
      dashboard): the deployer aborts at once and pages the Infrastructure Lead.
    - Approvals missing at the start of the window: postpone; the Tech Lead reschedules with the CAB.
    - Customer-visible impact: open an incident (features/incident_response/incident_response.feature).

  Rollback:
    During the canary: shift all traffic back to blue (the previous release) and stop. After 100%:
    emergency rollback (features/rollback/emergency_rollback.feature) within the first two hours.

  References:
    - features/promotion/dev_to_sit.feature
    - features/deployment/post_deploy_validation_prod.feature
    - features/rollback/emergency_rollback.feature
    - features/incident_response/incident_response.feature

  Background: the checks run against the intended account
    Given the AWS account is "{account_id}"

  @go-no-go
  Scenario: Go/no-go - the release is healthy in SIT
    Then the service "api" answers GET "/health/ready" with status 200 within 1000 ms
    And the ratio of "http_requests_total{status="5xx"}" to "http_requests_total" on "api" over {metrics_window} s is below 1%
    And the 95th percentile of "http_request_duration_seconds{handler=~"/api/.*"}" of "api" over {metrics_window} s is below 0.5 s
    And the CloudWatch alarm "{api_errors_alarm}" exists and is not in ALARM state
    And the CloudWatch alarm "{api_latency_alarm}" exists and is not in ALARM state
    And the S3 bucket "{artifacts_bucket}" holds at least 3 objects under "releases/{current_release}/"
    And the S3 bucket "{artifacts_bucket}" holds at least 3 objects under "releases/{previous_release}/"
    * manual: SIT regression passed with no open defect of severity high or critical for {current_release}

  @approval
  Scenario: Approvals to promote
    Given manual: the Tech Lead approves the PROD change ticket
    * manual: the Infrastructure Lead approves the PROD change ticket (second approval)
    * manual: post the start of the change in #platform-deployments and on the status page (maintenance notice)

  @integrity @before-switch
  Scenario: PROD can be recovered before it is changed
    Then the DynamoDB table "{tenants_table}" can be restored to any point in the last 24 hours
    And the DynamoDB table "{audit_table}" can be restored to any point in the last 24 hours
    And the S3 bucket "{templates_bucket}" replicates to "{replica_bucket}"
    And the Terraform lock table "{lock_table}" holds no lock older than 30 minutes

  @canary
  Scenario: Canary - each traffic step holds before the next
    Given manual: deploy {current_release} to the green stack with the pipeline's PROD job; blue keeps serving
    * manual: shift 10% of traffic to green and wait 15 minutes (at least one evaluation period of the alarms); abort if the abort criteria fail
    * manual: shift 25%, wait 15 minutes, re-run the abort criteria (--tags '@abort-criteria'); then 50%, then 100%, the same way
    * manual: keep blue (the previous release) running for 2 hours after 100%, then scale it down

  @abort-criteria
  Scenario: Abort criteria - PROD stays within its thresholds
    Then the service "api" answers GET "/health/live" with status 200 within 300 ms
    And the service "api" answers GET "/health/ready" with status 200 within 500 ms
    And the CloudWatch alarm "{api_errors_alarm}" exists and is not in ALARM state
    And the CloudWatch alarm "{api_latency_alarm}" exists and is not in ALARM state
    And the CloudWatch alarm "{throttle_alarm}" exists and is not in ALARM state
    * manual: on the PROD dashboard compare the green target group with the blue one (HTTPCode_Target_5XX_Count, TargetResponseTime p95); abort if green has more than 1% errors or a p95 above 0.5 s

  @smoke-signal
  Scenario: Smoke signal - one instance's metrics page looks sane
    Then the ratio of "http_requests_total{status="5xx"}" to "http_requests_total" on "api" over {metrics_window} s is below 1%
    And the 95th percentile of "http_request_duration_seconds{handler=~"/api/.*"}" of "api" over {metrics_window} s is below 0.5 s
    * manual: read these as one random instance's last seconds of traffic, never as the canary's rate; decide on the alarms and the dashboard

  @close
  Scenario: Close the promotion
    Given manual: run features/deployment/post_deploy_validation.feature and features/deployment/post_deploy_validation_prod.feature against PROD
    * manual: post "PROD {current_release} complete" in #platform-deployments, update the status page, close the ticket
