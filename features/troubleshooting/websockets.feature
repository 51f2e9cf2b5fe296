@owner:platform-team @severity:high @reviewed:2026-12-02 @operational @troubleshooting
Feature: Troubleshooting WebSocket connections and their Redis
  Purpose:
    One scenario per known cause of WebSocket failures: the Redis that carries the WebSocket
    messages is down or slow, out of memory, or no longer the master after a failover. Each checks
    that the cause is absent; when it is present, the scenario fails and the console prints its
    Resolution paragraph.

  When to use:
    Clients cannot connect over WebSocket, or connect and receive no messages; the WebSocket error
    alert fires. For HTTP errors of the API see features/troubleshooting/api.feature.

  Prerequisites:
    - Network access to the Redis server declared as websockets in runbooks.toml, and a user allowed
      PING and INFO (+ping +info).
    - Access to the API logs (the WebSocket manager logs its Redis errors).

  Escalation:
    - Redis down or refusing connections in PROD: the platform on-call at once.
    - Memory at the limit with the noeviction policy: writes fail; the platform on-call at once.

  Rollback:
    Nothing to roll back: this runbook only reads. A failover or a memory change is a change of its
    own, under a change ticket.

  References:
    - features/troubleshooting/api.feature
    - features/operations/startup.feature

  Background: the checks run against the intended environment
    Given the AWS account is "{account_id}"

  @requires:redis
  Scenario: Redis down or slow
    Symptom:
      WebSocket connections fail or drop; the API logs Redis connection errors or timeouts.
    Root cause:
      The Redis server is stopped, restarting or loading its dataset, unreachable from the API hosts,
      or saturated (CPU, slow commands).
    Resolution:
      1. redis-cli -h HOST -p PORT --askpass PING from an API host; if refused, start Redis (features/operations/startup.feature).
      2. If slow: redis-cli SLOWLOG GET 10 and INFO cpu; look for big keys (redis-cli --bigkeys).
      3. Restart the API containers only after Redis answers, so their WebSocket managers reconnect.

    Then the Redis "websockets" answers PING within 100 ms

  @requires:redis
  Scenario: Redis out of memory
    Symptom:
      WebSocket messages stop arriving; the API logs OOM command not allowed when used memory > maxmemory.
    Root cause:
      The dataset grew to maxmemory (keys without TTL, a leak of subscriptions or sessions) and the
      eviction policy is noeviction, or no maxmemory is set and the host ran out of memory.
    Resolution:
      1. redis-cli INFO memory and --bigkeys: find what grows.
      2. Set a TTL on session keys; for a pure cache set maxmemory-policy allkeys-lru.
      3. Raise maxmemory or scale the instance under a change ticket.

    Then the Redis "websockets" uses less than 80% of its maxmemory

  @requires:redis
  Scenario: Redis is no longer the master after a failover
    Symptom:
      WebSocket clients connect but receive nothing, or the API logs READONLY You can't write against a read only replica.
    Root cause:
      A failover promoted another node; the API (or runbooks.toml) still points at the old master,
      which is now a replica, or the master lost its replicas.
    Resolution:
      1. redis-cli INFO replication on each node: find the current master.
      2. Point the API's Redis URL at the master (or at the Sentinel/primary endpoint) and restart the API.
      3. Bring the lost replica back and check master_link_status:up on it.

    Then the Redis "websockets" role is "master"
    And the Redis "websockets" has at least 1 connected replicas
