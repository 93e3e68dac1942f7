"""`configure`: what the maintainer scripts of the image's Debian packages would have made,
made declaratively from the image's files (the `deb` source runs no script).

    - deb: {repos: [...], packages: [build-essential, python3, ca-certificates]}
    - configure: {}    # effects: [base-files, alternatives, ca-certificates, bytecode] (all)

One layer, over every package of the image below (a later `configure` makes it again for all):

- `base-files`: what base-files' postinst makes on a fresh install: /etc/profile, root's dot
  files, /opt, /srv, /var/mail, the /usr/local tree, /var/run -> /run (`ospkg/basefiles.py`);
- `alternatives`: the `update-alternatives --install` calls of the packages' postinst scripts
  (`/var/lib/dpkg/info/*.postinst`), chosen as dpkg's auto mode does: the links and
  `/etc/alternatives`, `/var/lib/dpkg/alternatives/NAME` (`ospkg/alternatives.py`);
- `ca-certificates`: what `update-ca-certificates` writes: `/etc/ca-certificates.conf` when
  missing, `/etc/ssl/certs` links and hash links, the bundle `ca-certificates.crt`
  (`ospkg/cacerts.py`);
- `bytecode`: the pycs the postinsts of python3.X and of Debian's Python packages compile
  (`py_compile`, `py3compile`) for the modules under `/usr/lib/python3.X` and
  `/usr/lib/python3/dist-packages`, as unchecked-hash pycs (`python/bytecode.py`).
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from ocibuild.errors import SourceError
from ocibuild.layer.entry import Entry, bytes_entry
from ocibuild.ospkg import alternatives, basefiles, cacerts
from ocibuild.ospkg.dpkgdb import INFO_DIR
from ocibuild.progress import Message, plural
from ocibuild.python.bytecode import Compiler, Interpreter, cache_tag, find_interpreter
from ocibuild.sources.base import LayerPlan, content_key, input_key
from ocibuild.sources.session import LayerContext
from ocibuild.sources.specs import ConfigureSpec

INFO = INFO_DIR.strip("/") + "/"
_STDLIB = re.compile(r"usr/lib/python3\.(\d+)/.+\.py")
_DIST_PACKAGES = "usr/lib/python3/dist-packages/"
GROUP, GROUP_MASTER = "etc/group", "usr/share/base-passwd/group.master"


def _wanted(path: str) -> bool:
    return (
        (path.startswith(INFO) and path.endswith((".postinst", ".list")))
        or path.startswith(basefiles.DEFAULTS)
        or path in (basefiles.STAFF_MARK, GROUP, GROUP_MASTER)
        or path.startswith((cacerts.CERTSDIR, cacerts.LOCALCERTSDIR))
        or path == cacerts.CONF
        or (path.endswith(".py") and (path.startswith(_DIST_PACKAGES) or bool(_STDLIB.match(path))))
    )


def plan(spec: ConfigureSpec, ctx: LayerContext) -> list[LayerPlan]:
    origin = spec.origin or ctx.origin
    files = ctx.lower.collect(_wanted) if ctx.lower is not None else {}
    installed = {
        line
        for path, data in files.items()
        if path.startswith(INFO) and path.endswith(".list")
        for line in data.decode("utf-8", "surrogateescape").splitlines()
    }

    def exists(path: str) -> bool:
        return path in installed or path.lstrip("/") in files

    effects: list[str] = []
    made: list[basefiles.Made] = []
    if "base-files" in spec.effects and basefiles.SCRIPT in files:
        group_file = files.get(GROUP) or files.get(GROUP_MASTER, b"")
        made, notes = basefiles.made(
            files[basefiles.SCRIPT].decode("utf-8", "replace"),
            files,
            exists,
            basefiles.group_ids(group_file),
        )
        for note in notes:
            ctx.report(Message(f"configure: {note}"))
        effects.append(f"base-files: {plural(len(made), 'path')}")
    groups: list[alternatives.Group] = []
    if "alternatives" in spec.effects:
        calls: list[alternatives.Install] = []
        for path, data in sorted(files.items()):
            if path.startswith(INFO) and path.endswith(".postinst"):
                package = path[len(INFO) : -len(".postinst")].partition(":")[0]
                read_calls, notes = alternatives.install_calls(
                    package, data.decode("utf-8", "replace")
                )
                calls += read_calls
                for note in notes:
                    ctx.report(Message(f"configure: {note}"))
        groups = alternatives.groups(calls, exists)
        effects.append(
            f"{plural(len(groups), 'alternative')} ({', '.join(g.name for g in groups)})"
        )
    store = None
    if "ca-certificates" in spec.effects and any(p.startswith(cacerts.CERTSDIR) for p in files):
        store = cacerts.ca_store(files)
        for path in store.missing:
            ctx.report(Message(f"configure: /{path} is listed in /{cacerts.CONF} but missing"))
        effects.append(plural(len(store.certificates), "CA certificate"))
    sources = {p: data for p, data in files.items() if p.endswith(".py")}
    versions = sorted({int(m.group(1)) for p in sources if (m := _STDLIB.match(p))})
    compile_for = None
    if "bytecode" in spec.effects and versions:
        if len(versions) > 1:
            found = ", ".join(f"python3.{v}" for v in versions)
            raise SourceError(
                f"configure: bytecode: the image has several Pythons ({found})", origin
            )
        try:
            compile_for = find_interpreter((3, versions[0]))
        except SourceError as e:
            raise SourceError(f"configure: {e}; or leave bytecode out of effects", origin) from None
        effects.append(f"bytecode of {plural(len(sources), 'module')}")
    ctx.report(Message(f"configure: {', '.join(effects) or 'nothing to do'}"))
    key = input_key("configure", spec.effects, content_key(files))

    def entries() -> Iterator[Entry]:
        yield from basefiles.entries(made)
        yield from alternatives.entries(groups, exists)
        if store is not None:
            yield from cacerts.entries(store, files)
        if compile_for is not None:
            tag = cache_tag(compile_for.version)
            for path, pyc in _compiled(compile_for, sources):
                yield _pyc_entry(path, tag, pyc)

    return [
        LayerPlan(
            key=key,
            description=f"configure: {', '.join(spec.effects)}",
            entries=entries,
            created_by=f"ocibuild configure {' '.join(spec.effects)}",
        )
    ]


def _compiled(interpreter: Interpreter, sources: dict[str, bytes]) -> list[tuple[str, bytes]]:
    """Each module's pyc (none for a source that does not compile), compiled before the first
    is given: no worker outlives a layer abandoned half way (a generator left suspended is
    finalized only when the interpreter ends, when the compiler's threads are gone)."""
    with Compiler(interpreter) as compiler:
        futures = {p: compiler.submit("/" + p, sources[p]) for p in sorted(sources)}
        try:
            return [(p, pyc) for p, future in futures.items() if (pyc := future.result())]
        finally:  # stopped half way: compile no more
            for future in futures.values():
                future.cancel()


def _pyc_entry(path: str, tag: str, pyc: bytes) -> Entry:
    directory, _, name = path.rpartition("/")
    return bytes_entry(f"{directory}/__pycache__/{name[: -len('.py')]}.{tag}.pyc", pyc)
