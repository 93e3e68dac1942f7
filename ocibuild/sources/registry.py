"""Every layer source, typed: its name in recipes, the spec type its entry is decoded to, and
its plan function, checked against each other by mypy. A source's module (and the domain
packages it needs) is imported only when one of its layers is planned: reading a recipe loads
the spec types (`specs`) and nothing else of the sources."""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import UnionType
from typing import TYPE_CHECKING, Generic, Protocol, TypeVar

import yaml

from ocibuild.errors import Origin
from ocibuild.sources import specs
from ocibuild.ups.layering import LAYERINGS
from ocibuild.yamldecode import decode

if TYPE_CHECKING:
    from ocibuild.sources.base import LayerPlan
    from ocibuild.sources.session import LayerContext

S = TypeVar("S")


@dataclass(frozen=True)
class LayerSpec:
    """One layer source of an image as the recipe gives it: `spec` is the entry decoded to its
    source's spec type, `plan` plans it. An image's `setup:` is its last layer spec, of source
    `setup`."""

    source: str
    spec: object
    origin: Origin
    needs_lower: bool  # planning reads the image below (`ctx.lower`)
    plan: Callable[[LayerContext], list[LayerPlan]] = field(compare=False, repr=False)


@dataclass(frozen=True)
class Source(Generic[S]):
    """A layer source: `spec` is the type its recipe entry is decoded to, `plan` turns that
    value into layer plans."""

    name: str
    spec: type[S] | UnionType
    plan: Callable[[S, LayerContext], list[LayerPlan]]
    description: str
    needs_lower: bool = False  # plans read the image below (`ctx.lower`)
    verbatim: bool = False  # its spec is text for the image: recipe variables stay as written

    def decode(
        self, node: yaml.Node, origin: Origin, file: str, variables: Mapping[str, str]
    ) -> LayerSpec:
        """The recipe's entry at `node`, decoded and checked (errors name file and line), ready
        to plan."""
        spec: S = decode(node, self.spec, file, self.name, None if self.verbatim else variables)
        return LayerSpec(
            self.name, spec, origin, self.needs_lower, functools.partial(self.plan, spec)
        )


class LayerSource(Protocol):
    """A source, whatever its spec type: what the recipe decoder and the schema use."""

    @property
    def name(self) -> str: ...
    @property
    def spec(self) -> object: ...
    @property
    def description(self) -> str: ...
    def decode(
        self, node: yaml.Node, origin: Origin, file: str, variables: Mapping[str, str]
    ) -> LayerSpec: ...


# One function a source: each imports its module only when called, and mypy checks it
# against the module's `plan` and the registry's spec type.


def _files(spec: list[specs.FileItem], ctx: LayerContext) -> list[LayerPlan]:
    from ocibuild.sources import files

    return files.plan(spec, ctx)


def _profile(spec: str | specs.ProfileSpec, ctx: LayerContext) -> list[LayerPlan]:
    from ocibuild.sources import profile

    return profile.plan(spec, ctx)


def _remove(spec: list[str], ctx: LayerContext) -> list[LayerPlan]:
    from ocibuild.sources import remove

    return remove.plan(spec, ctx)


def _ups(spec: specs.UpsSpec, ctx: LayerContext) -> list[LayerPlan]:
    from ocibuild.sources import ups

    return ups.plan(spec, ctx)


def _rpm(spec: specs.RpmSpec, ctx: LayerContext) -> list[LayerPlan]:
    from ocibuild.sources import rpm

    return rpm.plan(spec, ctx)


def _deb(spec: specs.DebSpec, ctx: LayerContext) -> list[LayerPlan]:
    from ocibuild.sources import deb

    return deb.plan(spec, ctx)


def _wheels(spec: specs.WheelsSpec, ctx: LayerContext) -> list[LayerPlan]:
    from ocibuild.sources import wheels

    return wheels.plan(spec, ctx)


def _configure(spec: specs.ConfigureSpec, ctx: LayerContext) -> list[LayerPlan]:
    from ocibuild.sources import configure

    return configure.plan(spec, ctx)


def _user(spec: specs.UserSpec, ctx: LayerContext) -> list[LayerPlan]:
    from ocibuild.sources import user

    return user.plan(spec, ctx)


def _spack(spec: specs.SpackSpec, ctx: LayerContext) -> list[LayerPlan]:
    from ocibuild.sources import spack

    return spack.plan(spec, ctx)


def _setup(spec: specs.SetupSpec, ctx: LayerContext) -> list[LayerPlan]:
    from ocibuild.sources import setup

    return setup.plan(spec, ctx)


SOURCES: Mapping[str, LayerSource] = {
    source.name: source
    for source in (
        Source(
            "files", list[specs.FileItem], _files, "local files and directories, inline content"
        ),
        Source(
            "profile",
            str | specs.ProfileSpec,
            _profile,
            "login-shell lines in /etc/profile.d",
            verbatim=True,
        ),
        Source("remove", list[str], _remove, "whiteouts over lower layers"),
        Source(
            "ups",
            specs.UpsSpec,
            _ups,
            f"UPS products from a scisoft mirror (layering: {', '.join(LAYERINGS)})",
        ),
        Source(
            "rpm",
            specs.RpmSpec,
            _rpm,
            "rpm packages from yum repositories, unpacked without running scriptlets",
            needs_lower=True,
        ),
        Source(
            "deb",
            specs.DebSpec,
            _deb,
            "deb packages from apt repositories, unpacked without running maintainer scripts",
            needs_lower=True,
        ),
        Source(
            "wheels",
            specs.WheelsSpec,
            _wheels,
            "Python packages from wheels (a package index, a lock), for the image's Python",
            needs_lower=True,
        ),
        Source(
            "configure",
            specs.ConfigureSpec,
            _configure,
            "what the Debian packages' maintainer scripts would have made: base-files' files, "
            "alternatives, the CA store, bytecode of Debian's Python",
            needs_lower=True,
        ),
        Source(
            "user",
            specs.UserSpec,
            _user,
            "a non-root account (passwd, group, shadow, home) and the image's user",
            needs_lower=True,
        ),
        Source(
            "spack",
            specs.SpackSpec,
            _spack,
            "packages of a Spack build cache, verified and relocated, with its database, a "
            "view and the environment (layering: auto, per-package, single)",
        ),
        Source(
            "setup",
            specs.SetupSpec,
            _setup,
            "UPS `setup` of a product: its environment frozen into the image, and a login script",
        ),
    )
}
