@owner:platform-team @severity:critical @reviewed:2026-11-21 @operational @deployment
Feature: Post-deployment validation of the storage layer and the API
  Purpose:
    Confirm, right after a deployment, that the storage layer (S3 buckets, DynamoDB tables) is
    configured as designed and that the API is live and ready. Every step is one fact you can also
    check by hand with the command shown next to it in the report. This is the validation for every
    environment (DEV, SIT, PROD); PROD adds the checks of features/deployment/post_deploy_validation_prod.feature.

  When to use:
    After every deployment to any environment, before announcing it done or promoting it further.
    Also when a pipeline's post-deploy gate failed and you need to see what is wrong.

  Prerequisites:
    - Read-only access to the target account (the policy from `runbooks iam-policy`).
    - Network access to the API endpoint of the environment.
    - The release tag and change ticket of the deployment at hand.
    - The pre-deployment checklist passed before the deployment started.

  Escalation:
    - A critical check fails in PROD: page the on-call Infrastructure Lead at once.
    - Checks ERROR (could not verify) for more than 15 minutes: escalate to the platform on-call.
    - Data-integrity findings (public access, PITR off): also inform the Security team.

  Rollback:
    If a storage check fails and cannot be fixed forward within 30 minutes, or the API stays not
    ready for 10 minutes, follow the rollback runbook (features/rollback/) for this release.

  References:
    - Before the deployment: features/deployment/pre_deployment_checklist.feature
    - PROD only, in addition: features/deployment/post_deploy_validation_prod.feature
    - Troubleshooting catalogue: features/troubleshooting/
    - Rollback: features/rollback/
    - Architecture and step catalogue: docs/architecture.md, docs/steps.md

  Background: the checks run against the intended account, and the deployment target is reachable
    Given the AWS account is "{account_id}"
    And the S3 bucket "{templates_bucket}" exists
    And the DynamoDB table "{tenants_table}" is active

  @integrity
  Scenario: Template and log buckets are private, versioned and encrypted
    Then the S3 bucket "{templates_bucket}" blocks all public access
    And the S3 bucket "{templates_bucket}" has versioning enabled
    And the S3 bucket "{templates_bucket}" is encrypted with "AES256"
    And the S3 bucket "{logs_bucket}" blocks all public access
    And the S3 bucket "{logs_bucket}" has versioning enabled
    And the S3 bucket "{logs_bucket}" is encrypted with "AES256"

  @integrity
  Scenario: Asset bucket is private and encrypted with KMS
    Given the S3 bucket "{assets_bucket}" exists
    Then the S3 bucket "{assets_bucket}" blocks all public access
    And the S3 bucket "{assets_bucket}" is encrypted with "aws:kms"

  Scenario: Buckets carry the ownership tags used for cost and on-call routing
    Then the S3 bucket "{templates_bucket}" has tag "owner" set to "{owner}"
    And the S3 bucket "{templates_bucket}" has tag "environment" set to "{environment}"
    And the S3 bucket "{assets_bucket}" has tag "owner" set to "{owner}"

  @integrity
  Scenario: Tables can be recovered to a point in time
    Then the DynamoDB table "{tenants_table}" has point-in-time recovery enabled
    And the DynamoDB table "{audit_table}" has point-in-time recovery enabled

  Scenario: Tables serve their query paths and carry ownership tags
    Given the DynamoDB table "{audit_table}" is active
    Then the DynamoDB table "{tenants_table}" has an active global secondary index "email-index"
    And the DynamoDB table "{audit_table}" has an active global secondary index "actor-index"
    And the DynamoDB table "{tenants_table}" has tag "owner" set to "{owner}"
    And the DynamoDB table "{audit_table}" has tag "owner" set to "{security_owner}"

  Scenario: The deployed release is the one in the artefact bucket
    Then the S3 bucket "{artifacts_bucket}" holds at least 3 objects under "releases/{current_release}/"
    * manual: compare the version the API reports (its /version page or the deployment log) with {current_release}

  @severity:critical
  Scenario: The API is live and ready to take traffic
    Then the service "api" answers GET "/health/live" with status 200 within 500 ms
    And the service "api" answers GET "/health/ready" with status 200 within 1000 ms
    * manual: watch the API dashboard for 10 minutes after the deployment; error rate must stay under 1%
    * manual: record the outcome in the change ticket with this run's reports/results.json
