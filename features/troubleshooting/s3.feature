@owner:platform-team @severity:high @reviewed:2026-11-21 @operational @troubleshooting
Feature: Troubleshooting the S3 buckets
  Purpose:
    One scenario per known S3 issue of the platform. Each checks that the issue's symptom is absent;
    when it is present, the scenario fails and the console prints its Resolution paragraph.

  When to use:
    A deployment or post-deployment validation failed on a bucket, tenant sites render without
    templates, a security scan reports a public or unencrypted bucket, or the DR report shows
    templates missing in the replica region.

  Prerequisites:
    - Read-only access to the account, both regions (`runbooks iam-policy`); to apply a fix, the
      platform deploy role.
    - The infrastructure code of the storage stack checked out at the deployed release.

  Escalation:
    - A bucket is or was public: treat it as a security incident at once; page the Security team
      and follow features/incident_response/incident_response.feature.
    - Not resolved within 30 minutes in PROD: page the platform on-call.

  Rollback:
    The fixes here change bucket configuration through the storage stack; undo one by reverting its
    commit and applying again. Objects overwritten or deleted by mistake come back from their
    previous versions (features/rollback/standard_rollback.feature).

  References:
    - features/troubleshooting/dynamodb.feature
    - features/deployment/post_deploy_validation.feature
    - features/rollback/standard_rollback.feature

  Background: the checks run against the intended account
    Given the AWS account is "{account_id}"

  Scenario: Bucket missing
    Symptom:
      The API logs NoSuchBucket; the pipeline's upload step fails; a runbook says "the bucket does not exist".
    Root cause:
      The storage stack was not applied to this environment, the bucket name in the configuration does
      not match the environment, or the bucket was deleted.
    Resolution:
      1. aws s3api list-buckets --query 'Buckets[].Name' and compare with the configuration.
      2. Apply the storage stack for this environment (terraform plan, then apply).
      3. If it was deleted, recreate it with the stack and restore its content from the replica or the artefacts.

    Then the S3 bucket "{templates_bucket}" exists
    And the S3 bucket "{assets_bucket}" exists
    And the S3 bucket "{logs_bucket}" exists
    And the S3 bucket "{artifacts_bucket}" exists

  @integrity
  Scenario: Public access not blocked
    Symptom:
      A security scan (Security Hub, Config rule s3-bucket-level-public-access-prohibited) or this
      runbook reports public-access-block settings off.
    Root cause:
      The bucket was created outside the storage stack, the block was removed by hand to debug
      something, or the stack sets fewer than all four flags.
    Resolution:
      1. Re-block at once: aws s3api put-public-access-block --bucket BUCKET --public-access-block-configuration BlockPublicAcls=true,IgnorePublicAcls=true,BlockPublicPolicy=true,RestrictPublicBuckets=true.
      2. Set all four flags in the storage stack and apply.
      3. Check the bucket policy and ACLs for public grants, and CloudTrail (DeletePublicAccessBlock) for who removed it; tell the Security team.

    Then the S3 bucket "{templates_bucket}" blocks all public access
    And the S3 bucket "{assets_bucket}" blocks all public access
    And the S3 bucket "{logs_bucket}" blocks all public access
    And the S3 bucket "{artifacts_bucket}" blocks all public access

  @integrity
  Scenario: Versioning not enabled
    Symptom:
      Overwritten or deleted templates cannot be recovered; replication stopped; this runbook reports
      versioning Suspended or never enabled.
    Root cause:
      Versioning was suspended by hand (often to save cost) or the bucket was created without it.
      Replication needs versioning Enabled on both buckets.
    Resolution:
      1. aws s3api put-bucket-versioning --bucket BUCKET --versioning-configuration Status=Enabled.
      2. Set versioning in the storage stack and apply.
      3. Objects written while it was suspended have the null version only: check the recent uploads.

    Then the S3 bucket "{templates_bucket}" has versioning enabled
    And the S3 bucket "{logs_bucket}" has versioning enabled
    And the S3 bucket "{artifacts_bucket}" has versioning enabled

  Scenario: Templates not uploaded
    Symptom:
      Tenant sites render empty or the API logs NoSuchKey for templates/...; the deployment's upload
      step was skipped or failed.
    Root cause:
      The pipeline's template sync did not run (failed job, wrong bucket variable), or ran against
      another environment.
    Resolution:
      1. aws s3 ls s3://BUCKET/templates/ --recursive to see what is there.
      2. Re-run the pipeline's upload job for the deployed release, or aws s3 sync templates/ s3://BUCKET/templates/ from the release tag.
      3. Check the job's bucket variable for this environment.

    Then the S3 bucket "{templates_bucket}" holds at least 3 objects under "templates/"

  @integrity
  Scenario: Replication not configured
    Symptom:
      The DR report shows templates missing in the replica region; objects report no ReplicationStatus
      or FAILED.
    Root cause:
      The replication rule was not applied (it is PROD-style and lives in a separate module), the
      destination bucket or the replication role is missing, or versioning is off on either bucket.
    Resolution:
      1. aws s3api get-bucket-replication --bucket BUCKET to see the rules.
      2. Check that the replica bucket exists, that versioning is Enabled on both the source and the replica
         (aws s3api get-bucket-versioning --bucket BUCKET for each), and that the replication role exists.
      3. Enable versioning where it is off (aws s3api put-bucket-versioning --bucket BUCKET --versioning-configuration Status=Enabled), and set it in the storage stack.
      4. Apply the replication module of the storage stack; then copy existing objects with S3 Batch Replication.

    Given the S3 bucket "{replica_bucket}" exists
    Then the S3 bucket "{templates_bucket}" replicates to "{replica_bucket}"
    And the S3 bucket "{templates_bucket}" has versioning enabled
    And the S3 bucket "{replica_bucket}" has versioning enabled

  @integrity
  Scenario: Encryption not configured
    Symptom:
      A security scan reports a bucket without default encryption, or with SSE-S3 where KMS is required.
    Root cause:
      The bucket was created outside the storage stack, or its encryption block was changed by hand.
    Resolution:
      1. aws s3api get-bucket-encryption --bucket BUCKET.
      2. Set the default encryption in the storage stack (AES256, or aws:kms with the environment's key for assets) and apply.
      3. Objects written before keep their old encryption: re-copy them in place if policy requires it.

    Then the S3 bucket "{templates_bucket}" is encrypted with "AES256"
    And the S3 bucket "{logs_bucket}" is encrypted with "AES256"
    And the S3 bucket "{artifacts_bucket}" is encrypted with "AES256"
    And the S3 bucket "{assets_bucket}" is encrypted with "aws:kms"
