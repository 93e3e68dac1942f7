"""Blobs over the Distribution API: exists (HEAD), mount, upload (monolithic or chunked,
resumable), download into the store. Bodies stream from and to disk, a chunk at a time."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urljoin, urlsplit, urlunsplit

import requests

from ocibuild.errors import DigestMismatchError, RegistryError, StoreError, TransientError
from ocibuild.net.body import body_chunks, content_length
from ocibuild.net.links import safe_url
from ocibuild.net.retry import Attempts
from ocibuild.oci import Descriptor
from ocibuild.oci.digest import Digest
from ocibuild.remote.progress import BlobProgress
from ocibuild.remote.transport import RegistryClient
from ocibuild.store import Store

log = logging.getLogger(__name__)

READ_SIZE = 1 << 20
OCTET_STREAM = {"Content-Type": "application/octet-stream"}


class FileRange:
    """Bytes `[offset, offset + length)` of a file as a sized iterable: a request body that
    streams from disk (its length gives the Content-Length) and can be sent again."""

    def __init__(
        self, path: Path, offset: int, length: int, progress: Callable[[int], None]
    ) -> None:
        self.path, self.offset, self.length, self.progress = path, offset, length, progress

    def __len__(self) -> int:
        return self.length

    def __iter__(self) -> Iterator[bytes]:
        with open(self.path, "rb") as f:
            f.seek(self.offset)
            left = self.length
            while left:
                chunk = f.read(min(READ_SIZE, left))
                if not chunk:
                    raise StoreError(
                        f"{self.path} is shorter than its {self.offset + self.length} bytes"
                    )
                left -= len(chunk)
                yield chunk
                self.progress(self.offset + self.length - left)


@dataclass(frozen=True)
class UploadSession:
    location: str
    offset: int = 0
    min_chunk: int = 0


def wait_all(futures: Iterable[Future[Any]], cancel: threading.Event) -> None:
    """Wait for every blob transfer; on the first failure (or Ctrl-C), stop those in flight at
    their next chunk and those not started at all, then raise it."""
    futures = list(futures)
    try:
        for future in futures:
            future.result()
    except BaseException:
        cancel.set()
        for future in futures:
            future.cancel()
        raise


def blob_path(repository: str, digest: str) -> str:
    return f"/v2/{repository}/blobs/{digest}"


def blob_exists(
    client: RegistryClient, repository: str, descriptor: Descriptor, scopes: tuple[str, ...]
) -> bool:
    response = client.request(
        "HEAD", blob_path(repository, descriptor.digest), scopes=scopes, expect=(200, 404)
    )
    if response.status_code == 404:
        return False
    length = content_length(response, f"HEAD {safe_url(response.url)}")
    return length is None or length == descriptor.size


def start_upload(
    client: RegistryClient,
    repository: str,
    scopes: tuple[str, ...],
    mount: tuple[Digest, str] | None = None,
) -> UploadSession | None:
    """Open an upload session; None if the registry mounted `mount` (digest, source repo) instead."""
    query = f"?{urlencode({'mount': mount[0], 'from': mount[1]})}" if mount else ""
    response = client.request(
        "POST", f"/v2/{repository}/blobs/uploads/{query}", scopes=scopes, expect=(201, 202)
    )
    response.close()
    if response.status_code == 201:
        return None
    return UploadSession(_location(response), 0, _int(response.headers.get("OCI-Chunk-Min-Length")))


def _new_session(client: RegistryClient, repository: str, scopes: tuple[str, ...]) -> UploadSession:
    session = start_upload(client, repository, scopes)
    if session is None:
        raise RegistryError(f"{client.registry}/{repository}: an upload was answered as a mount")
    return session


def upload_blob(
    client: RegistryClient,
    repository: str,
    store: Store,
    descriptor: Descriptor,
    scopes: tuple[str, ...],
    progress: BlobProgress,
    session: UploadSession | None = None,
) -> None:
    """Upload a blob of the store: one PUT up to the chunk threshold, PATCH chunks above it.
    After a failure, continue from what the registry says it holds, or start over."""
    options = client.options
    path = store.blob_path(descriptor.digest)
    size = descriptor.size
    store.check_blob(descriptor.digest, size)  # what leaves the store is what its name says
    attempts = Attempts(options.retry_policy, client.on_retry)
    while True:
        try:
            session = session or _new_session(client, repository, scopes)
            if session.offset == 0 and size <= options.chunk_threshold:
                _complete(
                    client,
                    session,
                    descriptor,
                    scopes,
                    lambda: FileRange(path, 0, size, progress.update),
                )
                return
            chunk = max(options.chunk_size, session.min_chunk)
            while session.offset < size:
                session = _send_chunk(
                    client, session, path, min(chunk, size - session.offset), scopes, progress
                )
                attempts.progress()
            _complete(client, session, descriptor, scopes, None)
            return
        except TransientError as e:
            attempts.failed(e)
            if blob_exists(client, repository, descriptor, scopes):
                return  # the answer to a completed upload was lost
            session = _resume(client, session, scopes) if session else None


def _send_chunk(
    client: RegistryClient,
    session: UploadSession,
    path: Path,
    length: int,
    scopes: tuple[str, ...],
    progress: BlobProgress,
) -> UploadSession:
    start = session.offset
    headers = {**OCTET_STREAM, "Content-Range": f"{start}-{start + length - 1}"}
    response = client.attempt(
        "PATCH",
        session.location,
        scopes=scopes,
        headers=headers,
        body=lambda: FileRange(path, start, length, progress.update),
    )
    response.close()
    if response.status_code == 416:
        raise TransientError(
            f"PATCH at offset {start}: the registry holds another range", cause="http"
        )
    if response.status_code != 202:
        raise client.error("PATCH", response, scopes)
    received = _range_end(response.headers.get("Range"))
    offset = start + length if received is None else received + 1
    return UploadSession(_location(response), offset, session.min_chunk)


def _complete(
    client: RegistryClient,
    session: UploadSession,
    descriptor: Descriptor,
    scopes: tuple[str, ...],
    body: Callable[[], FileRange] | None,
) -> None:
    url = _with_query(session.location, digest=descriptor.digest)
    response = client.attempt("PUT", url, scopes=scopes, headers=OCTET_STREAM, body=body or b"")
    response.close()
    if response.status_code not in (201, 204):
        raise client.error("PUT", response, scopes)
    stored = response.headers.get("Docker-Content-Digest")
    if stored and stored != descriptor.digest:
        raise RegistryError(f"{client.registry} stored blob {descriptor.digest} as {stored}")


def _resume(
    client: RegistryClient, session: UploadSession, scopes: tuple[str, ...]
) -> UploadSession | None:
    """Where an interrupted upload stands, from the registry; None if it is gone."""
    try:
        response = client.attempt("GET", session.location, scopes=scopes)
    except TransientError:
        return None
    response.close()
    if response.status_code != 204:
        log.debug("upload session gone (HTTP %d): starting over", response.status_code)
        return None
    received = _range_end(response.headers.get("Range"))
    # "0-0" is what registries answer for an empty upload too
    offset = received + 1 if received else 0
    log.debug("resuming upload at byte %d", offset)
    return UploadSession(_location(response, session.location), offset, session.min_chunk)


def download_blob(
    client: RegistryClient,
    repository: str,
    store: Store,
    descriptor: Descriptor,
    scopes: tuple[str, ...],
    progress: BlobProgress,
) -> None:
    """Stream a blob into the store; it gets its name only once size and digest are verified."""
    source = f"{client.registry}/{repository}"

    def attempt() -> requests.Response:
        response = client.attempt(
            "GET", blob_path(repository, descriptor.digest), scopes=scopes, stream=True
        )
        with response:
            if response.status_code != 200:
                raise client.error("GET", response, scopes)
            announced = content_length(response, f"blob {descriptor.digest} from {source}")
            if announced is not None and announced != descriptor.size:
                raise DigestMismatchError(
                    f"blob {descriptor.digest} from {source}: the registry sends {announced} bytes, "
                    f"the manifest says {descriptor.size}"
                )
            received = 0

            def chunks() -> Iterable[bytes]:
                nonlocal received
                for chunk in body_chunks(response, READ_SIZE):
                    received += len(chunk)
                    progress.update(received)
                    yield chunk

            try:
                store.ingest(chunks(), descriptor, source=source)
            except TransientError as e:
                raise TransientError(
                    f"blob {descriptor.digest} from {source}: transfer broken after {received} of "
                    f"{descriptor.size} bytes ({e})",
                    cause=e.cause,
                ) from None
        return response

    client.retrying(attempt)


def _location(response: requests.Response, default: str = "") -> str:
    location = response.headers.get("Location") or default
    if not location:
        raise RegistryError(
            f"{response.request.method} {safe_url(response.url)}: no Location in the answer"
        )
    return urljoin(response.url, location)


def _with_query(url: str, **params: str) -> str:
    parts = urlsplit(url)
    query = [*parse_qsl(parts.query, keep_blank_values=True), *params.items()]
    return urlunsplit(parts._replace(query=urlencode(query)))


def _range_end(value: str | None) -> int | None:
    """The last byte a `Range: 0-1234` header says the registry holds."""
    if not value or "-" not in value:
        return None
    end = value.rsplit("-", 1)[1].strip()
    return int(end) if end.isdigit() else None


def _int(value: str | None) -> int:
    return int(value) if value and value.isdigit() else 0
