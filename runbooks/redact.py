"""Keep secrets out of every output: console, reports, history and notifications read redacted records."""

from __future__ import annotations

import base64
import contextlib
import json
import os
import re
from collections.abc import Iterable, Iterator
from dataclasses import fields, replace
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, unquote, unquote_plus, urlsplit

if TYPE_CHECKING:
    from .config import Environment
    from .result import StepRecord

MASK = "***"
MIN_SECRET = 4  # shorter values are not masked as text: masking every "a" would ruin the output, not hide anything
LEARNT_MIN = 6  # ...and values learnt from a URL seen in some text must be longer still
_URL = re.compile(r"[a-z][a-z0-9+.-]*://[^\s'\"<>]+", re.I)
# The userinfo runs to the *last* '@' of the authority: a password may hold '@' and ':' (RFC 3986 wants %40,
# but requests and curl both split on the last '@').
_URL_USERINFO = re.compile(r"(?P<scheme>[a-z][a-z0-9+.-]*://)(?P<userinfo>[^/?#\s'\"<>]*)@", re.I)
_SECRET_PARAM = re.compile(
    r"(?P<key>[?&;](?:token|access_token|refresh_token|id_token|auth_token|session_token|api_key|apikey|key|"
    r"password|passwd|secret|client_secret|signature|sig|x-amz-signature|x-amz-security-token|x-amz-credential)=)"
    r"(?P<value>[^&#\s\"']+)",
    re.I,
)
# Header-shaped text ("Authorization: Bearer x", "-H 'X-Api-Key: x'"): the value ends at the line or a quote,
# so that a shell command keeps what follows the header (its URL).
_AUTH_HEADER = re.compile(
    r"(?P<key>\b(?:(?:proxy-)?authorization|x-api-key|api-key|x-auth-token|x-amz-security-token|(?:set-)?cookie)"
    r"\s*[:=]\s*)(?P<value>[^\s'\"][^\r\n'\"]*)",
    re.I,
)
# The same as JSON or a Python dict shows it: "Authorization": "Basic ...", 'password': '...'. The closing quote
# is optional: a body excerpt may be cut inside the value.
_SECRET_KEY = (r"[\w-]*(?:password|passwd|secret|token|api[_-]?key|authorization|cookie|signature|credential|"
               r"credentials)")
_QUOTED_SECRET = re.compile(
    rf"(?P<key>(?P<q>[\"'])(?:{_SECRET_KEY})(?P=q)\s*[:=]\s*(?P=q))(?P<value>(?:\\.|(?!(?P=q))[^\\\r\n])*)",
    re.I,
)
_ELLIPSES = ("...", "\u2026")  # how an excerpt says it was cut


def value_forms(value: str) -> set[str]:
    """A credential as it may show: raw, percent-decoded and percent-encoded."""
    decoded = unquote(value)
    return {value, decoded, unquote_plus(value), quote(decoded, safe="")}


def url_secrets(url: str) -> set[str]:
    """What a URL carries that is a credential: the userinfo's password in every form, ``user:password`` and
    its base64 (the ``Authorization: Basic`` value requests derives), and the values of secret query
    parameters (``token``, ``access_token``, ``X-Amz-Signature`` ...)."""
    found: set[str] = set()
    try:
        parts = urlsplit(url)
    except ValueError:
        return found
    userinfo = parts.netloc.rpartition("@")[0] if "@" in parts.netloc else ""
    if userinfo:  # a lone user is masked where the URL shows it, not as a word everywhere ("admin")
        user, _, password = userinfo.partition(":")
        if password:
            found |= value_forms(password)
        pairs = {f"{user}:{password}", f"{unquote(user)}:{unquote(password)}"}
        found |= pairs | {basic for pair in pairs for basic in basic_values(pair)}
    for match in _SECRET_PARAM.finditer("?" + parts.query):
        found |= value_forms(match.group("value"))
    return found


def basic_values(pair: str) -> set[str]:
    """The base64 of ``user:password`` as requests (latin-1) and curl (UTF-8) would send it."""
    out = set()
    for encoding in ("latin-1", "utf-8"):
        with contextlib.suppress(UnicodeEncodeError):
            out.add(base64.b64encode(pair.encode(encoding)).decode("ascii"))
    return out


