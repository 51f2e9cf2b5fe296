"""What an AWS answer means when it is no answer: malformed bodies, bare error statuses, broken transports.

:func:`check_response` is a botocore ``before-parse`` handler (registered first on the run's session in
``targets/aws.py``): a 2xx answer whose operation expects an XML or JSON document but that carries an
empty body, an HTML page or something that does not parse is stopped as :class:`MalformedResponse`
before botocore parses it into ``{}`` — which a step would read as "not configured", a FAIL.
:func:`classify_transport` and :func:`classify_bare_status` are the parts of ``classify_aws`` that read
the transport errors and the errors without an error code (HEAD requests have no body; a proxy may
answer a bare status).
"""

from __future__ import annotations

import http.client
import json
import re
import socket
import sys
from typing import Any

import botocore.exceptions

from ..faults import HINTS, Fault, FaultKind

JSON_PROTOCOLS = frozenset({"json", "rest-json"})
XML_PROTOCOLS = frozenset({"rest-xml", "query", "ec2"})
_HTML = re.compile(rb"^(<\?xml[^>]*>\s*)?(<!doctype\s+html|<html)", re.I)
HINT_CONNECTION = HINTS[FaultKind.CONNECTION]
HINT_DNS = ("check the endpoint URL and the region name, and that this machine resolves AWS hosts "
            "(DNS, VPN, proxy)")
HINT_BARE_400 = ("refresh this environment's credentials (an expired session token is the usual cause; "
                 "`aws sts get-caller-identity` tells) and check that aws.region is the resource's region; "
                 "if both are right, re-run later (throttling)")
HINT_BARE_5XX = HINTS[FaultKind.SERVICE_ERROR]


class MalformedResponse(Exception):
    """A 2xx answer that is not the document the operation returns: never read as a fact."""

    def __init__(self, service: str, operation: str, status: int, what: str, document: str) -> None:
        self.service = service
        self.operation = operation
        super().__init__(f"malformed answer to {operation} ({service}): HTTP {status} with {what}, "
                         f"not an AWS {document} document")


def expected_document(operation_model: Any) -> str | None:
    """``"XML"`` or ``"JSON"`` when a 2xx answer of the operation carries a document; else None
    (headers only, like HeadBucket; a raw or streaming payload, like GetBucketPolicy or GetObject)."""
    shape = operation_model.output_shape
    if shape is None or operation_model.has_streaming_output or operation_model.has_event_stream_output:
        return None
    payload = shape.serialization.get("payload")
    if payload is not None:
        if shape.members[payload].type_name != "structure":
            return None
    elif not any(m.serialization.get("location") is None for m in shape.members.values()):
        return None
    service = operation_model.service_model
    protocol = getattr(service, "resolved_protocol", None) or service.protocol
    return "JSON" if protocol in JSON_PROTOCOLS else "XML" if protocol in XML_PROTOCOLS else None


def body_problem(body: bytes, document: str) -> str | None:
    """What is wrong with ``body`` as an XML/JSON document, or None when it looks like one."""
    text = body.lstrip(b"\xef\xbb\xbf").strip()
    if not text:
        return "an empty body"
    if _HTML.match(text[:512]):
        return "an HTML page"
    excerpt = text[:40].decode("utf-8", "replace")
    if document == "XML" and not text.startswith(b"<"):
        return f"a body that is not XML ({excerpt!r})"
    if document == "JSON":
        try:
            value = json.loads(text)
        except ValueError:
            return f"a body that is not JSON ({excerpt!r})"
        if not isinstance(value, dict):
            return f"a JSON {type(value).__name__} where an object belongs ({excerpt!r})"
    return None


def check_response(operation_model: Any = None, response_dict: Any = None, **_: Any) -> None:
    """``before-parse``: raise :class:`MalformedResponse` for a 2xx answer that is not the operation's document."""
    if operation_model is None or not response_dict:
        return
    status = int(response_dict.get("status_code") or 0)
    if not 200 <= status < 300 or status == 204:
        return
    body = response_dict.get("body")
    if not isinstance(body, bytes | bytearray):
        return  # a streamed body is the caller's to read
    service = operation_model.service_model.service_name
    document = expected_document(operation_model)
    if document is not None:
        problem = body_problem(bytes(body), document)
    else:  # nothing to parse: only an HTML page (a portal answering a HEAD) is recognisably not AWS
        headers = response_dict.get("headers") or {}
        html = str(headers.get("content-type", "")).lower().startswith("text/html")
        head = operation_model.http.get("method") == "HEAD"
        problem = "an HTML page" if _HTML.match(bytes(body).strip()[:512]) or (head and html) else None
        document = "XML" if problem else None
    if problem is not None and document is not None:
        raise MalformedResponse(service, operation_model.name, status, problem, document)


