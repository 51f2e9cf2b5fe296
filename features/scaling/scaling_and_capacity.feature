# Scaling and capacity: verify, scale (a person), verify again.
#
# On sandbox-drifted it fails for two reasons: the audit table's auto-scaling was removed (no scalable
# target and no policy: its capacity stays at 10 write units whatever the traffic), and the tenants table
# throttled 71 requests over the last 15 minutes (CloudWatch ThrottledRequests). Both the "before" and the
# "after" checks catch them; the container scenario needs a Docker engine and is skipped in both sandboxes.

@owner:platform-team @severity:medium @reviewed:2026-12-02 @operational @scaling
Feature: Scaling and capacity planning
  Purpose:
    Keep capacity ahead of the traffic: each table in the capacity mode of the plan, the provisioned
    table auto-scaling within the planned range with a target tracking policy, no throttled requests,
    and API hosts with memory and disk to spare. A scale action is done by a person between two
    verifications: the same checks before and after it, so the change is proven, not assumed.

  When to use:
    - The throttling alarm fires ({throttle_alarm}) or daily operations reports a capacity warning.
    - Before a planned peak (a campaign, a backfill that writes a table), and at the quarterly capacity review.
    Run it in stages: `runbooks verify --env prod --tags '@before' features/scaling/scaling_and_capacity.feature`,
    then the change: `runbooks verify --env prod --tags '@scale' features/scaling/scaling_and_capacity.feature`,
    then `runbooks verify --env prod --tags '@after' features/scaling/scaling_and_capacity.feature`.
    Not for an outage: start with features/incident_response/incident_response.feature.

  Prerequisites:
    - Read-only AWS access (`runbooks iam-policy`: application-autoscaling:Describe*, cloudwatch:GetMetricStatistics
      included); the platform deploy role to apply the change through the pipeline.
    - The capacity plan: the environment's vars audit_read_min/max and audit_write_min/max in runbooks.toml. A
      new range is changed there and in the data stack in one pull request.

  Escalation:
    - Throttling goes on 15 minutes after the scale action: page the platform on-call.
    - A table needs more than its planned maximum, or PROD API hosts are added: the Infrastructure Lead
      approves (cost) before the change.

  Rollback:
    Revert the pull request of the change and apply it: auto-scaling brings the capacity back within the
    old range. DynamoDB limits capacity decreases per day (NumberOfDecreasesToday in describe-table) and
    allows one switch to on-demand per 24 hours: plan a scale-down, do not bounce.

  References:
    - features/operations/daily_operations.feature
    - features/troubleshooting/dynamodb.feature
    - features/incident_response/incident_response.feature
    - docs/steps.md

  Background: the checks run against the intended account
    Given the AWS account is "{account_id}"

  @before
  Scenario: 1 - Before: the tables are in the capacity mode of the plan
    Then the DynamoDB table "{tenants_table}" has billing mode "PAY_PER_REQUEST"
    And the DynamoDB table "{audit_table}" has billing mode "PROVISIONED"
    And the DynamoDB table "{audit_table}" auto-scales its read capacity between {audit_read_min} and {audit_read_max} units
    And the DynamoDB table "{audit_table}" auto-scales its write capacity between {audit_write_min} and {audit_write_max} units
    And the DynamoDB table "{audit_table}" has a target tracking policy for its read capacity
    And the DynamoDB table "{audit_table}" has a target tracking policy for its write capacity

  @before
  Scenario: 2 - Before: nothing is throttled
    Then the sum of the CloudWatch metric "ThrottledRequests" in "AWS/DynamoDB" for "TableName={tenants_table}" over the last 15 minutes is at most 0
    And the sum of the CloudWatch metric "ThrottledRequests" in "AWS/DynamoDB" for "TableName={audit_table}" over the last 15 minutes is at most 0
    And the CloudWatch alarm "{throttle_alarm}" exists and is not in ALARM state

  @before
  Scenario: 3 - Before: the API hosts have headroom
    Then on host "api", memory usage is below 90%
    And on host "api", the filesystem "/" has at least 10% free space
    And on host "api", port {api_port} is listening
    * manual: on the API dashboard, CPU of each host at the last peak stayed below 70%; above that, the API needs hosts (scenario 5)

  @before @requires:docker
  Scenario: 4 - Before: the API container is not being restarted for lack of memory
    Then the container "api" is running
    And the container "api" has restarted at most 3 times
    * manual: if it restarts, docker inspect --format '{{.State.OOMKilled}}' on it tells whether the memory limit killed it

  @scale
  Scenario: 5 - Scale
    Given manual: DynamoDB, provisioned table: raise the range in the data stack (aws_appautoscaling_target min_capacity/max_capacity) and in the environment's vars, in one pull request; apply it through the pipeline
    * manual: DynamoDB, on-demand table that throttles: find the hot partition key first (CloudWatch Contributor Insights); on-demand follows traffic up to double its previous peak, a single hot key it does not spread
    * manual: API: raise the desired count of the API hosts' auto scaling group by what the dashboard calls for, and check that the new hosts are healthy in the load balancer's target group
    * manual: record in the change ticket what changed, why, and the values before and after

  @after
  Scenario: 6 - After: the new capacity is in place and nothing is throttled
    Then the DynamoDB table "{audit_table}" auto-scales its read capacity between {audit_read_min} and {audit_read_max} units
    And the DynamoDB table "{audit_table}" auto-scales its write capacity between {audit_write_min} and {audit_write_max} units
    And the sum of the CloudWatch metric "ThrottledRequests" in "AWS/DynamoDB" for "TableName={tenants_table}" over the last 15 minutes is at most 0
    And the sum of the CloudWatch metric "ThrottledRequests" in "AWS/DynamoDB" for "TableName={audit_table}" over the last 15 minutes is at most 0
    And on host "api", memory usage is below 90%
    * manual: watch the throttling and CPU graphs for 30 minutes; close the change ticket when they stay flat
