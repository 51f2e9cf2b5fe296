@owner:platform-team @severity:high @reviewed:2026-11-21 @operational @shutdown
Feature: Shut the platform down in dependency order
  Purpose:
    Take the platform down for maintenance without losing requests or data: stop traffic first, then
    the API, then the cache. The database (DynamoDB) stays up; it is managed and holds the data. Before
    anything stops, check that no infrastructure change is running and that the data is recoverable.

  When to use:
    Planned maintenance of the API hosts (patching, a Docker upgrade), a region exercise, or on the
    Incident Commander's order. Start again with features/operations/startup.feature.

  Prerequisites:
    - An approved change ticket and a maintenance notice published 24 hours ahead (PROD).
    - SSH access to the API hosts; read-only AWS access (`runbooks iam-policy`); amtool for the
      Alertmanager of the environment (stage 3: the window is silenced, so the on-call is not paged).

  Escalation:
    - A Terraform plan or apply holds the state lock: wait for it to finish, or ask its owner (the lock
      names who took it); never shut down mid-apply.
    - A state lock older than 30 minutes (stage 1 fails): ask its owner whether the run is dead before
      anyone force-unlocks it; only the platform on-call decides on `terraform force-unlock`.
    - The API does not drain within 10 minutes: the platform on-call decides whether to stop it anyway.

  Rollback:
    Start again in dependency order with features/operations/startup.feature.

  References:
    - features/operations/startup.feature
    - features/backup_recovery/backup_and_recovery.feature

  Background: the checks run against the intended account
    Given the AWS account is "{account_id}"

  Scenario: 1 - Nothing is changing the infrastructure
    Given manual: pause the deployment pipelines of this environment for the maintenance window, so no new plan or apply starts
    Then the Terraform lock table "{lock_table}" holds no lock older than 30 minutes
    * manual: if the check names a younger lock, a plan or apply is running: wait until it is released (re-run this scenario, or aws dynamodb scan --table-name {lock_table} --consistent-read --filter-expression 'attribute_exists(Info)' returns no item) before stopping anything

  @integrity
  Scenario: 2 - The data is recoverable before anything stops
    Then the DynamoDB table "{tenants_table}" can be restored to any point in the last 24 hours
    And the DynamoDB table "{audit_table}" can be restored to any point in the last 24 hours
    And the backup plan "{backup_plan}" exists

  @requires:alertmanager
  Scenario: 3 - The maintenance window is silenced
    Given manual: silence the platform's alerts for the window, with the change ticket in the comment: amtool silence add service=api --duration 2h --comment '<change ticket>' (and service=hosts if the hosts are patched)
    Then an Alertmanager silence covers "{service="api"}" for the next 90 minutes
    * manual: once the platform is started again (features/operations/startup.feature), expire the silence: amtool silence expire <ID>

  Scenario: 4 - Stop traffic
    Given manual: switch on the maintenance page
    * manual: deregister the API hosts from the load balancer target group and wait for the deregistration delay (300 s)
    * manual: check on the API dashboard that requests have dropped to zero

  Scenario: 5 - Stop the API, then the cache
    Given manual: on each API host: docker compose stop --timeout 30 api (in-flight requests finish)
    * manual: on each API host: check that nothing listens on port {api_port} any more: ss -ltn 'sport = :{api_port}'
    * manual: on each API host: docker compose stop cache
    * manual: leave the DynamoDB tables and the S3 buckets as they are: they hold the data and need no shutdown

  Scenario: 6 - Record the shutdown
    Given manual: post "platform stopped at <time UTC>" in #platform-ops and in the change ticket
