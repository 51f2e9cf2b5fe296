"""runbooks.steps._prometheus on its own: the text exposition format, sample kinds, and metric selectors."""

from __future__ import annotations

import math
import re
import textwrap

import pytest

from runbooks.steps._prometheus import (
    LINE_CHARS,
    Matcher,
    Sample,
    Selector,
    parse_exposition,
    parse_selector,
    sample_kind,
)


def parsed(text: str) -> list[tuple[str, dict[str, str], float, str]]:
    return [(s.name, s.labels, s.value, s.kind) for s in parse_exposition(textwrap.dedent(text))]


# --- the exposition format ----------------------------------------------------------------------------


def test_help_type_and_other_comments_are_not_samples():
    assert parsed("""\
        # HELP http_requests_total Requests, with "quotes" and a \\ backslash.
        # TYPE http_requests_total counter
        #TYPE not_a_type_line gauge
        # TYPE too_short
        # just a comment
        #

        http_requests_total{code="200"} 3
        # EOF
        """) == [("http_requests_total", {"code": "200"}, 3.0, "counter")]


def test_an_empty_page_has_no_samples():
    assert parse_exposition("") == [] and parse_exposition("\n# HELP x y\n\n") == []


def test_escapes_in_label_values():
    [sample] = parse_exposition(r'm{quote="a\"b",backslash="c\\d",newline="e\nf",other="g\th",brace="}",comma=","} 1')
    assert sample.labels == {"quote": 'a"b', "backslash": "c\\d", "newline": "e\nf",
                             "other": "g\\th",  # not an escape of the format: kept as written
                             "brace": "}", "comma": ","}


def test_label_syntax_variants():
    assert parsed("""\
        trailing_comma{a="1",} 1
        spaced{ a = "1" , b="2" } 2
        no_labels{} 3
        hash_in_value{path="/a#b"} 4
        unicode{city="Zürich"} 5
        :colon:name 6
        """) == [
        ("trailing_comma", {"a": "1"}, 1.0, "untyped"),
        ("spaced", {"a": "1", "b": "2"}, 2.0, "untyped"),
        ("no_labels", {}, 3.0, "untyped"),
        ("hash_in_value", {"path": "/a#b"}, 4.0, "untyped"),
        ("unicode", {"city": "Zürich"}, 5.0, "untyped"),
        (":colon:name", {}, 6.0, "untyped"),
    ]


def test_values_timestamps_and_exemplars():
    samples = parse_exposition(textwrap.dedent("""\
        a 1.5e3 1700000000000
        b -0.25
        c +Inf
        d -Inf
        e NaN
        f 7 # {trace_id="abc"} 1.0 1700000000.000
        \tg\t8\t
        """))
    values = [s.value for s in samples]
    assert values[:4] == [1500.0, -0.25, math.inf, -math.inf]
    assert math.isnan(values[4]) and values[5:] == [7.0, 8.0]
    assert [s.name for s in samples] == ["a", "b", "c", "d", "e", "f", "g"]


def test_histogram_and_summary_roles():
    assert [(name, kind) for name, _, _, kind in parsed("""\
        # TYPE lat histogram
        lat_bucket{le="0.1"} 1
        lat_bucket{le="+Inf"} 3
        lat_sum 2.5
        lat_count 3
        lat_created 1700000000
        # TYPE rpc summary
        rpc{quantile="0.99"} 0.2
        rpc_sum 10
        rpc_count 40
        rpc_created 1700000000
        # TYPE req counter
        req_total 5
        req 6
        req_created 1700000000
        # TYPE temp gauge
        temp 20
        # TYPE build info
        build_info{version="1"} 1
        # TYPE queue gaugehistogram
        queue_gcount 4
        # TYPE odd untyped
        odd_total 1
        # TYPE shouty COUNTER
        shouty_total 1
        """)] == [
        ("lat_bucket", "bucket"), ("lat_bucket", "bucket"), ("lat_sum", "counter"), ("lat_count", "counter"),
        ("lat_created", "timestamp"),
        ("rpc", "quantile"), ("rpc_sum", "counter"), ("rpc_count", "counter"), ("rpc_created", "timestamp"),
        ("req_total", "counter"), ("req", "counter"), ("req_created", "timestamp"),
        ("temp", "gauge"), ("build_info", "info"), ("queue_gcount", "gaugehistogram"),
        ("odd_total", "untyped"),  # a declared type wins over the name's suffix
        ("shouty_total", "counter"),
    ]


