@owner:platform-team @severity:high @reviewed:2026-12-02 @integrity @database
Feature: Database integrity checks
  Purpose:
    Catch silent damage in the PostgreSQL database before it becomes an outage or data loss: indexes
    left invalid by a failed build, constraints never validated, data-page checksum failures, and
    transaction-ID wraparound approaching. Then the deep check of tables and indexes (amcheck).

  When to use:
    Weekly (scheduled run), after a failed or cancelled migration, after a crash or a failover, and
    after a restore (features/database/backup_verification.feature).

  Prerequisites:
    - The checks' read-only database role (pg_monitor); for amcheck, a role allowed to use the amcheck
      extension, in a quiet hour (it reads every index).

  Escalation:
    - Checksum failures or amcheck errors: the platform on-call at once; stop writes to the affected
      table if the owner agrees, and plan a restore (features/database/backup_verification.feature).
    - Wraparound headroom below the threshold: the platform on-call the same day (autovacuum must
      freeze before PostgreSQL stops accepting writes).

  Rollback:
    Nothing to roll back: this runbook only reads. Repairs (REINDEX, VALIDATE CONSTRAINT, VACUUM
    FREEZE) are changes of their own, made under a change ticket.

  References:
    - features/database/migrations.feature
    - features/database/backup_verification.feature

  Background: the checks run against the intended environment
    Given the AWS account is "{account_id}"

  @requires:postgres
  Scenario: No invalid index and no unvalidated constraint
    Then the query "SELECT count(*) FROM pg_index WHERE NOT indisvalid" on the database "app" returns "0"
    And the query "SELECT count(*) FROM pg_constraint WHERE NOT convalidated" on the database "app" returns "0"
    * manual: an invalid index comes from a failed CREATE INDEX CONCURRENTLY: drop it and build it again; an unvalidated constraint: ALTER TABLE ... VALIDATE CONSTRAINT

  @requires:postgres
  Scenario: No data-page checksum failure
    Then the query "SELECT coalesce(sum(checksum_failures), 0) FROM pg_stat_database" on the database "app" returns "0"

  @requires:postgres
  Scenario: Transaction-ID wraparound is far away
    Then the query "SELECT max(age(datfrozenxid)) FROM pg_database" on the database "app" returns less than 500000000
    And the query "SELECT count(*) FROM pg_stat_activity WHERE state = 'idle in transaction' AND state_change < now() - interval '1 hour'" on the database "app" returns "0"

  Scenario: Deep check of tables and indexes
    Given manual: pg_amcheck --heapallindexed --database app (with the amcheck extension installed), in a quiet hour
    * manual: any corruption reported: follow Escalation; keep the output in the ticket
