"""The one reader of JSON written by others: registry manifests, configs, indexes, tokens, tag
lists and error bodies, the store's own files, lock files, docker's config.json, package records.

`read_json` refuses, with a one-line `JSONInputError` naming what was read:

- a document past its size limit (`OCIBUILD_MAX_JSON_SIZE`, or the caller's smaller one);
- nesting deeper than `MAX_DEPTH`, found by a scan that does not recurse, before the parser
  (which does) sees the text;
- a key given twice in one object (parsers disagree on which one wins: a digest checked by one
  reader could be another's);
- a number that is not finite or has more than `MAX_INT_DIGITS` digits, `NaN` and `Infinity`;
- a lone UTF-16 surrogate (`"\\ud800"`), which no UTF-8 writer can write back.

`JSONInputError` is a `ValueError` as well, so callers that already turned a parser's
`ValueError` into their own error keep doing so.
"""

from __future__ import annotations

import json
import math
import re

from ocibuild.errors import OcibuildError
from ocibuild.limits import JSON_SIZE

MAX_DEPTH = 100  # objects and arrays inside each other; OCI documents use fewer than 10
MAX_INT_DIGITS = 20  # an int64 or uint64 has at most 20 digits

JSON = dict[str, "JSON"] | list["JSON"] | str | int | float | bool | None
JSONObject = dict[str, JSON]

# a JSON string (with any escapes), or one bracket: what the depth scan steps over
_TOKEN = re.compile(rb'"(?:[^"\\]|\\.)*"|[\[{]|[\]}]', re.DOTALL)
_OPENING = frozenset(b"[{")
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")


class JSONInputError(OcibuildError, ValueError):
    """JSON from elsewhere that is malformed or past a limit."""


def read_json(data: bytes | str, what: str, limit: int | None = None) -> JSON:
    """The value of the JSON document `data`; `what` names it in errors (a URL, a file, a
    reference); `limit` is a size cap below the `OCIBUILD_MAX_JSON_SIZE` one."""
    raw = data.encode("utf-8", "surrogatepass") if isinstance(data, str) else data
    cap = JSON_SIZE.value if limit is None else min(limit, JSON_SIZE.value)
    if len(raw) > cap:
        raise JSONInputError(f"{what}: a JSON document of {len(raw)} bytes, more than {cap}")
    _check_depth(raw, what)
    try:
        value: JSON = json.loads(
            raw,
            object_pairs_hook=_unique_keys,
            parse_int=_integer,
            parse_float=_float,
            parse_constant=_constant,
        )
    except _Refused as e:
        raise JSONInputError(f"{what}: {e}") from None
    except (ValueError, RecursionError) as e:  # UnicodeDecodeError is a ValueError
        raise JSONInputError(f"{what}: not JSON ({_first_line(e)})") from None
    if _SURROGATE_ESCAPE.search(raw):
        _check_strings(value, what)
    return value


def read_json_object(data: bytes | str, what: str, limit: int | None = None) -> JSONObject:
    """`read_json` of a document that must be an object."""
    return json_object(read_json(data, what, limit), what)


def json_object(value: JSON, what: str) -> JSONObject:
    """`value`, which must be a JSON object (`what` names it in the error)."""
    if not isinstance(value, dict):
        raise JSONInputError(f"{what} is not a JSON object")
    return value


def json_list(value: JSON, what: str) -> list[JSON]:
    """`value`, which must be a JSON array (`what` names it in the error)."""
    if not isinstance(value, list):
        raise JSONInputError(f"{what} is not a JSON list")
    return value


class _Refused(Exception):
    pass


def _check_depth(raw: bytes, what: str) -> None:
    depth = 0
    for match in _TOKEN.finditer(raw):
        first = match.group()[0]
        if first in _OPENING:
            depth += 1
            if depth > MAX_DEPTH:
                raise JSONInputError(
                    f"{what}: JSON nested deeper than {MAX_DEPTH} levels (at byte {match.start()})"
                )
        elif first != ord('"'):
            depth -= 1


def _unique_keys(pairs: list[tuple[str, JSON]]) -> JSONObject:
    out: JSONObject = {}
    for key, value in pairs:
        if key in out:
            raise _Refused(f"the key {key[:100]!r} is given twice in one object")
        out[key] = value
    return out


def _integer(text: str) -> int:
    if len(text.lstrip("-")) > MAX_INT_DIGITS:
        raise _Refused(f"the number {text[:30]}... has more than {MAX_INT_DIGITS} digits")
    return int(text)


def _float(text: str) -> float:
    if len(text) > 100:
        raise _Refused(f"the number {text[:30]}... is longer than 100 characters")
    value = float(text)
    if not math.isfinite(value):
        raise _Refused(f"the number {text} is out of range")
    return value


def _constant(text: str) -> float:
    raise _Refused(f"{text} is not a JSON number")


def _check_strings(value: JSON, what: str) -> None:
    """Every string (keys too) encodes as UTF-8: walked with a stack, not by recursion."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
        elif isinstance(item, str):
            try:
                item.encode("utf-8")
            except UnicodeEncodeError:
                # not quoted: the string may be a secret (a credential helper's answer)
                raise JSONInputError(f"{what}: a string holds a lone UTF-16 surrogate") from None


def _first_line(e: BaseException) -> str:
    text = str(e).splitlines()
    return text[0][:200] if text else type(e).__name__
