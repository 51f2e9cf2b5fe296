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
    histogram_quantile,
    increases,
    never_matches,
    parse_alert_selector,
    parse_exposition,
    parse_label_set,
    parse_selector,
    promql_metric_names,
    sample_kind,
    validate_promql,
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
    # the Python client's text format files a counter's _created under a gauge family of its own
    ("req_created", {"req_total": "counter", "req_created": "gauge"}, "timestamp"),
    ("lat_created", {"lat": "histogram", "lat_created": "gauge"}, "timestamp"),
    ("boot_created", {"boot_created": "gauge"}, "gauge"),  # a gauge of that name, of no counter
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


# --- numeric label values --------------------------------------------------------------------------------


@pytest.mark.parametrize("selector, value, matches", [
    ('m{le="1"}', "1.0", True),
    ('m{le="1.0"}', "1", True),
    ('m{le="+Inf"}', "+Inf", True),
    ('m{le="inf"}', "+Inf", True),
    ('m{le="0.5"}', "0.50", True),
    ('m{le!="1"}', "1.0", False),
    ('m{le="1"}', "1.5", False),
    ('m{quantile="0.9"}', "0.90", True),
    ('m{status="200"}', "200.0", False),  # any other label is text
    ('m{version="1.10"}', "1.1", False),
])
def test_le_and_quantile_compare_as_numbers(selector, value, matches):
    label = parse_selector(selector).matchers[0].label
    assert parse_selector(selector).matches(Sample("m", {label: value}, 1.0)) is matches


# --- alert selectors and label sets -------------------------------------------------------------------------


def test_alert_selectors_take_a_name_labels_or_both():
    named = parse_alert_selector("HighErrorRate")
    assert named.matches_alert({"alertname": "HighErrorRate", "job": "api"})
    assert not named.matches_alert({"alertname": "HighLatency"})
    both = parse_alert_selector('HighErrorRate{job=~"api|web"}')
    assert both.matches_alert({"alertname": "HighErrorRate", "job": "web"})
    assert not both.matches_alert({"alertname": "HighErrorRate", "job": "db"})
    labels = parse_alert_selector('{severity="critical"}')
    assert labels.name == "" and str(labels) == '{severity="critical"}'
    assert labels.matches_alert({"alertname": "Anything", "severity": "critical"})
    for bad, message in (("{}", "give an alert name or at least one label matcher"),
                         ('"quoted"', "an alert is a name"), ('{a="1"} x', "unexpected")):
        with pytest.raises(ValueError, match=message):
            parse_alert_selector(bad)


def test_label_sets_are_equalities_with_the_name_as_alertname():
    assert parse_label_set('HighErrorRate{service="api"}') == {"service": "api", "alertname": "HighErrorRate"}
    assert parse_label_set('{service="api",severity="critical"}') == {"service": "api", "severity": "critical"}
    with pytest.raises(ValueError, match="is a matcher, not a label"):
        parse_label_set('{service=~"api.*"}')


# --- why a selector matches nothing -----------------------------------------------------------------------

PAGE = parse_exposition(textwrap.dedent("""\
    # TYPE http_requests_total counter
    http_requests_total{handler="/a",status="2xx"} 10
    http_requests_total{handler="/a",status="4xx"} 1
    http_requests_total{handler="/b",status="2xx"} 5
    """))


@pytest.mark.parametrize("selector, reason", [
    ('http_requests_total{status="5xx"}', None),  # the form of 2xx/4xx: no 5xx yet
    ('http_requests_total{status=~"5.."}', None),
    ('http_requests_total{status=~"5xx|500"}', None),
    ('http_requests_total{handler="/a",status="5xx"}', None),
    ('http_requests_total{handler="/c"}', None),  # same form as /a, /b
    ('http_requests_total{status!="2xx",handler="/b"}', None),  # negative matchers never decide
    ('http_requests_total{status="500"}', 'status="500" never matches: the values of \'status\' on the page are 2xx, '
                                          "4xx (a value of another form)"),
    ('http_requests_total{status=~"5\\d\\d"}', "never matches"),
    ('http_requests_total{status="5XX"}', "never matches"),
    ('http_requests_total{handler="/api/tenants"}', "never matches"),
    ('http_requests_total{code="500"}', "no series of http_requests_total has a label 'code' (its labels: handler, "
                                        "status)"),
    ("http_request_total", "no metric named http_request_total"),
])
def test_never_matches_tells_a_wrong_selector_from_one_not_observed_yet(selector, reason):
    found = never_matches(parse_selector(selector), PAGE)
    assert (found is None) if reason is None else (found is not None and reason in found), found


