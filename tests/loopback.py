"""An HTTP server on 127.0.0.1 for the tests' mirrors and indexes, quiet when a client hangs up.

ocibuild closes a download it no longer wants (a refused layer cancels the others, a deadline
cuts a transfer): the standard server prints that reset as a traceback on stderr, which the
tests read for ocibuild's one-line errors."""

from __future__ import annotations

import http.server
import sys


class LoopbackServer(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: object, client_address: object) -> None:
        if isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            return  # the client went away: what ocibuild does on purpose
        super().handle_error(request, client_address)  # type: ignore[arg-type]
