"""The Prometheus text exposition format (a service's ``/metrics`` page) and the selectors metric steps use.

Hand-written rather than ``prometheus_client.parser``: that parser reports no line numbers, accepts lines
such as ``up 1 2 3``, misreads an OpenMetrics exemplar as a timestamp, and files ``req_total`` under a
family of its own when ``# TYPE req counter`` names it, losing which series add up.
"""

from __future__ import annotations

import json
import math
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
    """What a sample is, from its family's ``# TYPE`` (or, without one, from its name's suffix). A
    ``_created`` sample of a counter, histogram or summary is the time its series was created, even where
    the page declares it a gauge of its own (the Python client's text format: ``# TYPE x_created gauge``
    after ``# TYPE x_total counter``)."""
    if name.endswith("_created"):
        stem = name[: -len("_created")]
        if types.get(stem) in _SUFFIX_ROLES or types.get(stem + "_total") == "counter":
            return "timestamp"
    for suffix in ("", "_total", "_bucket", "_count", "_sum", "_created", "_gcount", "_gsum", "_info"):
        family = name[: len(name) - len(suffix)] if suffix and name.endswith(suffix) else name
        if (suffix and not name.endswith(suffix)) or family not in types:
            continue
        roles = _SUFFIX_ROLES.get(types[family])
        if roles is None:  # gauge, gaugehistogram, info, stateset, untyped, unknown
            return types[family]
        return roles.get(suffix, "untyped")
    return next((role for suffix, role in _UNTYPED_ROLES.items() if name.endswith(suffix)), "untyped")


NUMERIC_LABELS = ("le", "quantile")  # float-valued by the format: le="1" and le="1.0" are one bucket


def label_number(value: str) -> float | None:
    """A label value read as a float (``"+Inf"`` included), or None when it is not a number."""
    try:
        return float(value)
    except ValueError:
        return None


def same_value(label: str, actual: str, wanted: str) -> bool:
    """Whether a series' label value equals a matcher's: as numbers for ``le``/``quantile`` (client
    libraries write ``1.0`` where a person writes ``1``), as text for every other label."""
    if actual == wanted:
        return True
    if label not in NUMERIC_LABELS:
        return False
    a, b = label_number(actual), label_number(wanted)
    return a is not None and a == b


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
        return same_value(self.label, actual, self.value) == (self.op == "=")

    def __str__(self) -> str:
        return f'{self.label}{self.op}"{json.dumps(self.value, ensure_ascii=False)[1:-1]}"'


@dataclass(frozen=True)
class Selector:
    """A sample name and the label matchers a series must all satisfy."""

    name: str
    matchers: tuple[Matcher, ...]

    def matches(self, sample: Sample) -> bool:
        return sample.name == self.name and all(m.matches(sample.labels) for m in self.matchers)

    def matches_alert(self, labels: dict[str, str]) -> bool:
        """Whether an alert with these labels is selected: its ``alertname`` is the name (any, when the
        selector has none) and every matcher holds."""
        return (not self.name or labels.get("alertname") == self.name) and all(m.matches(labels)
                                                                              for m in self.matchers)

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


def parse_alert_selector(text: str) -> Selector:
    """An alert: its name (``HighErrorRate``), a name with label matchers (``HighErrorRate{service="api"}``),
    or label matchers alone (``{severity="critical"}``: any alert name). The name is the ``alertname`` label."""
    stripped = text.strip()
    if stripped.startswith("{"):
        matchers, pos = _parse_labels(stripped, 0, selector=True)
        if pos != len(stripped):
            raise ValueError(f"unexpected {stripped[pos:]!r} after the labels")
        if not matchers:
            raise ValueError("give an alert name or at least one label matcher")
        return Selector("", tuple(matchers))
    if not METRIC_NAME.match(stripped):
        raise ValueError('an alert is a name (HighErrorRate), a name with labels (HighErrorRate{service="api"}) '
                         'or labels alone ({severity="critical"})')
    return parse_selector(stripped)


def validate_alert_selector(text: str) -> None:
    """An alert name and/or label matchers (=, !=, =~, !~; a regex must compile)."""
    parse_alert_selector(text)


