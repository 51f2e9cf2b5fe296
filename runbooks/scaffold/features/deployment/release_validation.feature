@owner:platform-team @severity:high @reviewed:__TODAY__ @integrity @deployment
Feature: Release validation: the release bundle and the order data are in place
  Purpose:
    Confirm after a release that its bundle was uploaded to the artefact bucket, that the bucket keeps
    old versions (a rollback redeploys the previous bundle), and that the orders table can be restored.
    It shows a built-in step and a step of this project (steps/storage.py) side by side.

  When to use:
    After every release, as the pipeline's post-deployment gate; by hand when a deployment looks
    incomplete. Not for incidents in the running service: use the troubleshooting runbooks.

  Prerequisites:
    - Read-only access to the account (the policy from `runbooks iam-policy`).
    - The release tag of the deployment (the environment's `release` variable).

  Escalation:
    - The bundle is missing after a release: the release manager, in the deployment channel.
    - Versioning or point-in-time recovery is off: the platform on-call, at once.

  Rollback:
    Nothing to roll back: this runbook only reads. To undo a release, redeploy the previous bundle.

  References:
    - steps/storage.py
    - infra/sandbox_stack.toml

  Background: the checks run against the intended account
    Given the AWS account is "{account_id}"

  Scenario: The release bundle is uploaded to a versioned bucket
    Given the S3 bucket "{artifacts_bucket}" exists
    Then the S3 bucket "{artifacts_bucket}" has versioning enabled
    And the S3 object "releases/{release}/bundle.tar.gz" in the bucket "{artifacts_bucket}" is not empty
    * manual: announce the release in the deployment channel, with the change ticket

  Scenario: The orders can be restored to any point in time
    Then the DynamoDB table "{orders_table}" is active
    And the DynamoDB table "{orders_table}" has point-in-time recovery enabled
