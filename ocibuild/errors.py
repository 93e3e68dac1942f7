"""Every exception ocibuild raises on purpose. The CLI turns them into messages and exit codes."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Origin:
    """Where something came from: a file, and a line and column in it (1-based)."""

    file: str
    line: int = 0
    column: int = 0

    def __str__(self) -> str:
        if not self.line:
            return self.file
        if not self.column:
            return f"{self.file}:{self.line}"
        return f"{self.file}:{self.line}:{self.column}"


class OcibuildError(Exception):
    """Base of all expected errors: bad input, missing things, refused requests.

    `origin` is where the fault is (a recipe line, a file, a file's line): the message reads
    `origin: message`, formatted here and nowhere else.
    """

    exit_code = 1

    def __init__(self, message: str = "", origin: Origin | str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.origin = origin

    def __str__(self) -> str:
        return f"{self.origin}: {self.message}" if self.origin else self.message

    def __reduce__(self) -> tuple[object, ...]:
        return (_rebuild, (type(self), self.message, self.origin, self.__dict__))

    def located(self, origin: Origin | str | None) -> OcibuildError:
        """This error at `origin`, unless it names a place already (then it is more precise)."""
        if self.origin is None:
            self.origin = origin
        return self


def _rebuild(
    kind: type[OcibuildError], message: str, origin: Origin | str | None, state: dict[str, object]
) -> OcibuildError:
    error = kind.__new__(kind)
    OcibuildError.__init__(error, message, origin)
    error.__dict__.update(state)
    return error


class Cancelled(OcibuildError):
    """Work abandoned because the build was interrupted, or another part of it failed."""

    exit_code = 130


class RecipeError(OcibuildError):
    """A recipe file that cannot be read, parsed or validated."""


class SourceError(OcibuildError):
    """A layer source whose inputs are missing, malformed or unsafe."""


class UnsafePathError(SourceError):
    """An entry (of a tarball, package or recipe) that would land outside its root."""


class SignatureError(SourceError):
    """A signature that does not verify: `reason` is one of `unsigned`, `bad`, `unknown-key`,
    `expired-key`, `revoked-key`, `expired-signature`, `weak-digest`, `unverifiable`, `expired`
    (an index past its Valid-Until) or "" (the keys themselves are unusable); `key` names the
    key (fingerprint or long key id) where one is known."""

    def __init__(
        self, message: str = "", origin: Origin | str | None = None, reason: str = "", key: str = ""
    ) -> None:
        super().__init__(message, origin)
        self.reason = reason
        self.key = key


class LayerError(OcibuildError):
    """The layer writer was given entries it cannot write."""


class StoreError(OcibuildError):
    """The local OCI layout is missing something or is inconsistent."""


class NotFoundError(StoreError):
    """A reference or blob that the store does not hold."""


class DigestMismatchError(OcibuildError):
    """Content whose sha256 differs from what it was announced or recorded as."""


class LockError(OcibuildError):
    """A lock file (`<recipe>.lock`) disagrees with what was fetched."""


class FetchError(OcibuildError):
    """A download (scisoft mirror, package repository) that failed."""


class MissingDownloadError(FetchError):
    """The server (or directory) has no file at the URL: HTTP 404 or 410, or no such file."""


class NetworkError(OcibuildError):
    """A request that got no usable answer. `cause` is one of `dns`, `refused`, `tls-verify`,
    `tls`, `timeout`, `broken`, `http` or `other`; the message names it and the URL."""

    def __init__(
        self, message: str, origin: Origin | str | None = None, cause: str = "other"
    ) -> None:
        super().__init__(message, origin)
        self.cause = cause


class TransientError(NetworkError):
    """A failure a retry may fix: a timeout, a broken connection, 408, 429 or a 5xx;
    `retry_after` is the server's wish (seconds) from a `Retry-After` header."""

    def __init__(
        self,
        message: str,
        retry_after: float | None = None,
        cause: str = "other",
        origin: Origin | str | None = None,
    ) -> None:
        super().__init__(message, origin, cause)
        self.retry_after = retry_after


class RegistryError(OcibuildError):
    """A registry answered with an error, or could not be reached."""


class AuthError(RegistryError):
    """Credentials were refused or a token could not be obtained."""


class OutputError(OcibuildError):
    """A path given to write to that the output policy refuses, or that cannot be written."""


class ExportError(OcibuildError):
    """An image could not be written in the asked format (output path, helper tool)."""


class BenchError(OcibuildError):
    """The timing study could not prepare, submit, follow or report a run."""


class SigningKeyError(OcibuildError):
    """A signing or verification key that cannot be read, decrypted or used."""


class VerificationError(OcibuildError):
    """An image whose signature is missing, does not verify, or is for another image."""
