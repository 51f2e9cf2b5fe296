@owner:platform-team @severity:high @reviewed:2026-12-02 @integrity @database @backup
Feature: Database backup verification
  Purpose:
    Prove that the PostgreSQL database can be recovered: WAL archiving is on and succeeding (what
    point-in-time recovery needs), the replica is close behind, and the quarterly restore drill
    brings a backup back as a database whose data answers the same questions as production.

  When to use:
    Daily (scheduled run), before every migration (features/database/migrations.feature), and for
    the quarterly restore drill. For DynamoDB and S3 data use
    features/backup_recovery/backup_and_recovery.feature.

  Prerequisites:
    - The checks' read-only database role (pg_monitor) and runbooks.toml naming the databases app,
      app_replica and, for the drill, restore_check.
    - For the drill: a scratch server or instance to restore into, and the backup tool's credentials
      (pgBackRest, Barman or the provider's snapshots).

  Escalation:
    - WAL archiving failing or more than 15 minutes old: the platform on-call the same hour
      (point-in-time recovery is no longer possible past the last archived segment).
    - The restore drill fails or takes longer than the 4-hour recovery time objective: the
      Infrastructure Lead, and a high-severity ticket.

  Rollback:
    Nothing to roll back: this runbook only reads. Drop the scratch restore when the drill is done.

  References:
    - features/database/migrations.feature
    - features/backup_recovery/backup_and_recovery.feature

  Background: the checks run against the intended environment
    Given the AWS account is "{account_id}"

  @requires:postgres
  Scenario: WAL archiving is on and succeeding
    Then the query "SELECT current_setting('archive_mode')" on the database "app" returns "on"
    And the query "SELECT now() - last_archived_time FROM pg_stat_archiver" on the database "app" returns less than 900
    And the query "SELECT last_failed_time IS NULL OR last_failed_time < last_archived_time FROM pg_stat_archiver" on the database "app" returns "true"

  @requires:postgres
  Scenario: The replica is close behind the primary
    Then the database "app_replica" is a replica lagging less than 60 s

  Scenario: Verify the latest base backup
    Given manual: pgbackrest --stanza=app info (or the provider's snapshot list): the latest full backup is less than 7 days old and the latest backup less than 26 hours
    * manual: pgbackrest --stanza=app verify (or pg_verifybackup on a copied base backup): no error

  Scenario: Restore drill - restore into a scratch database
    Given manual: restore the latest backup to the scratch server declared as restore_check (pgbackrest restore --target-time, or restore the snapshot), time it from start to a server that accepts connections
    * manual: record the duration against the 4-hour recovery time objective

  @requires:postgres
  Scenario: Restore drill - the restored database answers like production
    Given the database "restore_check" accepts connections within 5000 ms
    Then the database "restore_check" is at the migration head
    And the query "SELECT count(*) FROM pg_index WHERE NOT indisvalid" on the database "restore_check" returns "0"
    And the query "SELECT count(*) FROM pg_stat_user_tables" on the database "restore_check" returns at least 1
    * manual: compare row counts of the main tables with production at the restore point, then drop the scratch database and record the drill in the operations log