def test_a_type_applies_only_from_its_line_on():
    assert [kind for *_, kind in parsed("""\
        jobs_total 1
        # TYPE jobs gauge
        jobs_total 2
        """)] == ["counter", "gauge"]  # from the name's suffix, then from the family's # TYPE


@pytest.mark.parametrize("name, types, kind", [
    ("plain", {}, "untyped"),
    ("x_total", {}, "counter"),
    ("x_count", {}, "counter"),
    ("x_sum", {}, "counter"),
    ("x_bucket", {}, "bucket"),
    ("x_created", {}, "untyped"),
    ("lat_bucket", {"lat": "histogram"}, "bucket"),
    ("lat", {"lat": "histogram"}, "untyped"),  # a histogram has no bare series
    ("lat_other", {"lat": "histogram"}, "untyped"),
    ("q", {"q": "summary"}, "quantile"),
    ("c", {"c": "counter"}, "counter"),
    ("c_bucket", {"c": "counter"}, "untyped"),
    ("g_total", {"g_total": "gauge"}, "gauge"),  # the family is the full name when it is declared so
    ("s", {"s": "stateset"}, "stateset"),
])
def test_sample_kind(name, types, kind):
    assert sample_kind(name, types) == kind


@pytest.mark.parametrize("text, message", [
    ("up 1 2 3", "line 1: expected a value and an optional timestamp: 'up 1 2 3'"),
    ("up 1_000", "line 1: expected a value and an optional timestamp: 'up 1_000'"),
    ("up", "line 1: expected a space and a value after the name and labels: 'up'"),
    ('up{a="1"}1', "line 1: expected a space and a value after the name and labels: 'up{a=\"1\"}1'"),
    ("up abc", "line 1: could not convert string to float: 'abc': 'up abc'"),
    ("9up 1", "line 1: no metric name: '9up 1'"),
    ("<html><body>Not Found</body></html>", "line 1: no metric name: '<html><body>Not Found</body></html>'"),
    ('up{a="x} 1', "line 1: unterminated value of label 'a': 'up{a=\"x} 1'"),
    ('up{a="1"', "line 1: missing '}' after the labels: 'up{a=\"1\"'"),
    ('up{="1"} 1', "line 1: expected a label name or '}' at column 4: 'up{=\"1\"} 1'"),
    ('up{a=~"x"} 1', "line 1: expected = and a \"value\" after label 'a': 'up{a=~\"x\"} 1'"),  # pages only take =
    ("up{a=1} 1", "line 1: expected = and a \"value\" after label 'a': 'up{a=1} 1'"),
    ('up{a="1",a="2"} 1', "line 1: label 'a' given twice: 'up{a=\"1\",a=\"2\"} 1'"),
    ('up{a="1" b="2"} 1', "line 1: expected ',' or '}' after label 'a': 'up{a=\"1\" b=\"2\"} 1'"),
])
def test_malformed_lines_are_named_with_their_number_and_text(text, message):
    with pytest.raises(ValueError) as info:
        parse_exposition(text)
    assert str(info.value) == message


def test_line_numbers_count_comments_and_blank_lines():
    with pytest.raises(ValueError, match=r"^line 4: no metric name: '- 1'$"):
        parse_exposition("# HELP up Up.\n\nup 1\n  - 1  \nok 1\n")


def test_a_long_bad_line_is_quoted_on_one_line_and_cut():
    from runbooks.steps._shared import excerpt  # the step library's excerpt, which this module mirrors

    line = "-bad line " + "x  " * 100
    with pytest.raises(ValueError) as info:
        parse_exposition("ok 1\n" + line)
    quoted = " ".join(line.split())[:LINE_CHARS] + "..."
    assert str(info.value) == f"line 2: no metric name: {quoted!r}"
    assert quoted == excerpt(line.strip())


