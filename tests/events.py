"""A progress callback for tests: it records every event it is given."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TypeVar

from ocibuild.progress import Event, Message

E = TypeVar("E")


@dataclass
class Events:
    seen: list[Event] = field(default_factory=list)

    def __call__(self, event: Event) -> None:
        self.seen.append(event)

    def of(self, kind: type[E]) -> list[E]:
        return [e for e in self.seen if isinstance(e, kind)]

    def messages(self) -> list[str]:
        return [e.message for e in self.of(Message)]

    def text(self) -> str:
        return "\n".join(repr(e) for e in self.seen)

    def clear(self) -> None:
        self.seen.clear()
