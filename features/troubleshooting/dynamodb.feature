@owner:platform-team @severity:high @reviewed:2026-11-21 @operational @troubleshooting
Feature: Troubleshooting the DynamoDB tables
  Purpose:
    One scenario per known DynamoDB issue of the platform. Each checks that the issue's symptom is
    absent; when it is present, the scenario fails and the console prints its Resolution paragraph.
    Run the whole file to find which known issue you have, or one scenario by name.

  When to use:
    A deployment or post-deployment validation failed on a table, the API logs DynamoDB errors
    (ResourceNotFoundException, AccessDeniedException, ValidationException on an index), or a
    compliance scan reports a table without PITR, backups or tags.

  Prerequisites:
    - Read-only access to the account (`runbooks iam-policy`); to apply a fix, the platform deploy role.
    - The infrastructure code of the data stack checked out at the deployed release.

  Escalation:
    - Not resolved within 30 minutes in PROD, or data may be lost: page the platform on-call and open
      an incident (features/incident_response/incident_response.feature).
    - Access denied that the role's policy does not explain: the Security team (possible SCP or key policy).

  Rollback:
    The fixes here change configuration through the data stack; undo one by reverting its commit and
    applying again. To recover data, follow features/backup_recovery/backup_and_recovery.feature.

  References:
    - features/troubleshooting/s3.feature
    - features/troubleshooting/api.feature
    - features/backup_recovery/backup_and_recovery.feature
    - docs/steps.md

  Background: the checks run against the intended account
    Given the AWS account is "{account_id}"

  Scenario: Table not found
    Symptom:
      The API logs ResourceNotFoundException ("Requested resource not found"); /health/ready reports
      dynamodb as failing; a runbook says "the table does not exist".
    Root cause:
      The data stack was not applied to this environment (or its apply failed half-way), the table
      name in the API configuration does not match the environment, or the table was deleted.
    Resolution:
      1. Check the name: aws dynamodb list-tables and compare with the API configuration.
      2. If the table is missing, apply the data stack for this environment (terraform plan, then apply).
      3. If it was deleted, restore it from PITR or a backup (features/backup_recovery/backup_and_recovery.feature).

    Then the DynamoDB table "{tenants_table}" is active
    And the DynamoDB table "{audit_table}" is active

  Scenario: Global secondary index not active
    Symptom:
      Queries by email or by actor fail with ValidationException ("The table does not have the
      specified index") or are throttled while the index shows CREATING.
    Root cause:
      The index was never created (an apply failed on the GSI), or it is still backfilling after
      being added to a large table.
    Resolution:
      1. aws dynamodb describe-table --table-name TABLE --query 'Table.GlobalSecondaryIndexes[].[IndexName,IndexStatus]'.
      2. CREATING: wait for the backfill; watch OnlineIndexPercentageProgress. Do not apply again meanwhile.
      3. Missing: add the index to the data stack and apply; check the apply log for the GSI error.

    Then the DynamoDB table "{tenants_table}" has an active global secondary index "email-index"
    And the DynamoDB table "{audit_table}" has an active global secondary index "actor-index"

  @integrity
  Scenario: Point-in-time recovery not enabled
    Symptom:
      The compliance scan or this runbook reports PointInTimeRecoveryStatus DISABLED; a restore to a
      point in time is impossible.
    Root cause:
      The table was created without PITR (flag missing in the data stack), or someone disabled it by
      hand; re-enabling starts a new window, so the history before it is lost.
    Resolution:
      1. Enable it now: aws dynamodb update-continuous-backups --table-name TABLE --point-in-time-recovery-specification PointInTimeRecoveryEnabled=true.
      2. Set point_in_time_recovery in the data stack so the next apply keeps it, and apply.
      3. Find out from CloudTrail (UpdateContinuousBackups) who disabled it; tell the Security team.

    Then the DynamoDB table "{tenants_table}" has point-in-time recovery enabled
    And the DynamoDB table "{audit_table}" has point-in-time recovery enabled

  @integrity
  Scenario: Backup plan missing
    Symptom:
      No AWS Backup jobs for the tables; the backup vault holds no recent recovery points; this
      runbook reports no backup plan with the expected name.
    Root cause:
      The backup stack was not applied to this environment, or the plan was renamed or deleted.
    Resolution:
      1. aws backup list-backup-plans to see what exists.
      2. Apply the backup stack for this environment; it creates the plan, the vault and the selection.
      3. Confirm the selection covers the tables (features/backup_recovery/backup_and_recovery.feature).

    Then the backup plan "{backup_plan}" exists

  Scenario: Incorrect tags
    Symptom:
      Costs are not attributed to the team, alerts are routed to nobody, or a tag-based backup
      selection skips the table; this runbook reports a missing or different tag.
    Root cause:
      Tags are set by the data stack; a table created by hand or edited in the console drifts from it.
    Resolution:
      1. aws dynamodb list-tags-of-resource --resource-arn TABLE_ARN to see the tags.
      2. Set the tags in the data stack and apply (do not tag by hand: the next apply would differ).
      3. If the owner tag is missing on the audit table, tell the security team, which owns it.

    Then the DynamoDB table "{tenants_table}" has tag "owner" set to "{owner}"
    And the DynamoDB table "{tenants_table}" has tag "environment" set to "{environment}"
    And the DynamoDB table "{audit_table}" has tag "owner" set to "{security_owner}"
    And the DynamoDB table "{audit_table}" has tag "environment" set to "{environment}"

  Scenario: Access denied
    Symptom:
      The API or the pipeline logs AccessDeniedException on a DynamoDB call (GetItem, PutItem, Query)
      that names its role and the table. This runbook's own steps pass: it reads with another role.
    Root cause:
      The API role lacks the action (its policy changed or was not yet applied), the API runs with
      credentials of another account, an SCP or a permissions boundary denies it, or a KMS key policy
      refuses the role. The checks here run with the runbook's read-only role, not the API role: they
      can show that the table exists and is active in the intended account, never what the API role
      may do; that takes the IAM policy simulator and CloudTrail (the manual steps).
    Resolution:
      1. The checks below fail: the table is missing or not active, so follow "Table not found" first.
      2. aws iam simulate-principal-policy --policy-source-arn API_ROLE_ARN --action-names dynamodb:GetItem dynamodb:PutItem dynamodb:Query --resource-arns TABLE_ARN; read EvalDecision, MatchedStatements and OrganizationsDecisionDetail.
      3. implicitDeny: add the actions to the API role's policy in the IAM stack and apply; explicitDeny: find the denying policy, boundary or SCP (Security team for an SCP); all allowed: suspect the KMS key policy or a session policy.
      4. CloudTrail: who changed the role (aws cloudtrail lookup-events --region us-east-1 --lookup-attributes AttributeKey=ResourceName,AttributeValue=API_ROLE_NAME), and the denied calls if the trail records DynamoDB data events.
      5. A step of this runbook itself ends in ERROR "access denied": the runbook role lacks a permission; compare it with `runbooks iam-policy`.

    Then the DynamoDB table "{tenants_table}" is active
    And the DynamoDB table "{audit_table}" is active
    * manual: aws iam simulate-principal-policy --policy-source-arn <api role arn> --action-names dynamodb:GetItem dynamodb:PutItem dynamodb:Query --resource-arns <table arn> for {tenants_table} and for {audit_table}; every EvalDecision must be "allowed"
    * manual: look the denial up in CloudTrail: aws cloudtrail lookup-events --region us-east-1 --lookup-attributes AttributeKey=ResourceName,AttributeValue=<api role name> for changes to the role; the denied GetItem/PutItem/Query calls (errorCode AccessDenied, userIdentity the API role) only in a trail that records DynamoDB data events