def header_secrets(value: str) -> set[str]:
    """A configured header value, its token after the scheme ("Bearer <token>"), and for ``Basic`` the
    decoded ``user:password`` and password."""
    found = {value}
    scheme, _, token = value.strip().partition(" ")
    if token:
        found.add(token.strip())
        if scheme.lower() == "basic":
            try:
                pair = base64.b64decode(token.strip(), validate=True).decode("utf-8")
            except (ValueError, UnicodeDecodeError):
                pair = ""
            if ":" in pair:
                found |= {pair, pair.partition(":")[2]}
    return found


class Redactor:
    """Masks the secrets it was given and those it derives: from the environment (variables and environment
    variables named in ``secrets``, header values, service URL credentials) and from every URL it is shown
    (userinfo, secret query parameters), so that a server echoing what it was sent gives nothing away."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._known: set[str] = set()
        self.secrets: list[str] = []
        self.add(secrets)

    def add(self, secrets: Iterable[str]) -> None:
        new = {s for s in secrets if s and len(s) >= MIN_SECRET}
        # ...also as a shell command quotes it (shlex.quote) and a JSON body escapes it (a server's echo)
        new |= {s.replace("'", "'\"'\"'") for s in new if "'" in s}
        new |= {json.dumps(s)[1:-1] for s in new if json.dumps(s)[1:-1] != s}
        new -= self._known
        if new:
            self._known |= new
            # Longest first so that a secret containing another is masked whole.
            self.secrets = sorted(self._known, key=len, reverse=True)

    def learn(self, text: str) -> None:
        """Register what the URLs and query strings in ``text`` carry (before masking any text with them)."""
        found: set[str] = set()
        for match in _URL.finditer(text):
            found |= url_secrets(match.group(0))
        for match in _SECRET_PARAM.finditer(text):
            found |= value_forms(match.group("value"))
        # A word ("?key=Environment") is masked where the query shows it, not everywhere: tokens are not words.
        self.add(v for v in found if len(v) >= LEARNT_MIN and not v.isalpha())

    @classmethod
    def for_environment(cls, env: Environment) -> Redactor:
        values = []
        for name in env.secrets:
            # a secret is named by variable or by environment variable; mask its value wherever it shows
            values.append(env.vars.get(name, ""))
            values.append(os.environ.get(name, ""))
        values += [os.environ.get(k, "") for k in ("AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN")]
        for service in env.services.values():  # header values are credentials (tokens, API keys)
            values += [form for v in service.headers.values() for form in header_secrets(v)]
            values += url_secrets(service.url)  # user:password@ and ?token= in the service URL
        from .targets import targets  # each target names the credentials of its own section (DSN passwords)

        for target in targets().values():
            values += target.secrets(env)
        return cls(values)

    def text(self, value: str) -> str:
        if not value:
            return value
        self.learn(value)
        value = _URL_USERINFO.sub(lambda m: f"{m.group('scheme')}{MASK}@", value)
        value = _SECRET_PARAM.sub(lambda m: f"{m.group('key')}{MASK}", value)
        value = _QUOTED_SECRET.sub(lambda m: f"{m.group('key')}{MASK}", value)
        value = _AUTH_HEADER.sub(lambda m: f"{m.group('key')}{MASK}", value)
        for secret in self.secrets:
            value = value.replace(secret, MASK)
        if any(cut in value for cut in _ELLIPSES):
            value = self._cut_secrets(value)
        return value

    def _cut_secrets(self, value: str) -> str:
        """An excerpt cut inside a secret ("Bearer abcd...") still shows its start: mask that too."""
        for secret in self.secrets:
            for end in range(len(secret) - 1, MIN_SECRET - 1, -1):
                for cut in _ELLIPSES:
                    if secret[:end] + cut in value:
                        value = value.replace(secret[:end] + cut, MASK + cut)
        return value

    def record(self, record: StepRecord) -> StepRecord:
        for text in _strings([getattr(record, f.name) for f in fields(record)]):
            self.learn(text)  # the URL may be in the resource, the server's echo of its token in the observed
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


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for k, v in value.items():
            yield from _strings(k)
            yield from _strings(v)
    elif isinstance(value, list | tuple):
        for v in value:
            yield from _strings(v)
