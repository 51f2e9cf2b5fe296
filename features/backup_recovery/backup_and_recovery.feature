@owner:platform-team @severity:high @reviewed:2026-11-21 @integrity @backup
Feature: Backup and recovery readiness
  Purpose:
    Prove that the platform's data can be recovered: the AWS Backup plan exists and covers the
    tables, the vault holds a recent recovery point of each, the tables can be restored to any point
    of the last 7 days, and objects keep their versions and a copy in the DR region. Also the
    procedure to restore, and the quarterly restore drill.

  When to use:
    Daily (scheduled run), before every PROD deployment, after any change to the backup stack, and
    when you must restore data (go to the scenario "Restore a table").

  Prerequisites:
    - Read-only access: the policy printed by `runbooks iam-policy features/backup_recovery/backup_and_recovery.feature`
      (AWS Backup, DynamoDB, S3 and STS read actions; generated from the steps, so it is complete).
    - To restore: the platform deploy role and the incident or change ticket that asks for it.

  Escalation:
    - No recovery point newer than 26 hours, or a table not covered: the platform on-call the same
      working day; two days in a row is a high-severity incident.
    - PITR off on the audit table: the Security team at once (compliance record).
    - A restore needed in PROD: the Incident Commander and the Infrastructure Lead approve it.

  Rollback:
    Restores create new tables and new object versions; nothing is overwritten, so switching back is
    a configuration change (see features/rollback/standard_rollback.feature).

  References:
    - features/rollback/standard_rollback.feature
    - features/troubleshooting/dynamodb.feature
    - features/troubleshooting/s3.feature

  Background: the checks run against the intended account
    Given the AWS account is "{account_id}"

  Scenario: The backup plan exists
    Then the backup plan "{backup_plan}" exists

  @requires:aws-backup
  Scenario: The backup plan covers every table
    Then the backup plan "{backup_plan}" protects the DynamoDB table "{tenants_table}"
    And the backup plan "{backup_plan}" protects the DynamoDB table "{audit_table}"

  @requires:aws-backup
  Scenario: The vault holds a recent recovery point of every table
    Then the backup vault "{backup_vault}" holds a recovery point of "{tenants_table}" newer than 26 hours
    And the backup vault "{backup_vault}" holds a recovery point of "{audit_table}" newer than 26 hours

  Scenario: Tables can be restored to any point of the last 7 days
    Then the DynamoDB table "{tenants_table}" can be restored to any point in the last 168 hours
    And the DynamoDB table "{audit_table}" can be restored to any point in the last 168 hours

  Scenario: Objects keep their versions and a copy in the DR region
    Then the S3 bucket "{templates_bucket}" has versioning enabled
    And the S3 bucket "{artifacts_bucket}" has versioning enabled
    And the S3 bucket "{templates_bucket}" replicates to "{replica_bucket}"
    And the S3 bucket "{replica_bucket}" has versioning enabled

  Scenario: Restore a table
    Given manual: get the restore approved (Prerequisites) and agree the restore point (UTC) with the data owner
    * manual: aws dynamodb restore-table-to-point-in-time --source-table-name <table> --target-table-name <table>-restore-<date> --restore-date-time <restore point>
    * manual: or from AWS Backup: aws backup start-restore-job --recovery-point-arn <arn from the vault {backup_vault}> --iam-role-arn <backup role> --metadata TargetTableName=<table>-restore-<date>
    * manual: wait for the new table to be ACTIVE, compare item counts and samples with the owner, then repair or switch over

  Scenario: Quarterly restore drill
    Given manual: restore {tenants_table} to a scratch table in SIT, time it, and record the duration against the 4-hour recovery time objective
    * manual: delete the scratch table and record the drill in the operations log
