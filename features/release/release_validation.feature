# Release management and QA release validation: a release goes out only when this runbook passes.
#
# On sandbox-drifted it fails for one reason: the artefact of the current release (v1.5.0) has no QA
# sign-off (its qa tag is missing), so it must not be deployed.

@owner:platform-team @severity:high @reviewed:2026-12-02 @operational @release
Feature: Release checklist and QA release validation
  Purpose:
    Decide that a release can go out, and show it: the version and its notes are written, the quality
    gates passed, the artefacts are in the artefact bucket tagged with the release and QA's sign-off,
    the previous release is still there to roll back to, and, once deployed, the post-deployment
    validation passes and is attached to the release.

  When to use:
    For every release candidate, before it is promoted beyond DEV: the release manager runs it with the
    QA lead. A hotfix follows it too, with the QA sign-off of the hotfix's own test run. The deployment
    itself follows features/deployment/pre_deployment_checklist.feature.

  Prerequisites:
    - The release tag (the environment's var current_release), its release ticket and the QA test run report.
    - Read-only access to the artefact bucket (`runbooks iam-policy`: s3:GetObject, s3:GetObjectTagging included).

  Escalation:
    - A quality gate failed and the release is urgent: the Tech Lead decides, in writing on the ticket; the
      QA sign-off is never added by hand without a test run.
    - The previous release is missing from the artefact bucket: stop; without it there is no rollback.
      Tell the platform on-call.

  Rollback:
    Nothing to roll back here: the checklist only reads. A release that fails after deployment is rolled
    back with features/rollback/emergency_rollback.feature (P0/P1) or features/rollback/standard_rollback.feature.

  References:
    - features/deployment/pre_deployment_checklist.feature
    - features/deployment/post_deploy_validation.feature
    - features/deployment/post_deploy_validation_prod.feature
    - features/promotion/dev_to_sit.feature
    - features/rollback/

  Background: the checks run against the intended account
    Given the AWS account is "{account_id}"

  Scenario: 1 - The release is versioned and documented
    Given manual: the version follows semantic versioning: MAJOR for a breaking API or data change, MINOR for a feature, PATCH for a fix
    * manual: CHANGELOG.md has the release's section (Added, Changed, Fixed, Removed), and the release notes name every migration and every feature flag that changes
    * manual: the tag {current_release} is signed and points at the commit CI tested

  Scenario: 2 - The quality gates passed
    Given manual: CI on the tag is green: unit and integration tests, lint, type check, coverage not lower than on main
    * manual: the security scan reports no high or critical finding without an accepted waiver
    * manual: the Terraform plan of the release was reviewed and shows no destroy nobody expected
    * manual: QA's test run for the release passed and its report is linked in the release ticket

  Scenario: 3 - The artefacts are stored and signed off
    Given the S3 bucket "{artifacts_bucket}" exists
    Then the S3 bucket "{artifacts_bucket}" holds at least 3 objects under "releases/{current_release}/"
    And the S3 object "releases/{current_release}/api.zip" exists in the bucket "{artifacts_bucket}"
    And the S3 object "releases/{current_release}/api.zip" in the bucket "{artifacts_bucket}" has tag "release" set to "{current_release}"
    And the S3 object "releases/{current_release}/api.zip" in the bucket "{artifacts_bucket}" has tag "qa" set to "passed"
    And the S3 bucket "{artifacts_bucket}" has versioning enabled

  Scenario: 4 - The previous release can be rolled back to
    Then the S3 object "releases/{previous_release}/api.zip" exists in the bucket "{artifacts_bucket}"
    And the S3 object "releases/{previous_release}/api.zip" in the bucket "{artifacts_bucket}" has tag "release" set to "{previous_release}"

  Scenario: 5 - Deploy, then validate
    Given manual: deploy through the pipeline after features/deployment/pre_deployment_checklist.feature passed
    * manual: run features/deployment/post_deploy_validation.feature against the environment (PROD: also features/deployment/post_deploy_validation_prod.feature) and attach its reports/results.json to the release ticket
    * manual: announce the release in #platform-deployments with the release notes; close the ticket once the validation passed
