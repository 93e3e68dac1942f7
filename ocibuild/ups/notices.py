"""What `setup` tells the user as it goes: warnings, each given once in a build, and the table
lines whose effect the image's Env cannot hold (aliases, sourced scripts, executed commands,
conditions only a shell in the image could answer)."""

from __future__ import annotations

from dataclasses import dataclass, field

from ocibuild.progress import Message, Reporter


@dataclass(frozen=True)
class NotFrozen:
    """A table line whose effect the image's Env cannot hold."""

    where: str  # table file:line
    text: str
    reason: str

    def __str__(self) -> str:
        return f"{self.where}: {self.text}: not in the frozen Env ({self.reason})"


@dataclass
class Notices:
    report: Reporter
    warned: set[str]  # the warnings already given in this build
    not_frozen: list[NotFrozen] = field(default_factory=list)

    def tell(self, message: str) -> None:
        self.report(Message(message))

    def warn(self, message: str) -> None:
        if message not in self.warned:
            self.warned.add(message)
            self.report(Message(message, "warning"))

    def cannot_freeze(self, where: str, text: str, reason: str) -> None:
        rule = NotFrozen(where, text, reason)
        self.not_frozen.append(rule)
        self.warn(str(rule))
