"""The Prometheus text exposition format (a service's ``/metrics`` page) and the selectors metric steps use.

Hand-written rather than ``prometheus_client.parser``: that parser reports no line numbers, accepts lines
such as ``up 1 2 3``, misreads an OpenMetrics exemplar as a timestamp, and files ``req_total`` under a
family of its own when ``# TYPE req counter`` names it, losing which series add up.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

LINE_CHARS = 160  # as runbooks.steps._shared.EXCERPT_CHARS: quoted lines read like the steps' other excerpts

METRIC_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
_ESCAPES = {"\\": "\\", '"': '"', "n": "\n"}
OPERATORS = ("=~", "!~", "!=", "=")  # longest first: '=~' must not be read as '=' then '~'
# What a sample of each family type is (# TYPE lines); only counters and histogram buckets add up.
_SUFFIX_ROLES = {
    "counter": {"_total": "counter", "": "counter", "_created": "timestamp"},
    "histogram": {"_bucket": "bucket", "_count": "counter", "_sum": "counter", "_created": "timestamp"},
    "summary": {"": "quantile", "_count": "counter", "_sum": "counter", "_created": "timestamp"},
}
_UNTYPED_ROLES = {"_total": "counter", "_count": "counter", "_sum": "counter", "_bucket": "bucket"}


@dataclass(frozen=True)
class Sample:
    """One sample of a page: name, labels, value, and what it is (which series add up)."""

    name: str
    labels: dict[str, str]
    value: float
    kind: str = "untyped"  # counter, bucket, gauge, quantile, timestamp, untyped, ...: see sample_kind


def sample_kind(name: str, types: dict[str, str]) -> str:
    """What a sample is, from its family's ``# TYPE`` (or, without one, from its name's suffix)."""
    for suffix in ("", "_total", "_bucket", "_count", "_sum", "_created", "_gcount", "_gsum", "_info"):
        family = name[: len(name) - len(suffix)] if suffix and name.endswith(suffix) else name
        if (suffix and not name.endswith(suffix)) or family not in types:
            continue
        roles = _SUFFIX_ROLES.get(types[family])
        if roles is None:  # gauge, gaugehistogram, info, stateset, untyped, unknown
            return types[family]
        return roles.get(suffix, "untyped")
    return next((role for suffix, role in _UNTYPED_ROLES.items() if name.endswith(suffix)), "untyped")


@dataclass(frozen=True)
class Matcher:
    """One label matcher of a selector: ``=``, ``!=``, or ``=~``/``!~`` (a regex that must match the whole
    value). As in PromQL, a label the series does not have has the value ""."""

    label: str
    op: str
    value: str
    regex: re.Pattern[str] | None = field(default=None, compare=False, repr=False)

    def matches(self, labels: dict[str, str]) -> bool:
        actual = labels.get(self.label, "")
        if self.regex is not None:
            return (self.regex.fullmatch(actual) is not None) == (self.op == "=~")
        return (actual == self.value) == (self.op == "=")

    def __str__(self) -> str:
        return f'{self.label}{self.op}"{json.dumps(self.value, ensure_ascii=False)[1:-1]}"'


@dataclass(frozen=True)
class Selector:
    """A sample name and the label matchers a series must all satisfy."""

    name: str
    matchers: tuple[Matcher, ...]

    def matches(self, sample: Sample) -> bool:
        return sample.name == self.name and all(m.matches(sample.labels) for m in self.matchers)

    def __str__(self) -> str:
        if not self.matchers:
            return self.name
        return f"{self.name}{{{','.join(str(m) for m in self.matchers)}}}"


def _parse_labels(text: str, pos: int, selector: bool) -> tuple[list[Matcher], int]:
    """Parse ``{a="x",b=~"y"}`` starting at the '{' at ``pos``; returns the matchers and the position after
    '}'. A page's labels (``selector`` False) only take '='."""
    matchers: list[Matcher] = []
    pos += 1
    while True:
        while pos < len(text) and text[pos] in " \t":
            pos += 1
        if pos < len(text) and text[pos] == "}":
            return matchers, pos + 1
        name = LABEL_NAME.match(text, pos)
        if name is None:
            raise ValueError(f"expected a label name or '}}' at column {pos + 1}")
        pos = name.end()
        while pos < len(text) and text[pos] in " \t":
            pos += 1
        op = next((o for o in OPERATORS if text.startswith(o, pos)), "")
        if not selector and op != "=":
            op = ""
        pos += len(op)
        while pos < len(text) and text[pos] in " \t":
            pos += 1
        if not op or not text.startswith('"', pos):
            ops = "=, !=, =~ or !~" if selector else "="
            raise ValueError(f'expected {ops} and a "value" after label {name.group()!r}')
        pos += 1
        value: list[str] = []
        while True:
            if pos >= len(text):
                raise ValueError(f"unterminated value of label {name.group()!r}")
            char = text[pos]
            if char == '"':
                pos += 1
                break
            if char == "\\" and pos + 1 < len(text):
                value.append(_ESCAPES.get(text[pos + 1], "\\" + text[pos + 1]))
                pos += 2
                continue
            value.append(char)
            pos += 1
        matchers.append(_matcher(name.group(), op, "".join(value), matchers, selector))
        while pos < len(text) and text[pos] in " \t":
            pos += 1
        if pos >= len(text):
            raise ValueError("missing '}' after the labels")
        if text[pos] == ",":
            pos += 1
        elif text[pos] != "}":
            raise ValueError(f"expected ',' or '}}' after label {name.group()!r}")


