@owner:platform-team @severity:high @reviewed:2026-11-21 @operational @deployment
Feature: Pre-deployment checklist
  Purpose:
    Before a release is applied to an environment, prove that the pipeline points at the right
    account, that nothing holds the Terraform state, that the release to deploy and the one before it
    are both in the artefact bucket (so a rollback is possible), and that the target is healthy and
    recoverable before it is changed. A deployment starts only when every automated check passes and
    every manual item is done.

  When to use:
    Before every deployment to DEV, SIT or PROD (the pipeline runs it as its first stage; run it by
    hand before a manual apply). Not for a rollback in progress: use features/rollback/emergency_rollback.feature.

  Prerequisites:
    - The release tag (vars current_release and previous_release of the environment) and an approved
      change ticket.
    - Read-only access to the target account (`runbooks iam-policy`), including dynamodb:Scan on the
      Terraform lock table.

  Escalation:
    - A stale Terraform lock you cannot attribute: ask in #platform-deployments, then the platform
      on-call after 15 minutes. Never force-unlock a lock whose owner has not confirmed.
    - The account check fails: stop; the pipeline's credentials are wrong. Tell the platform on-call.
    - PROD target unhealthy before the change: the Infrastructure Lead decides whether to proceed.

  Rollback:
    Nothing to roll back: this checklist only reads. If it fails, the deployment does not start.

  References:
    - After the deployment: features/deployment/post_deploy_validation.feature
    - PROD additions: features/deployment/post_deploy_validation_prod.feature
    - If the deployment must be undone: features/rollback/
    - Promotion gates: features/promotion/

  Background: the pipeline points at the intended account
    Given the AWS account is "{account_id}"

  Scenario: The change is approved and scheduled
    Given manual: the change ticket for {current_release} is approved (DEV: one reviewer; SIT: Tech Lead; PROD: Tech Lead and Infrastructure Lead, deployer signed in with MFA)
    * manual: CI on the release tag is green: unit tests, terraform validate, and a reviewed terraform plan with no unexpected destroy
    * manual: announce the deployment window in #platform-deployments with the ticket link (PROD: 24 hours ahead)

  Scenario: No stale Terraform state lock blocks the apply
    Then the Terraform lock table "{lock_table}" holds no lock older than 30 minutes
    * manual: if a recent lock is reported, wait for that run to finish (or ask its owner) before starting yours

  Scenario: The release to deploy and the previous release are in the artefact bucket
    Given the S3 bucket "{artifacts_bucket}" exists
    Then the S3 bucket "{artifacts_bucket}" holds at least 3 objects under "releases/{current_release}/"
    And the S3 bucket "{artifacts_bucket}" holds at least 3 objects under "releases/{previous_release}/"
    And the S3 bucket "{artifacts_bucket}" has versioning enabled
    And the S3 bucket "{artifacts_bucket}" blocks all public access

  @integrity
  Scenario: Data can be recovered if the deployment goes wrong
    Then the DynamoDB table "{tenants_table}" can be restored to any point in the last 24 hours
    And the DynamoDB table "{audit_table}" can be restored to any point in the last 24 hours
    And the S3 bucket "{templates_bucket}" has versioning enabled
    And the backup plan "{backup_plan}" exists

  Scenario: The target is healthy before it is changed
    Then the service "api" answers GET "/health/ready" with status 200 within 1000 ms
    And the CloudWatch alarm "{api_errors_alarm}" exists and is not in ALARM state
    And the CloudWatch alarm "{api_latency_alarm}" exists and is not in ALARM state
    * manual: no open incident on the target environment (status page, #incidents); otherwise postpone
