@owner:platform-team @severity:high @reviewed:2026-11-21 @integrity @rollback
Feature: Standard rollback with data restore (P2 and P3)
  Purpose:
    Return an environment to the previous release in a planned way, with approvals, and restore data
    the release damaged: DynamoDB items to a point in time before the incident, S3 objects to their
    previous versions. Then validate and hand over to the root-cause analysis.

  When to use:
    P2 or P3 after a deployment (degraded feature, wrong data written but service up), or after an
    emergency rollback when data must still be repaired. For an outage, use
    features/rollback/emergency_rollback.feature first.

  Prerequisites:
    - The change ticket of the rollback; approvals: DEV one, SIT two (Tech Lead and QA), PROD the
      Tech Lead and the Infrastructure Lead, plus customer notice for PROD.
    - The time the bad release started writing (deployment log): the restore point.
    - The platform deploy role for the restore (this runbook's checks only read).

  Escalation:
    - Data loss beyond the restore window, or the audit table affected: the Security team and the
      Engineering Manager at once (audit data is a compliance record).
    - Approvals not given within one working day: the Tech Lead escalates.

  Rollback:
    A restored table is a new table: keep the original until the restored one is validated, so
    switching back is a configuration change. Object restores keep the bad versions as older versions.

  References:
    - features/rollback/emergency_rollback.feature
    - features/backup_recovery/backup_and_recovery.feature
    - features/deployment/post_deploy_validation.feature

  Background: the checks run against the intended account
    Given the AWS account is "{account_id}"

  Scenario: Plan and approve
    Given manual: open the rollback change ticket: the releases ({current_release} to {previous_release}), the restore point, the tables and prefixes affected
    * manual: get the approvals for this environment (see Prerequisites); PROD: notify customers through the status page
    * manual: agree the window with the owners of the affected data

  Scenario: The restore is possible
    Then the DynamoDB table "{tenants_table}" can be restored to any point in the last 24 hours
    And the DynamoDB table "{audit_table}" can be restored to any point in the last 24 hours
    And the S3 bucket "{templates_bucket}" has versioning enabled
    And the S3 bucket "{artifacts_bucket}" holds at least 3 objects under "releases/{previous_release}/"
    And the Terraform lock table "{lock_table}" holds no lock older than 30 minutes

  Scenario: Redeploy the previous release
    Given manual: run the deploy pipeline for {previous_release} (standard path with canary in PROD)
    * manual: wait for the pipeline's own post-deploy gate to pass

  Scenario: Restore DynamoDB data to before the incident
    Given manual: aws dynamodb restore-table-to-point-in-time --source-table-name {tenants_table} --target-table-name {tenants_table}-restored --restore-date-time <restore point>
    * manual: compare item counts and a sample of items between the tables; repair the original from the restored copy (or switch the API to it)
    * manual: delete the restored copy once the original is validated and the ticket is closed

  Scenario: Restore S3 objects to their previous versions
    Given manual: aws s3api list-object-versions --bucket {templates_bucket} --prefix templates/ to find the last good version of each object
    * manual: aws s3api copy-object --bucket {templates_bucket} --key <key> --copy-source '{templates_bucket}/<key>?versionId=<good version>' (quoted: the shell would read ? as a glob)

  Scenario: Validate after the rollback
    Then the service "api" answers GET "/health/ready" with status 200 within 1000 ms
    And the ratio of "http_requests_total{status="5xx"}" to "http_requests_total" on "api" over {metrics_window} s is below 5%
    And the DynamoDB table "{tenants_table}" is active
    And the DynamoDB table "{tenants_table}" has point-in-time recovery enabled
    And the S3 bucket "{templates_bucket}" holds at least 3 objects under "templates/"
    * manual: run features/deployment/post_deploy_validation.feature against the environment
    * manual: hold the root-cause analysis within 5 business days and record it in the ticket
