@owner:platform-team @severity:high @reviewed:2026-11-21 @operational @startup
Feature: Start the platform in dependency order
  Purpose:
    Bring the platform up after a planned shutdown or a host restart, in the order its dependencies
    need: the database (DynamoDB tables) first, then the cache, then the API, and only then traffic.
    Each stage is checked before the next one starts.

  When to use:
    After features/operations/shutdown.feature (maintenance, host patching, a region exercise), or
    when the API hosts were restarted. Not for a single failing container: see
    features/troubleshooting/api.feature.

  Prerequisites:
    - SSH access to the API hosts and the docker compose project of the release in service (it
      publishes the API on port {api_port} of each host, the port stage 4 checks).
    - Read-only AWS access (`runbooks iam-policy`).
    - The maintenance page is still on (traffic opens in the last stage).

  Escalation:
    - A stage does not pass within 15 minutes: the platform on-call.
    - The tables are not ACTIVE or are missing: stop, page the on-call, and follow
      features/troubleshooting/dynamodb.feature before starting anything else.

  Rollback:
    Stop what you started, in reverse order (features/operations/shutdown.feature), and keep the
    maintenance page on.

  References:
    - features/operations/shutdown.feature
    - features/troubleshooting/api.feature
    - features/troubleshooting/dynamodb.feature

  Background: the checks run against the intended account
    Given the AWS account is "{account_id}"

  Scenario: 1 - The database is available
    Then the DynamoDB table "{tenants_table}" is active
    And the DynamoDB table "{audit_table}" is active
    And the DynamoDB table "{tenants_table}" has an active global secondary index "email-index"
    And the DynamoDB table "{audit_table}" has an active global secondary index "actor-index"
    * manual: DynamoDB is managed and has nothing to start; if a table is not ACTIVE, do not continue

  @requires:docker
  Scenario: 2 - The cache starts before the API
    Given manual: on each API host: docker compose up -d cache
    Then the container "cache" is running
    And the container "cache" is healthy
    * manual: the checks look at one API host (the host and Docker engine declared as api in runbooks.toml); on every other API host: docker compose ps cache shows it running (healthy)

  @requires:docker
  Scenario: 3 - The API container starts on the cache and the database
    Given manual: on each API host: docker compose up -d api
    Then the container "api" is running
    And the container "api" is healthy
    And the container "api" has restarted at most 0 times
    * manual: on every other API host: docker compose ps api shows it running (healthy), not restarting

  @requires:hosts
  Scenario: 4 - The API listens on its port
    Then on host "api", port {api_port} is listening
    And on host "api", the file "/etc/resolv.conf" exists
    And on host "api", the filesystem "/" has at least 5% free space
    * manual: on every other API host: ss -ltn 'sport = :{api_port}' lists the port as LISTEN

  Scenario: 5 - The API reports every dependency ready
    Given the service "api" answers GET "/health/live" with status 200 within 500 ms
    When I GET "/health/ready" from "api"
    Then the response status is 200
    And the response JSON at "/checks/dynamodb" is "ok"
    And the response JSON at "/checks/s3" is "ok"
    And the response JSON at "/checks/cache" is "ok"

  Scenario: 6 - Open traffic
    Given manual: register the API hosts with the load balancer target group and wait until they are healthy there
    * manual: switch off the maintenance page; post "platform started" in #platform-ops
    * manual: run features/operations/daily_operations.feature after 15 minutes of traffic
