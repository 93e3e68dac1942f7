"""Reading an answer's body: a chunk at a time under the transfer's deadlines, never past a
size the caller allows, with a declared `Content-Length` checked before a byte is believed.

Every body ocibuild reads goes through `body_chunks` (downloads, blobs, manifests) or
`read_body` (small answers: tokens, tag lists, error messages); `requests`' own readers
(`.content`, `.json()`, `.iter_content`) are not used, since they read without a bound.
"""

from __future__ import annotations

import http.client
from collections.abc import Iterator

import requests
import urllib3
import urllib3.exceptions

from ocibuild.errors import NetworkError, TransientError
from ocibuild.jsonread import JSON, read_json
from ocibuild.net.deadline import WATCHDOG, Transfer, transfer_of
from ocibuild.net.failure import failure
from ocibuild.net.policy import Deadlines

CHUNK = 1 << 20
_READ_ERRORS = (urllib3.exceptions.HTTPError, http.client.HTTPException, OSError, ValueError)


def content_length(response: requests.Response, what: str) -> int | None:
    """The body size the server declares, or None; a malformed one (`12abc`, `-1`) is an
    error rather than a guess."""
    value = response.headers.get("Content-Length")
    if value is None:
        return None
    text = value.strip()
    if not text.isascii() or not text.isdigit() or len(text) > 20:
        raise NetworkError(f"{what}: malformed Content-Length {value[:40]!r}", cause="protocol")
    return int(text)


def body_chunks(response: requests.Response, chunk: int = CHUNK) -> Iterator[bytes]:
    """The body, in pieces of at most `chunk` bytes as they arrive; a transfer slower than its
    minimum rate, cut, or shorter than its Content-Length raises a NetworkError."""
    transfer = transfer_of(response) or Transfer(
        f"GET {response.url}", Deadlines(), 0
    )  # a response made elsewhere (tests) still reads under default deadlines
    if response._content_consumed:  # type: ignore[attr-defined]  # read already (not streamed)
        data = response.content or b""
        for start in range(0, len(data), chunk):
            yield data[start : start + chunk]
        return
    raw = response.raw
    transfer.start_body()
    WATCHDOG.add(transfer)
    try:
        while True:
            if isinstance(raw, urllib3.HTTPResponse):
                data = raw.read1(chunk, decode_content=True)
            else:
                data = raw.read(chunk)  # a file:// answer: a regular file
            if not data:
                break
            transfer.received += len(data)
            yield data
    except _READ_ERRORS as e:
        raise _read_failure(e, transfer) from None
    finally:
        WATCHDOG.remove(transfer)
    if transfer.expired is not None:  # the watchdog shut the socket: the read saw an end
        raise TransientError(f"{transfer.what}: {transfer.expired}", cause="timeout")
    if isinstance(raw, urllib3.HTTPResponse):
        raw.release_conn()  # read to its end: the connection serves the next request


def _read_failure(e: BaseException, transfer: Transfer) -> NetworkError:
    if transfer.expired is not None:
        return TransientError(f"{transfer.what}: {transfer.expired}", cause="timeout")
    return failure(e, transfer.what, transfer.deadlines)


def read_body(response: requests.Response, limit: int, what: str) -> bytes:
    """The whole body, refused past `limit` bytes (however long the server makes it)."""
    declared = content_length(response, what)
    if declared is not None and declared > limit:
        response.close()
        raise NetworkError(f"{what}: an answer of {declared} bytes, more than {limit}")
    data = bytearray()
    for piece in body_chunks(response, min(CHUNK, limit + 1)):
        data += piece
        if len(data) > limit:
            response.close()
            raise NetworkError(f"{what}: an answer of more than {limit} bytes")
    return bytes(data)


def read_json_body(response: requests.Response, limit: int, what: str) -> JSON:
    """The body as JSON (`ocibuild.jsonread`), at most `limit` bytes."""
    return read_json(read_body(response, limit, what), what, limit)


def body_head(response: requests.Response, limit: int = 4096) -> bytes:
    """The first `limit` bytes of an answer's body (all of it for a small one), read once: an
    error body is never read whole, however long the server makes it."""
    head = getattr(response, "_ocibuild_head", None)
    if head is None:
        head = bytearray()
        try:
            for piece in body_chunks(response, limit):
                head += piece
                if len(head) >= limit:
                    break
        except NetworkError:
            pass
        head = bytes(head[:limit])
        response._ocibuild_head = head  # type: ignore[attr-defined]
    return bytes(head)