def _matcher(label: str, op: str, value: str, earlier: list[Matcher], selector: bool) -> Matcher:
    # A page gives each label once; a selector may match one label several ways, but two '=' on it
    # can only contradict or repeat each other.
    if any(m.label == label and (not selector or m.op == op == "=") for m in earlier):
        raise ValueError(f"label {label!r} given twice")
    if op not in ("=~", "!~"):
        return Matcher(label, op, value)
    try:
        return Matcher(label, op, value, re.compile(value, re.DOTALL))  # as Prometheus: '.' matches a newline
    except re.error as exc:
        raise ValueError(f"label {label!r}: {value!r} is not a valid regular expression ({exc})") from None


def parse_selector(text: str) -> Selector:
    """``name`` or ``name{a="x",b!="y",c=~"5..",d!~"GET|HEAD"}``: a metric (sample) name and label matchers."""
    stripped = text.strip()
    name = METRIC_NAME.match(stripped)
    if name is None:
        raise ValueError("a selector starts with a metric name, e.g. http_requests_total{status=\"500\"}")
    matchers: list[Matcher] = []
    pos = name.end()
    while pos < len(stripped) and stripped[pos] in " \t":
        pos += 1
    if pos < len(stripped):
        if stripped[pos] != "{":
            raise ValueError(f"unexpected {stripped[pos:]!r} after the metric name (labels go in {{...}})")
        matchers, pos = _parse_labels(stripped, pos, selector=True)
        if pos != len(stripped):
            raise ValueError(f"unexpected {stripped[pos:]!r} after the labels")
    return Selector(name.group(), tuple(matchers))


def validate_selector(text: str) -> None:
    """A metric name with optional label matchers (=, !=, =~, !~; a regex must compile)."""
    parse_selector(text)


def parse_exposition(text: str) -> list[Sample]:
    """Samples of a Prometheus text exposition page (version 0.0.4; OpenMetrics' ``# EOF`` and exemplars
    tolerated), each with its kind from the ``# TYPE`` lines. ``ValueError`` naming the line for anything
    else, rather than guessing."""
    samples: list[Sample] = []
    types: dict[str, str] = {}
    for line_no, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if line.startswith("#"):
            words = line.split()
            if len(words) >= 4 and words[1] == "TYPE":
                types[words[2]] = words[3].lower()
            continue
        if not line:
            continue
        try:
            name = METRIC_NAME.match(line)
            if name is None:
                raise ValueError("no metric name")
            labels: dict[str, str] = {}
            pos = name.end()
            if pos < len(line) and line[pos] == "{":
                matchers, pos = _parse_labels(line, pos, selector=False)
                labels = {m.label: m.value for m in matchers}
            if pos >= len(line) or line[pos] not in " \t":
                raise ValueError("expected a space and a value after the name and labels")
            rest = line[pos:].split("#", 1)[0].split()  # value [timestamp] [# exemplar]
            if not rest or len(rest) > 2 or "_" in rest[0]:
                raise ValueError("expected a value and an optional timestamp")
            samples.append(Sample(name.group(), labels, float(rest[0]), sample_kind(name.group(), types)))
        except ValueError as exc:
            raise ValueError(f"line {line_no}: {exc}: {_line_excerpt(line)!r}") from None
    return samples


def _line_excerpt(line: str) -> str:
    """The line on one line of text, cut to ``LINE_CHARS`` with "..." (as ``runbooks.steps._shared.excerpt``)."""
    line = " ".join(line.split())
    return line if len(line) <= LINE_CHARS else line[:LINE_CHARS] + "..."
