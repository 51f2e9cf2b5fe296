@owner:platform-team @severity:high @reviewed:2026-12-02 @integrity @database @migrations
Feature: Database migration to head, and rollback by one
  Purpose:
    Apply a release's schema migrations (alembic upgrade head) safely: the database is reachable
    with room to spare, nothing holds long locks, a backup exists, and afterwards the database is
    exactly at the release's head revision. Also the rollback of one migration (alembic downgrade -1)
    and the check that it left the database one revision behind the head.

  When to use:
    In every deployment whose release adds migrations, before the new application version takes
    traffic (features/deployment/pre_deployment_checklist.feature), and when the last migration
    must be undone because of a rollback (features/rollback/standard_rollback.feature).
    Not for data repairs: restore from backup instead (features/database/backup_verification.feature).

  Prerequisites:
    - A checkout of the release being deployed; runbooks.toml points the database's migrations at
      its alembic directory, so the checks know the head revision.
    - The migration credentials of the application (the checks only read, with the read-only role).
    - The change ticket of the deployment and the backup or snapshot id taken in scenario 2.

  Escalation:
    - A migration fails half-way or the database is not at the head afterwards: stop the deployment,
      keep the old application version serving, and page the platform on-call.
    - Lock waits or long transactions do not clear within 15 minutes: the owning team's on-call decides
      to cancel them; in PROD the Infrastructure Lead approves.

  Rollback:
    Roll the application back first (features/rollback/standard_rollback.feature), then downgrade
    the schema by one (scenario 5). A downgrade that drops data is not a rollback: restore from the
    backup of scenario 2 instead.

  References:
    - features/database/backup_verification.feature
    - features/database/integrity.feature
    - features/deployment/pre_deployment_checklist.feature
    - features/rollback/standard_rollback.feature

  Background: the checks run against the intended environment
    Given the AWS account is "{account_id}"

  @requires:postgres
  Scenario: 1 - Before: the database is reachable, has headroom and no long transactions
    Given the database "app" accepts connections within 1000 ms
    Then the database "app" uses less than 80% of its max_connections
    And the query "SELECT count(*) FROM pg_stat_activity WHERE xact_start < now() - interval '5 minutes' AND backend_type = 'client backend'" on the database "app" returns "0"
    And the query "SELECT count(*) FROM pg_locks WHERE NOT granted" on the database "app" returns "0"

  Scenario: 2 - Before: take a backup you can restore from
    Given manual: take a snapshot or a logical backup (pg_dump -Fc -f app-<release>.dump app) and record its id in the change ticket
    * manual: confirm the latest backup verification passed (features/database/backup_verification.feature)

  Scenario: 3 - Apply the migrations
    Given manual: from the release checkout, with the migration credentials: alembic upgrade head
    * manual: read alembic's output to the end; on an error, stop here and follow Escalation

  @requires:postgres
  Scenario: 4 - After: the database is at the release's head and serves connections
    Given the database "app" accepts connections within 1000 ms
    Then the database "app" is at the migration head
    And the query "SELECT count(*) FROM pg_index WHERE NOT indisvalid" on the database "app" returns "0"
    And the database "app" uses less than 80% of its max_connections
    * manual: deploy the application version of the release (features/deployment/post_deploy_validation.feature)

  Scenario: 5 - Roll back the last migration
    Given manual: roll the application back to the previous release first, then from the release checkout: alembic downgrade -1
    * manual: read alembic's output to the end; if the downgrade drops data, stop and restore from the backup of scenario 2 instead

  @requires:postgres
  Scenario: 6 - After the rollback: the database is one migration behind the head
    Given the database "app" accepts connections within 1000 ms
    Then the database "app" is one migration behind the head
    * manual: record the revision the database is at (alembic current) in the change ticket
