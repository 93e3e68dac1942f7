"""`user`: a non-root account, and the image's default user.

    - user: {name: hep, uid: 1000, groups: [wheel], shell: /bin/bash}

Writes /etc/passwd, /etc/group and /etc/shadow (the base image's, with the account added; its
password locked), the home directory owned by the account with the base's /etc/skel copied in,
and makes the account the image's user (`uid:gid`) unless `set_user: false`. Without account
files in the base, it starts from Debian's base-passwd masters when the image has them
(`/usr/share/base-passwd/*.master`, which base-passwd's postinst would have copied), else from
a root-only set.
"""

from __future__ import annotations

import difflib
import posixpath
from dataclasses import replace

from ocibuild.errors import Origin, SourceError, UnsafePathError
from ocibuild.layer.entry import Entry, bytes_entry, clean_path, dir_entry
from ocibuild.ospkg.accounts import (
    Group,
    User,
    format_group,
    format_passwd,
    parse_group,
    parse_passwd,
    with_shadow_entry,
)
from ocibuild.sbom import Component
from ocibuild.sources.base import LayerPlan, RuntimeHook, content_key, input_key
from ocibuild.sources.session import LayerContext
from ocibuild.sources.specs import UserSpec

ACCOUNT_FILES = ("etc/passwd", "etc/group", "etc/shadow", "etc/gshadow")
MASTERS = {
    "etc/passwd": "usr/share/base-passwd/passwd.master",
    "etc/group": "usr/share/base-passwd/group.master",
}
ROOT_ONLY = {"etc/passwd": b"root:x:0:0:root:/root:/bin/sh\n", "etc/group": b"root:x:0:\n"}
SKEL = "etc/skel/"


def plan(spec: UserSpec, ctx: LayerContext) -> list[LayerPlan]:
    origin = spec.origin or ctx.origin
    gid = spec.uid if spec.gid is None else spec.gid
    try:
        home = "/" + clean_path(spec.home or f"/home/{spec.name}", "home")
    except UnsafePathError as e:
        raise SourceError(str(e), origin) from None
    lower = _lower(ctx)
    files = _account_files(spec, gid, home, lower, ctx.session.source_date_epoch, origin)
    skel = {p: data for p, data in lower.items() if p.startswith(SKEL)}
    key = input_key(
        "user",
        spec.name,
        spec.uid,
        gid,
        home,
        spec.shell,
        spec.groups,
        spec.gecos,
        content_key(lower),
    )

    def entries() -> list[Entry]:
        out = [
            bytes_entry(path, data, mode=mode, gid=group)
            for path, (data, mode, group) in files.items()
        ]
        out.append(dir_entry(home, mode=0o755, uid=spec.uid, gid=gid))
        for path, data in sorted(skel.items()):
            target = posixpath.join(home.lstrip("/"), path[len(SKEL) :])
            out.append(bytes_entry(target, data, mode=0o644, uid=spec.uid, gid=gid))
        return out

    return [
        LayerPlan(
            key=key,
            description=f"user: {spec.name} ({spec.uid}:{gid}), home {home}",
            entries=entries,
            created_by=f"ocibuild user {spec.name} uid={spec.uid} gid={gid}",
            runtime_config=_set_user(f"{spec.uid}:{gid}") if spec.set_user else None,
            components=lambda: [
                Component(
                    kind="user",
                    name=spec.name,
                    path=home,
                    properties=(("uid", str(spec.uid)), ("gid", str(gid)), ("shell", spec.shell)),
                )
            ],
        )
    ]


def _set_user(user: str) -> RuntimeHook:
    return lambda runtime, files: replace(runtime, user=user)


def _lower(ctx: LayerContext) -> dict[str, bytes]:
    if ctx.lower is None:
        return {}
    wanted = {*ACCOUNT_FILES, *MASTERS.values()}
    return ctx.lower.collect(lambda p: p in wanted or p.startswith(SKEL))


def _account_files(
    spec: UserSpec, gid: int, home: str, lower: dict[str, bytes], epoch: int, origin: Origin
) -> dict[str, tuple[bytes, int, int]]:
    """path -> (content, mode, group id) of the account files with the new account."""

    def base(path: str) -> str:
        data = lower.get(path) or lower.get(MASTERS.get(path, "")) or ROOT_ONLY.get(path, b"")
        return data.decode("utf-8", "replace")

    users = parse_passwd(base("etc/passwd"))
    groups = parse_group(base("etc/group"))
    for user in users:
        if user.name == spec.name and user.uid != spec.uid:
            raise SourceError(f"user {spec.name} already exists with uid {user.uid}", origin)
        if user.uid == spec.uid and user.name != spec.name:
            raise SourceError(f"uid {spec.uid} already belongs to user {user.name}", origin)
    primary = next((g for g in groups if g.gid == gid), None)
    if primary is None:
        if any(g.name == spec.name for g in groups):
            raise SourceError(f"group {spec.name} already exists with another gid", origin)
        groups.append(Group(spec.name, gid))
    known = {g.name for g in groups}
    for name in spec.groups:
        if name not in known:
            close = difflib.get_close_matches(name, known, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise SourceError(f"group {name!r} does not exist in the image{hint}", origin)
    groups = [g.with_member(spec.name) if g.name in spec.groups else g for g in groups]
    users = [u for u in users if u.name != spec.name]
    users.append(User(spec.name, spec.uid, gid, spec.gecos, home, spec.shell))
    shadow_gid = next((g.gid for g in groups if g.name == "shadow"), 0)
    days = epoch // 86400
    files = {
        "etc/passwd": (format_passwd(users), 0o644, 0),
        "etc/group": (format_group(groups), 0o644, 0),
        "etc/shadow": (
            with_shadow_entry(
                _shadow_base(lower, users), spec.name, f"{spec.name}:!:{days}:0:99999:7:::"
            ),
            0o640 if shadow_gid else 0o600,
            shadow_gid,
        ),
    }
    if "etc/gshadow" in lower and primary is None:
        text = lower["etc/gshadow"].decode("utf-8", "replace")
        files["etc/gshadow"] = (
            with_shadow_entry(text, spec.name, f"{spec.name}:!::"),
            0o640 if shadow_gid else 0o600,
            shadow_gid,
        )
    return files


def _shadow_base(lower: dict[str, bytes], users: list[User]) -> str:
    """The base's shadow file, or locked entries for the base's accounts if it has none."""
    if "etc/shadow" in lower:
        return lower["etc/shadow"].decode("utf-8", "replace")
    return "".join(f"{u.name}:*:0:0:99999:7:::\n" for u in users)
