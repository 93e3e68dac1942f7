"""Every request is held to its `Deadlines`, whatever the server does: not only a timeout per
socket read (a server sending a byte every few seconds never trips one) but a deadline for the
answer and a minimum rate for the body.

One watchdog thread checks the transfers under way a few times a second. A transfer past its
deadline, or slower than the minimum rate over the last window, is marked expired and its socket
shut down: the read blocked on it returns at once, and the reader raises a `TransientError`
saying which limit was hit. The sockets are known from the connections themselves: the session's
connection classes hand each socket they use to the transfer of the thread sending the request.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
import weakref
from collections import deque
from typing import Any

import requests
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

from ocibuild.net.policy import Deadlines

TICK = 0.2  # seconds between the watchdog's checks

_current = threading.local()  # the transfer whose request this thread is sending


class Transfer:
    """The clock of one request: sending it and reading the answer's headers must end by
    `answer_by`; reading its body must keep the minimum rate. `what` is `METHOD URL`."""

    def __init__(self, what: str, deadlines: Deadlines, body_size: int = 0) -> None:
        self.what = what
        self.deadlines = deadlines
        self.answer_within = deadlines.answer + body_size / deadlines.min_rate
        self.answer_by = time.monotonic() + self.answer_within
        self.reading = False  # the body is being read (else: the request and its answer)
        self.received = 0
        self.expired: str | None = None
        self._samples: deque[tuple[float, int]] = deque()
        self._socket: socket.socket | None = None
        self._lock = threading.RLock()

    def attach(self, sock: socket.socket | None) -> None:
        """The socket this transfer now uses (a new connection, a reused one, a redirect's)."""
        with self._lock:
            self._socket = sock
            if self.expired is not None:
                _shut(sock)

    def start_body(self) -> None:
        with self._lock:
            self.reading = True
            self._samples.append((time.monotonic(), self.received))

    def check(self, now: float) -> None:
        """Expire the transfer if it is past its deadline or below the minimum rate."""
        with self._lock:
            self._check(now)

    def _check(self, now: float) -> None:
        if self.expired is not None:
            return
        if not self.reading:
            if now > self.answer_by:
                self.expire(
                    f"no answer within {self.answer_within:g} s "
                    f"(the answer deadline, OCIBUILD_NET_ANSWER_SECONDS)"
                )
            return
        window = self.deadlines.window
        samples = self._samples
        samples.append((now, self.received))
        while len(samples) > 2 and samples[1][0] <= now - window:
            samples.popleft()
        since, received = samples[0]
        moved = self.received - received
        if now - since >= window and moved < self.deadlines.min_rate * (now - since):
            self.expire(
                f"too slow: {moved} bytes in the last {now - since:.0f} s, under the minimum "
                f"rate of {self.deadlines.min_rate:g} bytes/s (OCIBUILD_NET_MIN_RATE)"
            )

    def expire(self, reason: str) -> None:
        with self._lock:
            if self.expired is None:
                self.expired = reason
            _shut(self._socket)


def _shut(sock: socket.socket | None) -> None:
    if sock is None:
        return
    with contextlib.suppress(OSError):  # closed already
        sock.shutdown(socket.SHUT_RDWR)


class _Watchdog:
    def __init__(self) -> None:
        self._active: set[Transfer] = set()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def add(self, transfer: Transfer) -> None:
        with self._lock:
            self._active.add(transfer)
            if self._thread is None:
                # a daemon: it only sleeps and shuts sockets, nothing that minds the exit
                self._thread = threading.Thread(target=self._run, name="net-watchdog", daemon=True)
                self._thread.start()

    def remove(self, transfer: Transfer) -> None:
        with self._lock:
            self._active.discard(transfer)

    def _run(self) -> None:
        while True:
            time.sleep(TICK)
            with self._lock:
                active = list(self._active)
            now = time.monotonic()
            for transfer in active:
                transfer.check(now)


WATCHDOG = _Watchdog()
_transfers: weakref.WeakKeyDictionary[requests.Response, Transfer] = weakref.WeakKeyDictionary()


def sending(transfer: Transfer | None) -> None:
    """Make `transfer` the one whose request this thread sends (None: no longer)."""
    _current.transfer = transfer


def transfer_of(response: requests.Response) -> Transfer | None:
    return _transfers.get(response)


def remember(response: requests.Response, transfer: Transfer) -> None:
    _transfers[response] = transfer


def _attach_current(sock: socket.socket | None) -> None:
    transfer: Transfer | None = getattr(_current, "transfer", None)
    if transfer is not None:
        transfer.attach(sock)


class _Watched:
    """Hands the connection's socket to the transfer of the thread using it."""

    sock: socket.socket | None

    def connect(self) -> None:
        super().connect()  # type: ignore[misc]
        _attach_current(self.sock)

    def request(self, *args: Any, **kwargs: Any) -> None:
        if self.sock is not None:
            _attach_current(self.sock)
        super().request(*args, **kwargs)  # type: ignore[misc]


class _WatchedHTTPConnection(_Watched, HTTPConnection):
    pass


class _WatchedHTTPSConnection(_Watched, HTTPSConnection):
    pass


class _HTTPPool(HTTPConnectionPool):
    ConnectionCls = _WatchedHTTPConnection


class _HTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _WatchedHTTPSConnection


_POOLS = {"http": _HTTPPool, "https": _HTTPSPool}


class WatchedAdapter(HTTPAdapter):
    """requests' adapter over connections whose sockets the watchdog can shut."""

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = _POOLS

    def proxy_manager_for(self, proxy: str, **proxy_kwargs: Any) -> Any:
        manager = super().proxy_manager_for(proxy, **proxy_kwargs)
        manager.pool_classes_by_scheme = _POOLS
        return manager
