"""Keep secrets out of every output: console, reports, history and notifications read redacted records."""

from __future__ import annotations

import os
import re
from dataclasses import fields, replace
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .config import Environment
    from .result import StepRecord

MASK = "***"
_URL_USERINFO = re.compile(r"(?P<scheme>[a-z][a-z0-9+.-]*://)(?P<userinfo>[^/@\s:]+(:[^/@\s]*)?)@", re.I)
_SECRET_PARAM = re.compile(
    r"(?P<key>[?&;](?:token|access_token|api_key|apikey|key|password|passwd|secret|signature|sig|"
    r"x-amz-signature|x-amz-security-token|x-amz-credential)=)(?P<value>[^&\s\"']+)",
    re.I,
)
_AUTH_HEADER = re.compile(r"(?P<key>\b(?:authorization|x-api-key|cookie)\s*[:=]\s*)(?P<value>[^\r\n,;]+)", re.I)


class Redactor:
    def __init__(self, secrets: list[str] | tuple[str, ...] = ()) -> None:
        # Longest first so that a secret containing another is masked whole.
        self.secrets = sorted({s for s in secrets if s and len(s) >= 4}, key=len, reverse=True)

    @classmethod
    def for_environment(cls, env: Environment) -> Redactor:
        values = []
        for name in env.secrets:
            # a secret is named by variable or by environment variable; mask its value wherever it shows
            values.append(env.vars.get(name, ""))
            values.append(os.environ.get(name, ""))
        values += [os.environ.get(k, "") for k in ("AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN")]
        for service in env.services.values():  # header values are credentials (tokens, API keys)
            values += list(service.headers.values())
            values += [v.split(" ", 1)[1] for v in service.headers.values() if " " in v]  # "Bearer <token>"
        return cls(values)

    def text(self, value: str) -> str:
        if not value:
            return value
        value = _URL_USERINFO.sub(lambda m: f"{m.group('scheme')}{MASK}@", value)
        value = _SECRET_PARAM.sub(lambda m: f"{m.group('key')}{MASK}", value)
        value = _AUTH_HEADER.sub(lambda m: f"{m.group('key')}{MASK}", value)
        for secret in self.secrets:
            value = value.replace(secret, MASK)
        return value

    def record(self, record: StepRecord) -> StepRecord:
        changes: dict[str, Any] = {
            f.name: self.value(getattr(record, f.name)) for f in fields(record) if f.name != "outcome"
        }
        return replace(record, **changes)

    def value(self, value: Any) -> Any:
        """Strings masked, also inside the lists and dicts of a record's structured evidence."""
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, dict):
            return {self.value(k): self.value(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return type(value)(self.value(v) for v in value)
        return value
