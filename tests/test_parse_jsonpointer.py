"""runbooks.steps._jsonpointer on its own: RFC 6901 pointers, the jq path of the manual command, compared text."""

from __future__ import annotations

import shlex

import pytest

from runbooks.steps._jsonpointer import (
    Number,
    jq_path,
    json_kind,
    json_text,
    load_json,
    resolve_pointer,
    unescape,
    validate_pointer,
)

DOC = load_json("""{
    "status": "ok", "ready": true, "none": null, "version": 1.50, "big": 1e3, "neg": -0, "nan": NaN,
    "items": ["a", {"b": [10, 20]}], "": "empty key", " ": "space", "a/b": {"c~d": "escaped"},
    "~1": "tilde-one", "many": {"k0": 0, "k1": 1, "k2": 2, "k3": 3, "k4": 4, "k5": 5, "k6": 6, "k7": 7,
                                "k8": 8, "k9": 9, "k10": 10, "k11": 11},
    "eleven": [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10], "empty": {}
}""")


@pytest.mark.parametrize("pointer", ["", "/", "/status", "/a~1b/c~0d", "/~01", "/items/1/b/0", "//"])
def test_valid_pointers(pointer):
    validate_pointer(pointer)


@pytest.mark.parametrize("pointer, message", [
    ("status", "a JSON Pointer is empty or starts with '/', e.g. /checks/dynamodb"),
    ("#/status", "a JSON Pointer is empty or starts with '/'"),
    ("/a~2", "'~' must be written '~0' and '/' inside a name '~1'"),
    ("/a~", "'~' must be written '~0'"),
    ("/~/x", "'~' must be written '~0'"),
])
def test_invalid_pointers_say_why(pointer, message):
    with pytest.raises(ValueError, match="^" + message.replace("(", r"\(")):
        validate_pointer(pointer)
    with pytest.raises(ValueError):  # resolving validates first
        resolve_pointer(DOC, pointer)


def test_unescape_reads_tilde_one_before_tilde_zero():
    assert unescape("a~1b") == "a/b"
    assert unescape("m~0n") == "m~n"
    assert unescape("~01") == "~1"  # never '/'
    assert unescape("~10") == "/0"
    assert unescape("plain") == "plain"


@pytest.mark.parametrize("pointer, found", [
    ("/status", "ok"),
    ("/items/0", "a"),
    ("/items/1/b/1", "20"),
    ("/eleven/10", "10"),
    ("/", "empty key"),
    ("/ ", "space"),
    ("/a~1b/c~0d", "escaped"),
    ("/~01", "tilde-one"),
    ("/version", "1.50"),
])
def test_resolve_finds_members_and_array_elements(pointer, found):
    assert json_text(resolve_pointer(DOC, pointer)) == found


def test_resolve_the_whole_document():
    assert resolve_pointer(DOC, "") is DOC
    assert resolve_pointer([1, 2], "") == [1, 2]


@pytest.mark.parametrize("pointer, message", [
    ("/nope", "the document root has no member 'nope' (members: ,  , a/b, big, eleven, empty, items, many, nan, neg)"),
    ("/empty/x", "/empty has no member 'x' (members: none)"),
    ("/many/k12", "/many has no member 'k12' (members: k0, k1, k10, k11, k2, k3, k4, k5, k6, k7)"),  # first 10
    ("/a~1b/c~1d", "/a~1b has no member 'c/d' (members: c~d)"),  # the path as written, the name unescaped
    ("/items/2", "/items is an array of 2 element(s), no index '2'"),
    ("/items/01", "/items is an array of 2 element(s), no index '01'"),  # no leading zeros (RFC 6901)
    ("/items/-", "/items is an array of 2 element(s), no index '-'"),  # '-' is past the end: nothing there
    ("/items/-1", "/items is an array of 2 element(s), no index '-1'"),
    ("/items/x", "/items is an array of 2 element(s), no index 'x'"),
    ("/status/x", "/status is a string, it has no 'x'"),
    ("/version/0", "/version is a number, it has no '0'"),
    ("/ready/x", "/ready is a boolean, it has no 'x'"),
    ("/none/x", "/none is a null, it has no 'x'"),
    ("/items/1/b/0/x", "/items/1/b/0 is a number, it has no 'x'"),
])
def test_resolve_says_where_the_path_stops(pointer, message):
    with pytest.raises(LookupError) as info:
        resolve_pointer(DOC, pointer)
    assert str(info.value) == message


def test_resolve_on_a_scalar_document():
    with pytest.raises(LookupError, match="the document root is a string, it has no 'a'"):
        resolve_pointer("text", "/a")


def test_numbers_are_kept_as_written():
    assert [json_text(DOC[k]) for k in ("version", "big", "neg", "nan")] == ["1.50", "1e3", "-0", "NaN"]
    assert all(isinstance(DOC[k], Number) for k in ("version", "big", "neg", "nan"))
    assert load_json("[Infinity, -Infinity, 12]") == ["Infinity", "-Infinity", "12"]


def test_json_kinds():
    assert [json_kind(DOC[k]) for k in ("status", "version", "ready", "none", "items", "a/b")] == [
        "string", "number", "boolean", "null", "array", "object"]
    assert json_kind(load_json("0")) == "number" and json_kind(load_json("false")) == "boolean"


def test_json_text_of_nested_values_is_compact_json():
    assert json_text(load_json('{"a": [1.0, "x\\"y", true, null], "é": {}}')) == '{"a":[1.0,"x\\"y",true,null],"é":{}}'
    assert json_text(load_json('"top-level strings are bare"')) == "top-level strings are bare"
    assert json_text(load_json('["ünïcode", "line\\nbreak"]')) == '["ünïcode","line\\nbreak"]'
    assert json_text(load_json("[]")) == "[]" and json_text(load_json("{}")) == "{}"
    assert json_text(False) == "false" and json_text(None) == "null"


def test_load_json_refuses_what_is_not_json():
    for text in ("<html></html>", "", "{'single': 'quotes'}", '{"a": 1,}'):
        with pytest.raises(ValueError):
            load_json(text)


@pytest.mark.parametrize("pointer, path", [
    ("", "."),
    ("/", '.[""]'),
    ("/checks/dynamodb", '.["checks"]["dynamodb"]'),
    ("/items/0/a~1b~0c", '.["items"][0]["a/b~c"]'),
    ("/items/10", '.["items"][10]'),
    ("/items/01", '.["items"]["01"]'),  # not an index: a member name, as resolve_pointer reads it
    ("/quote\"d", '.["quote\\"d"]'),
])
def test_jq_path(pointer, path):
    assert jq_path(pointer) == path


def test_the_manual_command_of_a_json_check_quotes_the_url():
    from runbooks.steps.http import StoredResponse  # the step module needs the engine; the rest of this file does not

    url = "http://127.0.0.1:8080/health?a=1&b=(2)>x"
    stored = StoredResponse("web", url, 200, 1.0, "{}", "application/json", "curl -sS")
    manual = stored.manual(pipe="jq " + shlex.quote(jq_path("/items/0")))
    assert manual == """curl -sS 'http://127.0.0.1:8080/health?a=1&b=(2)>x' | jq '.["items"][0]'"""
    assert shlex.split(manual.split(" | ")[0])[-1] == url  # one word for the shell, as it was written
    plain = StoredResponse("web", "https://example.com/health", 200, 1.0, "", "", "curl -sS")
    assert plain.manual("-i") == "curl -sS -i https://example.com/health"  # a plain URL stays unquoted
