"""AWS access for checks: one session and one client per service per run, read-only at the boundary.

The guard is a botocore ``before-call`` handler registered on the session, so it runs for every
client the checks get, before a request is built or sent. Retries are botocore's own (adaptive mode).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable
from concurrent.futures import Future
from typing import Any

import boto3
import botocore.exceptions
from botocore.config import Config as BotoConfig

from .config import AwsSettings

READ_PREFIXES = ("Describe", "Get", "List", "Head", "BatchGet")
READ_OPERATIONS = {"Query", "Scan", "GetCallerIdentity", "AssumeRole"}

# Error codes that mean "could not check", never "the resource is wrong".
ACCESS_CODES = {
    "AccessDenied",
    "AccessDeniedException",
    "UnauthorizedOperation",
    "UnrecognizedClientException",
    "InvalidClientTokenId",
    "ExpiredToken",
    "ExpiredTokenException",
    "SignatureDoesNotMatch",
    "AuthFailure",
    "403",
}
THROTTLING_CODES = {
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "RequestLimitExceeded",
    "TooManyRequestsException",
    "SlowDown",
    "ProvisionedThroughputExceededException",
    "RequestThrottled",
}


def is_read_operation(operation: str) -> bool:
    return operation in READ_OPERATIONS or operation.startswith(READ_PREFIXES)


class ReadOnlyViolation(Exception):
    """A check asked for a mutating AWS operation; the request was never sent."""

    def __init__(self, service: str, operation: str) -> None:
        self.service = service
        self.operation = operation
        super().__init__(
            f"refused {service}:{operation}: this run is read-only and {operation} is not a read operation"
        )


class NotImplementedByTarget(Exception):
    """The target (e.g. moto) cannot answer this operation, so the fact cannot be checked."""

    def __init__(self, target: str, operation: str) -> None:
        self.target = target
        self.operation = operation
        super().__init__(f"the {target} target does not implement {operation}")


def _guard(model: Any, **_: Any) -> None:
    if not is_read_operation(model.name):
        raise ReadOnlyViolation(model.service_model.service_name, model.name)


def error_code(exc: BaseException) -> str:
    if isinstance(exc, botocore.exceptions.ClientError):
        return str(exc.response.get("Error", {}).get("Code", ""))
    return ""


def describe_error(exc: BaseException, target: str = "aws") -> str | None:
    """A one-line reason for an exception that means "could not check", or None if it is not one."""
    if isinstance(exc, ReadOnlyViolation | NotImplementedByTarget):
        return str(exc)
    if isinstance(exc, botocore.exceptions.NoCredentialsError):
        return "no AWS credentials found (environment, profile or instance role)"
    if isinstance(exc, botocore.exceptions.PartialCredentialsError):
        return f"incomplete AWS credentials: {exc}"
    if isinstance(exc, botocore.exceptions.ProfileNotFound):
        return f"AWS profile not found: {exc}"
    if isinstance(exc, botocore.exceptions.ConnectTimeoutError | botocore.exceptions.ReadTimeoutError):
        return f"timed out talking to AWS: {exc}"
    if isinstance(exc, botocore.exceptions.EndpointConnectionError):
        return f"could not connect to the AWS endpoint: {exc}"
    if isinstance(exc, botocore.exceptions.ClientError):
        code = error_code(exc)
        operation = getattr(exc, "operation_name", "?")
        message = exc.response.get("Error", {}).get("Message", "")
        if code in ACCESS_CODES:
            return f"access denied for {operation} ({code}): {message}".rstrip(": ")
        if code in THROTTLING_CODES:
            return f"throttled on {operation} ({code}) after retries"
        if code in {"NotImplemented", "InternalFailure", "InternalError", "ServiceUnavailable", "500"}:
            return f"the {target} target could not answer {operation} ({code}): {message}".rstrip(": ")
        return None
    if isinstance(exc, botocore.exceptions.BotoCoreError):
        return f"AWS client error: {exc}"
    return None


class AwsTarget:
    """Sessions, guarded clients and a per-run memo of read calls for one environment."""

    def __init__(self, settings: AwsSettings, read_only: bool = True) -> None:
        self.settings = settings
        self.read_only = read_only
        self._lock = threading.Lock()
        self._clients: dict[tuple[str, str], Any] = {}
        self._memo: dict[Hashable, Future[Any]] = {}
        self._session: boto3.Session | None = None
        self.calls = 0  # API calls actually made (memo hits excluded)

    @property
    def name(self) -> str:
        return self.settings.target

    def boto_config(self) -> BotoConfig:
        return BotoConfig(
            region_name=self.settings.region,
            retries={"mode": "adaptive", "max_attempts": self.settings.max_attempts},
            connect_timeout=self.settings.connect_timeout,
            read_timeout=self.settings.read_timeout,
            max_pool_connections=16,
            # a custom endpoint (moto server, LocalStack) serves buckets by path, not by host name
            s3={"addressing_style": "path"} if self.settings.endpoint_url else None,
        )

    def session(self) -> boto3.Session:
        with self._lock:
            if self._session is None:
                self._session = self._make_session()
            return self._session

    def _make_session(self) -> boto3.Session:
        s = self.settings
        session = boto3.Session(profile_name=s.profile, region_name=s.region)
        if self.read_only:
            session.events.register("before-call.*.*", _guard)
        if s.role_arn:
            sts = session.client("sts", config=self.boto_config(), endpoint_url=s.endpoint_url)
            params: dict[str, Any] = {"RoleArn": s.role_arn, "RoleSessionName": "runbooks-verify"}
            if s.external_id:
                params["ExternalId"] = s.external_id
            creds = sts.assume_role(**params)["Credentials"]
            session = boto3.Session(
                aws_access_key_id=creds["AccessKeyId"],
                aws_secret_access_key=creds["SecretAccessKey"],
                aws_session_token=creds["SessionToken"],
                region_name=s.region,
            )
            if self.read_only:
                session.events.register("before-call.*.*", _guard)
        return session

    def client(self, service: str, region: str | None = None) -> Any:
        region = region or self.settings.region
        key = (service, region)
        with self._lock:
            client = self._clients.get(key)
        if client is not None:
            return client
        session = self.session()
        with self._lock:
            if key not in self._clients:
                self._clients[key] = session.client(
                    service,
                    region_name=region,
                    endpoint_url=self.settings.endpoint_url,
                    config=self.boto_config(),
                )
            return self._clients[key]

    def read(self, service: str, operation: str, region: str | None = None, **params: Any) -> Any:
        """Call ``operation`` once per run for the same parameters; later callers get the same answer.

        Exceptions are memoised too: a missing bucket is missing for every step that asks.
        """
        def call() -> Any:
            with self._lock:
                self.calls += 1
            return getattr(self.client(service, region), operation)(**params)

        return self.memo((service, region or self.settings.region, operation, _freeze(params)), call)

    def paginate(
        self, service: str, operation: str, region: str | None = None, **params: Any
    ) -> list[Any]:
        """All pages of a paginated read, memoised like :meth:`read`."""
        def fetch() -> list[Any]:
            paginator = self.client(service, region).get_paginator(operation)
            return list(paginator.paginate(**params))

        return self.memo(("paginate", service, region, operation, _freeze(params)), fetch)

    def memo(self, key: Hashable, compute: Callable[[], Any]) -> Any:
        with self._lock:
            future = self._memo.get(key)
            owner = future is None
            if owner:
                future = self._memo[key] = Future()
        assert future is not None
        if owner:
            try:
                future.set_result(compute())
            except BaseException as exc:  # noqa: BLE001
                future.set_exception(exc)
        return future.result()

    def account_id(self) -> str:
        return str(self.read("sts", "get_caller_identity")["Account"])


def _freeze(value: Any) -> Hashable:
    if isinstance(value, dict):
        return tuple(sorted((k, _freeze(v)) for k, v in value.items()))
    if isinstance(value, list | tuple):
        return tuple(_freeze(v) for v in value)
    return value  # type: ignore[no-any-return]