# --- histograms and windows -----------------------------------------------------------------------------


def test_histogram_quantile_interpolates_as_prometheus():
    buckets = [(0.1, 50.0), (0.5, 90.0), (1.0, 100.0), (math.inf, 100.0)]
    q = histogram_quantile(0.5, buckets)
    assert q is not None and q.value == pytest.approx(0.1) and (q.lower, q.upper) == (0.0, 0.1)
    q = histogram_quantile(0.7, buckets)  # rank 70: 20 of the 40 in (0.1, 0.5]
    assert q is not None and q.value == pytest.approx(0.3) and (q.lower, q.upper) == (0.1, 0.5)
    q = histogram_quantile(0.95, buckets)
    assert q is not None and q.value == pytest.approx(0.75) and not q.beyond
    q = histogram_quantile(0.95, [(0.1, 10.0), (1.0, 80.0), (math.inf, 100.0)])
    assert q is not None and q.beyond and q.value == 1.0  # the highest finite bound: only "above 1 s" is known
    # merged bounds and counts made monotonic, as Prometheus does; no observations: nothing to estimate
    merged = histogram_quantile(0.5, [(1.0, 5.0), (1.0, 5.0), (0.5, 2.0), (math.inf, 10.0)])  # 1.0 holds 10
    assert merged is not None and merged.value == pytest.approx(0.5 + 0.5 * 3 / 8)
    dipped = histogram_quantile(0.9, [(0.5, 6.0), (1.0, 4.0), (2.0, 10.0), (math.inf, 10.0)])  # 1.0 read as 6
    assert dipped is not None and dipped.value == pytest.approx(1.0 + 1.0 * 3 / 4)
    assert histogram_quantile(0.5, [(1.0, 0.0), (math.inf, 0.0)]) is None
    with pytest.raises(ValueError, match="no le=\"\\+Inf\" bucket"):
        histogram_quantile(0.5, [(1.0, 3.0)])
    with pytest.raises(ValueError, match="no bucket with a finite bound"):
        histogram_quantile(0.5, [(math.inf, 3.0)])


def test_increases_count_new_series_whole_and_resets_from_zero():
    before = [Sample("c_total", {"a": "1"}, 10.0), Sample("c_total", {"a": "2"}, 50.0)]
    after = [Sample("c_total", {"a": "1"}, 15.0), Sample("c_total", {"a": "2"}, 4.0),
             Sample("c_total", {"a": "3"}, 2.0)]
    grown = increases(before, after)
    assert [(g.sample.labels["a"], g.sample.value, g.reset, g.new) for g in grown] == [
        ("1", 5.0, False, False), ("2", 4.0, True, False), ("3", 2.0, False, True)]


# --- PromQL -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("query, names", [
    ('sum by (job) (rate(http_requests_total{status="5xx"}[5m])) / sum(rate(http_requests_total[5m]))',
     ["http_requests_total"]),
    ("histogram_quantile(0.95, sum by (le) (rate(http_request_duration_seconds_bucket[5m]))) > 1",
     ["http_request_duration_seconds_bucket"]),
    ('up{job="api"} == 0 or on(job) absent(foo_up) offset 5m', ["up", "foo_up"]),
    ('a_total / ignoring(instance) group_left(team) b_info and bool nan', ["a_total", "b_info"]),
    ('{__name__="x"}', []),
    ('label_replace(up, "dst", "$1", "src", "(.*)")', ["up"]),
])
def test_promql_metric_names(query, names):
    assert promql_metric_names(query) == names


@pytest.mark.parametrize("query, message", [
    ("sum(rate(x[5m])", "'(' is not closed"),
    ("x{a=\"b}", "a quote is not closed"),
    ("x)", "unbalanced ')'"),
    ("  ", "the query is empty"),
])
def test_validate_promql_refuses_unbalanced_queries(query, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        validate_promql(query)
    validate_promql('sum(rate(x{a="(b"}[5m]))')  # brackets inside strings do not count
