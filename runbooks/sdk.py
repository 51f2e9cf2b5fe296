"""The step SDK: everything a step module needs, and the only engine module step modules import.

A step is one phrase and one plain function::

    from runbooks.sdk import CheckContext, CheckResult, check

    @check('the SQS queue "{queue}" exists', permissions=("sqs:GetQueueUrl",),
           manual="aws sqs get-queue-url --queue-name {queue}")
    def queue_exists(ctx: CheckContext, queue: str) -> CheckResult:
        \"\"\"The queue exists in the environment's region.\"\"\"
        ctx.aws.read("sqs", "get_queue_url", QueueName=queue)
        return CheckResult.passed(f"sqs queue {queue}", "queue exists", "queue exists")

- Return ``CheckResult.passed``/``failed`` for a verdict about the infrastructure; raise
  :class:`Finding` to end a check early with a result.
- Let "could not check" exceptions escape (or raise :class:`CouldNotCheck`): the engine classifies them
  (:func:`classify`) into an ERROR naming the fault. Never turn them into a FAIL.
- Use the targets on ``ctx`` (``ctx.aws``, ``ctx.http``, ``ctx.hosts``, ``ctx.docker``, ``ctx.postgres``,
  ``ctx.redis``); never build clients of your own: the targets hold the read-only guard, timeouts, retries
  and the per-run memo.
"""

from __future__ import annotations

from .context import CheckContext, Finding, ScenarioState
from .deadlines import DeadlineReached
from .faults import CouldNotCheck, Fault, FaultKind, UnknownName, classify
from .names import did_you_mean
from .registry import StepDefinition, check
from .result import CheckResult, Outcome
from .targets.aws import error_code
from .targets.aws_resources import AWS_RESOURCES, AwsResource, aws_resource
from .targets.docker import Container
from .targets.hosts import HostConnection
from .targets.http import ServiceSettings
from .targets.postgres import PostgresSettings, Rows
from .targets.redis import RedisSettings

__all__ = [
    "AWS_RESOURCES",
    "AwsResource",
    "CheckContext",
    "CheckResult",
    "Container",
    "CouldNotCheck",
    "Fault",
    "FaultKind",
    "DeadlineReached",
    "Finding",
    "HostConnection",
    "Outcome",
    "PostgresSettings",
    "RedisSettings",
    "Rows",
    "ScenarioState",
    "ServiceSettings",
    "StepDefinition",
    "UnknownName",
    "aws_resource",
    "check",
    "classify",
    "did_you_mean",
    "error_code",
]
