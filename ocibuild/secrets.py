"""Every credential the process holds, and the filter that keeps them out of all output.

Code that loads or obtains a secret (a password, a token, an identity from a credential helper)
registers it here; the CLI passes every message, log line and error it prints through
`redact()`, so a secret echoed back from anywhere (a registry's error body quoting our
Authorization header, a credential helper's output) shows as `***`. A secret is registered with
the forms it travels in: as is, base64 `user:password` (a Basic header, docker's config.json),
its own base64, and JSON-escaped. Secrets shorter than `MIN_ANYWHERE` characters are redacted
only where they stand alone, so that a two-letter password does not garble every message.
"""

from __future__ import annotations

import base64
import logging
import re
import threading

MASK = "***"
MIN_ANYWHERE = 6


class _Registry:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.secrets: set[str] = set()
        self.pattern: re.Pattern[str] | None = None


_registry = _Registry()


def register(secret: str, user: str | None = None) -> None:
    """Redact `secret` (and, given `user`, the base64 of `user:secret`) from now on."""
    if not secret:
        return
    forms = {secret, _b64(secret)}
    if user is not None:
        forms.add(_b64(f"{user}:{secret}"))
    forms |= {f.replace("/", "\\/") for f in forms}  # as JSON may escape it
    with _registry.lock:
        if forms <= _registry.secrets:
            return
        _registry.secrets.update(forms)
        _registry.pattern = _compile(_registry.secrets)


_USERINFO = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*://)([^/?#]*@)", re.ASCII)


def public_url(url: str) -> str:
    """`url` without its user info (`https://user:password@host/x` -> `https://host/x`): the form
    of a URL that may be recorded (lock files, package records, SBOMs) or shown."""
    return _USERINFO.sub(r"\1", url, count=1)


def register_url(url: str) -> None:
    """Redact the password of a `https://user:password@host/` URL (as written and decoded)."""
    match = _USERINFO.match(url)
    if match is None or ":" not in match.group(2):
        return
    from urllib.parse import unquote

    user, _, password = match.group(2)[:-1].partition(":")
    register(password, user)
    register(unquote(password), unquote(user))


_USERINFO_ANYWHERE = re.compile(r"\b([A-Za-z][A-Za-z0-9+.-]*://)[^/?#\s@'\"]*@", re.ASCII)


def redact(text: str) -> str:
    """`text` with every registered secret replaced by `***`, and no user info in any URL
    it holds (`http://user:password@host/` shows as `http://host/`)."""
    if not text:
        return text
    if "@" in text:
        text = _USERINFO_ANYWHERE.sub(r"\1", text)
    pattern = _registry.pattern
    return text if pattern is None else pattern.sub(MASK, text)


class RedactingFilter(logging.Filter):
    """A logging filter (for handlers) that redacts the formatted message and any traceback."""

    def filter(self, record: logging.LogRecord) -> bool:
        if _registry.pattern is None:
            return True
        record.msg = redact(record.getMessage())
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        return True


def clear() -> None:
    """Forget every secret (tests)."""
    with _registry.lock:
        _registry.secrets.clear()
        _registry.pattern = None


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def _compile(secrets: set[str]) -> re.Pattern[str]:
    # longest first, so that a secret containing another is masked whole
    parts = []
    for secret in sorted(secrets, key=len, reverse=True):
        escaped = re.escape(secret)
        if len(secret) < MIN_ANYWHERE:
            escaped = rf"(?<![A-Za-z0-9+/=_-]){escaped}(?![A-Za-z0-9+/=_-])"
        parts.append(escaped)
    return re.compile("|".join(parts))
