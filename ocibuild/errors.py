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
    """Base of all expected errors: bad input, missing things, refused requests."""

    exit_code = 1


class RecipeError(OcibuildError):
    """A recipe file that cannot be read, parsed or validated."""

    def __init__(self, message: str, origin: Origin | None = None) -> None:
        self.origin = origin
        self.message = message
        super().__init__(f"{origin}: {message}" if origin else message)


class SourceError(OcibuildError):
    """A layer source whose inputs are missing, malformed or unsafe."""


class UnsafePathError(SourceError):
    """An entry (of a tarball, package or recipe) that would land outside its root."""


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


class RegistryError(OcibuildError):
    """A registry answered with an error, or could not be reached."""


class AuthError(RegistryError):
    """Credentials were refused or a token could not be obtained."""


class ExportError(OcibuildError):
    """An image could not be written in the asked format (output path, helper tool)."""


class BenchError(OcibuildError):
    """The timing study could not prepare, submit, follow or report a run."""
