# Security incident response: the first checks of the incident commander, then containment by people.
#
# On sandbox-drifted it fails for four reasons: the audit trail's logging was stopped (scenario 1), the
# root user has no MFA (scenario 2), the pipeline user's access key is 200 days old and unused for 120
# days (scenario 3), and the logs bucket lost its public-access block (scenario 4).

@owner:security-team @severity:critical @reviewed:2026-12-02 @integrity @incident @security
Feature: Security incident response - first checks and containment
  Purpose:
    What the incident commander of a suspected security incident establishes in the first 15 minutes:
    whether the audit trail is recording (without it nothing that follows can be proven), whether the
    root account is locked down, which long-lived credentials exist and whether they are used, and
    whether any data is public. Containment, evidence and recovery follow in that order; they are
    people's work and each is a manual step here.

  When to use:
    A credential is reported leaked (a key in a public repository, a secret-scanning alert), GuardDuty or
    Security Hub raises a high-severity finding, CloudTrail shows activity nobody recognises, or a bucket
    was found public. For an availability incident without a security angle, use
    features/incident_response/incident_response.feature instead.

  Prerequisites:
    - The incident channel (#sec-inc-YYYYMMDD-short-name) and an incident commander from the security team.
    - Read-only access to the account (`runbooks iam-policy`: iam:GetAccessKeyLastUsed,
      iam:GetAccountSummary and cloudtrail:GetTrailStatus included); for containment, the break-glass role,
      used by two people together.

  Escalation:
    - At once: the Security team lead and the Infrastructure Lead, whatever the severity.
    - Customer data possibly exposed: the Data Protection Officer within 1 hour (regulatory clocks start at
      discovery, e.g. 72 hours under GDPR).
    - The audit trail was stopped, or the root user is involved: critical; page the Engineering Manager.

  Rollback:
    Containment is undone deliberately, never by default: a deactivated key is activated again only once
    its owner is known and the key is rotated. Infrastructure the attacker changed is restored from its
    code (features/rollback/standard_rollback.feature), data from its backups
    (features/backup_recovery/backup_and_recovery.feature).

  References:
    - features/incident_response/incident_response.feature
    - features/troubleshooting/s3.feature
    - features/rollback/standard_rollback.feature
    - features/backup_recovery/backup_and_recovery.feature
    - docs/operators.md

  Background: the checks run against the intended account
    Given the AWS account is "{account_id}"

  Scenario: 1 - The audit trail is recording
    Then the CloudTrail trail "{trail}" is logging
    And the CloudTrail trail "{trail}" is multi-region
    And the CloudTrail trail "{trail}" validates its log files
    And the S3 bucket "{trail_bucket}" blocks all public access
    And the S3 bucket "{trail_bucket}" has versioning enabled
    * manual: if logging was stopped, start it first (aws cloudtrail start-logging --name {trail}) and write down the gap: who called StopLogging, and when, is the first lead

  Scenario: 2 - The root account is locked down
    Then the AWS root account has MFA enabled
    And the AWS root account has no access keys
    * manual: look for root activity of the last 90 days: aws cloudtrail lookup-events --lookup-attributes AttributeKey=Username,AttributeValue=root --max-results 50

  Scenario: 3 - Long-lived credentials are few, young and in use
    Then no IAM user has an active access key older than 90 days
    And no IAM user has an active access key unused for 90 days
    * manual: for the key reported leaked: aws iam get-access-key-last-used --access-key-id KEY (where it was used last), then its user's CloudTrail events (what it did): aws cloudtrail lookup-events --lookup-attributes AttributeKey=AccessKeyId,AttributeValue=KEY

  Scenario: 4 - No data is public
    Then every S3 bucket matching "{bucket_pattern}" blocks all public access
    * manual: for each bucket reported: its policy and ACLs (aws s3api get-bucket-policy-status --bucket BUCKET) and who removed the block (CloudTrail: DeletePublicAccessBlock, PutBucketPolicy); re-block it with features/troubleshooting/s3.feature

  Scenario: 5 - Contain
    Given manual: deactivate, do not delete, each compromised access key: aws iam update-access-key --user-name USER --access-key-id KEY --status Inactive
    * manual: revoke the sessions it may have opened: for each role it could assume, "Revoke active sessions" in the IAM console (a deny on aws:TokenIssueTime before now)
    * manual: rotate every secret the identity could read (Secrets Manager, the pipeline's variables, database passwords), starting with PROD
    * manual: re-block public buckets at once (features/troubleshooting/s3.feature, scenario "Public access not blocked"), and stop workloads the attacker started
    * manual: post in the incident channel what was contained, when, by whom

  Scenario: 6 - Preserve the evidence
    Given manual: copy the CloudTrail logs of the incident window from {trail_bucket} to the evidence bucket (object lock), and prove them untouched: aws cloudtrail validate-logs --trail-arn ARN --start-time START
    * manual: snapshot what the attacker touched before changing it (DynamoDB on-demand backups, S3 object versions), tagged with the incident id
    * manual: keep the timeline in the incident channel: each finding with its time (UTC) and its source

  Scenario: 7 - Recover and review
    Given manual: remove what the attacker created (users, access keys, roles, policies, resources), found from the CloudTrail events of the compromised identity
    * manual: restore changed infrastructure from its code (a terraform plan shows the drift) and damaged data with features/backup_recovery/backup_and_recovery.feature
    * manual: run this runbook again: every check passes before the incident is closed
    * manual: the post-incident review within 5 business days: timeline, root cause, what detected it and how fast, actions with owners