def parse_label_set(text: str) -> dict[str, str]:
    """The labels of an alert as a silence would see them: ``HighErrorRate{service="api"}`` or
    ``{service="api",severity="critical"}``, '=' only (the name becomes ``alertname``)."""
    selector = parse_alert_selector(text)
    other = next((m for m in selector.matchers if m.op != "="), None)
    if other is not None:
        raise ValueError(f"{other} is a matcher, not a label: an alert's labels take '=' only")
    labels = {m.label: m.value for m in selector.matchers}
    if selector.name:
        if labels.get("alertname", selector.name) != selector.name:
            raise ValueError(f"alertname given twice: {selector.name} and {labels['alertname']}")
        labels["alertname"] = selector.name
    return labels


def validate_label_set(text: str) -> None:
    """An alert name with optional ``label="value"`` pairs, or the pairs alone."""
    parse_label_set(text)


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


# --- why a selector matches nothing -------------------------------------------------------------------


def _form(value: str) -> str:
    """A value's form: each digit a '0', each letter an 'a' or 'A', anything else as it is ("5xx" -> "0aa")."""
    return "".join("0" if c.isdigit() else ("a" if c.islower() else "A") if c.isalpha() else c for c in value)


_CLASS_CHARS = {"0": "0123456789", "a": "abcdefghijklmnopqrstuvwxyz", "A": "ABCDEFGHIJKLMNOPQRSTUVWXYZ"}


def _neighbours(value: str) -> list[str]:
    """The value with one character replaced by another of its class: values of the same form a series
    could take later ("2xx" -> "5xx", "200" -> "500")."""
    out: list[str] = []
    for i, cls in enumerate(_form(value)):
        for char in _CLASS_CHARS.get(cls, ""):
            if char != value[i]:
                out.append(value[:i] + char + value[i + 1:])
    return out


def never_matches(selector: Selector, samples: list[Sample] | tuple[Sample, ...]) -> str | None:
    """Why ``selector`` cannot match a series of the page as written (None: its series may simply not
    have been observed yet). A label's series appear once a client library has seen the value, so
    ``status="5xx"`` beside ``status="2xx"`` is only "no 5xx yet"; but a value of another form than every
    value the label takes (``status="500"`` where the service reports ``2xx``/``4xx``/``5xx``), or a label
    no series of the metric has, is a selector that never matches."""
    named = [s for s in samples if s.name == selector.name]
    if not named:
        return f"no metric named {selector.name}"
    for matcher in selector.matchers:
        if matcher.op not in ("=", "=~") or (matcher.op == "=" and matcher.value == ""):
            continue
        values = sorted({s.labels[matcher.label] for s in named if matcher.label in s.labels})
        if not values:
            labels = sorted({k for s in named for k in s.labels})
            return (f"no series of {selector.name} has a label {matcher.label!r} "
                    f"(its labels: {', '.join(labels) if labels else 'none'})")
        if any(matcher.matches({matcher.label: v}) for v in values):
            continue
        if matcher.op == "=":
            plausible = _form(matcher.value) in {_form(v) for v in values}
        else:
            plausible = any(matcher.matches({matcher.label: n}) for v in values for n in _neighbours(v))
        if not plausible:
            shown = ", ".join(values[:SHOWN_VALUES]) + (" ..." if len(values) > SHOWN_VALUES else "")
            return (f"{matcher} never matches: the values of {matcher.label!r} on the page are {shown} "
                    "(a value of another form)")
    return None


SHOWN_VALUES = 12


# --- histograms and windows ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Quantile:
    """An estimate of a quantile from cumulative histogram buckets, as PromQL's ``histogram_quantile``."""

    value: float  # the estimate; when ``beyond`` is set, only "above this" is known
    observations: float  # the count of the +Inf bucket
    lower: float  # the bucket that holds it: (lower, upper]
    upper: float
    beyond: bool = False  # in the +Inf bucket: above the highest finite bucket bound (``value``)


