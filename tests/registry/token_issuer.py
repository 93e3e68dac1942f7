"""A small token service for the registry's token auth: `GET /token?service=&scope=...` with
optional basic auth answers a JWT (ES256, `kid` = the signer's libtrust key ID) granting each
requested action the account's rules allow, as Docker's token services do: a refused action is
left out of the token, and the registry then refuses the request it was needed for."""

from __future__ import annotations

import base64
import fnmatch
import json
import secrets
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import jwt

from tests.registry.pki import KeyPair, libtrust_key_id

SERVICE = "ocibuild-test-registry"
ISSUER = "ocibuild-test-issuer"
ANONYMOUS = ""


@dataclass
class TokenIssuer:
    signer: KeyPair
    # account -> password; account -> [(repository glob, actions)]
    passwords: dict[str, str] = field(default_factory=dict)
    rules: dict[str, list[tuple[str, set[str]]]] = field(default_factory=dict)
    lifetime: int = 300
    expired_tokens: int = 0  # how many of the next tokens are already expired (they claim not)
    requests: list[dict[str, list[str]]] = field(default_factory=list)
    refused_logins: int = 0

    def start(self) -> None:
        issuer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                issuer.handle(self)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def realm(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/token"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def account(self, header: str | None) -> str | None:
        """The authenticated account, ANONYMOUS without credentials, None if they are wrong."""
        if not header:
            return ANONYMOUS
        scheme, _, value = header.partition(" ")
        if scheme.lower() != "basic":
            return None
        user, _, password = base64.b64decode(value).decode().partition(":")
        return user if self.passwords.get(user) == password else None

    def granted(self, account: str, scope: str) -> dict[str, object] | None:
        kind, _, rest = scope.partition(":")
        name, _, actions = rest.rpartition(":")
        allowed: set[str] = set()
        for pattern, rule_actions in self.rules.get(account, []):
            if fnmatch.fnmatch(name, pattern):
                allowed |= rule_actions
        given = [a for a in actions.split(",") if a in allowed]
        return {"type": kind, "name": name, "actions": given} if given else None

    def handle(self, request: BaseHTTPRequestHandler) -> None:
        query = parse_qs(urlsplit(request.path).query)
        self.requests.append(query)
        account = self.account(request.headers.get("Authorization"))
        if account is None:
            self.refused_logins += 1
            self.answer(
                request, 401, {"errors": [{"code": "UNAUTHORIZED", "message": "bad credentials"}]}
            )
            return
        access = [g for s in query.get("scope", []) if (g := self.granted(account, s))]
        now = int(time.time())
        expired = self.expired_tokens > 0
        self.expired_tokens -= expired
        claims = {
            "iss": ISSUER,
            "sub": account,
            "aud": query.get("service", [""])[0],
            "iat": now - 600 if expired else now,
            "nbf": now - 600 if expired else now - 5,
            "exp": now - 300 if expired else now + self.lifetime,
            "jti": secrets.token_hex(8),
            "access": access,
        }
        token = jwt.encode(
            claims,
            self.signer.private_pem(),
            algorithm="ES256",
            headers={"kid": libtrust_key_id(self.signer.key.public_key())},
        )
        self.answer(request, 200, {"token": token, "expires_in": self.lifetime})

    @staticmethod
    def answer(request: BaseHTTPRequestHandler, status: int, body: dict[str, object]) -> None:
        data = json.dumps(body).encode()
        request.send_response(status)
        request.send_header("Content-Type", "application/json")
        request.send_header("Content-Length", str(len(data)))
        request.end_headers()
        request.wfile.write(data)
