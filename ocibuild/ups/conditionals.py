"""`If (cond)` / `Unless (cond)` / `Else()` / `EndIf (cond)` / `EndUnless (cond)` (upsact.c
`f_if`, `f_unless`, `f_else`, `f_endif`): ups writes `cond; if [ $? = 0 ]` (`!= 0` for
Unless), `else`, `fi`, and the shell decides. One stack for the whole setup command: a
condition opened in one product's action may be closed in another's. An EndIf must repeat its
If's argument exactly (checked when ups writes the file); an If left open makes the shell stop
at the end of the file, nothing from that If on applied."""

from __future__ import annotations

from dataclasses import dataclass, replace


@dataclass(frozen=True)
class Branch:
    holds: bool  # whether commands here run (every enclosing condition included)
    kind: str  # if or unless
    test: str  # the argument, which its EndIf repeats
    position: int  # where the If is in the script
    env: dict[str, str]  # the environment when the shell reached it


class Conditionals:
    def __init__(self) -> None:
        self._open: list[Branch] = []

    def holds(self) -> bool:
        """Whether a command here runs."""
        return all(b.holds for b in self._open)

    def open(self, branch: Branch) -> None:
        self._open.append(branch)

    def otherwise(self) -> bool:
        """`else`; False when no If is open (the shell's syntax error)."""
        if not self._open:
            return False
        branch = self._open.pop()
        self._open.append(replace(branch, holds=self.holds() and not branch.holds))
        return True

    def close(self, test: str) -> str:
        """EndIf(test): "" when it closes the open If, else ups's message."""
        opened = self._open.pop().test if self._open else ""
        if opened != test:
            return f"Mismatched EndIf condition '{opened}' does not match If condition '{test}'."
        return ""

    def unclosed(self) -> Branch | None:
        """The outermost If left open."""
        return self._open[0] if self._open else None