def histogram_quantile(q: float, buckets: list[tuple[float, float]]) -> Quantile | None:
    """The q-quantile (0 < q < 1) of cumulative ``(le, count)`` buckets, by Prometheus' algorithm: buckets
    of one bound merged, counts made monotonic, linear interpolation inside the bucket that holds the rank
    (from 0 for the first bucket). None without observations. ``ValueError`` without a +Inf bucket or a
    finite one."""
    merged: dict[float, float] = {}
    for bound, count in buckets:
        merged[bound] = merged.get(bound, 0.0) + count
    ordered = sorted(merged.items())
    if not ordered or ordered[-1][0] != math.inf:
        raise ValueError('no le="+Inf" bucket')
    if len(ordered) < 2:
        raise ValueError("no bucket with a finite bound")
    fixed: list[tuple[float, float]] = []
    highest = 0.0
    for bound, count in ordered:  # counts never go down (a scrape racing observations can show that)
        highest = max(highest, count)
        fixed.append((bound, highest))
    observations = fixed[-1][1]
    if observations <= 0:
        return None
    rank = q * observations
    index = next((i for i, (_, count) in enumerate(fixed[:-1]) if count >= rank), len(fixed) - 1)
    if index == len(fixed) - 1:
        top = fixed[-2][0]
        return Quantile(top, observations, top, math.inf, beyond=True)
    upper, count = fixed[index]
    if index == 0 and upper <= 0:
        return Quantile(upper, observations, upper, upper)
    lower, below = (fixed[index - 1][0], fixed[index - 1][1]) if index > 0 else (0.0, 0.0)
    inside = count - below
    value = lower + (upper - lower) * ((rank - below) / inside) if inside > 0 else upper
    return Quantile(value, observations, lower, upper)


def series_key(sample: Sample) -> tuple[str, tuple[tuple[str, str], ...]]:
    return sample.name, tuple(sorted(sample.labels.items()))


@dataclass(frozen=True)
class Increase:
    """How much one counter series grew between two scrapes."""

    sample: Sample  # as the later scrape shows it; ``value`` is the increase
    reset: bool = False  # it went down: the process restarted (its whole later value counts)
    new: bool = False  # absent from the earlier scrape: created in between (its whole value counts)


def increases(before: list[Sample] | tuple[Sample, ...], after: list[Sample] | tuple[Sample, ...]
              ) -> list[Increase]:
    """The increase of every series of the later scrape since the earlier one, counter-reset aware (as
    PromQL's ``increase``, without extrapolation)."""
    earlier = {series_key(s): s.value for s in before}
    out: list[Increase] = []
    for sample in after:
        previous = earlier.get(series_key(sample))
        if previous is None:
            out.append(Increase(sample, new=True))
        elif sample.value < previous:
            out.append(Increase(sample, reset=True))
        else:
            out.append(Increase(Sample(sample.name, sample.labels, sample.value - previous, sample.kind)))
    return out


# --- PromQL: the metric names a query reads ------------------------------------------------------------

_PROMQL_STRINGS = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
_PROMQL_LABEL_LISTS = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
_PROMQL_IDENTIFIER = re.compile(r"(?<![\w.:])([a-zA-Z_:][a-zA-Z0-9_:]*)(\s*\()?")
_PROMQL_WORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and", "or", "unless",
                 "offset", "inf", "nan"}


def promql_metric_names(expr: str) -> list[str]:
    """The metric names a PromQL expression selects by name (``rate(http_requests_total{...}[5m])`` ->
    ``http_requests_total``), in order of appearance: not functions, keywords, label names, strings or
    durations. A selector by ``{__name__=...}`` names none."""
    text = _PROMQL_STRINGS.sub('""', expr)
    text = re.sub(r"\{[^}]*\}", " ", text)
    text = re.sub(r"\[[^\]]*\]", " ", text)
    text = _PROMQL_LABEL_LISTS.sub(" ", text)
    names: list[str] = []
    for match in _PROMQL_IDENTIFIER.finditer(text):
        word, call = match.group(1), match.group(2)
        if call or word.lower() in _PROMQL_WORDS or word in names:
            continue
        names.append(word)
    return names


def validate_promql(expr: str) -> None:
    """A PromQL expression whose brackets and quotes balance (Prometheus checks the rest when it runs)."""
    text = _PROMQL_STRINGS.sub(" 0 ", expr)
    if re.search(r'["\'`]', text):
        raise ValueError("a quote is not closed")
    stack: list[str] = []
    pairs = {")": "(", "]": "[", "}": "{"}
    for char in text:
        if char in "([{":
            stack.append(char)
        elif char in pairs and (not stack or stack.pop() != pairs[char]):
            raise ValueError(f"unbalanced {char!r}")
    if stack:
        raise ValueError(f"{stack[-1]!r} is not closed")
    if not text.strip():
        raise ValueError("the query is empty")
