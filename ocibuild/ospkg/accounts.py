"""/etc/passwd, /etc/group and /etc/shadow: parse, look up, merge, write back."""

from __future__ import annotations

from dataclasses import dataclass, replace

from ocibuild.errors import SourceError


@dataclass(frozen=True)
class User:
    name: str
    uid: int
    gid: int
    gecos: str = ""
    home: str = "/"
    shell: str = "/bin/sh"
    password: str = "x"

    def line(self) -> str:
        return ":".join(
            [
                self.name,
                self.password,
                str(self.uid),
                str(self.gid),
                self.gecos,
                self.home,
                self.shell,
            ]
        )


@dataclass(frozen=True)
class Group:
    name: str
    gid: int
    members: tuple[str, ...] = ()
    password: str = "x"

    def line(self) -> str:
        return ":".join([self.name, self.password, str(self.gid), ",".join(self.members)])

    def with_member(self, user: str) -> Group:
        return self if user in self.members else replace(self, members=(*self.members, user))


def _lines(text: str) -> list[list[str]]:
    return [
        line.split(":")
        for line in text.splitlines()
        if line.strip() and not line.startswith(("#", "+", "-"))
    ]


def parse_passwd(text: str, what: str = "/etc/passwd") -> list[User]:
    users = []
    for fields in _lines(text):
        if len(fields) < 7:
            raise SourceError(f"{what}: malformed line {':'.join(fields)!r}")
        try:
            users.append(
                User(
                    fields[0],
                    int(fields[2]),
                    int(fields[3]),
                    fields[4],
                    fields[5],
                    fields[6],
                    fields[1],
                )
            )
        except ValueError:
            raise SourceError(f"{what}: non-numeric id in {':'.join(fields)!r}") from None
    return users


def parse_group(text: str, what: str = "/etc/group") -> list[Group]:
    groups = []
    for fields in _lines(text):
        if len(fields) < 4:
            raise SourceError(f"{what}: malformed line {':'.join(fields)!r}")
        try:
            members = tuple(m for m in fields[3].split(",") if m)
            groups.append(Group(fields[0], int(fields[2]), members, fields[1]))
        except ValueError:
            raise SourceError(f"{what}: non-numeric id in {':'.join(fields)!r}") from None
    return groups


def format_passwd(users: list[User]) -> bytes:
    return "".join(u.line() + "\n" for u in users).encode()


def format_group(groups: list[Group]) -> bytes:
    return "".join(g.line() + "\n" for g in groups).encode()


def with_shadow_entry(text: str, name: str, line: str) -> bytes:
    """`text` (a shadow or gshadow file) with the entry of `name` set to `line`."""
    kept = [entry for entry in text.splitlines() if entry and entry.split(":", 1)[0] != name]
    return "".join(entry + "\n" for entry in [*kept, line]).encode()


@dataclass(frozen=True)
class IdMap:
    """User and group names -> numeric ids, as an image's account files define them."""

    users: dict[str, int]
    groups: dict[str, int]

    @classmethod
    def from_files(cls, passwd: bytes | None, group: bytes | None) -> IdMap:
        users = (
            {u.name: u.uid for u in parse_passwd(passwd.decode(errors="replace"))} if passwd else {}
        )
        groups = (
            {g.name: g.gid for g in parse_group(group.decode(errors="replace"))} if group else {}
        )
        return cls(users, groups)

    def merged(self, other: IdMap) -> IdMap:
        """This map, completed by names only `other` knows."""
        return IdMap({**other.users, **self.users}, {**other.groups, **self.groups})

    def uid(self, name: str) -> int:
        return 0 if name == "root" else self.users.get(name, 0)

    def gid(self, name: str) -> int:
        return 0 if name == "root" else self.groups.get(name, 0)
