"""The real ups's messages and its "last error" (upserr.c), which decides whether a `setup`
is refused.

ups keeps the messages it will print (`ERROR: ...`, `WARNING: ...`, `INFORMATIONAL: ...`) in
a buffer, and one global, its last error: every ERROR or WARNING message sets it,
`upserr_backup` drops the last message and clears it, and every read of a UPS file clears it
(upsfil.c `upsfil_read_file`, first statement). After its dependency walk, ups refuses the setup
when the last error stands: nothing of the setup is applied (`setup` returns 1). So a required
product that cannot be found fails the setup unless ups reads another file after it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from ocibuild.errors import SourceError

Severity = Literal["ERROR", "WARNING", "INFORMATIONAL"]


@dataclass
class UpsErrors:
    messages: list[str] = field(default_factory=list)
    places: list[str] = field(default_factory=list)  # the table line each message is about
    last: str = ""  # the code of the last error standing (upserr.h's names), "" for none
    cause: str = ""  # the message that set it
    where: str = ""  # the table line that caused it, when a line did

    def add(self, code: str, severity: Severity, text: str, where: str = "") -> None:
        """upserr_add: `code` is upserr.h's name (NO_FILE, ACTION_PARSE...)."""
        message = f"{severity}: {text}"
        self.messages.append(message)
        self.places.append(where)
        if severity != "INFORMATIONAL":
            self.last, self.cause = code, message
            self.where = where

    def note(self, severity: Severity, text: str) -> None:
        """A message that leaves the last error as it was (upsutl.c upsutl_statistics)."""
        self.messages.append(f"{severity}: {text}")
        self.places.append("")

    def backup(self) -> None:
        """upserr_backup: the last message dropped, the last error cleared."""
        if self.messages:
            self.messages.pop()
            self.places.pop()
        self.clear()

    def file_read(self) -> None:
        """upsfil_read_file's first statement."""
        self.clear()

    def clear(self) -> None:
        self.last = self.cause = self.where = ""

    @property
    def failed(self) -> bool:
        return bool(self.last)


class SetupRefused(SourceError):
    """The real `setup` refuses this one: nothing of it is applied. `messages` are what the
    real ups prints (its first line, `Error encountered when setting up product: P`, left out)."""

    def __init__(self, message: str, messages: list[str], where: str = "") -> None:
        super().__init__(message, where or None)
        self.messages = tuple(messages)


class SetupFailed(SourceError):
    """The sh code the real ups wrote stops with an error (a required sourced file missing, a
    failing fileTest, an If without EndIf): the lines before it are applied, the `setup`
    command fails. `env` is the environment at that point; `output` what the shell printed."""

    def __init__(
        self, message: str, env: dict[str, str], output: str, status: int, where: str = ""
    ) -> None:
        super().__init__(message, where or None)
        self.env = env
        self.output = output
        self.status = status