# --- selectors ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("text, name, matchers", [
    ("up", "up", []),
    ("  up  ", "up", []),
    (":ns:up", ":ns:up", []),
    ("up{}", "up", []),
    ("up {}", "up", []),
    ('up{job="api"}', "up", [("job", "=", "api")]),
    ('m{a="1",b!="2",c=~"5..",d!~"GET|HEAD",}', "m", [("a", "=", "1"), ("b", "!=", "2"), ("c", "=~", "5.."),
                                                       ("d", "!~", "GET|HEAD")]),
    (' m { a = "1" , b="x\\"y" } ', "m", [("a", "=", "1"), ("b", "=", 'x"y')]),
    ('m{a="l\\nm",b="\\\\",c="é"}', "m", [("a", "=", "l\nm"), ("b", "=", "\\"), ("c", "=", "é")]),
    ('m{a="1",a!="2",a=~"x"}', "m", [("a", "=", "1"), ("a", "!=", "2"), ("a", "=~", "x")]),
])
def test_selectors_parse(text, name, matchers):
    selector = parse_selector(text)
    assert selector.name == name
    assert [(m.label, m.op, m.value) for m in selector.matchers] == matchers


@pytest.mark.parametrize("text, printed", [
    ("up", "up"),
    ("up{}", "up"),
    (' m { a = "1" , b="x\\"y" } ', 'm{a="1",b="x\\"y"}'),
    ('m{a="l\\nm",b="\\\\",c="é",d=~"5.."}', 'm{a="l\\nm",b="\\\\",c="é",d=~"5.."}'),
])
def test_selectors_print_in_their_canonical_form(text, printed):
    assert str(parse_selector(text)) == printed
    assert parse_selector(printed) == parse_selector(text)  # what is printed reads back the same


@pytest.mark.parametrize("text, message", [
    ("", 'a selector starts with a metric name, e.g. http_requests_total{status="500"}'),
    ("5xx_total", "a selector starts with a metric name"),
    ("rate(m[5m])", "unexpected '(m[5m])' after the metric name (labels go in {...})"),
    ("m{a}", "expected =, !=, =~ or !~ and a \"value\" after label 'a'"),
    ("m{a=1}", "expected =, !=, =~ or !~ and a \"value\" after label 'a'"),
    ('m{a~="1"}', "expected =, !=, =~ or !~ and a \"value\" after label 'a'"),
    ('m{a="1"', "missing '}' after the labels"),
    ('m{a="1}', "unterminated value of label 'a'"),
    ('m{a="1";b="2"}', "expected ',' or '}' after label 'a'"),
    ('m{,a="1"}', "expected a label name or '}' at column 3"),
    ('m{a="1",a="2"}', "label 'a' given twice"),
    ('m{a="1"}{b="2"}', "unexpected '{b=\"2\"}' after the labels"),
    ('m{a=~"5(.."}', "label 'a': '5(..' is not a valid regular expression (missing ), unterminated subpattern"),
])
def test_malformed_selectors(text, message):
    with pytest.raises(ValueError) as info:
        parse_selector(text)
    assert str(info.value).startswith(message)


def test_matchers_follow_promql():
    labels = {"code": "500", "path": "/a\nb"}
    sample = Sample("m", labels, 1.0)
    assert parse_selector('m{code="500"}').matches(sample)
    assert not parse_selector('n{code="500"}').matches(sample)
    assert parse_selector('m{code=~"5.."}').matches(sample)
    assert not parse_selector('m{code=~"5"}').matches(sample)  # the regex must match the whole value
    assert parse_selector('m{code!~"4..|2.."}').matches(sample)
    assert parse_selector('m{path=~"/a.b"}').matches(sample)  # '.' matches a newline, as in Prometheus
    assert parse_selector('m{absent=""}').matches(sample)  # a missing label has the value ""
    assert not parse_selector('m{absent!=""}').matches(sample)
    assert parse_selector('m{code=~"5..",code!="501"}').matches(sample)  # every matcher must hold
    assert not parse_selector('m{code=~"5..",code!="500"}').matches(sample)


def test_a_matcher_built_by_hand_prints_like_a_parsed_one():
    assert str(Matcher("le", "=", "+Inf")) == 'le="+Inf"'
    assert str(Selector("m", (Matcher("a", "=", 'x"y\n'),))) == 'm{a="x\\"y\\n"}'
    assert Matcher("a", "=~", "5..", re.compile("5..")) == Matcher("a", "=~", "5..")  # the regex is not compared