def classify_transport(exc: BaseException) -> Fault | None:
    """Malformed answers, DNS failures, refused and reset connections (timeouts are read before)."""
    if isinstance(exc, MalformedResponse):
        return Fault.of(FaultKind.MALFORMED_RESPONSE, str(exc))
    parsers = sys.modules.get("botocore.parsers")  # not imported: no AWS answer was parsed, none was malformed
    if parsers is not None and isinstance(exc, parsers.ResponseParserError):
        return Fault.of(FaultKind.MALFORMED_RESPONSE, f"malformed answer from the AWS endpoint: {exc}".strip())
    if isinstance(exc, botocore.exceptions.ChecksumError):
        return Fault.of(FaultKind.MALFORMED_RESPONSE, f"corrupted answer from the AWS endpoint: {exc}")
    if isinstance(exc, botocore.exceptions.EndpointConnectionError):
        url = exc.kwargs.get("endpoint_url", "")
        if _dns_failure(exc.kwargs.get("error")):
            host = re.sub(r"^\w+://([^/:]+).*$", r"\1", str(url))
            return Fault.of(FaultKind.CONNECTION, f"could not resolve the AWS endpoint's host {host} "
                            f"(DNS lookup failed) for {url}", HINT_DNS)
        return Fault.of(FaultKind.CONNECTION, f"could not connect to the AWS endpoint: {exc}")
    if isinstance(exc, botocore.exceptions.ConnectionClosedError):
        return Fault.of(FaultKind.CONNECTION, "the AWS endpoint closed the connection before answering "
                        f"(connection reset) for {exc.kwargs.get('endpoint_url', '')}")
    if isinstance(exc, botocore.exceptions.ConnectionError | botocore.exceptions.HTTPClientError):
        return Fault.of(FaultKind.CONNECTION, f"the connection to the AWS endpoint failed: {exc}")
    return None


def _dns_failure(error: BaseException | None) -> bool:
    seen = 0
    while error is not None and seen < 5:
        if isinstance(error, socket.gaierror) or type(error).__name__ == "NameResolutionError":
            return True
        error, seen = error.__cause__ or error.__context__, seen + 1
    return False


def classify_bare_status(exc: botocore.exceptions.ClientError, target: str) -> Fault | None:
    """An error answer without an error code: a HEAD request (AWS sends it no body) or a bare status from
    something in the way. Read from the status and headers; None for a status with no sure reading (404)."""
    error = exc.response.get("Error", {})
    code = str(error.get("Code", ""))
    if not code.isdigit():
        return None
    status = int(code)
    if str(error.get("Message", "")) not in ("", http.client.responses.get(status, "")):
        return None  # an error document botocore could not read (XML to a JSON API): its text says more
    operation = getattr(exc, "operation_name", "?")
    headers = exc.response.get("ResponseMetadata", {}).get("HTTPHeaders", {})
    why = "a HEAD answer has no body" if operation.startswith("Head") else "the answer had no AWS error document"
    if status == 400:
        region = headers.get("x-amz-bucket-region")
        return Fault.of(FaultKind.CREDENTIALS_REJECTED,
                        f"{operation} was refused with HTTP 400 and no error code ({why}): most often expired "
                        "credentials, else a request signed for the wrong region or throttling"
                        + (f"; the bucket is in {region}" if region else ""), HINT_BARE_400)
    if status == 403:
        needed = str(error.get("IamAction", ""))
        return Fault.of(FaultKind.ACCESS_DENIED,
                        f"{operation} was refused with HTTP 403 and no error code ({why}): access denied or "
                        "credentials rejected" + (f"; needs {needed}" if needed else ""),
                        "run `aws sts get-caller-identity` with this environment's credentials: if it fails, "
                        "refresh or fix them (expired or invalid key); if it works, grant "
                        f"{needed or 'the read permission'} to that identity (see `runbooks iam-policy`)")
    if status in (429, 503):
        return Fault.of(FaultKind.THROTTLED,
                        f"throttled or unavailable on {operation} (HTTP {status} with no error code: "
                        f"throttling, such as S3's SlowDown, or the service unavailable){_attempts(exc)}",
                        HINTS[FaultKind.THROTTLED] + "; if it persists, check the service's health")
    if status >= 500:
        return Fault.of(FaultKind.SERVICE_ERROR,
                        f"the {target} target could not answer {operation} (HTTP {status}, no error code)"
                        + _attempts(exc), HINT_BARE_5XX)
    return None


def _attempts(exc: botocore.exceptions.ClientError) -> str:
    retries = int(exc.response.get("ResponseMetadata", {}).get("RetryAttempts") or 0)
    return f" after {retries + 1} attempts" if retries else ""
