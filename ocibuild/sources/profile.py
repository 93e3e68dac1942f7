"""`profile`: login-shell setup lines, as a script in /etc/profile.d/."""

from __future__ import annotations

from ocibuild.layer.entry import bytes_entry
from ocibuild.sbom import written_file
from ocibuild.sources.base import LayerPlan, input_key
from ocibuild.sources.session import LayerContext
from ocibuild.sources.specs import ProfileSpec


def profile_script(lines: str) -> bytes:
    return ("# written by ocibuild: sourced by login shells\n" + lines.rstrip("\n") + "\n").encode()


def plan(spec: str | ProfileSpec, ctx: LayerContext) -> list[LayerPlan]:
    if isinstance(spec, str):
        spec = ProfileSpec(lines=spec)
    name = spec.name or f"ocibuild-{ctx.index:02d}"
    if "/" in name or name.startswith("."):
        from ocibuild.errors import SourceError

        raise SourceError(f"profile name {name!r} must be a plain file name", ctx.origin)
    path = f"etc/profile.d/{name if name.endswith('.sh') else name + '.sh'}"
    data = profile_script(spec.lines)
    return [
        LayerPlan(
            key=input_key("profile", path, data.decode()),
            description=f"profile: /{path}",
            entries=lambda: [bytes_entry(path, data)],
            components=lambda: [written_file(path, data)],
            created_by=f"ocibuild profile /{path}: {spec.lines.strip().splitlines()[0] if spec.lines.strip() else ''}",
        )
    ]
