"""JSON Pointers (RFC 6901) into response bodies, and the text a JSON value is compared as.

Numbers are kept as written in the body (``1.50`` stays ``1.50``), so a comparison is with what the service
sent, not with what a float makes of it.
"""

from __future__ import annotations

import json
import re
from typing import Any

ARRAY_INDEX = re.compile(r"0|[1-9][0-9]*")  # RFC 6901: no leading zeros, no '-' (the element after the last)


class Number(str):
    """A JSON number (or NaN/Infinity) kept exactly as written in the body."""


def load_json(text: str) -> Any:
    """The JSON document in ``text``, every number a :class:`Number`; ``ValueError`` when it is not JSON."""
    return json.loads(text, parse_int=Number, parse_float=Number, parse_constant=Number)


def validate_pointer(pointer: str) -> None:
    """RFC 6901: empty (the whole document) or '/'-separated tokens where '~' only escapes '~0' and '~1'."""
    if pointer and not pointer.startswith("/"):
        raise ValueError("a JSON Pointer is empty or starts with '/', e.g. /checks/dynamodb")
    if re.search(r"~(?![01])", pointer):
        raise ValueError("'~' must be written '~0' and '/' inside a name '~1'")


def unescape(token: str) -> str:
    """One pointer token as the member name it stands for: '~1' is '/', '~0' is '~'."""
    return token.replace("~1", "/").replace("~0", "~")  # this order: '~01' is '~1', not '/'


def jq_path(pointer: str) -> str:
    """The jq filter for a JSON Pointer, for the manual command: /checks/0 -> .["checks"][0]."""
    if not pointer:
        return "."
    parts = [unescape(raw) for raw in pointer[1:].split("/")]
    return "." + "".join(f"[{p}]" if ARRAY_INDEX.fullmatch(p) else f"[{json.dumps(p)}]" for p in parts)


def json_kind(value: Any) -> str:
    """The JSON type of a value from :func:`load_json`: number, string, boolean, null, object or array."""
    if isinstance(value, Number):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, bool):
        return "boolean"
    if value is None:
        return "null"
    return "object" if isinstance(value, dict) else "array"


def json_text(value: Any, nested: bool = False) -> str:
    """The compared string form of a JSON value: strings as they are, numbers as written, true/false/null,
    objects and arrays as compact JSON."""
    if isinstance(value, Number):
        return str.__str__(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False) if nested else value
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, dict):
        return "{" + ",".join(f"{json.dumps(k, ensure_ascii=False)}:{json_text(v, True)}"
                              for k, v in value.items()) + "}"
    return "[" + ",".join(json_text(v, True) for v in value) + "]"


def resolve_pointer(document: Any, pointer: str) -> Any:
    """The value at an RFC 6901 JSON Pointer; ``LookupError`` saying where the path stops when it is absent."""
    validate_pointer(pointer)
    if not pointer:
        return document
    current, walked = document, ""
    for raw in pointer[1:].split("/"):
        token = unescape(raw)
        here = walked or "the document root"
        if isinstance(current, dict):
            if token not in current:
                members = ", ".join(sorted(current)[:10]) or "none"
                raise LookupError(f"{here} has no member {token!r} (members: {members})")
            current = current[token]
        elif isinstance(current, list):
            if not ARRAY_INDEX.fullmatch(token) or int(token) >= len(current):
                raise LookupError(f"{here} is an array of {len(current)} element(s), no index {token!r}")
            current = current[int(token)]
        else:
            raise LookupError(f"{here} is a {json_kind(current)}, it has no {token!r}")
        walked += "/" + raw
    return current
