"""`if (cond)` / `unless (cond)` / `else()` / `endif (cond)` / `endUnless (cond)` in a table
action: sh conditionals, whose commands change the environment only when every enclosing
condition holds. UPS pairs an end with its opening by their text."""

from __future__ import annotations

from dataclasses import dataclass, replace

from ocibuild.errors import SourceError


@dataclass(frozen=True)
class _Branch:
    holds: bool
    kind: str  # if or unless
    test: str  # the condition as written, which its end repeats


class Conditionals:
    def __init__(self, active: bool) -> None:
        """`active`: whether the action itself changes the environment."""
        self.active = active
        self._open: list[_Branch] = []

    def holds(self) -> bool:
        """Whether a command here changes the environment."""
        return self.active and all(b.holds for b in self._open)

    def open(self, kind: str, test: str, holds: bool) -> None:
        self._open.append(_Branch(holds, kind, test))

    def otherwise(self, where: str) -> None:
        if not self._open:
            raise SourceError("else() without if()", where)
        branch = self._open.pop()
        self._open.append(replace(branch, holds=self.holds() and not branch.holds))

    def close(self, text: str, test: str, where: str) -> None:
        if not self._open or self._open[-1].test != test:
            opened = f"{self._open[-1].kind}({self._open[-1].test})" if self._open else "no if()"
            raise SourceError(
                f"{text} does not close {opened}: UPS pairs them by their text", where
            )
        self._open.pop()

    def check_closed(self, table_path: str) -> None:
        if self._open:
            raise SourceError(
                f"{table_path}: {self._open[-1].kind}({self._open[-1].test}) without "
                "endif() in the setup action"
            )
