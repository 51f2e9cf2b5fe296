"""Testing your own steps with pytest: a started run against an environment you describe, and :func:`evaluate`.

    import boto3
    from runbooks.sdk import Outcome
    from runbooks.testing import evaluate, started_session

    from steps.storage import object_not_empty

    def test_a_missing_object_is_a_fail():
        with started_session('aws = { target = "moto", region = "eu-west-1" }') as session:
            boto3.client("s3", region_name="eu-west-1").create_bucket(
                Bucket="b", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
            assert evaluate(session, object_not_empty, bucket="b", key="k").outcome is Outcome.FAIL

A moto environment (``pip install 'runbooks[sandbox]'``) is an empty in-process AWS account for the
length of the ``with`` block: create what the check should find with plain boto3 inside it.
"""

from __future__ import annotations

import tempfile
import textwrap
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from .config import load_config
from .context import ScenarioState
from .registry import REGISTRY
from .result import CheckResult
from .session import Session
from .targets.aws import AwsAccount

__all__ = ["evaluate", "started_session"]


@contextmanager
def started_session(environment: str, name: str = "test", directory: Path | None = None) -> Iterator[Session]:
    """A started run for ``[environments.<name>]`` whose TOML body is ``environment``; stopped on exit."""
    with tempfile.TemporaryDirectory(prefix="runbooks-test-") as scratch:
        path = Path(directory or scratch) / "runbooks.toml"
        path.write_text(f"[environments.{name}]\n" + textwrap.dedent(environment), encoding="utf-8")
        config = load_config(path)
        session = Session(config, config.environment(name)).start()
        try:
            yield session
        finally:
            session.stop()


def evaluate(session: Session, check: Callable[..., CheckResult], state: ScenarioState | None = None,
             region: str | None = None, aws_account: AwsAccount | None = None, **args: Any) -> CheckResult:
    """Run one check as a step does: variables resolved, exceptions classified into an ERROR, the manual
    command filled in. ``check`` is the decorated function; ``args`` are the phrase's fields; ``region`` and
    ``aws_account`` (one of ``session.aws.accounts()``) as in an ``@all-regions`` / ``@all-accounts`` scenario."""
    definition = next((d for d in REGISTRY.values() if d.func is check), None)
    if definition is None:
        raise LookupError(f"{getattr(check, '__qualname__', check)!r} is not a step: decorate it with @check")
    return session.evaluate(definition, args, state or ScenarioState(), region, aws_account)
